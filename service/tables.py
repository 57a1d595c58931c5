"""The database tables. Every row of an owner's world hangs off `owner.id` and goes with it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import AutoString, Field, SQLModel

from service.faces import ENCODER
from service.states import (
    DECISIONS,
    Answer,
    Band,
    FriendStatus,
    MailStatus,
    ReportStatus,
    Review,
    ScanStatus,
    SourceKind,
    TokenKind,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use service.tables.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _when(nullable: bool = True, **kw: Any) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, **kw))


def one_of(column: str, states: Iterable[StrEnum], *, nullable: bool = False) -> CheckConstraint:
    """A CHECK constraint that keeps `column` within these values (an enum, or some of it)."""
    values = ", ".join(f"'{state.value}'" for state in states)
    allowed = f"{column} IN ({values})"
    if nullable:
        allowed = f"{column} IS NULL OR {allowed}"
    return CheckConstraint(allowed, name=f"{column}_valid")


def _state(default: Any = ..., **kw: Any) -> Any:
    """A state column: a short string (the enum's value), kept in range by a CHECK constraint."""
    return Field(default=default, sa_type=AutoString(length=16), **kw)


def _owner_fk() -> Any:
    return Field(
        sa_column=Column(
            Integer, ForeignKey("owner.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )


class Owner(SQLModel, table=True):
    # At most one owner is the instance's admin (the first account): a partial unique index.
    __table_args__ = (
        Index(
            "ix_owner_one_admin",
            "is_admin",
            unique=True,
            sqlite_where=text("is_admin"),
            postgresql_where=text("is_admin"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=320)
    name: str = Field(max_length=200)
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The instance's admin: the first account; sees reports, clears or deletes frozen owners.
    is_admin: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Set when the owner opened the link mailed to their address; inviting friends needs it.
    confirmed_at: datetime | None = _when()
    # Set when a friend reported one of their invitations; until the admin clears them, they
    # invite no one and no scan runs for them.
    frozen_at: datetime | None = _when()
    # Friends' answers are gathered into one digest mail, sent when this time comes.
    digest_due_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    last_digest_at: datetime | None = _when()
    # The mails the owner chose not to get (service/notify/owner_mails.py NOTICES); none: all.
    muted: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )


class LoginToken(SQLModel, table=True):
    """A bearer token (API) or a session (pages); only its SHA-256 is stored."""

    __table_args__ = (one_of("kind", TokenKind),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    token_hash: str = Field(unique=True, index=True)
    kind: TokenKind = _state()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class ConfirmationToken(SQLModel, table=True):
    """The link that confirms an owner's address; only its SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    email: str = Field(max_length=320)  # the address it was sent to, the one it confirms
    token_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class OwnerInvitation(SQLModel, table=True):
    """An invitation to open an owner account (PHOTO_REMOVAL_SIGNUPS=invite), by a confirmed
    owner; single use, expiring, only the token's SHA-256 is stored. Goes with its inviter."""

    id: int | None = Field(default=None, primary_key=True)
    inviter_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("owner.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    email: str = Field(max_length=320, index=True)
    token_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = _when()


class Report(SQLModel, table=True):
    """A friend's report of an invitation ("I don't know this person", "not their face"): the
    owner is frozen until the admin clears them. Goes with the owner, like all of theirs."""

    __table_args__ = (one_of("status", ReportStatus),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    # Who reported, copied: the friend's row stays the owner's, who must not be able to erase
    # the report by removing the friend.
    friend_name: str = Field(max_length=200)
    friend_email: str = Field(max_length=320)
    reason: str = Field(max_length=1000)
    status: ReportStatus = _state(ReportStatus.open, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = _when()


class ReferenceFace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    sealed_encoding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    encoder: str = Field(default=ENCODER, max_length=16)  # whose encoding: service/reencode.py
    thumbnail: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # the face crop
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Friend(SQLModel, table=True):
    """A friend and their invitation: the token is their only key, stored as a hash."""

    __table_args__ = (one_of("status", FriendStatus),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    token_hash: str = Field(unique=True, index=True)
    # The token itself, sealed: reminders and the checklist mail carry the same link again.
    sealed_token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: datetime = Field(sa_type=UTCDateTime)
    status: FriendStatus = _state(FriendStatus.invited)
    consented_at: datetime | None = _when()
    consent_version: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    checklist_sent_at: datetime | None = _when()
    # The reminder schedule is a column, so a restart loses nothing; None: nothing is due.
    next_reminder_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    reminders_sent: int = 0
    unsubscribed_at: datetime | None = _when()
    # Chosen at consent: the owner may see the friend's whole photos, not only their own face.
    shows_whole_photos: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # "I've asked for my download": when, and when the mail bringing the link back is due
    # (None: none is); service/notify/export_reminders.py.
    export_asked_at: datetime | None = _when()
    export_reminder_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    export_reminders_sent: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Source(SQLModel, table=True):
    """An export a friend uploaded or a profile link they shared."""

    __table_args__ = (one_of("kind", SourceKind),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    friend_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("friend.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    kind: SourceKind = _state()
    label: str = Field(max_length=2000)  # the file name or the profile URL
    upload_path: str | None = None  # set while the uploaded file waits in quarantine
    size_bytes: int = Field(default=0, sa_type=BigInteger)  # exports pass 2 GiB
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExportUpload(SQLModel, table=True):
    """A file a friend is sending by the tus protocol, in pieces that may stop and resume.

    The bytes received so far are the file in quarantine (its size is the offset). Once all
    have arrived the friend turns it, alone or with the other parts of a split export, into a
    source; an upload left idle for days is deleted."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)  # in its URL; the friend's token guards it too
    owner_id: int = _owner_fk()
    friend_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("friend.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    filename: str = Field(max_length=200)
    length: int = Field(sa_type=BigInteger)
    path: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    touched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Scan(SQLModel, table=True):
    """One pass of the face engine over a source; resumable from `photos_done`."""

    __table_args__ = (one_of("status", ScanStatus),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    friend_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("friend.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    source_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("source.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    status: ScanStatus = _state(ScanStatus.queued, index=True)
    photos_total: int | None = None
    photos_done: int = 0  # photos read so far, in source order: the resume cursor
    matches: int = 0
    error: str | None = None
    attempts: int = 0
    lease_until: datetime | None = _when()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = _when()
    finished_at: datetime | None = _when()


class ScanChunk(SQLModel, table=True):
    """The faces of a batch of photos, sealed, until the scan decides on the whole source.

    Every face's encoding is kept here so the decision can weigh the source as a cohort (see
    service/faces/decision.py); the rows go when the scan ends, with the upload they came from.
    """

    __table_args__ = (UniqueConstraint("scan_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    scan_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("scan.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    seq: int
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MatchGroup(SQLModel, table=True):
    """Faces of one owner's matches that look like one individual, across all friends."""

    __table_args__ = (one_of("decision", DECISIONS, nullable=True),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    sealed_centre: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    encoder: str = Field(default=ENCODER, max_length=16)  # whose encoding: service/reencode.py
    size: int = 0  # faces that made the centre
    decision: Review | None = _state(None)  # as a whole
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Match(SQLModel, table=True):
    """A photo in which the owner's face was found, with where it was posted."""

    __table_args__ = (
        UniqueConstraint("scan_id", "photo", "box_key"),
        one_of("band", Band),
        one_of("review", Review),
        one_of("status", Answer),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    friend_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("friend.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    scan_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("scan.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    photo: str = Field(max_length=4000)
    box_key: str = Field(max_length=64)  # "top,right,bottom,left": one row per face
    box: list[int] = Field(sa_column=Column(JSON, nullable=False))
    platform: str = Field(default="other", max_length=32)
    post_url: str | None = None
    # The photos of one post (a carousel) share it: one checklist item (service/posts.py).
    post_key: str | None = Field(default=None, max_length=400)
    album: str | None = None
    taken_at: datetime | None = _when()
    caption: str | None = None
    distance: float
    band: Band = _state()
    review: Review = _state(Review.pending)  # the owner's decision
    status: Answer = _state(Answer.open)  # the friend's answer
    verified_at: datetime | None = _when()
    sealed_encoding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    encoder: str = Field(default=ENCODER, max_length=16)  # whose encoding: service/reencode.py
    # The friend's whole photo, downscaled: their checklist shows it; the owner only when the
    # friend chose so at consent (Friend.shows_whole_photos).
    thumbnail: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    thumbnail_scale: float = 1.0  # thumbnail pixels per original pixel, to outline the face
    # What the owner is shown: the region around their face, every other face blurred.
    owner_view: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    owner_view_box: list[int] | None = Field(default=None, sa_column=Column(JSON))  # in the view
    photo_digest: str = Field(default="", max_length=64, index=True)  # the same photo, re-scanned
    group_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("matchgroup.id", ondelete="SET NULL"), index=True, nullable=True
        ),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    answered_at: datetime | None = _when()
    # Verification of public photos: when to look next, and what the server said last time.
    next_check_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    check_etag: str | None = Field(default=None, max_length=400)
    check_last_modified: str | None = Field(default=None, max_length=100)
    check_failures: int = 0


class StandbyFace(SQLModel, table=True):
    """A second face of a match's photo that the rule also found near the owner. A person is
    proposed once a photo, by the nearest face; if the owner says that one is not them, this one
    steps in as a match of its own (service/standby.py), and steps back if that is undone."""

    __table_args__ = (one_of("band", Band),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    # The match proposed for the photo when it was scanned: this face waits behind it.
    match_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("match.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    box_key: str = Field(max_length=64)
    box: list[int] = Field(sa_column=Column(JSON, nullable=False))
    distance: float
    band: Band = _state()
    sealed_encoding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    encoder: str = Field(default=ENCODER, max_length=16)  # whose encoding: service/reencode.py
    owner_view: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    owner_view_box: list[int] | None = Field(default=None, sa_column=Column(JSON))
    group_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("matchgroup.id", ondelete="SET NULL"), index=True, nullable=True
        ),
    )
    # The match it stepped in as, while it is one.
    stepped_in: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("match.id", ondelete="SET NULL"), index=True, nullable=True
        ),
    )


class AuditEvent(SQLModel, table=True):
    """Who did what, for the owner to see; deleted with the owner."""

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    actor: str = Field(max_length=64)  # "owner", "friend:<id>", "system"
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RateEvent(SQLModel, table=True):
    """One attempt counted against a rate limit (log-ins, invitations)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, max_length=400)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class OutgoingMail(SQLModel, table=True):
    """A mail to send, written before sending: the record that keeps a retry from sending twice."""

    __table_args__ = (one_of("status", MailStatus),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk()
    friend_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("friend.id", ondelete="CASCADE"), index=True),
    )
    kind: str = Field(max_length=32)  # the template: invitation, checklist, reminder, digest
    idempotency_key: str = Field(unique=True, max_length=200)
    to: str = Field(max_length=320)
    subject: str = Field(max_length=400)
    # The bodies hold a placeholder for each link that carries a token; the links themselves
    # are sealed here and put in only as the mail is sent (notify.mail.SecretLinks).
    text: str
    html: str
    sealed_links: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: MailStatus = _state(MailStatus.pending)
    attempts: int = 0
    claimed_at: datetime | None = _when()  # when a worker last took it to send
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = _when()


class Periodic(SQLModel, table=True):
    """When a piece of periodic work (the tick, the sweep) is next due, for every process at once.

    Each consumer's clock may fire; only the one whose conditional UPDATE moves `next_run_at`
    forward does the work (service/jobs.py), so N consumers still run it once per period.
    """

    name: str = Field(primary_key=True, max_length=32)
    next_run_at: datetime = Field(sa_type=UTCDateTime)


class Circle(SQLModel, table=True):
    """A family circle: owners who ask the same friends together (one merged invitation, one
    scan, one checklist). Its keeper (the first member, then the longest-standing) may remove
    members; everyone may leave. It goes when its last member leaves."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CircleMember(SQLModel, table=True):
    """An owner in a circle; an owner is in one circle at most (`owner_id` is unique), so whose
    invitations merge with whose is never ambiguous."""

    id: int | None = Field(default=None, primary_key=True)
    circle_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("circle.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    owner_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("owner.id", ondelete="CASCADE"), unique=True, nullable=False
        )
    )
    joined_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CircleInvitation(SQLModel, table=True):
    """An invitation for an owner to join a circle, to one address; single use, expiring, only
    the token's SHA-256 is stored. Goes with the circle and with its inviter."""

    id: int | None = Field(default=None, primary_key=True)
    circle_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("circle.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    inviter_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("owner.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    email: str = Field(max_length=320)
    token_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
