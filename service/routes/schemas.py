"""The JSON shapes of the API (`../shared/API.md`), one family per entity."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from service.states import ANSWERS, DECISIONS, Answer, Band, Review
from service.tables import Friend, Match, Owner, ReferenceFace, Scan


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


class OwnerCreate(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1000)
    name: str = Field(max_length=200)


class OwnerPublic(BaseModel):
    id: int
    email: str
    name: str

    @classmethod
    def of(cls, owner: Owner) -> OwnerPublic:
        assert owner.id is not None
        return cls(id=owner.id, email=owner.email, name=owner.name)


class TokenRequest(BaseModel):
    email: str = Field(max_length=320)
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


class FriendCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=320)


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
            thumbnail_url=f"/api/v1/matches/{m.id}/thumbnail" if m.thumbnail else None,
        )


class ReviewRequest(BaseModel):
    decision: Annotated[Review, OneOf(DECISIONS)]


class ConsentRequest(BaseModel):
    accept: bool


class ProfileRequest(BaseModel):
    url: str = Field(max_length=2000)


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


class ChecklistItemPublic(BaseModel):
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


class ChecklistPublic(BaseModel):
    owner_name: str
    items: list[ChecklistItemPublic]


class AnswerRequest(BaseModel):
    status: Annotated[Answer, OneOf(ANSWERS)]


class ChecklistQueued(BaseModel):
    items: int
    open_items: int
    sent: bool  # False: the same list went out moments ago, and `detail` says when
    detail: str


class BulkReviewRequest(BaseModel):
    decision: Annotated[Review, OneOf(DECISIONS)]
    band: Band | None = None
