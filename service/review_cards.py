"""The review at any size: one card per look-alike group, 50 photos a page, each face cropped large.

Cards are built from the matches' small columns only; thumbnails and encodings stay in the
database until a picture is asked for, so 2,000 matches open as fast as 20.

The owner sees their own face: each match's owner view (the region around the face, every other
face blurred), and the friend's whole photo only when the friend chose to show it at consent.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy import ColumnElement
from sqlalchemy.orm import defer
from sqlmodel import Session, col, func, or_, select

from service.states import Band, Review
from service.tables import Friend, Match, MatchGroup, Owner

PAGE_SIZE = 50
STRIP_SIZE = 12  # faces shown beside a group's clearest one; the rest are counted
FACE_HEIGHT = 192  # px: large enough to tell a face apart from a look-alike
FACE_MARGIN = 1.8  # the crop's side, in face sizes: hair, chin and a little of the scene
CLEAR_ENOUGH = 96  # px of face in the thumbnail beyond which a face is not any clearer
LIGHT = (
    defer(Match.thumbnail),  # type: ignore[arg-type]
    defer(Match.owner_view),  # type: ignore[arg-type]
    defer(Match.sealed_encoding),  # type: ignore[arg-type]
)


@dataclass
class GroupCard:
    """This friend's matches of one look-alike group, clearest face first."""

    group: MatchGroup
    faces: list[Match]
    pictured: set[int]  # ids of the faces with a picture the owner may see
    elsewhere: int  # pending matches of the group in other friends' photos: decided with these
    bands: Counter[Band] = field(init=False)
    reviews: Counter[Review] = field(init=False)

    def __post_init__(self) -> None:
        self.faces.sort(key=lambda m: _clarity(m, m.id in self.pictured))
        self.bands = Counter(m.band for m in self.faces)
        self.reviews = Counter(m.review for m in self.faces)

    @property
    def id(self) -> int:
        assert self.group.id is not None
        return self.group.id

    @property
    def face(self) -> Match:
        return self.faces[0]

    @property
    def strip(self) -> list[Match]:
        return [m for m in self.faces[1:] if m.id in self.pictured][:STRIP_SIZE]

    @property
    def more(self) -> int:
        return len(self.faces) - 1 - len(self.strip)

    @property
    def photos(self) -> int:
        return len({m.photo_digest or m.photo for m in self.faces})

    @property
    def state(self) -> str:
        """pending while any face waits; else confirmed, rejected or mixed."""
        if self.reviews[Review.pending]:
            return Review.pending
        decided = {r for r in self.reviews if self.reviews[r]}
        return decided.pop() if len(decided) == 1 else "mixed"


def _clarity(match: Match, pictured: bool) -> tuple[bool, float, float, int]:
    """Sort key: a picture first, then a face large enough to judge, then the closest."""
    top, _, bottom, _ = match.box
    size = min((bottom - top) * match.thumbnail_scale, CLEAR_ENOUGH)
    return (not pictured, -size, match.distance, match.id or 0)


def group_cards(session: Session, owner: Owner, friend: Friend) -> list[GroupCard]:
    """The friend's grouped matches as cards: strong groups first, larger before smaller."""
    shown: ColumnElement[bool] = col(Match.owner_view).is_not(None)
    if friend.shows_whole_photos:
        shown = or_(shown, col(Match.thumbnail).is_not(None))
    rows = session.exec(
        select(Match, shown)
        .options(*LIGHT)
        .where(
            Match.owner_id == owner.id,
            Match.friend_id == friend.id,
            col(Match.group_id).is_not(None),
        )
    ).all()
    faces: dict[int, list[Match]] = {}
    pictured: set[int] = set()
    for match, has_picture in rows:
        assert match.group_id is not None and match.id is not None
        faces.setdefault(match.group_id, []).append(match)
        if has_picture:
            pictured.add(match.id)
    if not faces:
        return []
    groups = session.exec(select(MatchGroup).where(col(MatchGroup.id).in_(faces))).all()
    elsewhere = _pending_elsewhere(session, owner, friend, list(faces))
    cards = [
        GroupCard(g, faces[g.id], pictured, elsewhere.get(g.id, 0))
        for g in groups
        if g.id is not None
    ]
    return sorted(cards, key=lambda c: (not c.bands[Band.strong], -len(c.faces), c.id))


def group_card(session: Session, owner: Owner, friend: Friend, group: MatchGroup) -> GroupCard:
    return next(c for c in group_cards(session, owner, friend) if c.id == group.id)


def _pending_elsewhere(
    session: Session, owner: Owner, friend: Friend, group_ids: list[int]
) -> dict[int, int]:
    rows = session.exec(
        select(Match.group_id, func.count())
        .where(
            Match.owner_id == owner.id,
            Match.friend_id != friend.id,
            Match.review == Review.pending,
            col(Match.group_id).in_(group_ids),
        )
        .group_by(col(Match.group_id))
    ).all()
    return {g: n for g, n in rows if g is not None}


@dataclass
class Page:
    """One page of matches, with what a pager needs."""

    matches: list[Match]
    number: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def singles(session: Session, owner: Owner, friend: Friend, number: int = 1) -> Page:
    """The friend's matches with no group (found before groups existed), a page at a time."""
    return _page(session, owner, friend, col(Match.group_id).is_(None), number)


def group_page(
    session: Session, owner: Owner, friend: Friend, group: MatchGroup, number: int = 1
) -> Page:
    """The friend's matches of one group, a page at a time, to decide one by one."""
    return _page(session, owner, friend, Match.group_id == group.id, number)


def _page(session: Session, owner: Owner, friend: Friend, where: Any, number: int) -> Page:
    mine = (Match.owner_id == owner.id, Match.friend_id == friend.id, where)
    total = session.exec(select(func.count()).select_from(Match).where(*mine)).one()
    number = min(max(1, number), max(1, -(-total // PAGE_SIZE)))
    rows = session.exec(
        select(Match)
        .where(*mine)
        # "strong" sorts after "possible": descending puts strong matches first.
        .order_by(col(Match.band).desc(), col(Match.distance), col(Match.id))
        .offset((number - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return Page(list(rows), number, total)


@dataclass
class Tally:
    """How many of a friend's matches there are, and how many still wait, per band."""

    total: int = 0
    pending: Counter[str] = field(default_factory=Counter)

    @property
    def waiting(self) -> int:
        return sum(self.pending.values())


def tally(session: Session, owner: Owner, friend: Friend) -> Tally:
    rows = session.exec(
        select(Match.band, Match.review, func.count())
        .where(Match.owner_id == owner.id, Match.friend_id == friend.id)
        .group_by(col(Match.band), col(Match.review))
    ).all()
    counts = Tally()
    for band, review, n in rows:
        counts.total += n
        if review == Review.pending:
            counts.pending[band] += n
    return counts


@dataclass(frozen=True)
class Picture:
    """What the owner is shown of a match's photo, and where their face is in it."""

    jpeg: bytes
    box: tuple[float, float, float, float]  # top, right, bottom, left, in the picture's pixels

    @property
    def size(self) -> tuple[int, int]:
        return Image.open(io.BytesIO(self.jpeg)).size  # read from the header only


def owner_picture(match: Match, friend: Friend) -> Picture | None:
    """The owner's view of the match; the friend's whole photo only if they chose to show it."""
    if friend.shows_whole_photos and match.thumbnail is not None:
        top, right, bottom, left = (v * match.thumbnail_scale for v in match.box)
        return Picture(match.thumbnail, (top, right, bottom, left))
    if match.owner_view is not None and match.owner_view_box:
        top, right, bottom, left = (float(v) for v in match.owner_view_box)
        return Picture(match.owner_view, (top, right, bottom, left))
    return None


def match_picture(session: Session, match: Match) -> Picture | None:
    friend = session.get(Friend, match.friend_id)
    return None if friend is None else owner_picture(match, friend)


@dataclass(frozen=True)
class Frame:
    """A picture's size, and the face in it in percent of that size, to outline it on a card."""

    width: int
    height: int
    face: tuple[float, float, float, float]  # x, y, width, height

    @classmethod
    def of(cls, picture: Picture) -> Frame:
        (width, height), (top, right, bottom, left) = picture.size, picture.box
        x, y, w, h = left / width, top / height, (right - left) / width, (bottom - top) / height
        return cls(width, height, (100 * x, 100 * y, 100 * w, 100 * h))


def picture_frames(matches: list[Match], friend: Friend) -> dict[int, Frame]:
    """The frame of each match's picture that the owner may see (one friend's matches)."""
    frames: dict[int, Frame] = {}
    for m in matches:
        picture = owner_picture(m, friend)
        if m.id is not None and picture is not None:
            frames[m.id] = Frame.of(picture)
    return frames


def face_picture(picture: Picture, height: int = FACE_HEIGHT) -> bytes:
    """The matched face cut from the owner's picture, with a margin, `height` pixels tall."""
    image = Image.open(io.BytesIO(picture.jpeg)).convert("RGB")
    top, right, bottom, left = picture.box
    side = min(max(right - left, bottom - top, 1) * FACE_MARGIN, image.width, image.height)
    # A square window around the face, slid back inside the picture near its edges.
    x = min(max(0.0, (left + right - side) / 2), image.width - side)
    y = min(max(0.0, (top + bottom - side) / 2), image.height - side)
    crop = image.crop((round(x), round(y), round(x + side), round(y + side)))
    face = crop.resize((height, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    face.save(out, "JPEG", quality=82)
    return out.getvalue()
