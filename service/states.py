"""Every vocabulary of states and answers, defined once.

The tables store them as short strings, guarded by CHECK constraints built from these enums
(`service.tables.one_of`); the JSON schemas accept exactly these values; code compares against the
members, never against a string written out by hand.
"""

from __future__ import annotations

from enum import StrEnum


class FriendStatus(StrEnum):
    invited = "invited"
    accepted = "accepted"
    declined = "declined"
    withdrawn = "withdrawn"
    reported = "reported"  # the friend reported the invitation: its link is dead, their data gone


class SourceKind(StrEnum):
    export = "export"
    profile = "profile"


class ScanStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class Review(StrEnum):
    """The owner's decision on a match (and on a whole look-alike group)."""

    pending = "pending"
    confirmed = "confirmed"
    rejected = "rejected"


class Answer(StrEnum):
    """Where a photo on the friend's checklist stands: open until the friend answers."""

    open = "open"
    removed = "removed"
    private = "private"
    keep = "keep"
    not_me = "not_me"


class Band(StrEnum):
    strong = "strong"
    possible = "possible"


class MailStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class TokenKind(StrEnum):
    api = "api"
    session = "session"


class ReportStatus(StrEnum):
    """A friend's report of an invitation: open until the admin clears the owner (deleting the
    owner deletes the report with everything else of theirs)."""

    open = "open"
    cleared = "cleared"


# What a friend may answer (everything but `open`), and what an owner may decide.
ANSWERS = tuple(a for a in Answer if a is not Answer.open)
DECISIONS = (Review.confirmed, Review.rejected)
