"""The owner's review of matches: confirm or reject ("not me") before any friend is asked.

Every decision can be taken back. A single match goes back to pending; a decision taken for many
at once (a look-alike group, or all of a friend's pending matches) is recorded in the audit trail
with the matches it decided, so undoing it puts back exactly those and nothing decided since.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import Session, col, select

from service import circles, standby
from service.audit import record
from service.states import DECISIONS, Band, Review
from service.tables import AuditEvent, Friend, Match, MatchGroup, Owner

GROUP, BULK = "group_review", "bulk_review"  # audit actions of decisions taken for many
RECENT_EVENTS = 500  # how far back the last decision for many is looked for


def matches_of(session: Session, owner: Owner, friend: Friend) -> list[Match]:
    """Strong before possible, then closest first."""
    rows = session.exec(
        select(Match).where(Match.owner_id == owner.id, Match.friend_id == friend.id)
    ).all()
    return sorted(rows, key=lambda m: (m.band != Band.strong, m.distance, m.id or 0))


def match_of(session: Session, owner: Owner, match_id: int) -> Match | None:
    return _owned(session, Match, owner, match_id)


def review(session: Session, owner: Owner, match: Match, decision: Review) -> Match:
    _second_faces(session, [(match, _decide(session, owner, match, decision))])
    return match


def _decide(session: Session, owner: Owner, match: Match, decision: Review) -> Review:
    """Record the owner's decision on the match; the review it had before."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
    assert owner.id is not None
    before, match.review = match.review, decision
    session.add(match)
    record(session, owner.id, "owner", f"match_{decision}", match_id=match.id)
    if decision == Review.confirmed:
        circles.tell_of_same_face(session, match)
    return before


def undo(session: Session, owner: Owner, match: Match) -> Match:
    """The match waits for review again (the friend's answer, if any, is kept)."""
    assert owner.id is not None
    if match.review != Review.pending:
        before, match.review = match.review, Review.pending
        session.add(match)
        record(session, owner.id, "owner", "match_review_undone", match_id=match.id)
        _second_faces(session, [(match, before)])
    return match


def _second_faces(session: Session, changed: list[tuple[Match, Review]]) -> None:
    """A "not me" asks about the photo's next face, if one waits; taking it back un-asks.
    `changed`: each match decided, with the review it had before."""
    flipped = [
        (match, before)
        for match, before in changed
        if (match.review == Review.rejected) != (before == Review.rejected)
    ]
    involved = standby.involved(session, [match for match, _ in flipped])
    for match, _ in flipped:
        if match.id not in involved:
            continue
        if match.review == Review.rejected:
            standby.step_in(session, match)
        else:
            standby.step_back(session, match)


def group_of(session: Session, owner: Owner, group_id: int) -> MatchGroup | None:
    return _owned(session, MatchGroup, owner, group_id)


_Owned = TypeVar("_Owned", Match, MatchGroup)


def _owned(session: Session, table: type[_Owned], owner: Owner, row_id: int) -> _Owned | None:
    """The owner's row with this id, or None (also for an id no database column can hold)."""
    row: _Owned | None = session.get(table, row_id) if 0 < row_id < 2**63 else None
    return row if row is not None and row.owner_id == owner.id else None


def review_group(
    session: Session, owner: Owner, group: MatchGroup, decision: Review
) -> list[Match]:
    """Decide the group's pending matches, with every friend. A rejected group stays rejected:
    its look-alikes are not proposed again (service/match_groups.py)."""
    pending = session.exec(
        select(Match)
        .where(
            Match.owner_id == owner.id, Match.group_id == group.id, Match.review == Review.pending
        )
        .order_by(col(Match.id))
    ).all()
    group.decision = decision  # first: a face of this group waiting behind one does not step in
    session.add(group)
    _second_faces(session, [(m, _decide(session, owner, m, decision)) for m in pending])
    _record_many(session, owner, GROUP, decision, list(pending), group_id=group.id)
    return list(pending)


def undo_group(session: Session, owner: Owner, group: MatchGroup) -> list[Match]:
    """Take back the group's last decision: the matches it decided wait for review again (those
    changed since are left alone), and later scans propose the group's look-alikes again."""
    back = _undo_many(session, owner, GROUP, group_id=group.id)
    group.decision = None
    session.add(group)
    return back


def pending_count(session: Session, owner: Owner) -> int:
    rows = session.exec(
        select(col(Match.id)).where(Match.owner_id == owner.id, Match.review == Review.pending)
    ).all()
    return len(rows)


def first_waiting(session: Session, owner: Owner) -> Friend | None:
    """The first friend whose photos have matches waiting for this owner's review."""
    return session.exec(
        select(Friend)
        .join(Match, col(Match.friend_id) == col(Friend.id))
        .where(Match.owner_id == owner.id, Match.review == Review.pending)
        .order_by(col(Friend.id))
    ).first()


def review_all(
    session: Session, owner: Owner, friend: Friend, decision: Review, band: str | None = None
) -> list[Match]:
    """Decide every match still pending for this friend (only those of `band`, if given)."""
    pending = [
        m
        for m in matches_of(session, owner, friend)
        if m.review == Review.pending and (band is None or m.band == band)
    ]
    _second_faces(session, [(m, _decide(session, owner, m, decision)) for m in pending])
    _record_many(session, owner, BULK, decision, pending, friend_id=friend.id)
    return pending


def undo_all(session: Session, owner: Owner, friend: Friend) -> list[Match]:
    """Take back the last "all at once" decision for this friend."""
    return _undo_many(session, owner, BULK, friend_id=friend.id)


def last_bulk(session: Session, owner: Owner, friend: Friend) -> dict[str, Any] | None:
    """The last "all at once" decision for this friend that can still be undone."""
    event = _last_of(session, owner, BULK, friend_id=friend.id)
    return event.detail if event is not None and event.detail.get("match_ids") else None


def _record_many(
    session: Session,
    owner: Owner,
    action: str,
    decision: Review,
    matches: list[Match],
    **about: int | None,
) -> None:
    assert owner.id is not None
    ids = [m.id for m in matches]
    if ids:  # a decision that decided nothing leaves the one before it to undo
        record(session, owner.id, "owner", action, decision=decision, match_ids=ids, **about)


def _last_of(session: Session, owner: Owner, action: str, **about: int | None) -> AuditEvent | None:
    """The last decision for many about this group or friend, unless it was undone since."""
    session.flush()  # a decision of this same request counts
    events = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.owner_id == owner.id,
            col(AuditEvent.action).in_((action, f"{action}_undone")),
        )
        .order_by(col(AuditEvent.id).desc())
        .limit(RECENT_EVENTS)
    ).all()
    for event in events:
        if all(event.detail.get(key) == value for key, value in about.items()):
            return event if event.action == action else None
    return None


def _undo_many(session: Session, owner: Owner, action: str, **about: int | None) -> list[Match]:
    assert owner.id is not None
    event = _last_of(session, owner, action, **about)
    if event is None:
        return []
    ids = [int(i) for i in event.detail.get("match_ids", [])]
    decided = session.exec(
        select(Match).where(
            Match.owner_id == owner.id,
            col(Match.id).in_(ids),
            Match.review == event.detail.get("decision"),
        )
    ).all()
    changed = []
    for match in decided:
        changed.append((match, match.review))
        match.review = Review.pending
        session.add(match)
    _second_faces(session, changed)
    back = sorted(decided, key=lambda m: m.id or 0)
    record(session, owner.id, "owner", f"{action}_undone", match_ids=[m.id for m in back], **about)
    return back
