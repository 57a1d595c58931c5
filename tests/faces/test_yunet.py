"""YuNet, the detector probed to take HOG's place (service/faces/yunet.py), on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.faces.images import decode_photo
from service.faces.modelfiles import verified_model_files
from service.faces.yunet import YuNetDetector


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector(verified_model_files().face_finder)


def test_it_finds_one_face_with_its_five_landmarks_in_place(yunet, faces_dir: Path) -> None:
    rgb = decode_photo((faces_dir / "dev/obama/obama.jpg").read_bytes()).rgb
    [face] = yunet.detect(rgb, min_score=0.5)
    left, top, right, bottom = face.box
    assert 0 <= left < right <= rgb.shape[1] and 0 <= top < bottom <= rgb.shape[0]
    assert right - left > 150  # a close-up
    eye_left, eye_right, nose, mouth_left, mouth_right = face.landmarks
    for x, y in face.landmarks:
        assert left <= x <= right and top <= y <= bottom
    assert eye_left[0] < nose[0] < eye_right[0]
    assert mouth_left[0] < mouth_right[0]
    assert max(eye_left[1], eye_right[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_it_runs_at_any_size_and_finds_each_person_of_a_group(yunet, faces_dir: Path) -> None:
    rgb = decode_photo((faces_dir / "dev/_multi/two_people.jpg").read_bytes()).rgb
    assert rgb.shape[0] % 32 and rgb.shape[1] % 32  # padded inside, not by the caller
    faces = yunet.detect(rgb, min_score=0.5)
    assert len(faces) == 2
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    smaller = rgb[::2, ::2]  # the same people at half the size
    assert len(yunet.detect(np.ascontiguousarray(smaller), min_score=0.5)) == 2


def test_overlapping_detections_of_one_face_are_one(yunet, faces_dir: Path) -> None:
    rgb = decode_photo((faces_dir / "dev/obama/obama.jpg").read_bytes()).rgb
    assert len(yunet.detect(rgb, min_score=0.05)) < len(
        yunet.detect(rgb, min_score=0.05, overlap=1.0)
    )
