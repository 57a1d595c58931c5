"""The owner's review of matches: confirm or reject ("not me") before any friend is asked."""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.audit import record
from service.tables import Friend, Match, MatchGroup, Owner

DECISIONS = ("confirmed", "rejected")


def matches_of(session: Session, owner: Owner, friend: Friend) -> list[Match]:
    """Strong before possible, then closest first."""
    rows = session.exec(
        select(Match).where(Match.owner_id == owner.id, Match.friend_id == friend.id)
    ).all()
    return sorted(rows, key=lambda m: (m.band != "strong", m.distance, m.id or 0))


def match_of(session: Session, owner: Owner, match_id: int) -> Match | None:
    match = session.get(Match, match_id)
    return match if match is not None and match.owner_id == owner.id else None


def review(session: Session, owner: Owner, match: Match, decision: str) -> Match:
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
    assert owner.id is not None
    match.review = decision
    session.add(match)
    record(session, owner.id, "owner", f"match_{decision}", match_id=match.id)
    return match


def group_of(session: Session, owner: Owner, group_id: int) -> MatchGroup | None:
    group = session.get(MatchGroup, group_id) if 0 < group_id < 2**63 else None
    return group if group is not None and group.owner_id == owner.id else None


def review_group(session: Session, owner: Owner, group: MatchGroup, decision: str) -> list[Match]:
    """Decide the group's pending matches, with every friend. A rejected group stays rejected:
    its look-alikes are not proposed again (service/match_groups.py)."""
    pending = session.exec(
        select(Match)
        .where(Match.owner_id == owner.id, Match.group_id == group.id, Match.review == "pending")
        .order_by(col(Match.id))
    ).all()
    for match in pending:
        review(session, owner, match, decision)
    group.decision = decision
    session.add(group)
    return list(pending)


def pending_count(session: Session, owner: Owner) -> int:
    rows = session.exec(
        select(col(Match.id)).where(Match.owner_id == owner.id, Match.review == "pending")
    ).all()
    return len(rows)


def review_all(
    session: Session, owner: Owner, friend: Friend, decision: str, band: str | None = None
) -> list[Match]:
    """Decide every match still pending for this friend (only those of `band`, if given)."""
    pending = [
        m
        for m in matches_of(session, owner, friend)
        if m.review == "pending" and (band is None or m.band == band)
    ]
    for match in pending:
        review(session, owner, match, decision)
    return pending
