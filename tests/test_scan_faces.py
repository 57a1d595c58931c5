"""What a running scan keeps of each face until the source is decided (service/scan_faces.py)."""

from __future__ import annotations

import io

import numpy as np

from service.faces.decision import DecisionRule
from service.faces.matching import Thresholds
from service.faces.scanner import FoundFace, PhotoScan
from service.ingest.items import PhotoItem
from service.scan_faces import pack, unpack


def _face(distance: float, x: int) -> FoundFace:
    code = np.full(128, distance / np.sqrt(128), np.float32)
    return FoundFace((x, 0, x + 40, 40), code, np.array([distance], np.float32))


def test_the_scan_keeps_every_face_the_rule_may_propose_and_only_those() -> None:
    rule = DecisionRule.load()
    # Query expansion proposes a blurred photo of the owner a little past `possible`: its
    # pictures must still be there when the source is decided.
    assert rule.reach > rule.possible
    assert Thresholds.load().reach == rule.reach
    beyond = (rule.possible + rule.reach) / 2
    distances = [rule.strong - 0.1, beyond, rule.reach + 0.01, 0.9]
    scan = PhotoScan(faces=tuple(_face(d, 50 * i) for i, d in enumerate(distances)), digest="d")
    item = PhotoItem("posts/1.jpg", read=lambda: b"")

    faces = unpack(pack([(item, scan)], rule.reach))

    assert len(faces.cohort) == 4, "every face is in the cohort"
    assert np.allclose(faces.cohort.distances[:, 0], distances)
    assert [f.face for f in faces.near] == [0, 1], "pictures of the faces in reach only"
    assert [f.box for f in faces.near] == [[0, 0, 40, 40], [50, 0, 90, 40]]
    assert scan.near(rule.reach) == list(scan.faces[:2])


def test_it_keeps_each_faces_photo_fingerprint_and_reads_older_batches_without_them() -> None:
    rule = DecisionRule.load()
    item = PhotoItem("posts/1.jpg", read=lambda: b"")
    printed = PhotoScan(faces=(_face(0.3, 0), _face(0.9, 50)), fingerprint=bytes(range(32)))
    unknown = PhotoScan(faces=(_face(0.4, 0),))  # a photo scanned without one

    faces = unpack(pack([(item, printed), (item, unknown)], rule.reach))

    assert faces.prints == [bytes(range(32)), bytes(range(32)), None]
    older = io.BytesIO()
    with np.load(io.BytesIO(pack([(item, printed)], rule.reach))) as z:
        np.savez(older, **{k: z[k] for k in z.files if k not in ("prints", "printed")})
    assert unpack(older.getvalue()).prints == [None, None]
