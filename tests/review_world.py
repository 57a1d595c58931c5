"""A review at any size, written straight to the database: one owner, friends, a reference face,
and N matches in a few look-alike groups (plus some with no group, as older rows have), each
with a small real JPEG drawn by Pillow. The browser journey and the review bench share it."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw
from sqlmodel import Session, col, select

from service import accounts, invites
from service.app import build_services
from service.config import Settings
from service.db import migrate
from service.routes.deps import Services
from service.tables import (
    Match,
    MatchGroup,
    Owner,
    ReferenceFace,
    Scan,
    Source,
    StandbyFace,
    utcnow,
)

PASSWORD = "correct horse battery"
SKIN = [(224, 172, 105), (198, 134, 66), (141, 85, 36), (241, 194, 125), (255, 219, 172)]


@dataclass
class ReviewWorld:
    owner_email: str
    friend_ids: list[int]
    group_ids: list[int]
    match_ids: dict[int, list[int]] = field(default_factory=dict)  # group id (0: none) -> ids


def _picture(
    rng: random.Random, colour: tuple[int, int, int], size: tuple[int, int]
) -> tuple[bytes, list[int]]:
    """A photo-like thumbnail: a noisy scene with one drawn face at a known place."""
    width, height = size
    noise = Image.effect_noise(size, 40).convert("RGB")
    scene = Image.blend(Image.new("RGB", size, (90, 120, 140)), noise, 0.35)
    draw = ImageDraw.Draw(scene)
    side = rng.randint(height // 6, height // 3)
    left, top = rng.randint(0, width - side), rng.randint(0, height - side)
    draw.ellipse((left, top, left + side, top + side * 1.2), fill=colour)
    for eye in (0.3, 0.62):
        x, y = left + side * eye, top + side * 0.4
        draw.ellipse((x, y, x + side * 0.1, y + side * 0.1), fill=(30, 30, 30))
    draw.arc((left + side * 0.3, top + side * 0.6, left + side * 0.7, top + side * 0.9), 20, 160)
    out = io.BytesIO()
    scene.save(out, "JPEG", quality=80)
    # The box in original pixels (the thumbnail is half the original: thumbnail_scale 0.5).
    box = [top * 2, (left + side) * 2, (top + side) * 2, left * 2]
    return out.getvalue(), box


def _reference(owner_id: int) -> ReferenceFace:
    image = Image.new("RGB", (200, 200), (200, 215, 210))
    draw = ImageDraw.Draw(image)
    draw.ellipse((45, 25, 155, 175), fill=SKIN[0])
    draw.ellipse((72, 80, 86, 94), fill=(30, 30, 30))
    draw.ellipse((114, 80, 128, 94), fill=(30, 30, 30))
    draw.arc((75, 110, 125, 150), 20, 160, fill=(90, 40, 40), width=3)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return ReferenceFace(owner_id=owner_id, sealed_encoding=b"x", thumbnail=out.getvalue())


def _friend(session: Session, services: Services, owner: Owner, n: int) -> int:
    friend, _, _ = invites.invite(
        session, services.settings, services.box, owner, f"Friend {n}", f"friend{n}@example.org"
    )
    friend.status = "accepted"
    session.add(friend)
    session.flush()
    assert friend.id is not None
    return friend.id


def build(
    settings: Settings,
    matches: int,
    groups: int = 5,
    ungrouped: int = 0,
    friends: int = 1,
    pictures: int = 60,
    seed: int = 7,
    waiting: int = 0,
) -> ReviewWorld:
    """`matches` per friend: `ungrouped` of them with no group, the rest shared out over `groups`
    (the first, the owner's own face, the largest); `pictures` JPEGs are drawn and reused. Behind
    each of the first `waiting` matches, a second face of its photo waits (service/standby.py)."""
    rng = random.Random(seed)
    services = build_services(settings)
    migrate(services.db)
    with Session(services.db) as session:
        owner = accounts.register(session, "alice@example.org", PASSWORD, "Alice")
        owner.confirmed_at = utcnow()  # as if she had opened the link of the confirmation mail
        assert owner.id is not None
        session.add(_reference(owner.id))
        group_rows = [MatchGroup(owner_id=owner.id, sealed_centre=b"x") for _ in range(groups)]
        session.add_all(group_rows)
        session.flush()
        world = ReviewWorld(owner.email, [], [g.id or 0 for g in group_rows])
        drawn = [
            _picture(rng, SKIN[i % len(SKIN)], (320, 240) if i % 3 else (240, 320))
            for i in range(max(pictures, 1))
        ]
        for n in range(1, friends + 1):
            friend_id = _friend(session, services, owner, n)
            world.friend_ids.append(friend_id)
            _matches(session, owner.id, friend_id, world, drawn, matches, ungrouped, rng)
            session.add_all(_waiting(session, friend_id, waiting, rng))
        session.commit()
    services.db.dispose()
    return world


def _matches(
    session: Session,
    owner_id: int,
    friend_id: int,
    world: ReviewWorld,
    drawn: list[tuple[bytes, list[int]]],
    count: int,
    ungrouped: int,
    rng: random.Random,
) -> None:
    source = Source(owner_id=owner_id, friend_id=friend_id, kind="export", label="photos.zip")
    session.add(source)
    session.flush()
    scan = Scan(owner_id=owner_id, friend_id=friend_id, source_id=source.id or 0, status="done")
    session.add(scan)
    session.flush()
    rows = []
    for i in range(count):
        # Half the grouped faces go to the first group (the owner); the rest share the others.
        others = world.group_ids[1:]
        if i < ungrouped:
            group = None
        elif not others or i % 2 == 0:
            group = world.group_ids[0] if world.group_ids else None
        else:
            group = others[(i // 2) % len(others)]
        picture, box = drawn[i % len(drawn)]
        strong = group == (world.group_ids[0] if world.group_ids else -1) or i % 5 == 0
        rows.append(
            Match(
                owner_id=owner_id,
                friend_id=friend_id,
                scan_id=scan.id or 0,
                group_id=group,
                photo=f"photos/{2015 + i % 9}/IMG_{friend_id:02d}{i:05d}.jpg",
                box_key=",".join(map(str, box)),
                box=box,
                platform="instagram" if i % 4 else "facebook",
                distance=round(rng.uniform(0.3, 0.45) if strong else rng.uniform(0.45, 0.55), 3),
                band="strong" if strong else "possible",
                sealed_encoding=b"x",
                thumbnail=picture,
                thumbnail_scale=0.5,
                # The owner's view: here the same drawn scene, with the face in its pixels.
                owner_view=picture,
                owner_view_box=[v // 2 for v in box],
                photo_digest=f"{friend_id}-{i}",
            )
        )
    session.add_all(rows)
    session.flush()
    for match in rows:
        world.match_ids.setdefault(match.group_id or 0, []).append(match.id or 0)


def _waiting(session: Session, friend_id: int, count: int, rng: random.Random) -> list[StandbyFace]:
    fronts = session.exec(
        select(Match).where(Match.friend_id == friend_id).order_by(col(Match.id)).limit(count)
    ).all()
    return [
        StandbyFace(
            owner_id=front.owner_id,
            match_id=front.id or 0,
            box_key=",".join(map(str, box)),
            box=box,
            distance=round(front.distance + rng.uniform(0.01, 0.05), 3),
            band=front.band,
            sealed_encoding=b"x",
            owner_view=front.owner_view,
            owner_view_box=[v // 2 for v in box],
            group_id=front.group_id,
        )
        for front in fronts
        for box in [[front.box[0], front.box[1] // 2, front.box[2], front.box[3] // 2]]
    ]
