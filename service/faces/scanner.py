"""Scanning many photos over a pool of worker processes, each loading the models once.

Photos are read in the parent (so archives stream in order), byte-identical photos are scanned
once, and at most a few photos are in flight, so memory does not grow with the source's size.
Encodings of faces that matched nobody never leave the worker process.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.faces.engine import FaceEngine
from service.faces.images import UnreadablePhoto
from service.faces.matching import Band, Gallery, Thresholds
from service.faces.modelfiles import ModelFiles, verified_model_files
from service.ingest.archives import PhotoReadError
from service.ingest.items import PhotoItem


@dataclass(frozen=True)
class MatchedFace:
    person: str
    distance: float
    band: Band
    box: tuple[int, int, int, int]
    encoding: np.ndarray  # kept only because it matched an enrolled person


@dataclass(frozen=True)
class PhotoScan:
    faces_found: int = 0
    matches: tuple[MatchedFace, ...] = ()
    error: str | None = None


# --- the worker side: one engine per process -------------------------------------------------

_worker: tuple[FaceEngine, Gallery, Thresholds] | None = None


def _start_worker(models: ModelFiles, gallery: Gallery, thresholds: Thresholds) -> None:
    global _worker
    engine = FaceEngine(models, min_score=thresholds.detector_min_score)
    _worker = (engine, gallery, thresholds)


def _scan_photo(data: bytes) -> PhotoScan:
    assert _worker is not None, "worker not started"
    engine, gallery, thresholds = _worker
    try:
        _, faces = engine.scan_bytes(data)
    except UnreadablePhoto as e:
        return PhotoScan(error=str(e))
    encodings = np.array([face.encoding for face in faces])
    matched = tuple(
        MatchedFace(m.person, m.distance, m.band, face.box, face.encoding)
        for face, m in zip(faces, gallery.match(encodings, thresholds), strict=True)
        if m is not None
    )
    return PhotoScan(faces_found=len(faces), matches=matched)


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
        gallery: Gallery,
        thresholds: Thresholds,
        *,
        workers: int | None = None,
        models: ModelFiles | None = None,
    ) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._init_args = (models or verified_model_files(), gallery, thresholds)
        self._executor: Executor | None = None
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
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=self._init_args,
        )

    def scan(self, items: Iterable[PhotoItem]) -> Iterator[tuple[PhotoItem, PhotoScan]]:
        """Yield every item with its result, in completion order."""
        assert self._executor is not None, "use Scanner as a context manager"
        done: dict[bytes, PhotoScan] = {}
        waiting: dict[bytes, list[PhotoItem]] = {}
        in_flight: dict[Future[PhotoScan], bytes] = {}
        for item in items:
            try:
                data = item.read()
            except (PhotoReadError, OSError) as e:
                yield item, PhotoScan(error=str(e) or "the photo could not be read")
                continue
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if digest in done:
                yield item, done[digest]
            elif digest in waiting:
                waiting[digest].append(item)
            else:
                waiting[digest] = [item]
                self.photos_distinct += 1
                in_flight[self._executor.submit(_scan_photo, data)] = digest
                del data
                while len(in_flight) >= 2 * self.workers:
                    yield from self._collect(in_flight, waiting, done, block=True)
            yield from self._collect(in_flight, waiting, done, block=False)
        while in_flight:
            yield from self._collect(in_flight, waiting, done, block=True)

    def _collect(
        self,
        in_flight: dict[Future[PhotoScan], bytes],
        waiting: dict[bytes, list[PhotoItem]],
        done: dict[bytes, PhotoScan],
        *,
        block: bool,
    ) -> Iterator[tuple[PhotoItem, PhotoScan]]:
        finished, _ = wait(in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in finished:
            digest = in_flight.pop(future)
            result = self._result(future)
            done[digest] = result
            for item in waiting.pop(digest):
                yield item, result

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
