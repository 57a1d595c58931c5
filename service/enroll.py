"""Enrollment: the owner's reference photos, each reduced to one sealed encoding and a face crop."""

from __future__ import annotations

from sqlmodel import Session, select

from service.audit import record
from service.faces.engine import FaceEngine, NotOneFace
from service.faces.images import UnreadablePhoto
from service.faces.thumbnails import face_crop
from service.secrets_box import SecretBox
from service.tables import Owner, ReferenceFace

MAX_REFERENCES = 20


class EnrollError(ValueError):
    """The photo cannot serve as a reference; the message tells the owner why."""


def enroll(
    session: Session, owner: Owner, data: bytes, engine: FaceEngine, box: SecretBox
) -> ReferenceFace:
    assert owner.id is not None
    if len(references(session, owner)) >= MAX_REFERENCES:
        raise EnrollError(f"you have {MAX_REFERENCES} reference photos already; delete one first")
    try:
        photo, face = engine.reference(data, strict=True)
    except (UnreadablePhoto, NotOneFace) as e:
        raise EnrollError(str(e)) from None
    # Only the encoding (sealed) and a small crop of the face are kept; the photo is not.
    reference = ReferenceFace(
        owner_id=owner.id,
        sealed_encoding=box.seal(face.encoding),
        thumbnail=face_crop(photo, face.box),
    )
    session.add(reference)
    session.flush()
    record(session, owner.id, "owner", "reference_added", reference_id=reference.id)
    return reference


def references(session: Session, owner: Owner) -> list[ReferenceFace]:
    query = select(ReferenceFace).where(ReferenceFace.owner_id == owner.id)
    return list(session.exec(query.order_by(ReferenceFace.id)).all())  # type: ignore[arg-type]


def reference_of(session: Session, owner: Owner, reference_id: int) -> ReferenceFace | None:
    reference = session.get(ReferenceFace, reference_id)
    return reference if reference is not None and reference.owner_id == owner.id else None


def remove(session: Session, owner: Owner, reference: ReferenceFace) -> None:
    assert owner.id is not None
    session.delete(reference)
    record(session, owner.id, "owner", "reference_deleted", reference_id=reference.id)
