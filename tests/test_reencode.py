"""A new encoder: what an earlier one stored is made again from the face pictures kept, so the
owner neither enrolls again nor sees a face they rejected come back (service/reencode.py)."""

from __future__ import annotations

import numpy as np
from sqlmodel import Session, select

from service import reencode
from service.faces import ENCODER
from service.tables import Match, MatchGroup, ReferenceFace
from tests import test_ingest_api
from tests.friend_exports import Photos
from tests.platform_stand_ins import MASTODON_ACCOUNT, _status
from tests.test_ingest_api import Service, invite
from tests.test_rescan import _matches, _share

service = test_ingest_api.service
photos = test_ingest_api.photos


def _as_if_dlib_made_them(service: Service) -> dict[str, np.ndarray]:
    """Turn alice's stored encodings into another encoder's: marked "dlib", numbers that mean
    nothing to SFace. Returns what they were, by row."""
    services = service.client.app.state.services  # type: ignore[attr-defined]
    rng = np.random.default_rng(1)
    before = {}
    with Session(services.db) as session:
        rows = [
            *session.exec(select(ReferenceFace)),
            *session.exec(select(Match)),
            *session.exec(select(MatchGroup)),
        ]
        for row in rows:
            sealed = "sealed_centre" if isinstance(row, MatchGroup) else "sealed_encoding"
            before[f"{type(row).__name__}{row.id}"] = services.box.open(getattr(row, sealed))
            setattr(row, sealed, services.box.seal(rng.normal(0, 0.1, 128)))
            row.encoder = "dlib"
            session.add(row)
        session.commit()
    return before


def _now(service: Service) -> dict[str, tuple[str, np.ndarray]]:
    services = service.client.app.state.services  # type: ignore[attr-defined]
    with Session(services.db) as session:
        refs = [(f"ReferenceFace{r.id}", r.encoder, r.sealed_encoding) for r in
                session.exec(select(ReferenceFace))]  # fmt: skip
        matches = [(f"Match{m.id}", m.encoder, m.sealed_encoding) for m in
                   session.exec(select(Match).where(Match.review == "rejected"))]  # fmt: skip
        groups = [(f"MatchGroup{g.id}", g.encoder, g.sealed_centre) for g in
                  session.exec(select(MatchGroup))]  # fmt: skip
    return {key: (mark, services.box.open(s)) for key, mark, s in refs + matches + groups}


def _a_match(key: str) -> bool:
    return key.removeprefix("Match")[:1].isdigit()


def _assert_made_again(service: Service, before: dict[str, np.ndarray]) -> None:
    """Everything the decision compares was made again with the engine's encoder, from the
    pictures kept (a 200 px face crop, an owner's view), close to what the photo itself gave."""
    now = _now(service)
    assert set(now) >= {k for k in before if not _a_match(k)}  # now: rejected matches only
    for key, (mark, encoding) in now.items():
        assert mark == ENCODER, key
        assert np.linalg.norm(encoding - before[key]) < 0.2, key


def test_an_owner_keeps_references_and_rejections_across_an_encoder_change(
    service: Service, photos: Photos
) -> None:
    site, client = service.site, service.client
    friend_id, token = invite(service, "Lina")
    assert _share(client, token, f"{site.url}/@jane")["matches"] == 1

    # Her references were made by another encoder: a new photo of her is still found.
    before = _as_if_dlib_made_them(service)
    statuses = [_status(site, n, "public", f"<p>post {n}</p>") for n in (4, 1, 2)]
    site.json(f"/api/v1/accounts/{MASTODON_ACCOUNT}/statuses", statuses)
    site.file("/system/media/original/4.jpg", photos.owner_again)
    again = _share(client, token, f"{site.url}/@jane")
    assert again["status"] == "done" and again["matches"] == 1, again
    _assert_made_again(service, before)

    # She says none of them is her; the faces she rejected were made by another encoder too.
    for match in _matches(service, friend_id):
        decided = client.post(
            f"/api/v1/matches/{match['id']}/review",
            headers=service.alice,
            json={"decision": "rejected"},
        )
        assert decided.status_code == 200, decided.text
    before = _as_if_dlib_made_them(service)
    # Another friend shares the same photos: what she rejected stays rejected.
    other_id, other_token = invite(service, "Ada")
    scan = _share(client, other_token, f"{site.url}/@jane")
    assert scan["status"] == "done" and scan["photos_done"] >= 2, scan
    assert _matches(service, other_id) == []
    _assert_made_again(service, before)
    assert sum(_a_match(key) for key in _now(service)) == 2


def test_a_picture_that_cannot_be_read_leaves_its_encoding_out(service: Service, engine) -> None:  # type: ignore[no-untyped-def]
    services = service.client.app.state.services  # type: ignore[attr-defined]
    with Session(services.db) as session:
        owner_id = session.exec(select(ReferenceFace.owner_id)).first()
        assert owner_id is not None
        broken = ReferenceFace(
            owner_id=owner_id,
            sealed_encoding=services.box.seal(np.zeros(128)),
            encoder="dlib",
            thumbnail=b"not a picture",
        )
        session.add(broken)
        session.commit()
        brought = reencode.bring_up_to_date(session, services.box, owner_id, lambda: engine)
        assert (brought.references, brought.left_out) == (0, 1)
        assert reencode.stale(session, owner_id)  # still the old encoder's: never compared
        session.delete(broken)
        session.commit()
        assert not reencode.stale(session, owner_id)
        assert not reencode.bring_up_to_date(session, services.box, owner_id, _never)


def _never():  # type: ignore[no-untyped-def]
    raise AssertionError("nothing to make again, so no engine is loaded")
