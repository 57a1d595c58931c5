"""MediaPipe's face mesh (service/faces/mesh.py), which places the five points SFace is aligned by,
on real photos: against YuNet's landmarks, which a different network places, and in a mirror."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from service.faces.images import decode_photo
from service.faces.mesh import FaceMesh
from service.faces.modelfiles import verified_model_files
from service.faces.yunet import YuNetDetector


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh(verified_model_files().face_mesh)


def _face(path: Path) -> tuple[np.ndarray, tuple[float, float, float, float], np.ndarray]:
    """The photo, its one face's box (left, top, right, bottom) and YuNet's five points."""
    rgb = decode_photo(path.read_bytes()).rgb
    [face] = YuNetDetector(verified_model_files().face_finder).detect(rgb, min_score=0.5)
    return rgb, face.box, face.landmarks


@pytest.mark.parametrize("name", ["dev/obama/obama.jpg", "dev/biden/biden.jpg"])
def test_it_places_the_five_points_where_another_network_does(
    mesh: FaceMesh, faces_dir: Path, name: str
) -> None:
    rgb, box, yunet = _face(faces_dir / name)
    five = mesh.five(rgb, box, roll=0.0)
    eyes = float(np.linalg.norm(yunet[1] - yunet[0]))
    assert eyes > 40  # a close-up: a tenth of the eyes' distance is a few pixels
    # Each point within a fifth of the eyes' distance of YuNet's: eye centres, nose tip and mouth
    # corners, in SFace's order (the picture's left one of each pair first).
    assert np.linalg.norm(five - yunet, axis=1).max() < 0.2 * eyes


def test_it_finds_the_points_of_a_face_given_a_rough_box_and_no_turn(
    mesh: FaceMesh, faces_dir: Path
) -> None:
    """The engine gives the mesh a detector's box and the eyes' line from dlib's landmarks; a box
    moved by a tenth of its size and a turn of 10 degrees (0.17 rad) must not move the points
    much (here by 4-5% of the eyes' distance): the mesh's second look starts from what its first
    look found."""
    rgb, (left, top, right, bottom), _ = _face(faces_dir / "dev/obama/obama.jpg")
    five = mesh.five(rgb, (left, top, right, bottom), roll=0.0)
    shift = (right - left) / 10
    moved = mesh.five(rgb, (left + shift, top - shift, right + shift, bottom - shift), roll=0.17)
    eyes = float(np.linalg.norm(five[1] - five[0]))
    assert np.linalg.norm(moved - five, axis=1).max() < 0.1 * eyes


def test_a_mirrored_face_gives_the_mirrored_points(mesh: FaceMesh, faces_dir: Path) -> None:
    rgb, (left, top, right, bottom), _ = _face(faces_dir / "dev/biden/biden.jpg")
    five = mesh.five(rgb, (left, top, right, bottom), roll=0.0)
    width = rgb.shape[1]
    mirror = np.ascontiguousarray(rgb[:, ::-1])
    seen = mesh.five(mirror, (width - right, top, width - left, bottom), roll=0.0)
    # In the mirror the picture's left eye is the other eye: mirrored back, the pairs swap.
    back = np.stack([width - seen[:, 0], seen[:, 1]], axis=1)[[1, 0, 2, 4, 3]]
    eyes = float(np.linalg.norm(five[1] - five[0]))
    assert np.linalg.norm(back - five, axis=1).max() < 0.1 * eyes
    roll = math.atan2(*(five[1] - five[0])[::-1])
    assert abs(roll) < 0.3  # an upright portrait
