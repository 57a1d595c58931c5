"""MediaPipe's face mesh, for the five points SFace was trained to be aligned by.

SFace was trained on faces aligned by the eye centres, the tip of the nose and the mouth corners.
dlib's 5-point model finds the eyes' corners and the base of the nose instead; aligned by those
alone (the engine until stop 33), SFace took a look-alike stranger of the bench for an owner on
every export draw that enrolled her. The engine now embeds each face aligned both ways and
averages the two (engine.FaceEngine._aligned; models/EXPERIMENTS.md, "Aligned as SFace was
trained"). dlib's 68-point model finds SFace's points, but its training set (iBUG 300-W) rules
out commercial use, which the project's licence (AGPL) cannot carry. MediaPipe's face mesh
(Google, Apache-2.0) finds 468 points of a face, these five among them, from a 192 px picture.

The network is `mediapipe/modules/face_landmark/face_landmark.tflite` of the mediapipe 0.10.14
wheel, committed under `models/` (MediaPipe itself, with the JAX and OpenCV it asks for, is not
installed); `models/manifest.json` pins it. It runs on LiteRT (`ai-edge-litert`), TensorFlow
Lite's runtime, with its XNNPACK kernels: about 3 ms a look, one thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from service.faces.sface import warped

SIDE = 192  # the network's picture
# MediaPipe crops a face's box widened by this much (its face_landmark_front graph: 1.5).
ROI_SCALE = 1.5
# The mesh's points of each eye's contour (the subject's right eye, then left), the nose tip and
# the mouth corners (MediaPipe's canonical face model numbering).
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)


class FaceMesh:
    def __init__(self, network: Path) -> None:
        with _quiet_stderr():  # LiteRT announces its XNNPACK kernels on stderr, from C++
            self._net = Interpreter(model_path=str(network), num_threads=1)
            self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        self._output = self._net.get_output_details()[0]["index"]

    def five(
        self, rgb: np.ndarray, box: tuple[float, float, float, float], roll: float
    ) -> np.ndarray:
        """SFace's five points (x, y in `rgb`) of the face in `box` (left, top, right, bottom),
        whose eyes' line is turned by `roll` radians: the eye centres, the nose tip, the mouth
        corners, each pair the picture's left one first.

        The mesh looks twice, as MediaPipe's tracking does from one video frame to the next: the
        second time at the face its first look found, centred, sized and turned upright by it.
        On the bench sets the second look keeps more strangers out (models/EXPERIMENTS.md)."""
        left, top, right, bottom = box
        centre = np.array([(left + right) / 2, (top + bottom) / 2])
        size = right - left
        for _ in range(2):
            points = self._points(rgb, centre, size, roll)
            right_eye, left_eye = points[list(RIGHT_EYE)].mean(0), points[list(LEFT_EYE)].mean(0)
            centre = points.mean(0)
            size = float(max(np.ptp(points[:, 0]), np.ptp(points[:, 1])))
            roll = float(np.arctan2(*(left_eye - right_eye)[::-1]))
        five = np.stack([right_eye, left_eye, points[NOSE_TIP], *points[list(MOUTH_CORNERS)]])
        # The subject's right eye is on the picture's left, unless the photo is mirrored.
        return five if five[0, 0] <= five[1, 0] else five[[1, 0, 2, 4, 3]]

    def _points(self, rgb: np.ndarray, centre: np.ndarray, size: float, roll: float) -> np.ndarray:
        """The mesh's 468 points (x, y in `rgb`) of the face at `centre`, `size` px wide, turned
        by `roll`: the network looks at that square, widened by ROI_SCALE and turned upright."""
        c, s = np.cos(roll), np.sin(roll)
        to_photo = np.array([[c, -s], [s, c]]) * (size * ROI_SCALE / SIDE)
        shift = centre - to_photo @ np.array([SIDE / 2, SIDE / 2])
        picture = warped(rgb, to_photo, shift, SIDE)
        x = np.asarray(picture, np.float32)[None] / 255.0  # the network reads RGB in [0, 1]
        self._net.set_tensor(self._input, x)
        self._net.invoke()
        uv = self._net.get_tensor(self._output).reshape(-1, 3)[:, :2]
        return uv @ to_photo.T + shift


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null for a while: C++ writes past Python's sys.stderr."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
