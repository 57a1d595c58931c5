"""The engine's encoder, SFace, on real photos: aligned by the face mesh's points, then embedded."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from service.faces.modelfiles import verified_model_files
from service.faces.sface import CHIP_SIDE, TEMPLATE, SFaceEncoder, similarity


@pytest.fixture(scope="module")
def sface() -> SFaceEncoder:
    return SFaceEncoder(verified_model_files().face_encoder)


@pytest.fixture(scope="module")
def embed(engine, sface: SFaceEncoder):  # type: ignore[no-untyped-def]
    def embed(path: Path) -> np.ndarray:
        photo, face = engine.reference(path.read_bytes())
        chip = engine.aligned_at(photo, face.box)[1]  # by the mesh's points
        assert chip.shape == (CHIP_SIDE, CHIP_SIDE, 3)
        return sface.encode(chip[None])[0]

    return embed


def test_it_embeds_a_real_face_and_tells_two_people_apart(embed, faces_dir: Path) -> None:
    obama = embed(faces_dir / "dev/obama/obama.jpg")
    assert obama.shape == (128,)
    assert math.isclose(float(np.linalg.norm(obama)), 1.0, rel_tol=1e-5)
    again = embed(faces_dir / "dev/obama/obama2.jpg")
    biden = embed(faces_dir / "dev/biden/biden.jpg")
    # On calib/, 95% of one person's pairs are within 1.035 and no two people's are within 0.98.
    assert np.linalg.norm(obama - again) < 0.95
    assert np.linalg.norm(obama - biden) > 1.1


def test_it_gives_one_face_the_same_embedding_every_time(embed, faces_dir: Path) -> None:
    path = faces_dir / "dev/biden/biden.jpg"
    assert np.array_equal(embed(path), embed(path))


def test_the_rewritten_graph_gives_the_files_own_embeddings(
    engine, sface: SFaceEncoder, faces_dir: Path
) -> None:
    """The graph is rewritten at load to run in half the time (sface.runnable_graph); the file run
    as it is, with every input it declares fed, must give the same numbers."""
    network = verified_model_files().face_encoder
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    as_is = onnxruntime.InferenceSession(str(network), options, providers=["CPUExecutionProvider"])
    picture, *declared = as_is.get_inputs()
    unread = {
        i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
        for i in declared
    }
    noise = np.random.default_rng(8).integers(0, 256, (CHIP_SIDE, CHIP_SIDE, 3), dtype=np.uint8)
    chips = [noise]
    for path in (faces_dir / "dev/obama/obama.jpg", faces_dir / "dev/biden/biden.jpg"):
        photo, face = engine.reference(path.read_bytes())
        chips.extend(engine.aligned_at(photo, face.box))
    for chip in chips:
        x = np.ascontiguousarray(chip[None].astype(np.float32).transpose(0, 3, 1, 2))
        row = as_is.run(None, {picture.name: x, **unread})[0].reshape(-1)
        assert np.abs(sface.encode(chip[None])[0] - row / np.linalg.norm(row)).max() < 1e-5


def test_the_alignment_undoes_a_turn_a_shift_and_a_scale() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    turn = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    points = TEMPLATE @ turn.T + shift
    a, t = similarity(points, TEMPLATE)
    assert np.allclose(points @ a.T + t, TEMPLATE, atol=1e-9)
