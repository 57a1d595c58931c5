"""Detection, encoding and matching on real photos."""

from __future__ import annotations

import math
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from service.faces.decision import DecisionRule
from service.faces.engine import (
    FIND_MIN_SCORE,
    FIND_SURE,
    INFORMATION_SIDE,
    NOISY_PHOTO,
    UNSURE_FLOOR,
    NotOneFace,
    _at_information_scale,
    _overlap,
    grain,
)
from service.faces.images import DecodedPhoto, decode_photo
from service.faces.matching import Gallery, Thresholds
from service.faces.sface import ON_DLIB_SCALE

# Faces annotated in dlib's examples/faces/training.xml for these PASCAL VOC party snapshots.
ANNOTATED_FACES = {
    "2007_007763.jpg": 7,  # 37-45 px faces
    "2008_002079.jpg": 6,
    "2008_001009.jpg": 2,
    "2008_001322.jpg": 3,
}


def test_it_imports_face_recognition_for_real() -> None:
    # With setuptools >= 81, `import face_recognition` prints a hint and quit()s with status 0;
    # only the line printed after the import proves it really loaded.
    code = "import face_recognition; print('loaded', face_recognition.face_distance.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == "loaded face_distance"


def test_it_encodes_a_real_face(engine, faces_dir: Path) -> None:
    _, face = engine.reference((faces_dir / "dev/obama/obama.jpg").read_bytes())
    assert face.encoding.shape == (128,)
    # SFace's embeddings have length 1; the engine puts them on dlib's distance scale.
    assert math.isclose(float(np.linalg.norm(face.encoding)), ON_DLIB_SCALE, rel_tol=1e-4)
    _, same = engine.reference((faces_dir / "dev/obama/obama2.jpg").read_bytes())
    _, other = engine.reference((faces_dir / "dev/biden/biden.jpg").read_bytes())
    assert np.linalg.norm(face.encoding - same.encoding) < 0.5
    assert np.linalg.norm(face.encoding - other.encoding) > 0.6


def test_it_encodes_a_face_again_at_its_box(engine, faces_dir: Path) -> None:
    """What the service keeps of a face (a picture and its box) gives back its encoding."""
    photo, [face] = engine.scan_bytes((faces_dir / "dev/biden/biden.jpg").read_bytes())
    assert np.linalg.norm(engine.encoding_at(photo, face.box) - face.encoding) < 0.02


@pytest.mark.parametrize(("name", "count"), ANNOTATED_FACES.items())
def test_it_finds_every_small_face_of_a_party_snapshot(
    engine, faces_dir: Path, name: str, count: int
) -> None:
    _, faces = engine.scan_bytes((faces_dir / "dev/_dlib_voc_snapshots" / name).read_bytes())
    assert len(faces) == count


def test_it_finds_no_face_among_dogs(engine, faces_dir: Path) -> None:
    _, faces = engine.scan_bytes((faces_dir / "dev/_no_human_faces/dogs.jpg").read_bytes())
    assert faces == []


def test_it_finds_each_bald_guy(engine, faces_dir: Path) -> None:
    _, faces = engine.scan_bytes((faces_dir / "dev/_dlib_bald_guys/bald_guys.jpg").read_bytes())
    assert len(faces) == 24


def near(gallery: Gallery, encodings: list[np.ndarray], thresholds: Thresholds) -> list:
    """Each face's nearest person within reach (the first step of a decision), or None."""
    distances = gallery.distances(np.array(encodings))
    return [
        gallery.names[int(row.argmin())] if row.min() <= thresholds.possible else None
        for row in distances
    ]


def test_it_finds_a_small_face_in_a_12_megapixel_photo(
    engine, gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    source = Image.open(faces_dir / "dev/obama/obama-480p.jpg")  # face ~108 px across
    canvas = Image.new("RGB", (4000, 3000), (96, 110, 80))
    canvas.paste(source, (2500, 1900))
    data = BytesIO()
    canvas.save(data, "JPEG", quality=90)
    photo, faces = engine.scan_bytes(data.getvalue())
    assert photo.scale == 0.5  # decoded at half scale, detected at the scale small faces need
    [face] = faces
    top, right, bottom, left = face.box
    assert 2500 < left < right < 2500 + source.width and 1900 < top < bottom < 1900 + source.height
    assert 80 <= right - left <= 140
    assert near(gallery, [face.encoding], thresholds) == ["obama"]


def test_it_assigns_each_face_to_its_nearest_person(
    engine, gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    _, faces = engine.scan_bytes((faces_dir / "dev/_multi/obama_and_biden.jpg").read_bytes())
    found = near(gallery, [f.encoding for f in faces], thresholds)
    assert sorted(p for p in found if p) == ["biden", "obama"]


def test_it_leaves_strangers_unmatched(
    engine, gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    _, faces = engine.scan_bytes((faces_dir / "dev-bbt/_group_unlabeled/bbt4.jpg").read_bytes())
    assert len(faces) >= 5
    assert near(gallery, [f.encoding for f in faces], thresholds) == [None] * len(faces)


@pytest.mark.parametrize(
    ("path", "message"),
    [("dev/_no_human_faces/dogs.jpg", "no face"), ("dev/_multi/kit_with_rose.jpg", "2 faces")],
)
def test_it_refuses_a_reference_without_exactly_one_face(
    engine, faces_dir: Path, path: str, message: str
) -> None:
    with pytest.raises(NotOneFace, match=message):
        engine.reference((faces_dir / path).read_bytes())


def test_it_compares_with_every_reference_of_every_person() -> None:
    people = {
        "ann": np.array([[0.0] * 128, [1.0] + [0.0] * 127]),
        "bea": np.array([[0.0] * 127 + [0.9]]),
    }
    probe = np.array([[0.95] + [0.0] * 127, [0.0] * 127 + [0.8]])
    nearest = Gallery(people, over="nearest")
    assert np.allclose(nearest.distances(probe), [[0.05, 1.31], [0.8, 0.1]], atol=0.01)
    mean = Gallery(people, over="mean")
    assert np.allclose(mean.distances(probe), [[0.5, 1.31], [1.04, 0.1]], atol=0.01)
    assert Gallery(people).over == DecisionRule.load().references, "the scan's, by default"
    assert nearest.centres().round(2)[0, 0] == 0.5
    with pytest.raises(ValueError, match="nearest"):
        Gallery(people, over="median")


def _jpeg(image: Image.Image) -> bytes:
    out = BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def test_it_tells_the_owner_why_a_reference_is_too_poor(engine, faces_dir: Path) -> None:
    photo = Image.open(faces_dir / "dev/obama/obama-480p.jpg").convert("RGB")  # face ~108 px
    small = photo.resize((round(photo.width * 0.4), round(photo.height * 0.4)))
    blurred = photo.filter(ImageFilter.GaussianBlur(4))
    with pytest.raises(NotOneFace, match="small in this photo"):
        engine.reference(_jpeg(small), strict=True)
    with pytest.raises(NotOneFace, match="blurry"):
        engine.reference(_jpeg(blurred), strict=True)
    with pytest.raises(NotOneFace, match="turned to the side"):
        engine.reference((faces_dir / "calib/lfwsite_hamid_karzai/6.jpg").read_bytes(), strict=True)
    # The scan command takes what it is given: the same photos still serve there.
    assert engine.reference(_jpeg(blurred))[1].encoding.shape == (128,)
    # A clear, frontal, large enough face passes.
    assert engine.reference(_jpeg(photo), strict=True)[1].encoding.shape == (128,)


def _night_shot(faces_dir: Path, noise: float = 12) -> bytes:
    """A 1080 px post with one small face, taken in a dark room: dim, warm and grainy."""
    face = Image.open(faces_dir / "dev/obama/obama.jpg").convert("RGB")
    face = face.resize((170, round(face.height * 170 / face.width)))
    canvas = Image.new("RGB", (1080, 1080), (90, 80, 70))
    canvas.paste(face, (300, 300))
    dim = np.asarray(ImageEnhance.Brightness(canvas).enhance(0.25), dtype=np.float32)
    grainy = dim + np.random.default_rng(0).normal(0, noise, dim.shape)
    out = BytesIO()
    Image.fromarray(np.clip(grainy, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_it_takes_a_second_look_at_a_grainy_photo(engine, faces_dir: Path) -> None:
    night = decode_photo(_night_shot(faces_dir), max_side=INFORMATION_SIDE)
    clean = decode_photo((faces_dir / "dev/obama/obama.jpg").read_bytes(), max_side=1600)
    assert grain(Image.fromarray(clean.rgb).convert("L")) <= NOISY_PHOTO
    assert grain(Image.fromarray(night.rgb).convert("L")) > NOISY_PHOTO
    assert engine._detect(night.rgb, second_look=False, confirm=False) == []  # grain hides it
    [(box, _)] = engine._detect(night.rgb)
    assert 300 <= box.left() < box.right() <= 470 and 300 <= box.top() < box.bottom() <= 512


def test_yunet_looks_at_a_grainy_photo_again_at_half_size(engine, faces_dir: Path) -> None:
    # Darker grain than above: at full size YuNet barely sees the face; halving the photo
    # averages the grain away and it is sure of it (platform set: two night faces more).
    night = decode_photo(_night_shot(faces_dir, noise=24), max_side=INFORMATION_SIDE)
    assert grain(Image.fromarray(night.rgb).convert("L")) > NOISY_PHOTO
    assert engine._finder.detect(night.rgb, min_score=FIND_MIN_SCORE) == []
    [(box, score)] = engine._found(night.rgb)
    assert score >= FIND_SURE
    assert 300 <= box.left() < box.right() <= 470 and 300 <= box.top() < box.bottom() <= 512
    # A clean photo gets one look: the same face, not grainy, is found at full size alone.
    clean = decode_photo(_night_shot(faces_dir, noise=0), max_side=INFORMATION_SIDE)
    assert grain(Image.fromarray(clean.rgb).convert("L")) <= NOISY_PHOTO
    assert engine._finder.detect(clean.rgb, min_score=FIND_MIN_SCORE) != []


def test_a_large_photos_fine_grain_is_judged_at_the_scale_the_detector_sees(
    faces_dir: Path,
) -> None:
    # A 12-megapixel PNG is decoded whole, and a phone sensor's fine grain shows at that size;
    # averaged down to the information scale it is gone, and so is the cost of a second look.
    face = Image.open(faces_dir / "dev/obama/obama.jpg").convert("L").resize((3000, 4000))
    grain_noise = np.random.default_rng(1).integers(-3, 4, size=(4000, 3000))
    phone = Image.fromarray(
        np.clip(np.asarray(face, np.int16) + grain_noise, 0, 255).astype(np.uint8)
    )
    assert grain(phone) > NOISY_PHOTO
    assert grain(_at_information_scale(phone)) <= NOISY_PHOTO


def test_the_cnn_confirms_a_blurred_face_hog_is_unsure_of(engine, faces_dir: Path) -> None:
    # An 80 px face, blurred as a moving phone blurs it: HOG scores it -0.3, below the floor.
    face = Image.open(faces_dir / "dev-bbt/howard/howard1.png").convert("RGB").resize((80, 80))
    canvas = Image.new("RGB", (640, 480), (120, 110, 100))
    canvas.paste(face, (200, 150))
    rgb = np.asarray(canvas.filter(ImageFilter.GaussianBlur(1.5)))
    assert engine.min_score > -0.3 > UNSURE_FLOOR
    assert engine._detect(rgb, confirm=False) == []
    [(box, score)] = engine._detect(rgb)
    assert UNSURE_FLOOR <= score < engine.min_score
    assert 190 <= box.left() < box.right() <= 290 and 140 <= box.top() < box.bottom() <= 240


@pytest.mark.parametrize("shape", [(3, 3), (4, 7), (101, 80), (600, 451)])
def test_grain_is_the_median_of_immerkaers_mask(shape: tuple[int, int]) -> None:
    # The histogram median must equal np.median of the mask's responses, for odd and even counts.
    rng = np.random.default_rng(sum(shape))
    g = rng.integers(0, 256, size=shape).astype(np.int64)

    def at(dy: int, dx: int) -> np.ndarray:
        return g[1 + dy : shape[0] - 1 + dy : 2, 1 + dx : shape[1] - 1 + dx : 2]

    cross = at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)
    corners = at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)
    expected = float(np.median(np.abs(4 * at(0, 0) - 2 * cross + corners)))
    assert grain(Image.fromarray(g.astype(np.uint8))) == expected


@pytest.mark.parametrize("angle", [20, 35])
def test_a_tilted_head_found_by_yunet_is_boxed_as_hog_boxes_it(
    engine, faces_dir: Path, angle: int
) -> None:
    # YuNet's landmarks place a tilted head poorly; HOG's tilted filters box it well, and the
    # encoding follows the box. So the engine's box is HOG's (within the few pixels its grid of
    # 8 px cells moves by on a crop of the photo).
    face = Image.open(faces_dir / "dev/obama/obama-480p.jpg").convert("RGB")
    face = face.rotate(angle, expand=True, fillcolor=(120, 110, 100))
    canvas = Image.new("RGB", (1080, 1080), (120, 110, 100))
    canvas.paste(face.resize((face.width // 2, face.height // 2)), (300, 300))
    photo = DecodedPhoto(rgb=np.asarray(canvas), scale=1.0, original_size=(1080, 1080))
    [(hog_box, _)] = engine._detect(photo.rgb)  # HOG's whole-photo pass, as the engine ran it
    [found] = engine.faces(photo)
    top, right, bottom, left = found.box
    assert _overlap(dlib.rectangle(left, top, right, bottom), hog_box) > 0.8
    reference = engine.reference((faces_dir / "dev/obama/obama.jpg").read_bytes())[1]
    assert np.linalg.norm(found.encoding - reference.encoding) < 0.3
