"""Encodings an earlier encoder made, made again by the engine's from the face pictures kept.

Distances between two encoders' encodings mean nothing, so a stored encoding is compared only with
encodings of its own encoder (its `encoder` mark). When the engine's encoder changed (dlib's
ResNet to SFace), every stored encoding became the old encoder's. The service keeps no photo, but
it keeps a picture of each face it encoded:
- a reference: the face crop the owner's page shows (200 px);
- a match or a face waiting behind one: the owner's view, the region around the face, with its box.

Before a scan decides for an owner, what the decision compares is made again from those pictures:
the references, the faces the owner rejected (so a rejection lasts) and the centres of the
look-alike groups (the mean of up to MAX_GROUP_FACES of their faces, made again). The owner does
not have to enroll again. What has no picture (a match scanned before owner views were kept)
keeps its old mark and is left out: its look-alikes may be proposed once more.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from service.faces import ENCODER
from service.faces.engine import INFORMATION_SIDE, FaceEngine, NotOneFace
from service.faces.images import UnreadablePhoto, decode_photo
from service.faces.modelfiles import verified_model_files
from service.faces.thumbnails import CROP_MARGIN
from service.secrets_box import SecretBox
from service.states import Review
from service.tables import Match, MatchGroup, ReferenceFace

log = logging.getLogger(__name__)

MAX_GROUP_FACES = 20  # a group's centre is the mean of its faces: twenty tell it well enough


@dataclass
class Brought:
    """What one owner's bringing up to date made again, and what it had to leave out."""

    references: int = 0
    rejected: int = 0
    groups: int = 0
    left_out: int = 0

    def __bool__(self) -> bool:
        return bool(self.references or self.rejected or self.groups or self.left_out)


def stale(session: Session, owner_id: int) -> bool:
    """Whether the owner has an encoding to make again: a reference, a rejected face with its
    owner's view, or a group centre of an earlier encoder (one indexed look each)."""
    return any(session.exec(rows.limit(1)).first() is not None for rows in _stale(owner_id))


def _stale(owner_id: int) -> tuple[SelectOfScalar, SelectOfScalar, SelectOfScalar]:
    """The owner's references, rejected faces (with a picture) and groups of an earlier encoder."""
    return (
        select(ReferenceFace).where(
            ReferenceFace.owner_id == owner_id, ReferenceFace.encoder != ENCODER
        ),
        select(Match).where(
            Match.owner_id == owner_id,
            Match.encoder != ENCODER,
            Match.review == Review.rejected,
            col(Match.owner_view).is_not(None),
        ),
        select(MatchGroup).where(MatchGroup.owner_id == owner_id, MatchGroup.encoder != ENCODER),
    )


def bring_up_to_date(
    session: Session, box: SecretBox, owner_id: int, engine: Callable[[], FaceEngine]
) -> Brought:
    """Make the owner's references, rejected faces and group centres again with the engine's
    encoder. `engine` is called only if there is something to make again."""
    brought = Brought()
    if not stale(session, owner_id):
        return brought
    faces = engine()
    references, rejected, groups = _stale(owner_id)
    for ref in session.exec(references):
        encoding = _from_crop(faces, ref.thumbnail)
        if encoding is None:
            brought.left_out += 1
            continue
        ref.sealed_encoding, ref.encoder = box.seal(encoding), ENCODER
        session.add(ref)
        brought.references += 1
    for match in session.exec(rejected):
        if _again(faces, box, match):
            brought.rejected += 1
        else:
            brought.left_out += 1
    for group in session.exec(groups):
        if _centre_again(session, faces, box, group):
            brought.groups += 1
        else:
            brought.left_out += 1
    log.info("owner %s: encodings made again with %s: %s", owner_id, ENCODER, brought)
    return brought


def _again(faces: FaceEngine, box: SecretBox, match: Match) -> bool:
    """Make a match's encoding again from the owner's view, if it has one."""
    encoding = _from_view(faces, match.owner_view, match.owner_view_box)
    if encoding is None:
        return False
    match.sealed_encoding, match.encoder = box.seal(encoding), ENCODER
    return True


def _centre_again(session: Session, faces: FaceEngine, box: SecretBox, group: MatchGroup) -> bool:
    """A group's centre, made again as the mean of its faces (made again where they are not yet):
    the rejected ones first, as they are what keeps a rejected group's look-alikes away."""
    members = session.exec(
        select(Match)
        .where(Match.group_id == group.id, col(Match.owner_view).is_not(None))
        .order_by(col(Match.review) != Review.rejected, col(Match.id))
        .limit(MAX_GROUP_FACES)
    ).all()
    codes = []
    for match in members:
        if match.encoder == ENCODER or _again(faces, box, match):
            codes.append(box.open(match.sealed_encoding))
            session.add(match)
    if not codes:
        return False
    group.sealed_centre, group.encoder = box.seal(np.mean(codes, axis=0)), ENCODER
    group.size = len(codes)
    session.add(group)
    return True


def _from_crop(faces: FaceEngine, crop: bytes) -> np.ndarray | None:
    """A reference's encoding from its face crop: the face found in it, or else the face where
    the crop was cut around it (the middle, a CROP_MARGIN-th of its side)."""
    try:
        return faces.reference(crop)[1].encoding
    except UnreadablePhoto:
        return None
    except NotOneFace:
        photo = decode_photo(crop, max_side=INFORMATION_SIDE)
        width, height = photo.original_size  # encoding_at takes a box in these pixels
        half = max(height, width) / CROP_MARGIN / 2
        cy, cx = height / 2, width / 2
        middle = (round(cy - half), round(cx + half), round(cy + half), round(cx - half))
        return faces.encoding_at(photo, middle)


def _from_view(faces: FaceEngine, view: bytes | None, at: list[int] | None) -> np.ndarray | None:
    if view is None or at is None:
        return None
    try:
        photo = decode_photo(view, max_side=INFORMATION_SIDE)
    except UnreadablePhoto:
        return None
    top, right, bottom, left = at
    return faces.encoding_at(photo, (top, right, bottom, left))


@functools.cache
def engine_for(min_score: float) -> FaceEngine:
    """The engine a scan's own process makes encodings again with, loaded once, when needed."""
    return FaceEngine(verified_model_files(), min_score=min_score)
