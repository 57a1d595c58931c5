"""A photo's second face: asked about when the owner says the first one is not them.

A person is proposed once a photo, by the face nearest to them (service/faces/decision.py): it is
the photo a friend takes down. When the rule also kept another face of that photo (a look-alike
relative beside the owner, a stranger who sits nearer than the owner's own blurred face), that
face waits behind the match as a `StandbyFace`. If the owner rejects the match ("not me"), the
nearest face still waiting steps in as a match of its own, pending review; if the rejection is
undone while it is still pending, it steps back. Only what the owner view needs is kept of it:
its box, its sealed encoding and the region around it with every other face blurred.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from service.audit import record
from service.faces.decision import Proposal
from service.states import Review
from service.tables import Match, MatchGroup, StandbyFace

_CHUNK = 1000  # ids a query asks about at once (SQLite and PostgreSQL bound a query's parameters)


def by_photo(
    proposals: Sequence[Proposal], photo_of: Callable[[Proposal], Hashable]
) -> list[list[Proposal]]:
    """One member's proposals, with the faces waiting behind them, as one queue per photo:
    nearest first, as the decision ranked them."""
    queues: dict[Hashable, list[Proposal]] = {}
    for p in proposals:
        queues.setdefault(photo_of(p), []).append(p)
    return [sorted(q, key=_rank) for q in queues.values()]


def _rank(p: Proposal) -> tuple[bool, float, int]:
    return p.behind is not None, p.distance, p.face


def waiting(
    front: Match,
    p: Proposal,
    sealed_encoding: bytes,
    owner_view: bytes | None,
    owner_view_box: list[int] | None,
    box: Sequence[int],
    group: MatchGroup,
) -> StandbyFace:
    """The face `p` of the photo of `front`, waiting behind it."""
    assert front.id is not None
    return StandbyFace(
        owner_id=front.owner_id,
        match_id=front.id,
        box_key=",".join(map(str, box)),
        box=list(box),
        distance=p.distance,
        band=p.band,
        sealed_encoding=sealed_encoding,
        owner_view=owner_view,
        owner_view_box=owner_view_box,
        group_id=group.id,
    )


def involved(session: Session, matches: Sequence[Match]) -> set[int]:
    """Which of these matches have a face waiting behind them or stepped in themselves: the only
    ones a decision can make a face step in or back for (one query for a decision on many)."""
    ids = [m.id for m in matches if m.id is not None]
    found: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.exec(
            select(StandbyFace.match_id, StandbyFace.stepped_in).where(
                or_(col(StandbyFace.match_id).in_(chunk), col(StandbyFace.stepped_in).in_(chunk))
            )
        ).all()
        found.update(i for row in rows for i in row if i is not None)
    return found & set(ids)


def step_in(session: Session, rejected: Match) -> Match | None:
    """After `rejected` was rejected: the photo's next face, if no other face of the photo is
    still pending or confirmed and one is waiting outside any group the owner rejected."""
    front, rows = _photo_of(session, rejected)
    if front is None or any(m.review != Review.rejected for m in _asked(session, front, rows)):
        return None
    for row in sorted(rows, key=lambda r: (r.distance, r.id or 0)):
        if row.stepped_in is not None:
            continue
        group = session.get(MatchGroup, row.group_id) if row.group_id is not None else None
        if group is not None and group.decision == Review.rejected:
            continue
        if not _claimed(session, row):
            return None  # a decision sent twice at once: the other one asks
        match = _as_match(front, row)
        session.add(match)
        session.flush()
        row.stepped_in = match.id
        session.add(row)
        record(
            session,
            front.owner_id,
            "system",
            "match_stepped_in",
            match_id=match.id,
            behind=rejected.id,
        )
        return match
    return None


def step_back(session: Session, undone: Match) -> None:
    """After the rejection of `undone` was taken back: the faces that stepped in for it and are
    still pending go back to waiting (those the owner decided since are left alone)."""
    for row in _photo_of(session, undone)[1]:
        match = session.get(Match, row.stepped_in) if row.stepped_in is not None else None
        if match is None or match.id == undone.id or match.review != Review.pending:
            continue
        row.stepped_in = None
        session.add(row)
        session.delete(match)
        record(session, undone.owner_id, "system", "match_stepped_back", match_id=match.id)
    session.flush()


def in_place_of(session: Session, match: Match) -> Match | None:
    """The face of this match's photo asked about in its place: stepped in, still pending."""
    for row in reversed(_photo_of(session, match)[1]):
        asked = session.get(Match, row.stepped_in) if row.stepped_in is not None else None
        if asked is not None and asked.id != match.id and asked.review == Review.pending:
            return asked
    return None


def _claimed(session: Session, row: StandbyFace) -> bool:
    """Whether this transaction holds the waiting face, still waiting: an UPDATE that changes
    nothing but locks the row (PostgreSQL) or waits for the one writer (SQLite), then sees the
    other transaction's step in, if any."""
    held = session.execute(
        update(StandbyFace)
        .where(col(StandbyFace.id) == row.id, col(StandbyFace.stepped_in).is_(None))
        .values(stepped_in=None)
        .execution_options(synchronize_session=False)
    )
    return held.rowcount == 1  # type: ignore[attr-defined]


def _photo_of(session: Session, match: Match) -> tuple[Match | None, list[StandbyFace]]:
    """The match first proposed for this match's photo, and the faces behind it."""
    as_standby = session.exec(select(StandbyFace).where(StandbyFace.stepped_in == match.id)).first()
    front = session.get(Match, as_standby.match_id) if as_standby is not None else match
    if front is None:
        return None, []
    rows = session.exec(
        select(StandbyFace).where(StandbyFace.match_id == front.id).order_by(col(StandbyFace.id))
    ).all()
    return front, list(rows)


def _asked(session: Session, front: Match, rows: list[StandbyFace]) -> list[Match]:
    """The photo's faces the owner has been asked about: the first match and those stepped in."""
    stepped = [session.get(Match, r.stepped_in) for r in rows if r.stepped_in is not None]
    return [front, *(m for m in stepped if m is not None)]


# What a face of a photo shares with the photo's first match: whose it is, where it is posted.
_OF_THE_PHOTO = (
    "owner_id", "friend_id", "scan_id", "photo", "platform", "post_url", "post_key", "album",
    "taken_at", "caption", "thumbnail", "thumbnail_scale", "photo_digest",
)  # fmt: skip
_OF_THE_FACE = (
    "box_key", "box", "distance", "band", "sealed_encoding", "encoder", "owner_view",
    "owner_view_box", "group_id",
)  # fmt: skip


def _as_match(front: Match, row: StandbyFace) -> Match:
    """The waiting face as a match: where the photo is posted comes from the first match."""
    return Match(
        **{name: getattr(front, name) for name in _OF_THE_PHOTO},
        **{name: getattr(row, name) for name in _OF_THE_FACE},
    )
