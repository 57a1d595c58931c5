"""The JSON shapes of the API (`../shared/API.md`), one family per entity."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)
from pydantic_core import core_schema

from service.addresses import normal_address
from service.states import ANSWERS, DECISIONS, Answer, Band, Review
from service.tables import Circle, Friend, Match, Owner, ReferenceFace, Report, Scan


class OneOf:
    """A request field that takes only some states of its enum, e.g. `Annotated[Review,
    OneOf(DECISIONS)]`. The schema and the error name the values ('confirmed' or 'rejected'),
    where a `Literal` of the members would show their Python repr to API clients."""

    def __init__(self, states: Iterable[StrEnum]) -> None:
        self.values = [state.value for state in states]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            source, core_schema.literal_schema(self.values)
        )


# An address in a request body: one address, normalised (service/addresses.py), else 422.
EmailAddress = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"format": "email"}),
    AfterValidator(normal_address),
]


class Problem(BaseModel):
    """Every error answer: what went wrong, in words."""

    detail: str


class FieldError(BaseModel):
    """One invalid part of a request: where, what kind of error, and the limits it broke; never
    the input itself (service/app.py: without_input)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    loc: list[str | int]
    msg: str
    ctx: dict[str, Any] = Field(default_factory=dict)


class Invalid(BaseModel):
    """A 422: a sentence, or one entry per invalid part of the request."""

    detail: str | list[FieldError]


def storable(text: str) -> str:
    """Text a request may carry: PostgreSQL refuses NUL in text, which was a 500 (pydantic
    itself refuses lone surrogates, "\\ud800", as not Unicode)."""
    if "\x00" in text:
        raise ValueError("the text holds a NUL character")
    return text


class RequestBody(BaseModel):
    """Every JSON request body: no field's text holds a NUL."""

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value) if isinstance(value, str) else value


class OwnerCreate(RequestBody):
    email: EmailAddress
    password: str = Field(max_length=1000)
    name: str = Field(max_length=200)
    # The token of an owner invitation (PHOTO_REMOVAL_SIGNUPS=invite asks for one).
    invitation: str | None = Field(default=None, max_length=200)


class OwnerPublic(BaseModel):
    id: int
    email: str
    name: str
    confirmed: bool = False  # the address was confirmed by the mailed link
    is_admin: bool = False
    frozen: bool = False  # a friend's report holds the account until the admin clears it
    muted: list[str] = []  # the kinds of mail the owner chose not to get

    @classmethod
    def of(cls, owner: Owner) -> OwnerPublic:
        assert owner.id is not None
        return cls(
            id=owner.id,
            email=owner.email,
            name=owner.name,
            confirmed=owner.confirmed_at is not None,
            is_admin=owner.is_admin,
            frozen=owner.frozen_at is not None,
            muted=list(owner.muted or []),
        )


Notice = Literal[  # notify/owner_mails.NOTICES
    "friend_answered", "scan_done", "list_answered", "list_finished", "removal_verified", "digest"
]


class MailsRequest(RequestBody):
    """The mails the owner does not want (every other kind is sent)."""

    muted: list[Notice] = Field(default_factory=list, max_length=6)


class ConfirmRequest(RequestBody):
    token: str = Field(max_length=200)


class OwnerInvitationCreate(RequestBody):
    email: EmailAddress


class Queued(BaseModel):
    """A 202: what was done, in words."""

    detail: str


class ReportRequest(RequestBody):
    reason: str = Field(min_length=1, max_length=1000)
    # On a page where several members of a family circle ask: the one reported. Without it,
    # the owner of the link.
    owner: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = None


class ReportPublic(BaseModel):
    """A friend's report, for the admin."""

    id: int
    owner: OwnerPublic
    friend_name: str
    friend_email: str
    reason: str
    status: str
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, report: Report, owner: Owner) -> ReportPublic:
        assert report.id is not None
        return cls(
            id=report.id,
            owner=OwnerPublic.of(owner),
            friend_name=report.friend_name,
            friend_email=report.friend_email,
            reason=report.reason,
            status=report.status,
            created_at=report.created_at,
            decided_at=report.decided_at,
        )


class TokenRequest(RequestBody):
    email: EmailAddress
    password: str = Field(max_length=1000)


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class ReferencePublic(BaseModel):
    id: int
    thumbnail_url: str
    created_at: datetime

    @classmethod
    def of(cls, ref: ReferenceFace) -> ReferencePublic:
        assert ref.id is not None
        return cls(
            id=ref.id,
            thumbnail_url=f"/api/v1/reference-photos/{ref.id}/thumbnail",
            created_at=ref.created_at,
        )


class FriendCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    email: EmailAddress


class FriendPublic(BaseModel):
    id: int
    name: str
    email: str
    status: str
    matches: int = 0
    open_items: int = 0

    @classmethod
    def of(cls, friend: Friend, matches: int = 0, open_items: int = 0) -> FriendPublic:
        assert friend.id is not None
        return cls(
            id=friend.id,
            name=friend.name,
            email=friend.email,
            status=friend.status,
            matches=matches,
            open_items=open_items,
        )


class FriendCreated(FriendPublic):
    invite_url: str


class MatchPublic(BaseModel):
    id: int
    photo: str
    platform: str
    post_url: str | None
    album: str | None
    taken_at: datetime | None
    caption: str | None
    distance: float
    band: str
    group: int | None  # look-alike group: one decision for all its pending matches
    review: str
    status: str
    verified_at: datetime | None
    thumbnail_url: str | None
    box: list[int]

    @classmethod
    def of(cls, m: Match) -> MatchPublic:
        assert m.id is not None
        return cls(
            id=m.id,
            photo=m.photo,
            platform=m.platform,
            post_url=m.post_url,
            album=m.album,
            taken_at=m.taken_at,
            caption=m.caption,
            distance=m.distance,
            band=m.band,
            group=m.group_id,
            review=m.review,
            status=m.status,
            verified_at=m.verified_at,
            box=m.box,
            # The owner's picture: their own face's region (or the whole photo, if the friend
            # shows it); a match found before owner views were kept may have only the latter.
            thumbnail_url=f"/api/v1/matches/{m.id}/thumbnail"
            if m.owner_view is not None or m.thumbnail is not None
            else None,
        )


class ReviewRequest(RequestBody):
    decision: Annotated[Review, OneOf(DECISIONS)]


class ConsentRequest(RequestBody):
    # true or false only, as the document says (not 0, 1 or "yes", which pydantic would take)
    accept: StrictBool
    # The owner may see the whole photos found, not only the region around their face.
    show_whole_photos: StrictBool = False
    # The members of a family circle answered (all ask on one page); without it, the owner of
    # the link alone.
    owners: list[Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]] | None = Field(
        default=None, max_length=50
    )


class AskerPublic(BaseModel):
    """One member who asks the friend, and the friend's answer to them."""

    id: int
    name: str
    status: str


class ConsentPublic(BaseModel):
    status: str  # the answer to the owner of the link
    owners: list[AskerPublic]  # everyone who asks on this page


class ProfileRequest(RequestBody):
    url: str = Field(max_length=2000)


class ExportFromUploads(BaseModel):
    """Finished resumable uploads to scan as one export: one file, or a split export's parts."""

    uploads: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=50
    )


class ScanQueued(BaseModel):
    scan_id: int


class ScanPublic(BaseModel):
    id: int
    status: str
    photos_total: int | None
    photos_done: int
    matches: int
    error: str | None

    @classmethod
    def of(cls, scan: Scan) -> ScanPublic:
        assert scan.id is not None
        return cls(
            id=scan.id,
            status=scan.status,
            photos_total=scan.photos_total,
            photos_done=scan.photos_done,
            matches=scan.matches,
            error=scan.error,
        )


class ChecklistPhotoPublic(BaseModel):
    match_id: int
    thumbnail_url: str | None
    photo: str


class ChecklistItemPublic(BaseModel):
    """One post on the friend's list; answering it answers each of its photos."""

    id: int
    thumbnail_url: str | None
    platform: str
    post_url: str | None
    taken_at: datetime | None
    caption: str | None
    album: str | None
    photo: str
    instructions: list[dict[str, object]]
    status: str
    verified_at: datetime | None
    photos: list[ChecklistPhotoPublic]
    owner_names: list[str]


class ChecklistPublic(BaseModel):
    owner_name: str
    items: list[ChecklistItemPublic]


class AnswerRequest(RequestBody):
    status: Annotated[Answer, OneOf(ANSWERS)]


class ChecklistQueued(BaseModel):
    items: int
    open_items: int
    sent: bool  # False: the same list went out moments ago, and `detail` says when
    detail: str


class BulkReviewRequest(RequestBody):
    decision: Annotated[Review, OneOf(DECISIONS)]
    band: Band | None = None


class CircleCreate(RequestBody):
    name: str = Field(min_length=1, max_length=100)


class CircleMemberPublic(BaseModel):
    id: int
    name: str


class CirclePublic(BaseModel):
    """A family circle as its members see it: the keeper (who may remove members) first."""

    id: int
    name: str
    members: list[CircleMemberPublic]
    keeper_id: int

    @classmethod
    def of(cls, circle: Circle, members: list[Owner]) -> CirclePublic:
        assert circle.id is not None
        listed = [CircleMemberPublic(id=m.id or 0, name=m.name) for m in members]
        return cls(id=circle.id, name=circle.name, members=listed, keeper_id=listed[0].id)


class CircleInvite(RequestBody):
    email: EmailAddress


class JoinRequest(RequestBody):
    token: str = Field(max_length=200)
