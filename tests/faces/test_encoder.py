"""The numpy face encoder against dlib's own, on real faces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from service.faces.encoder import (
    MAX_BATCH,
    ModelFormatError,
    NumpyFaceEncoder,
    default_model_path,
    face_chips,
    read_model,
)

# dlib and numpy sum the same float32 products in different orders; measured worst gap ~3e-7.
TOLERANCE = 1e-4

PHOTOS = [
    *(f"dev-bbt/_group_unlabeled/bbt{i}.jpg" for i in range(1, 6)),  # 22 faces, 40-110 px
    "dev/_dlib_voc_snapshots/2007_007763.jpg",  # 7 faces of 37-45 px
    "dev/_multi/kit_with_rose.jpg",
    "dev/obama/obama_partial_face.jpg",  # the chip reaches past the photo's edge
    # Tight 150x150 crops: the chip is mostly outside the photo, filled as dlib fills it.
    *(f"dev-bbt/{name}/{name}1.png" for name in ("amy", "howard", "penny", "sheldon")),
]


@dataclass(frozen=True)
class Photo:
    name: str
    rgb: np.ndarray
    shapes: list[dlib.full_object_detection]
    expected: np.ndarray  # dlib's descriptors, one row per face


@pytest.fixture(scope="module")
def encoder() -> NumpyFaceEncoder:
    return NumpyFaceEncoder()


@pytest.fixture(scope="module")
def photos(faces_dir: Path) -> list[Photo]:
    models = default_model_path().parent
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    dlib_encoder = dlib.face_recognition_model_v1(str(default_model_path()))
    photos = []
    for name in PHOTOS:
        rgb = np.asarray(Image.open(faces_dir / name).convert("RGB"))
        shapes = [landmarks(rgb, rect) for rect in detector(rgb, 1)]
        expected = [dlib_encoder.compute_face_descriptor(rgb, shape, 1) for shape in shapes]
        photos.append(Photo(name, rgb, shapes, np.array(expected, dtype=np.float64)))
    return photos


def test_it_covers_enough_real_faces(photos: list[Photo]) -> None:
    assert all(photo.shapes for photo in photos)
    assert sum(len(photo.shapes) for photo in photos) >= 30  # 36 with dlib 20's detector


def test_it_matches_dlib_one_face_at_a_time(encoder: NumpyFaceEncoder, photos: list[Photo]) -> None:
    for photo in photos:
        for shape, expected in zip(photo.shapes, photo.expected, strict=True):
            [descriptor] = encoder.encode(face_chips(photo.rgb, [shape]))
            assert descriptor.dtype == np.float64
            assert np.abs(descriptor - expected).max() < TOLERANCE, photo.name


def test_it_matches_dlib_with_the_faces_of_a_photo_batched(
    encoder: NumpyFaceEncoder, photos: list[Photo]
) -> None:
    for photo in photos:
        descriptors = encoder.encode(face_chips(photo.rgb, photo.shapes))
        assert descriptors.shape == (len(photo.shapes), 128)
        assert np.abs(descriptors - photo.expected).max() < TOLERANCE, photo.name


def test_it_matches_dlib_in_batches_larger_than_one_pass(
    encoder: NumpyFaceEncoder, photos: list[Photo]
) -> None:
    chips = np.concatenate([face_chips(photo.rgb, photo.shapes) for photo in photos])
    expected = np.concatenate([photo.expected for photo in photos])
    assert len(chips) > 2 * MAX_BATCH  # several full passes and a partial one
    assert np.abs(encoder.encode(chips) - expected).max() < TOLERANCE


def test_it_cuts_the_chips_dlib_cuts(photos: list[Photo]) -> None:
    photo = photos[0]
    chips = face_chips(photo.rgb, photo.shapes)
    for chip, shape in zip(chips, photo.shapes, strict=True):
        assert np.array_equal(chip, dlib.get_face_chip(photo.rgb, shape, size=150, padding=0.25))


def test_it_matches_dlib_on_flat_and_noisy_chips(encoder: NumpyFaceEncoder) -> None:
    dlib_encoder = dlib.face_recognition_model_v1(str(default_model_path()))
    noise = np.random.default_rng(7).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    chips = np.stack([np.zeros_like(noise), np.full_like(noise, 255), noise])
    expected = np.array([dlib_encoder.compute_face_descriptor(chip) for chip in chips])
    assert np.abs(encoder.encode(chips) - expected).max() < TOLERANCE


def test_it_encodes_no_chips_to_no_descriptors(encoder: NumpyFaceEncoder) -> None:
    chips = face_chips(np.zeros((50, 50, 3), np.uint8), [])
    assert encoder.encode(chips).shape == (0, 128)


def test_it_refuses_chips_of_the_wrong_size(encoder: NumpyFaceEncoder) -> None:
    with pytest.raises(ValueError, match="150, 150, 3"):
        encoder.encode(np.zeros((1, 160, 160, 3), np.uint8))


def test_it_reads_the_network_of_the_model_file() -> None:
    model = read_model(default_model_path())
    assert np.allclose(model.means, [122.782, 117.001, 104.298])  # input_rgb_image_sized's
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv") == 29  # the stem, and two for each of 14 residual blocks
    assert kinds[-1] == "Fc"


def test_it_refuses_a_truncated_model_file(tmp_path: Path) -> None:
    truncated = tmp_path / "model.dat"
    truncated.write_bytes(default_model_path().read_bytes()[:100_000])
    with pytest.raises(ModelFormatError, match="ends early"):
        read_model(truncated)


def test_it_refuses_a_model_file_of_another_kind(tmp_path: Path) -> None:
    landmarks = default_model_path().parent / "shape_predictor_5_face_landmarks.dat"
    with pytest.raises(ModelFormatError):
        read_model(landmarks)
    compressed = tmp_path / "model.dat.bz2"
    compressed.write_bytes(b"BZh91AY&SY")
    with pytest.raises(ModelFormatError, match="bunzip2"):
        read_model(compressed)
