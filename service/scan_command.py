"""`photo-removal scan`: find enrolled people in a folder, photo or export archive, no database."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from service.faces.decision import Cohort, DecisionRule, decide
from service.faces.matching import Gallery, Thresholds
from service.faces.references import encode_references
from service.faces.scanner import FoundFace, PhotoScan, Scanner
from service.ingest.archives import ArchiveError
from service.ingest.items import PhotoItem
from service.ingest.sources import iter_photos


class ScanRefused(Exception):
    """The scan cannot run at all (exit status 2); the message is one line for stderr."""


@dataclass
class ScanReport:
    photos_seen: int = 0
    photos_scanned: int = 0
    faces_found: int = 0
    elapsed_s: float = 0.0
    matches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    # Every face until the decision: where it is, its encoding and its distances.
    _where: list[tuple[str, list[int]]] = field(default_factory=list)
    _faces: list[FoundFace] = field(default_factory=list)
    _prints: list[bytes | None] = field(default_factory=list)

    def add(self, item: PhotoItem, result: PhotoScan) -> None:
        self.photos_seen += 1
        if result.error:
            self.errors.append({"photo": item.key, "error": result.error})
            return
        self.photos_scanned += 1
        self.faces_found += result.faces_found
        for face in result.faces:
            self._where.append((item.key, list(face.box)))
            self._faces.append(face)
            self._prints.append(result.fingerprint or None)

    def decide(self, gallery: Gallery, rule: DecisionRule) -> None:
        """Propose faces on the evidence of the whole scan, then forget the others."""
        people = gallery.names
        cohort = Cohort.stack(
            [f.encoding for f in self._faces], [f.distances for f in self._faces], len(people)
        )
        photos = [photo for photo, _ in self._where]
        for p in decide(cohort, people, gallery.centres(), rule, photos, prints=self._prints):
            photo, box = self._where[p.face]
            self.matches.append(
                {
                    "photo": photo,
                    "person": p.person,
                    "distance": p.distance,
                    "band": p.band,
                    "box": box,
                    "group": p.group,
                }
            )
        self._where, self._faces, self._prints = [], [], []

    def as_json(self) -> dict[str, Any]:
        self.matches.sort(key=lambda m: (m["photo"], m["box"]))
        return {
            "photos_seen": self.photos_seen,
            "photos_scanned": self.photos_scanned,
            "faces_found": self.faces_found,
            "elapsed_s": round(self.elapsed_s, 3),
            "matches": self.matches,
            "errors": self.errors,
        }


def run_scan(reference: Path, photos: Sequence[Path], workers: int | None) -> ScanReport:
    start = time.perf_counter()
    for path in [reference, *photos]:
        if not path.exists():
            raise ScanRefused(f"{path} does not exist")
    if not reference.is_dir():
        raise ScanRefused(f"--reference {reference} must be a folder of reference photos")
    thresholds = Thresholds.load()
    rule = DecisionRule.load()
    items = itertools.chain.from_iterable(iter_photos(path) for path in photos)
    progress = _Progress(sys.stderr)
    try:
        with Scanner(None, thresholds, workers=workers) as scanner:
            # The workers encode the references too, in parallel, before the photos.
            refs = encode_references(reference, scanner)
            if not refs.people:
                raise ScanRefused(f"no usable reference photo (one face each) in {reference}")
            report = ScanReport(errors=[{"photo": p, "error": e} for p, e in refs.errors])
            people = {n: np.array(codes) for n, codes in refs.people.items()}
            scanner.gallery = Gallery(people, over=rule.references)
            for item, result in scanner.scan(items):
                report.add(item, result)
                progress.tick(report.photos_seen)
        report.decide(scanner.gallery, rule)
    except ArchiveError as e:
        raise ScanRefused(str(e)) from None
    finally:
        progress.close()
    report.elapsed_s = time.perf_counter() - start
    return report


class _Progress:
    """A one-line progress display, only when a person watches the terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.start = time.perf_counter()
        self.last = 0.0

    def tick(self, count: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        rate = count / max(now - self.start, 1e-6)
        self.stream.write(f"\rscanning: {count} photos, {rate:.1f}/s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
