"""Scanning many photos over a pool of worker processes, each loading the models once.

Photos are read in the parent (so archives stream in order), byte-identical photos are scanned
once, and at most a few photos are in flight, so memory does not grow with the source's size.
Every face's encoding comes back to the caller, which decides on the whole source at once (see
decision.py) and then keeps only the proposed faces: the others are the cohort, and go with it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from service.faces.engine import FaceEngine, NotOneFace
from service.faces.images import UnreadablePhoto, photo_print
from service.faces.lifeline import die_with_parent
from service.faces.matching import Gallery, Thresholds
from service.faces.modelfiles import ModelFiles, verified_model_files
from service.faces.thumbnails import OwnerView, owner_view, photo_thumbnail
from service.ingest.archives import PhotoReadError
from service.ingest.items import PhotoItem


@dataclass(frozen=True)
class FoundFace:
    box: tuple[int, int, int, int]
    encoding: np.ndarray  # float32, until the source's decision
    distances: np.ndarray  # to each person of the gallery (Gallery.distances)
    view: OwnerView | None = None  # what the owner may be shown: near faces only, when asked for

    @property
    def nearest(self) -> float:
        return float(self.distances.min()) if len(self.distances) else np.inf


@dataclass(frozen=True)
class PhotoScan:
    faces: tuple[FoundFace, ...] = ()
    error: str | None = None
    thumbnail: bytes | None = None  # only for a photo with a face near someone, when asked for:
    # the whole photo, for the friend's checklist; the owner sees each near face's view instead
    thumbnail_scale: float = 1.0
    digest: str = ""  # of the photo's bytes: the same photo found again is the same photo
    fingerprint: bytes = b""  # of its pixels (images.photo_print): a copy of it is the same too

    @property
    def faces_found(self) -> int:
        return len(self.faces)

    def near(self, reach: float) -> list[FoundFace]:
        """The faces within reach of an enrolled person: the ones a decision may propose."""
        return [face for face in self.faces if face.nearest <= reach]


# --- the worker side: one engine per process -------------------------------------------------

_worker: tuple[FaceEngine, Thresholds] | None = None


def _start_worker(models: ModelFiles, thresholds: Thresholds) -> None:
    global _worker
    engine = FaceEngine(models, min_score=thresholds.detector_min_score)
    _worker = (engine, thresholds)


def _start_pool_worker(parent_pid: int, models: ModelFiles, thresholds: Thresholds) -> None:
    die_with_parent(parent_pid)  # before the models load: that takes a while
    _start_worker(models, thresholds)


def _reference(data: bytes) -> np.ndarray | str:
    """The encoding of a reference photo's one face, or why it cannot serve."""
    assert _worker is not None, "worker not started"
    try:
        return _worker[0].reference(data)[1].encoding
    except (UnreadablePhoto, NotOneFace) as e:
        return str(e)


def _scan_photo(data: bytes, thumbnails: bool, gallery: Gallery) -> PhotoScan:
    # The gallery travels with each photo (a few KB): workers start before it is known.
    assert _worker is not None, "worker not started"
    engine, thresholds = _worker
    try:
        photo, faces = engine.scan_bytes(data)
    except UnreadablePhoto as e:
        return PhotoScan(error=str(e))
    encodings = np.array([face.encoding for face in faces], dtype=np.float32).reshape(-1, 128)
    distances = gallery.distances(encodings)
    found = tuple(
        FoundFace(face.box, code, dist)
        for face, code, dist in zip(faces, encodings, distances, strict=True)
    )
    scan = PhotoScan(faces=found, fingerprint=photo_print(photo.rgb) if found else b"")
    if not (thumbnails and scan.near(thresholds.reach)):
        return scan
    # Cut from the decoded photo, sharper than the thumbnail; every other face in reach blurred.
    boxes = [face.box for face in found]
    found = tuple(
        replace(face, view=owner_view(photo, face.box, boxes[:i] + boxes[i + 1 :]))
        if face.nearest <= thresholds.reach
        else face
        for i, face in enumerate(found)
    )
    thumbnail, scale = photo_thumbnail(photo)
    return replace(scan, faces=found, thumbnail=thumbnail, thumbnail_scale=scale)


class _InlineExecutor(Executor):
    """One worker means no pool: scan in this process, skipping the start-up of a child."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # the caller sees it through the future, as with a pool
            future.set_exception(e)
        return future


# --- the parent side --------------------------------------------------------------------------


class Scanner:
    """Scans photo items for the people of a gallery; use as a context manager."""

    def __init__(
        self,
        gallery: Gallery | None,
        thresholds: Thresholds,
        *,
        workers: int | None = None,
        models: ModelFiles | None = None,
        thumbnails: bool = False,
    ) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.gallery = gallery  # may be set after encoding the references with this scanner
        self._init_args = (models or verified_model_files(), thresholds)
        self._executor: Executor | None = None
        self.thumbnails = thumbnails
        self.photos_distinct = 0  # photos actually decoded: byte-identical copies count once

    def __enter__(self) -> Scanner:
        self._executor = self._new_executor()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _new_executor(self) -> Executor:
        if self.workers == 1:
            _start_worker(*self._init_args)
            return _InlineExecutor()
        # spawn, not fork: the parent may be a web server or job consumer with threads running.
        # Spawned workers read the environment before loading numpy: one BLAS thread each.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_pool_worker,
            initargs=(os.getpid(), *self._init_args),
        )

    def references(self, photos: list[bytes]) -> list[np.ndarray | str]:
        """Encode reference photos on the workers, in parallel: each an encoding or an error."""
        assert self._executor is not None, "use Scanner as a context manager"
        futures = [self._executor.submit(_reference, data) for data in photos]
        return [future.result() for future in futures]

    def scan(self, items: Iterable[PhotoItem]) -> Iterator[tuple[PhotoItem, PhotoScan]]:
        """Yield every item with its result, in the order the items came.

        Keeping the order costs little (at most 2 photos per worker are in flight) and lets a
        caller record "the first N photos are done" as a resume point.
        """
        assert self._executor is not None, "use Scanner as a context manager"
        assert self.gallery is not None, "no gallery to match against"
        done: dict[bytes, PhotoScan] = {}
        in_flight: dict[bytes, Future[PhotoScan]] = {}
        queue: deque[tuple[PhotoItem, bytes | PhotoScan]] = deque()
        for item in items:
            queue.append((item, self._submit(item, done, in_flight)))
            while len(in_flight) >= 2 * self.workers:
                wait(in_flight.values(), return_when=FIRST_COMPLETED)
                self._settle(in_flight, done)
            self._settle(in_flight, done)
            yield from _ready(queue, done)
        while in_flight:
            wait(in_flight.values(), return_when=FIRST_COMPLETED)
            self._settle(in_flight, done)
            yield from _ready(queue, done)
        yield from _ready(queue, done)

    def _submit(
        self,
        item: PhotoItem,
        done: dict[bytes, PhotoScan],
        in_flight: dict[bytes, Future[PhotoScan]],
    ) -> bytes | PhotoScan:
        """Start scanning the item's bytes unless the same bytes were seen; return its digest."""
        try:
            data = item.read()
        except (PhotoReadError, OSError) as e:
            return PhotoScan(error=str(e) or "the photo could not be read")
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest not in done and digest not in in_flight:
            assert self._executor is not None and self.gallery is not None
            self.photos_distinct += 1
            in_flight[digest] = self._executor.submit(
                _scan_photo, data, self.thumbnails, self.gallery
            )
        return digest

    def _settle(
        self, in_flight: dict[bytes, Future[PhotoScan]], done: dict[bytes, PhotoScan]
    ) -> None:
        for digest, future in list(in_flight.items()):
            if future.done():
                del in_flight[digest]
                done[digest] = replace(self._result(future), digest=digest.hex())

    def _result(self, future: Future[PhotoScan]) -> PhotoScan:
        try:
            return future.result()
        except BrokenProcessPool:
            # A worker died (out of memory, or a crash inside a native decoder): the photos it
            # held are reported, and a fresh pool carries on with the rest.
            if getattr(self._executor, "_broken", False):
                assert self._executor is not None
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
            return PhotoScan(error="the photo could not be processed")


def _ready(
    queue: deque[tuple[PhotoItem, bytes | PhotoScan]], done: dict[bytes, PhotoScan]
) -> Iterator[tuple[PhotoItem, PhotoScan]]:
    """Pop the items at the head of the queue whose results are known."""
    while queue:
        item, pending = queue[0]
        if isinstance(pending, PhotoScan):
            result = pending
        elif pending in done:
            result = done[pending]
        else:
            return
        queue.popleft()
        yield item, result
