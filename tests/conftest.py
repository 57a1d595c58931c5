"""Shared fixtures: the real face photos of ../shared/faces and one loaded face engine."""

from __future__ import annotations

import os
from pathlib import Path

# As the console script does: one BLAS thread per process (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parents[1]
FACES = PROJECT.parent / "shared" / "faces"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES / "dev").is_dir():
        message = f"the real face photos are missing: expected them in {FACES}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never go green by skipping every face test
        pytest.skip(message)
    return FACES


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from service.faces.engine import FaceEngine
    from service.faces.matching import Thresholds
    from service.faces.modelfiles import verified_model_files

    return FaceEngine(verified_model_files(), min_score=Thresholds.load().detector_min_score)


@pytest.fixture(scope="session")
def thresholds():  # type: ignore[no-untyped-def]
    from service.faces.matching import Thresholds

    return Thresholds.load()


@pytest.fixture(scope="session")
def gallery(engine, faces_dir):  # type: ignore[no-untyped-def]
    """obama, biden and kit_harington enrolled from one reference photo each."""
    from service.faces.matching import Gallery

    refs = {
        "obama": faces_dir / "dev/obama/obama.jpg",
        "biden": faces_dir / "dev/biden/biden.jpg",
        "kit_harington": faces_dir / "dev/kit_harington/john1.jpeg",
    }
    return Gallery(
        {
            name: np.array([engine.reference(path.read_bytes())[1].encoding])
            for name, path in refs.items()
        }
    )


# --- the web service: settings per database backend, people, an app ---------------------------

DATABASES = ["sqlite"] + (
    ["postgresql"] if os.environ.get("PHOTO_REMOVAL_TEST_DATABASE_URL") else []
)
QUEUES = ["sqlite"] + (["redis"] if os.environ.get("PHOTO_REMOVAL_TEST_QUEUE_URL") else [])


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def _reset_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def make_settings(tmp_path: Path, database: str = "sqlite", queue: str = "sqlite", **extra):  # type: ignore[no-untyped-def]
    from service.config import Settings

    values: dict = {
        "data_dir": tmp_path / "data",
        "secret_key": "test-" + "k" * 40,
        "scan_workers": 1,
        "base_url": "http://testserver",
        "signups": "open",  # most tests need a second owner; tests of the policy set theirs
    }
    if database == "postgresql":
        values["database_url"] = os.environ["PHOTO_REMOVAL_TEST_DATABASE_URL"]
        _reset_postgres(values["database_url"])
    if queue == "redis":
        values["queue_url"] = os.environ["PHOTO_REMOVAL_TEST_QUEUE_URL"]
        _reset_redis(values["queue_url"])
    values.update(extra)
    return Settings(**values)


@pytest.fixture(params=DATABASES)
def settings(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, database=request.param)
