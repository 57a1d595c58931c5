"""Look-alike groups through the JSON API, with real faces: one decision for a whole group, across
friends; a rejected group stays rejected; nothing of a scan's other faces is left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from service.tables import Match, MatchGroup, ScanChunk
from tests import test_ingest_api
from tests.ingest.builders import write_zip
from tests.test_ingest_api import Service, finished, invite

service = test_ingest_api.service
photos = test_ingest_api.photos

OWNER = ("obama-480p.jpg", "obama-720p.jpg", "obama1.jpg", "obama3.jpg")
STRANGERS = tuple(f"dev-bbt/{p}/{p}{n}.png" for p in ("howard", "raj", "penny") for n in (1, 2))


def _export(faces_dir: Path, owner_photos: tuple[str, ...]) -> dict[str, bytes]:
    files = {f"Photos/{n}": (faces_dir / "dev/obama" / n).read_bytes() for n in owner_photos}
    files |= {f"Photos/{Path(p).name}": (faces_dir / p).read_bytes() for p in STRANGERS}
    return files


def _upload(service: Service, name: str, files: dict[str, bytes]) -> tuple[int, list[dict]]:
    friend_id, token = invite(service, name)
    archive = write_zip(service.folder / f"{name}-{friend_id}.zip", files)
    queued = service.client.post(
        f"/api/v1/invites/{token}/exports",
        files={"file": ("photos.zip", archive.read_bytes(), "application/zip")},
    )
    assert queued.status_code == 202, queued.text
    scanned = finished(service, friend_id, token, queued.json()["scan_id"])
    assert scanned.scan["status"] == "done", scanned.scan
    return friend_id, list(scanned.matches.values())


def _db(service: Service):  # type: ignore[no-untyped-def]
    return service.client.app.state.services.db  # type: ignore[attr-defined]


def test_it_decides_the_owners_group_at_once_across_friends(
    service: Service, faces_dir: Path
) -> None:
    _, first = _upload(service, "Lea", _export(faces_dir, OWNER[:2]))
    _, second = _upload(service, "Max", _export(faces_dir, OWNER[2:]))
    assert {m["photo"].rsplit("/", 1)[-1] for m in first + second} == set(OWNER)
    groups = {m["group"] for m in first + second}
    assert len(groups) == 1 and None not in groups  # one individual, one decision
    [group] = groups

    decided = service.client.post(
        f"/api/v1/match-groups/{group}/review",
        headers=service.alice,
        json={"decision": "confirmed"},
    )
    assert decided.status_code == 200, decided.text
    assert sorted(m["id"] for m in decided.json()) == sorted(m["id"] for m in first + second)
    assert {m["review"] for m in decided.json()} == {"confirmed"}
    # Deciding again finds nothing pending.
    again = service.client.post(
        f"/api/v1/match-groups/{group}/review",
        headers=service.alice,
        json={"decision": "confirmed"},
    )
    assert again.status_code == 200 and again.json() == []


def test_it_keeps_a_rejected_groups_look_alikes_out_of_later_scans(
    service: Service, faces_dir: Path
) -> None:
    # Alice's reference is Obama; here she says a whole group is not her (as for a look-alike).
    _, found = _upload(service, "Ada", _export(faces_dir, ("obama-480p.jpg", "obama1.jpg")))
    [group] = {m["group"] for m in found}
    rejected = service.client.post(
        f"/api/v1/match-groups/{group}/review",
        headers=service.alice,
        json={"decision": "rejected"},
    )
    assert rejected.status_code == 200
    with Session(_db(service)) as session:
        assert session.get(MatchGroup, group).decision == "rejected"  # type: ignore[union-attr]
    # Other photos of the same face, from another friend: not proposed again.
    _, later = _upload(service, "Bo", _export(faces_dir, ("obama3.jpg", "obama-720p.jpg")))
    assert later == []


def test_it_leaves_nothing_of_the_other_faces_behind(service: Service, faces_dir: Path) -> None:
    friend_id, found = _upload(service, "Cy", _export(faces_dir, ("obama-480p.jpg",)))
    with Session(_db(service)) as session:
        assert session.exec(select(ScanChunk)).all() == []  # every face's encoding went
        kept = session.exec(select(Match).where(Match.friend_id == friend_id)).all()
    # Only the proposed faces keep an encoding: six strangers' faces were scanned, none kept.
    assert [m.photo for m in kept] == [m["photo"] for m in found]


def test_a_face_decided_on_its_own_joins_no_group_but_a_rejection_still_holds() -> None:
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    from service.match_groups import OwnerGroups
    from service.secrets_box import SecretBox
    from service.states import Review

    box = SecretBox("k" * 48)
    db = create_engine("sqlite://")
    SQLModel.metadata.create_all(db)
    owner, stranger = np.zeros(128), np.full(128, 0.1)
    with Session(db) as session:
        mine = OwnerGroups(session, box, owner_id=1, radius=0.4).place(np.array([owner, owner]))
        later = OwnerGroups(session, box, owner_id=1, radius=0.4)  # a later scan's decision
        assert later.place(np.array([owner + 0.02])) is mine  # a sure face joins
        alone = later.place(np.array([owner + 0.02]), alone=True)
        assert alone is not None and alone.id != mine.id and mine.size == 3  # this one does not
        rejected = later.place(np.array([stranger]))
        assert rejected is not None
        rejected.decision = Review.rejected
        assert later.place(np.array([stranger + 0.01]), alone=True) is None


def test_two_groups_of_one_decision_never_join_one_group() -> None:
    # A look-alike stranger's group, 0.3 from the owner's, is a different individual to the
    # decision: it must not join the owner's group because their centres are within the radius.
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    from service.match_groups import OwnerGroups
    from service.secrets_box import SecretBox

    box = SecretBox("k" * 48)
    db = create_engine("sqlite://")
    SQLModel.metadata.create_all(db)
    owner, look_alike = np.zeros(128), np.full(128, 0.3 / np.sqrt(128))
    with Session(db) as session:
        first = OwnerGroups(session, box, owner_id=1, radius=0.4)
        mine = first.place(np.array([owner, owner]))
        theirs = first.place(np.array([look_alike, look_alike]))
        assert theirs is not None and theirs.id != mine.id
        # A later scan finds both again: each joins its own group.
        later = OwnerGroups(session, box, owner_id=1, radius=0.4)
        assert later.place(np.array([owner + 0.01])) is mine
        assert later.place(np.array([look_alike + 0.01])) is theirs
        assert (mine.size, theirs.size) == (3, 3)
