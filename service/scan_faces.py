"""The faces of a running scan, sealed batch by batch until the scan decides on the whole source.

A batch is packed as one `.npz` (no pickle): every face's encoding and distance to the owner, and,
for the faces near the owner, where they were found, the photo's thumbnail (the friend's) and the
face's own view (the owner's).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from service.faces.decision import PRINT_BYTES, Cohort
from service.faces.scanner import PhotoScan
from service.ingest.items import PhotoItem


@dataclass(frozen=True)
class NearFace:
    """A face near the owner, with everything a match row needs."""

    face: int  # index into the scan's faces
    photo: str
    box: list[int]
    platform: str
    post_url: str | None
    post_key: str | None  # shared by the photos of one post
    album: str | None
    taken_at: datetime | None
    caption: str | None
    digest: str
    thumb: str  # the key of the photo's thumbnail in its batch ("" if none was made)
    thumbnail_scale: float
    batch: int = 0  # which packed batch holds the thumbnail
    view: str = ""  # the key of the owner's view of this face in its batch ("" if none)
    view_box: list[int] | None = None  # the face within that view


@dataclass
class ScanFaces:
    """Every face of a scan so far: the cohort, and the faces a decision may propose."""

    cohort: Cohort
    near: list[NearFace]
    prints: list[bytes | None]  # each face's photo fingerprint (None: sealed before they were)

    @classmethod
    def join(cls, parts: Iterable[ScanFaces]) -> ScanFaces:
        encodings, distances, near, prints = [], [], [], []
        offset = 0
        for batch, part in enumerate(parts):
            encodings.append(part.cohort.encodings)
            distances.append(part.cohort.distances)
            near += [replace(f, face=f.face + offset, batch=batch) for f in part.near]
            prints += part.prints
            offset += len(part.cohort)
        return cls(Cohort.stack(encodings, distances, 1), near, prints)


def pack(batch: Sequence[tuple[PhotoItem, PhotoScan]], reach: float) -> bytes:
    """Every face's encoding and distance; for the faces within `reach` of the owner (the ones the
    decision may propose), where they are and their pictures."""
    encodings: list[np.ndarray] = []
    distances: list[float] = []
    prints: list[bytes] = []
    near: list[dict[str, Any]] = []
    thumbnails: dict[str, np.ndarray] = {}
    for item, result in batch:
        thumb_key = ""
        for face in result.faces:
            if face.nearest <= reach:
                if result.thumbnail and not thumb_key:
                    thumb_key = f"thumb_{len(thumbnails)}"
                    thumbnails[thumb_key] = np.frombuffer(result.thumbnail, dtype=np.uint8)
                record = _near_record(len(encodings), item, result, face.box, thumb_key)
                if face.view is not None:
                    record["view"], record["view_box"] = f"view_{len(near)}", list(face.view.box)
                    thumbnails[record["view"]] = np.frombuffer(face.view.jpeg, dtype=np.uint8)
                near.append(record)
            encodings.append(face.encoding)
            distances.append(face.nearest)
            prints.append(result.fingerprint)
    arrays: dict[str, Any] = {
        "encodings": np.asarray(encodings, np.float32).reshape(-1, 128),
        "distances": np.asarray(distances, np.float32),
        # Each face's photo fingerprint, zeros where the photo has none (`printed` says which).
        "prints": np.array(
            [np.frombuffer(f.ljust(PRINT_BYTES, b"\0"), np.uint8) for f in prints], np.uint8
        ).reshape(-1, PRINT_BYTES),
        "printed": np.array([bool(f) for f in prints], dtype=bool),
        "near": np.frombuffer(json.dumps(near).encode(), dtype=np.uint8),
        **thumbnails,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def unpack(data: bytes) -> ScanFaces:
    """A batch's faces, without its thumbnails (read only for the faces proposed)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        cohort = Cohort(z["encodings"], z["distances"].reshape(-1, 1))
        # Batches sealed before photos were fingerprinted have none: each face counts alone.
        prints: list[bytes | None] = [None] * len(cohort)
        if "prints" in z:
            rows = zip(z["prints"], z["printed"], strict=True)
            prints = [row.tobytes() if known else None for row, known in rows]
        records = json.loads(z["near"].tobytes().decode())
        near = [
            NearFace(
                face=r["face"],
                photo=r["photo"],
                box=r["box"],
                platform=r["platform"],
                post_url=r["post_url"],
                post_key=r.get("post_key"),  # batches sealed before posts were known have none
                album=r["album"],
                taken_at=datetime.fromisoformat(r["taken_at"]) if r["taken_at"] else None,
                caption=r["caption"],
                digest=r["digest"],
                thumb=r["thumb"],
                thumbnail_scale=r["scale"],
                view=r.get("view", ""),  # batches sealed before owner views have none
                view_box=r.get("view_box"),
            )
            for r in records
        ]
    return ScanFaces(cohort, near, prints)


def thumbnails(data: bytes, keys: Iterable[str]) -> dict[str, bytes]:
    """The named thumbnails and owner views of a packed batch."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {key: z[key].tobytes() for key in set(keys) if key}


def _near_record(
    index: int, item: PhotoItem, result: PhotoScan, box: tuple[int, ...], thumb: str
) -> dict[str, Any]:
    return {
        "face": index,
        "photo": item.key,
        "box": list(box),
        "platform": item.platform,
        "post_url": item.post_url,
        "post_key": item.post_key,
        "album": item.album,
        "taken_at": item.taken_at.isoformat() if item.taken_at else None,
        "caption": item.caption,
        "digest": result.digest,
        "thumb": thumb,
        "scale": result.thumbnail_scale,
    }
