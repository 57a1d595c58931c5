"""Faces found by YuNet, boxed by dlib's HOG detector where it sees them too, encoded by SFace.

A reference photo's one face is found by HOG alone, as it always was: the rule's anchors were
boxed by it. HOG's whole-photo pass (with its second looks) stays for that, and for the bench.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import dlib
import numpy as np
from PIL import Image, ImageFilter

from service.faces.cnn_detector import CnnFaceDetector
from service.faces.encoder import face_chips
from service.faces.images import DecodedPhoto, decode_photo
from service.faces.mesh import FaceMesh
from service.faces.modelfiles import ModelFiles
from service.faces.sface import (
    CHIP_SIDE,
    DLIB_FIVE,
    ON_DLIB_SCALE,
    SFaceEncoder,
    aligned_face,
    landmark_points,
)
from service.faces.yunet import Detection, YuNetDetector

# dlib's HOG detector looks through an 80x80 window, so the smallest face it finds is ~80 px at
# the scale it runs on. The face_recognition CLI shrinks photos to 1600 px and upsamples twice,
# finding faces down to ~40 px at 1600 (about 100 px in a 12-megapixel photo). We keep that reach
# but pay for it once: decode at >= 1600 px (JPEG draft), then detect on a greyscale copy scaled
# to twice the information scale. Greyscale HOG costs ~2/3 of colour HOG and finds the same faces.
INFORMATION_SIDE = 1600
DETECTION_UPSCALE = 2.0
# A photo from a dark room carries sensor grain, and grain breaks the HOG gradients of small faces.
# Grain is measured with Immerkaer's mask (blind to flat areas, ramps and edges), as a median over
# the photo: clean photos, even re-saved at JPEG quality 30 or blurred, measure 0-3; night shots
# 10-35 (but small sharp photos with fine texture reach 20 too). A noisy photo gets a second
# detection pass on a copy smoothed before it is enlarged, which finds a fifth to a quarter more
# of a night shot's faces (models/MODEL_CARD.md, "Noisy photos").
NOISY_PHOTO = 6.0
DENOISE_SIGMA = 1.0  # px at the information scale: the grain goes, a 40 px face's features stay
# HOG scores a face it is unsure of below the floor (thresholds.json: detector_min_score). Its three
# best detections from UNSURE_FLOOR up to the floor get a second opinion: dlib's CNN detector
# looks again at the detection's place and scale (cnn_detector.score_at, ~16 ms) and keeps it if
# it scores it at least CNN_CONFIRMS. Scanning a whole photo with the CNN finds more but costs ~9
# times HOG's pass, and its extra faces cost precision; lowering the floor alone proposes
# strangers (models/MODEL_CARD.md, "A second opinion on unsure faces").
UNSURE_FLOOR = -0.8
CNN_CONFIRMS = 0.3
# A photo's unsure detections asked about, HOG's best first: bounds the cost. Most of them are
# shadows and patterns the CNN turns down; a third finds a tilted face of a crowded photo that
# the first two are not (recall_audit.py, "CNN second opinion ... asked about 3": platform recall
# +0.007, nothing else changes; stop 31). ONNX Runtime's CNN pays for the third: 31 ms a photo.
UNSURE_ASKED = 3

# How a scanned photo's faces are found (models/EXPERIMENTS.md, "YuNet finds the faces"). HOG's
# whole-photo pass at the scale 40 px faces need was two thirds of a scan's time, and the
# face_recognition CLI runs the same pass, so the engine could not get far ahead of it. YuNet (a
# 56-thousand-weight network) finds faces from about 10 px up without upsampling, in a fifth of
# HOG's time, and misses fewer of the blurred, dark and turned faces. It looks at a photo of at
# most FIND_SIDE px on its long side, and a grainy one (NOISY_PHOTO) again at half that size:
# grain hides a night face from it as from HOG, and halving averages the grain away (platform
# set: 2 owner faces more, diverse 1; "A second look at a grainy photo"). A lower score than
# FIND_MIN_SCORE finds one tilted night face more, which the second look finds too, and changes
# the cohort enough to lose one elsewhere.
FIND_SIDE = 2048
FIND_MIN_SCORE = 0.5
# A face HOG does not see in its box (below) at its floor (detector_min_score) is kept only if
# YuNet is this sure of it: on the platform and diverse sets, of the faces HOG does not see at
# all, all 5 owners' score 0.83 or more, and 276 of 289 that are no face at all (patterns,
# shadows, a dog) less. What is kept is encoded, so this also saves their cost.
FIND_SURE = 0.8
# A face narrower than this (its HOG-like box, in the pixels YuNet saw) carries too little to
# encode: HOG's reach was 40 px at the information scale.
FIND_MIN_WIDTH = 24
# Each face is then boxed as HOG boxes it, because the encoding follows the box (dlib's landmarks
# start from it) and the rule was read off HOG's boxes. HOG looks at the photo around the face
# (BOX_MARGIN box widths each side) at the scale its whole-photo pass would, brought within
# HOG_FACE_PX wide so that it is neither below HOG's 80 px window nor needlessly large. HOG's
# tilted filters box a turned head far better than YuNet's landmarks place it. Where HOG does not
# see the face (blurred, dark), its box is read off YuNet's landmarks: the centre of the eyes and
# mouth moved by BOX_FIT[:2] times their spread (the eyes' distance plus the distance from eyes
# to mouth), BOX_FIT[2] spreads wide: medians over calib/'s 205 faces both find, on which the
# encodings from such boxes tell people apart as well as HOG's own.
HOG_FACE_PX = (90.0, 120.0)
BOX_MARGIN = 1.0
BOX_FIT = (0.0152, -0.0209, 1.1655)


Detected = tuple[dlib.rectangle, float]  # a detection and its detector score


@dataclass(frozen=True)
class Face:
    """A detected face. `box` is (top, right, bottom, left) in the original upright photo."""

    box: tuple[int, int, int, int]
    score: float
    encoding: np.ndarray


class NotOneFace(ValueError):
    """A reference photo must show exactly one face, clearly enough to be the person's anchor."""


# A reference is the anchor of every later decision; these were read off real photos (every
# labeled photo of ../shared/faces passes, blurred copies of them do not; models/MODEL_CARD.md).
REFERENCE_MIN_FACE_PX = 48  # face width in the original photo (LFW faces are 52)
REFERENCE_MIN_SHARPNESS = 10.0  # variance of the Laplacian of the aligned 150 px face
REFERENCE_MAX_TURN = 0.4  # nose offset from between the eyes, in eye distances


class FaceEngine:
    """Detects and encodes faces. Load once per process: the models take ~0.6 s and 130 MB."""

    def __init__(
        self, models: ModelFiles, *, min_score: float, finder: Literal["yunet", "hog"] = "yunet"
    ) -> None:
        """`finder` "hog" scans photos with HOG's whole-photo pass instead of YuNet (as the
        engine did until stop 32; the bench's audit replays that engine)."""
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(models.shape_predictor))
        # SFace, on each face aligned two ways: by dlib's five landmarks, and by the eye centres,
        # nose tip and mouth corners that MediaPipe's face mesh places. It replaced dlib's ResNet,
        # which took look-alike strangers for owners far more often, most of all East Asian ones
        # (models/MODEL_CARD.md, "What it is").
        self._encoder = SFaceEncoder(models.face_encoder)
        self._mesh = FaceMesh(models.face_mesh)
        self._cnn_file = models.face_detector
        self._finder = YuNetDetector(models.face_finder) if finder == "yunet" else None
        self.min_score = min_score

    @functools.cached_property
    def _cnn(self) -> CnnFaceDetector:
        """dlib's CNN, for a second opinion on a face HOG is unsure of: loaded when first asked
        (most photos never ask)."""
        return CnnFaceDetector(self._cnn_file)

    def faces(self, photo: DecodedPhoto) -> list[Face]:
        """Every face in `photo` above the detector score floor, with its 128-d encoding."""
        detected = self._detect(photo.rgb) if self._finder is None else self._found(photo.rgb)
        shapes = [self._landmarks(photo.rgb, rect) for rect, _ in detected]
        return [
            Face(box=_original_box(rect, photo), score=score, encoding=encoding)
            for (rect, score), encoding in zip(detected, self._encode(photo, shapes), strict=True)
        ]

    def scan_bytes(self, data: bytes) -> tuple[DecodedPhoto, list[Face]]:
        photo = decode_photo(data, max_side=INFORMATION_SIDE)
        return photo, self.faces(photo)

    def encoding_at(self, photo: DecodedPhoto, box: tuple[int, int, int, int]) -> np.ndarray:
        """The encoding of the face at `box` (top, right, bottom, left in the original photo, as
        `Face.box` gives it): for a face the service kept a picture of, encoded again."""
        return self._embedded(self.aligned_at(photo, box)[None])[0]

    def aligned_at(self, photo: DecodedPhoto, box: tuple[int, int, int, int]) -> np.ndarray:
        """The face at `box` (as in `encoding_at`), aligned both ways SFace is given it:
        (2, 112, 112, 3), as `_aligned`."""
        top, right, bottom, left = (round(v * photo.scale) for v in box)
        shape = self._landmarks(photo.rgb, dlib.rectangle(left, top, right, bottom))
        return self._aligned(photo.rgb, [shape])[0]

    def _encode(self, photo: DecodedPhoto, shapes: list[dlib.full_object_detection]) -> np.ndarray:
        return self._embedded(self._aligned(photo.rgb, shapes))

    def _aligned(self, rgb: np.ndarray, shapes: list[dlib.full_object_detection]) -> np.ndarray:
        """The faces at these landmarks, each aligned two ways for SFace: (N, 2, 112, 112, 3).

        By dlib's five landmarks (the eyes' corners, the base of the nose), onto where they sit in
        SFace's face; and by SFace's own five points (eye centres, nose tip, mouth corners), which
        the face mesh places, starting from dlib's. The mean of the two embeddings takes fewer
        look-alike strangers on the bench than either alignment alone (models/EXPERIMENTS.md,
        "Aligned as SFace was trained")."""
        if not shapes:
            return np.empty((0, 2, CHIP_SIDE, CHIP_SIDE, 3), np.uint8)
        faces = []
        for shape in shapes:
            points = landmark_points(shape)
            faces.append(
                (
                    aligned_face(rgb, points, DLIB_FIVE),
                    aligned_face(rgb, self._five(rgb, shape.rect, points)),
                )
            )
        return np.stack(faces)

    def _five(self, rgb: np.ndarray, rect: dlib.rectangle, points: np.ndarray) -> np.ndarray:
        """SFace's five points of the face in `rect`, placed by the mesh from dlib's five
        landmarks `points`."""
        left_eye, right_eye = sorted(_eye_centres(points), key=lambda p: p[0])
        dx, dy = right_eye - left_eye
        box = (rect.left(), rect.top(), rect.right(), rect.bottom())
        return self._mesh.five(rgb, box, roll=float(np.arctan2(dy, dx)))

    def _embedded(self, aligned: np.ndarray) -> np.ndarray:
        """The faces' encodings from their two alignments (`_aligned`): the mean of SFace's two
        embeddings, scaled to length 1, then onto dlib's distance scale (so the rule's settings,
        read in that scale, keep their meaning; sface.ON_DLIB_SCALE)."""
        if not len(aligned):
            return np.empty((0, 128))
        both = self._encoder.encode(aligned.reshape(-1, *aligned.shape[2:])).astype(np.float64)
        mean = both.reshape(len(aligned), 2, -1).sum(axis=1)
        return mean / np.linalg.norm(mean, axis=1, keepdims=True) * ON_DLIB_SCALE

    def reference(self, data: bytes, *, strict: bool = False) -> tuple[DecodedPhoto, Face]:
        """The one face of a reference photo, encoded as any face is.

        `strict` (enrollment in the service) also refuses a face that is small, blurred or turned
        away, saying so in plain words: a poor anchor costs the owner both ways later.
        """
        photo = decode_photo(data, max_side=INFORMATION_SIDE)
        # A reference is a close-up: one pass without the small-face reach finds its face at a
        # quarter of the cost. When that pass does not find exactly one face, the full pass
        # decides. (A face too small for the quick pass, far behind the one found, is not
        # counted: the large face it found is the one encoded either way.)
        # The CNN's second opinion is not asked: a reference is a clear face, and an unsure
        # background face confirmed there would refuse a photo that serves well.
        detected = self._detect(photo.rgb, upscale=1.0, confirm=False)
        if len(detected) != 1 or max(photo.rgb.shape[:2]) < INFORMATION_SIDE / 2:
            detected = self._detect(photo.rgb, confirm=False)
        if not detected:
            raise NotOneFace("no face was found in this photo")
        if len(detected) > 1:
            raise NotOneFace(f"this photo shows {len(detected)} faces; use one showing only you")
        rect, score = detected[0]
        shape = self._landmarks(photo.rgb, rect)
        if strict:
            _check_reference(photo, rect, shape)
        # Not jittered: dlib's encoder was steadier for the mean over ten jittered copies, and
        # SFace was measured without (models/EXPERIMENTS.md, "SFace").
        [encoding] = self._encode(photo, [shape])
        return photo, Face(box=_original_box(rect, photo), score=score, encoding=encoding)

    def _found(self, rgb: np.ndarray) -> list[Detected]:
        """The faces YuNet finds, each in HOG's box where HOG sees it, else in one read off
        YuNet's landmarks; with YuNet's score. A face is kept if YuNet is sure of it, or HOG is,
        or HOG is unsure and the CNN confirms it."""
        assert self._finder is not None
        height, width = rgb.shape[:2]
        factor = min(1.0, FIND_SIDE / max(width, height))
        colour = Image.fromarray(rgb)
        grey = colour.convert("L")
        picture = rgb
        if factor < 1:
            size = (round(width * factor), round(height * factor))
            picture = np.asarray(colour.resize(size, Image.Resampling.BILINEAR))
        found = []
        for face, rect in self._finder_faces(picture, grey, factor):
            hog = self._hog_box(grey, rect)
            box = rect if hog is None else hog[0]
            sure = face.score >= FIND_SURE
            if sure or (
                hog is not None and (hog[1] >= self.min_score or self._confirmed(colour, box))
            ):
                found.append((box, face.score))
        return found

    def _finder_faces(
        self, picture: np.ndarray, grey: Image.Image, factor: float
    ) -> list[tuple[Detection, dlib.rectangle]]:
        """YuNet's faces of the photo (`picture` is it scaled by `factor`), each with its box in
        the photo. A grainy photo gets a second look at half that size: averaging the grain away
        shows YuNet night faces it misses at full size (as HOG's second look smooths first)."""
        assert self._finder is not None
        looks = [(picture, factor)]
        if grain(_at_information_scale(grey)) > NOISY_PHOTO:
            half = Image.fromarray(picture).reduce(2)
            looks.append((np.asarray(half), factor * half.width / picture.shape[1]))
        width, height = grey.size
        seen = [
            (face, _scaled_rect(rect, 1 / scale, width, height))
            for look, scale in looks
            for face in self._finder.detect(look, min_score=FIND_MIN_SCORE)
            if (rect := _box_from_landmarks(face.landmarks)).width() * factor / scale
            >= FIND_MIN_WIDTH
        ]
        found: list[tuple[Detection, dlib.rectangle]] = []
        for face, rect in sorted(seen, key=lambda f: -f[0].score):  # a face seen twice: the surer
            if not any(_same_face(rect, kept) for _, kept in found):
                found.append((face, rect))
        return found

    def _hog_box(self, grey: Image.Image, rect: dlib.rectangle) -> Detected | None:
        """HOG's box of the face at `rect` and its score, if HOG sees it in the photo around it
        (from UNSURE_FLOOR)."""
        width, height = grey.size
        side = rect.right() - rect.left() + 1
        scale = float(
            np.clip(_detection_factor(width, height), HOG_FACE_PX[0] / side, HOG_FACE_PX[1] / side)
        )
        cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
        reach = side * (0.5 + BOX_MARGIN)
        left, top = max(0, round(cx - reach)), max(0, round(cy - reach))
        crop = grey.crop((left, top, min(width, round(cx + reach)), min(height, round(cy + reach))))
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        boxes = [
            (_from_crop(r, scale, left, top), score)
            for r, score in self._run(crop, size, UNSURE_FLOOR)
        ]
        best = max(boxes, key=lambda b: _overlap(b[0], rect), default=None)
        return best if best is not None and _overlap(best[0], rect) > 0.3 else None

    def _detect(
        self,
        rgb: np.ndarray,
        upscale: float = DETECTION_UPSCALE,
        *,
        second_look: bool = True,
        confirm: bool = True,
    ) -> list[Detected]:
        colour = Image.fromarray(rgb)
        floor = min(self.min_score, UNSURE_FLOOR) if confirm else self.min_score
        return self._kept(colour, self._hog(colour, upscale, second_look, floor))

    def _kept(self, colour: Image.Image, faces: list[Detected]) -> list[Detected]:
        """HOG's sure detections, and those of its unsure ones the CNN confirms."""
        sure = [(rect, score) for rect, score in faces if score >= self.min_score]
        # HOG's unsure detections, from UNSURE_FLOOR up to the floor: blurred, dark, turned and
        # re-compressed faces, among many shadows and patterns. dlib's CNN detector, looking at
        # each one's place and scale, tells the faces from the rest.
        unsure = sorted((d for d in faces if d[1] < self.min_score), key=lambda d: -d[1])
        sure += [(rect, s) for rect, s in unsure[:UNSURE_ASKED] if self._confirmed(colour, rect)]
        return sure

    def _hog(
        self, colour: Image.Image, upscale: float, second_look: bool, floor: float
    ) -> list[Detected]:
        """HOG's detections down to `floor`, in the photo's pixels (a grainy photo's second look
        joins them; scores from the engine's floor up count as sure there)."""
        width, height = colour.size
        factor = _detection_factor(width, height, upscale)
        # A photo smaller than the information scale is upsampled by the full factor, as the CLI
        # does; a larger decoded photo is brought to the same detection size.
        grey = colour.convert("L")
        size = (round(width * factor), round(height * factor))
        found = self._run(grey, size, floor)
        if second_look and grain(_at_information_scale(grey)) > NOISY_PHOTO:
            # A second look at a smoothed copy; what the first pass found stays (fine texture
            # also reads as grain, and smoothing it would lose small sharp faces).
            smooth = self._run(grey.filter(ImageFilter.GaussianBlur(DENOISE_SIGMA)), size, floor)
            found = _union(found, smooth, self.min_score)
        return [(_scaled_rect(rect, 1 / factor, width, height), score) for rect, score in found]

    def _confirmed(self, colour: Image.Image, rect: dlib.rectangle) -> bool:
        box = (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
        return self._cnn.score_at(colour, box) >= CNN_CONFIRMS

    def _run(self, grey: Image.Image, size: tuple[int, int], floor: float) -> list[Detected]:
        if size != grey.size:
            grey = grey.resize(size, Image.Resampling.BILINEAR)
        rects, scores, _ = self._detector.run(np.asarray(grey), 0, floor)
        return [(rect, float(score)) for rect, score in zip(rects, scores, strict=True)]


def _detection_factor(width: int, height: int, upscale: float = DETECTION_UPSCALE) -> float:
    """The scale HOG's whole-photo pass looks at a photo of this size at."""
    return upscale * min(1.0, INFORMATION_SIDE / max(width, height))


def _from_crop(rect: dlib.rectangle, scale: float, left: int, top: int) -> dlib.rectangle:
    """A box found on a crop of the photo from (left, top), scaled by `scale`, in the photo."""
    return dlib.rectangle(
        round(left + rect.left() / scale),
        round(top + rect.top() / scale),
        round(left + rect.right() / scale),
        round(top + rect.bottom() / scale),
    )


def _box_from_landmarks(points: np.ndarray) -> dlib.rectangle:
    """A HOG-like box from YuNet's five landmarks (BOX_FIT)."""
    eyes, mouth = (points[0] + points[1]) / 2, (points[3] + points[4]) / 2
    spread = np.linalg.norm(points[0] - points[1]) + np.linalg.norm(eyes - mouth)
    centre = (eyes + mouth) / 2 + np.array(BOX_FIT[:2]) * spread
    half = BOX_FIT[2] * spread / 2
    left, top = (round(v) for v in centre - half)
    right, bottom = (round(v) for v in centre + half)
    return dlib.rectangle(left, top, right, bottom)


def _overlap(a: dlib.rectangle, b: dlib.rectangle) -> float:
    """Intersection over union."""
    inter = a.intersect(b)
    if inter.is_empty():
        return 0.0
    return inter.area() / (a.area() + b.area() - inter.area())


def _union(plain: list[Detected], smooth: list[Detected], sure: float) -> list[Detected]:
    """Both passes' faces: every sure face of the plain pass, the smoothed pass's sure faces that
    overlap none of those, then the unsure ones of either that overlap nothing kept (the better
    scored first)."""
    kept = [(r, s) for r, s in plain if s >= sure]
    kept += [(r, s) for r, s in smooth if s >= sure and not any(_same_face(r, f) for f, _ in kept)]
    unsure = sorted((d for d in plain + smooth if d[1] < sure), key=lambda d: -d[1])
    for r, s in unsure:
        if not any(_same_face(r, f) for f, _ in kept):
            kept.append((r, s))
    return kept


def _at_information_scale(grey: Image.Image) -> Image.Image:
    """Grain as the detector sees it: a 12-megapixel PNG or HEIC, decoded whole, shows grain that
    averaging it down to the information scale takes away."""
    step = max(grey.size) // INFORMATION_SIDE
    return grey.reduce(step) if step > 1 else grey


def _same_face(a: dlib.rectangle, b: dlib.rectangle) -> bool:
    """Two detections of one face: they overlap by half of the smaller box."""
    inter = a.intersect(b)
    if inter.is_empty():
        return False
    return inter.area() >= 0.5 * min(a.area(), b.area())


def grain(grey: Image.Image) -> float:
    """Sensor noise of a greyscale photo: the median response to Immerkaer's mask, which is blind
    to flat areas, ramps and straight edges, so what it answers to is grain (and fine texture).
    Measured at every other pixel of every other row, each with its full-resolution neighbours."""
    g = np.asarray(grey, dtype=np.int16)  # responses stay within +-4080
    if min(g.shape) < 3:
        return 0.0

    def at(dy: int, dx: int) -> np.ndarray:  # the neighbour (dy, dx) of every sampled centre
        return g[1 + dy : g.shape[0] - 1 + dy : 2, 1 + dx : g.shape[1] - 1 + dx : 2]

    cross = at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)
    corners = at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)
    return _median_of_small_ints(np.abs(4 * at(0, 0) - 2 * cross + corners))


def _median_of_small_ints(values: np.ndarray) -> float:
    """np.median of non-negative integers, from their histogram: a few times faster than the
    partial sort np.median does on a photo's worth of them."""
    below = np.cumsum(np.bincount(values.ravel()))
    n = int(below[-1])
    upper = int(np.searchsorted(below, n // 2 + 1))  # the (n // 2)-th value, counting from 0
    if n % 2:
        return float(upper)
    return (int(np.searchsorted(below, n // 2)) + upper) / 2


def _check_reference(
    photo: DecodedPhoto, rect: dlib.rectangle, shape: dlib.full_object_detection
) -> None:
    width = round((rect.right() - rect.left()) / photo.scale)
    if width < REFERENCE_MIN_FACE_PX:
        raise NotOneFace(
            f"your face is small in this photo ({width} pixels across); please use a photo where "
            f"it is bigger, at least {REFERENCE_MIN_FACE_PX} pixels across (a close-up or a crop)"
        )
    # Sharpness is read on dlib's 150 px face chip, on which the limit was set.
    [chip] = face_chips(photo.rgb, [shape])
    grey = np.asarray(Image.fromarray(chip).convert("L"), dtype=np.float64)
    edges = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2]
    edges -= grey[1:-1, 2:]
    if edges.var() < REFERENCE_MIN_SHARPNESS:
        raise NotOneFace("this photo is blurry around your face; please use a sharper one")
    points = landmark_points(shape)
    eyes = _eye_centres(points)
    turn = abs(points[4, 0] - (eyes[0][0] + eyes[1][0]) / 2) / np.linalg.norm(eyes[0] - eyes[1])
    if turn > REFERENCE_MAX_TURN:
        raise NotOneFace(
            "your face is turned to the side in this photo; please use one where you look "
            "towards the camera (a slight turn is fine)"
        )


def _eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two eye centres from dlib's five landmarks: the 5-point model gives the corners of one
    eye (0, 1), of the other (2, 3), and the nose (4)."""
    return points[0:2].mean(axis=0), points[2:4].mean(axis=0)


def _scaled_rect(rect: dlib.rectangle, factor: float, width: int, height: int) -> dlib.rectangle:
    return dlib.rectangle(
        max(0, round(rect.left() * factor)),
        max(0, round(rect.top() * factor)),
        min(width - 1, round(rect.right() * factor)),
        min(height - 1, round(rect.bottom() * factor)),
    )


def _original_box(rect: dlib.rectangle, photo: DecodedPhoto) -> tuple[int, int, int, int]:
    s = 1 / photo.scale
    return (
        round(rect.top() * s),
        round(rect.right() * s),
        round(rect.bottom() * s),
        round(rect.left() * s),
    )
