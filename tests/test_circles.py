"""Family circles, as alice and ben (relatives), bob (another owner with his own circle) and
charlie (not logged in) use them: create, invite by mail, join, leave, remove."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service import checklist_mail, invites
from service.app import create_app
from service.notify.reminders import send_due_reminders
from service.routes.pages_owner import back_here
from service.tables import (
    AuditEvent,
    Circle,
    Friend,
    Match,
    MatchGroup,
    OutgoingMail,
    Owner,
    ReferenceFace,
    Scan,
    Source,
    utcnow,
)
from tests.conftest import DATABASES, make_settings
from tests.pages_support import FAMILY_EXPORT, build_export, face_photo
from tests.test_api_journey import mailed_link, owner_token
from tests.test_pages import PASSWORD, _client, _context, _csrf


@dataclass
class Family:
    client: TestClient
    alice: dict[str, str]
    ben: dict[str, str]
    bob: dict[str, str]

    def create(self, who: dict[str, str], name: str = "The Smiths"):  # type: ignore[no-untyped-def]
        return self.client.post("/api/v1/circles", headers=who, json={"name": name})

    def invite(self, who: dict[str, str], circle_id: int, email: str):  # type: ignore[no-untyped-def]
        url = f"/api/v1/circles/{circle_id}/members"
        return self.client.post(url, headers=who, json={"email": email})

    def join_token(self, email: str) -> str:
        return mailed_link(self.client, email, "circle_invitation").rsplit("/", 1)[1]

    def join(self, who: dict[str, str], token: str):  # type: ignore[no-untyped-def]
        return self.client.post("/api/v1/circles/join", headers=who, json={"token": token})


@pytest.fixture(params=DATABASES)
def family(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Family]:
    settings = make_settings(tmp_path, database=request.param)
    with TestClient(create_app(settings, consume=False)) as client:
        yield Family(
            client,
            owner_token(client, "alice@example.org", "Alice"),
            owner_token(client, "ben@example.org", "Ben"),
            owner_token(client, "bob@example.org", "Bob"),
        )


def _ids(circle: dict) -> list[str]:  # type: ignore[type-arg]
    return [m["name"] for m in circle["members"]]


def test_relatives_form_a_circle_by_mail(family: Family) -> None:
    created = family.create(family.alice)
    assert created.status_code == 201
    circle = created.json()
    assert _ids(circle) == ["Alice"] and circle["name"] == "The Smiths"
    assert circle["keeper_id"] == circle["members"][0]["id"]
    invited = family.invite(family.alice, circle["id"], "Ben@Example.org")
    assert invited.status_code == 202
    token = family.join_token("ben@example.org")
    joined = family.join(family.ben, token)
    assert joined.status_code == 200 and _ids(joined.json()) == ["Alice", "Ben"]
    for who in (family.alice, family.ben):
        shown = family.client.get(f"/api/v1/circles/{circle['id']}", headers=who)
        assert _ids(shown.json()) == ["Alice", "Ben"]
    # Bob sees nothing of it, charlie is told to log in.
    assert (
        family.client.get(f"/api/v1/circles/{circle['id']}", headers=family.bob).status_code == 404
    )
    assert family.client.get(f"/api/v1/circles/{circle['id']}").status_code == 401
    assert family.invite(family.alice, circle["id"], "ben@example.org").status_code == 409
    assert family.join(family.ben, token).status_code == 404  # used


def test_a_join_link_works_only_for_the_address_it_was_sent_to(family: Family) -> None:
    circle = family.create(family.alice).json()
    family.invite(family.alice, circle["id"], "ben@example.org")
    token = family.join_token("ben@example.org")
    assert family.join(family.bob, token).status_code == 404  # forwarded to bob: nothing
    assert family.join(family.ben, "not-a-token").status_code == 404
    assert family.join(family.ben, token).status_code == 200


def test_one_is_in_one_circle_at_a_time(family: Family) -> None:
    alices = family.create(family.alice).json()
    bobs = family.create(family.bob, "The Joneses").json()
    assert family.create(family.alice, "A second one").status_code == 409
    family.invite(family.bob, bobs["id"], "alice@example.org")
    answer = family.join(family.alice, family.join_token("alice@example.org"))
    assert answer.status_code == 409 and "The Smiths" in answer.json()["detail"]
    assert family.invite(family.bob, alices["id"], "x@example.org").status_code == 404


def test_members_leave_and_the_keeper_removes(family: Family) -> None:
    circle = family.create(family.alice).json()
    family.invite(family.alice, circle["id"], "ben@example.org")
    ben_id = family.join(family.ben, family.join_token("ben@example.org")).json()["members"][1][
        "id"
    ]
    alice_id = circle["members"][0]["id"]
    members = f"/api/v1/circles/{circle['id']}/members"
    # Ben is not the keeper: he may leave, not remove alice.
    assert family.client.delete(f"{members}/{alice_id}", headers=family.ben).status_code == 403
    assert family.client.delete(f"{members}/{ben_id}", headers=family.bob).status_code == 404
    assert family.client.delete(f"{members}/{ben_id}", headers=family.alice).status_code == 204
    shown = family.client.get(f"/api/v1/circles/{circle['id']}", headers=family.ben)
    assert shown.status_code == 404  # no longer his
    # The last member leaving ends the circle.
    assert family.client.delete(f"{members}/{alice_id}", headers=family.alice).status_code == 204
    assert (
        family.client.get(f"/api/v1/circles/{circle['id']}", headers=family.alice).status_code
        == 404
    )
    assert family.create(family.alice).status_code == 201


def test_an_unconfirmed_owner_cannot_start_a_circle(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path), consume=False)) as client:
        dora = owner_token(client, "dora@example.org", "Dora", confirm=False)
        answer = client.post("/api/v1/circles", headers=dora, json={"name": "Hers"})
        assert answer.status_code == 403 and "confirm your address" in answer.json()["detail"]


# ---- the pages ----


def test_ben_joins_from_the_mailed_link_through_the_log_in(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), consume=False)
    with TestClient(app) as api:
        alice = owner_token(api, "alice@example.org", "Alice")
        owner_token(api, "ben@example.org", "Ben")
        circle = api.post("/api/v1/circles", headers=alice, json={"name": "The Smiths"}).json()
        api.post(
            f"/api/v1/circles/{circle['id']}/members",
            headers=alice,
            json={"email": "ben@example.org"},
        )
        link = mailed_link(api, "ben@example.org", "circle_invitation")
    path = link.removeprefix("http://testserver")
    with _client(app) as browser:
        to_log_in = browser.get(path)
        assert to_log_in.status_code == 303 and to_log_in.headers["location"].startswith(
            "/login?next=/circles/join/"
        )
        form = {
            "csrf_token": _csrf(browser),
            "email": "ben@example.org",
            "password": PASSWORD,
            "next": path,
        }
        logged_in = browser.post("/login", data=form)
        assert logged_in.headers["location"] == path
        page = browser.get(path)
        assert page.status_code == 200
        assert "Join “The Smiths”" in page.text and "Alice (alice@example.org)" in page.text
        joined = browser.post(path, data={"csrf_token": _csrf(browser, path)})
        assert joined.headers["location"] == "/circle"
        circle_page = browser.get("/circle")
        assert "You joined “The Smiths”" in circle_page.text
        assert "Alice" in circle_page.text and "Ben" in circle_page.text
        assert "Leave the circle" in circle_page.text


def test_it_goes_back_only_to_a_page_of_its_own_after_log_in() -> None:
    assert back_here("/circles/join/abc") == "/circles/join/abc"
    for elsewhere in ("//evil.example/x", "/\\evil.example", "https://evil.example", "", "x"):
        assert back_here(elsewhere) == "/", elsewhere


# ---- one merged invitation ----


def _circle_of_two(family: Family) -> int:
    """Alice and ben in "The Smiths"; returns its id."""
    circle = family.create(family.alice).json()
    family.invite(family.alice, circle["id"], "ben@example.org")
    assert family.join(family.ben, family.join_token("ben@example.org")).status_code == 200
    return int(circle["id"])


def _invite_tess(family: Family, who: dict[str, str]) -> str:
    answer = family.client.post(
        "/api/v1/friends", headers=who, json={"name": "Tess", "email": "tess@example.org"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["invite_url"].rsplit("/", 1)[1])


def test_tess_answers_both_relatives_on_one_page(family: Family) -> None:
    _circle_of_two(family)
    alices = _invite_tess(family, family.alice)
    bens = _invite_tess(family, family.ben)
    # Ben asked second: tess is told it is the same page, asked by both.
    *_, mail = _mails_to(family, "tess@example.org")
    assert "now asks for your help too, together with Alice" in " ".join(mail.text.split())
    for token in (alices, bens):  # each member's link opens the same page
        page = family.client.get(f"/invite/{token}")
        assert "Alice and Ben ask for your help" in page.text
        assert 'name="owners"' in page.text
    alice_id = family.client.get("/api/v1/me", headers=family.alice).json()["id"]
    ben_id = family.client.get("/api/v1/me", headers=family.ben).json()["id"]
    # Tess helps alice and declines ben, through ben's link.
    helped = family.client.post(
        f"/api/v1/invites/{bens}/consent", json={"accept": True, "owners": [alice_id]}
    )
    assert helped.status_code == 200
    assert helped.json() == {
        "status": "invited",
        "owners": [
            {"id": alice_id, "name": "Alice", "status": "accepted"},
            {"id": ben_id, "name": "Ben", "status": "invited"},
        ],
    }
    declined = family.client.post(
        f"/api/v1/invites/{alices}/consent", json={"accept": False, "owners": [ben_id]}
    )
    assert [o["status"] for o in declined.json()["owners"]] == ["accepted", "declined"]
    # Bob is not in the circle: naming him answers nothing.
    bob_id = family.client.get("/api/v1/me", headers=family.bob).json()["id"]
    stranger = family.client.post(
        f"/api/v1/invites/{alices}/consent", json={"accept": True, "owners": [bob_id]}
    )
    assert stranger.status_code == 422
    # Each member sees only their own friend's answer.
    friends = {
        who: [(f["name"], f["status"]) for f in _friends(family, h)]
        for who, h in (("alice", family.alice), ("ben", family.ben))
    }
    assert friends == {"alice": [("Tess", "accepted")], "ben": [("Tess", "declined")]}


def test_the_merged_page_shows_each_relatives_face_and_no_one_elses(family: Family) -> None:
    _circle_of_two(family)
    alices = _invite_tess(family, family.alice)
    _invite_tess(family, family.ben)
    bob_friend = family.client.post(
        "/api/v1/friends", headers=family.bob, json={"name": "Tess", "email": "tess@example.org"}
    ).json()
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        for owner_id in (1, 2, 3):  # alice, ben, bob: a face crop each
            session.add(ReferenceFace(owner_id=owner_id, sealed_encoding=b"-", thumbnail=b"\xff"))
        session.commit()
    for reference_id, expected in ((1, 200), (2, 200), (3, 404)):
        face = family.client.get(f"/invite/{alices}/faces/{reference_id}")
        assert face.status_code == expected, reference_id
    # Bob's own link shows his face alone, and his page asks as one person.
    bobs = bob_friend["invite_url"].rsplit("/", 1)[1]
    assert family.client.get(f"/invite/{bobs}/faces/1").status_code == 404
    assert "Bob asks for your help" in family.client.get(f"/invite/{bobs}").text


def test_tess_answers_on_the_page_whom_she_ticks(family: Family) -> None:
    _circle_of_two(family)
    alices = _invite_tess(family, family.alice)
    _invite_tess(family, family.ben)
    ben_id = family.client.get("/api/v1/me", headers=family.ben).json()["id"]
    browser = TestClient(family.client.app, follow_redirects=False)
    csrf = _csrf(browser, f"/invite/{alices}")
    form = {"csrf_token": csrf, "accept": "yes", "merged": "yes", "owners": [str(ben_id)]}
    answer = browser.post(f"/invite/{alices}/consent", data=form)
    assert answer.headers["location"] == f"/invite/{alices}/share"
    friends = family.client.get("/api/v1/friends", headers=family.ben).json()
    assert [f["status"] for f in friends] == ["accepted"]
    mine = family.client.get("/api/v1/friends", headers=family.alice).json()
    assert [f["status"] for f in mine] == ["invited"]
    nobody = {"csrf_token": csrf, "accept": "yes", "merged": "yes"}
    again = browser.post(f"/invite/{alices}/consent", data=nobody)
    assert again.headers["location"] == f"/invite/{alices}"  # saying: tick whom you answer


def _id(family: Family, who: dict[str, str]) -> int:
    return int(family.client.get("/api/v1/me", headers=who).json()["id"])


def _friends(family: Family, headers: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
    return list(family.client.get("/api/v1/friends", headers=headers).json())


def _mails_to(family: Family, email: str) -> list[OutgoingMail]:
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        query = select(OutgoingMail).where(OutgoingMail.to == email)
        return list(session.exec(query.order_by(col(OutgoingMail.id))).all())


# ---- one scan for all ----


def _enroll(family: Family, who: dict[str, str], *photos: str) -> None:
    for photo in photos:
        data = face_photo(Path(photo)).read_bytes()
        answer = family.client.post(
            "/api/v1/reference-photos", headers=who, files={"file": ("ref.jpg", data)}
        )
        assert answer.status_code == 201, answer.text


def _photos(family: Family, who: dict[str, str]) -> list[str]:
    [friend] = _friends(family, who)
    matches = family.client.get(f"/api/v1/friends/{friend['id']}/matches", headers=who).json()
    return sorted(m["photo"] for m in matches)


@dataclass
class Shared:
    """Tess helps alice and ben; she uploaded one export through ben's link, scanned once."""

    alices: str  # tess's token from alice
    bens: str
    ids: list[int]  # alice's and ben's owner ids
    scan_id: int


def _shared(family: Family, tmp_path: Path) -> Shared:
    family.client.app.state.services.jobs.huey.immediate = True  # type: ignore[attr-defined]
    _circle_of_two(family)
    _enroll(family, family.alice, "dev/obama/obama.jpg", "dev/obama/obama1.jpg")
    _enroll(family, family.ben, "dev/biden/biden.jpg")
    alices = _invite_tess(family, family.alice)
    bens = _invite_tess(family, family.ben)
    ids = [_id(family, who) for who in (family.alice, family.ben)]
    consent = {"accept": True, "owners": ids}
    assert family.client.post(f"/api/v1/invites/{alices}/consent", json=consent).is_success
    export = build_export(
        tmp_path,
        FAMILY_EXPORT,
    )
    upload = family.client.post(
        f"/api/v1/invites/{bens}/exports", files={"file": ("e.zip", export.read_bytes())}
    )
    assert upload.status_code == 202
    return Shared(alices, bens, ids, upload.json()["scan_id"])


def test_one_upload_is_scanned_once_for_both_and_each_sees_their_own(
    family: Family, tmp_path: Path
) -> None:
    shared = _shared(family, tmp_path)
    # One scan, seen through either link.
    for token in (shared.alices, shared.bens):
        scans = family.client.get(f"/api/v1/invites/{token}/scans").json()
        assert [(s["status"], s["photos_total"]) for s in scans] == [("done", 4)]
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        assert len(session.exec(select(Scan)).all()) == 1
    assert _photos(family, family.alice) == ["p/both.jpg", "p/obama.jpg"]
    assert _photos(family, family.ben) == ["p/biden.jpg", "p/both.jpg"]
    # Tess stops helping ben (whose link she uploaded through): his matches go, alice's stay,
    # and the scan now belongs to her invitation from alice.
    stop = {"accept": False, "owners": [shared.ids[1]]}
    assert family.client.post(f"/api/v1/invites/{shared.bens}/consent", json=stop).is_success
    assert _photos(family, family.alice) == ["p/both.jpg", "p/obama.jpg"]
    assert _photos(family, family.ben) == []
    scan = family.client.get(f"/api/v1/invites/{shared.alices}/scans/{shared.scan_id}")
    assert scan.status_code == 200 and scan.json()["matches"] >= 2


def _confirm_all(family: Family, who: dict[str, str]) -> None:
    [friend] = _friends(family, who)
    url = f"/api/v1/friends/{friend['id']}/matches/review"
    assert family.client.post(url, headers=who, json={"decision": "confirmed"}).is_success


def test_tess_gets_one_list_with_a_shared_photo_once(family: Family, tmp_path: Path) -> None:
    shared = _shared(family, tmp_path)
    _confirm_all(family, family.alice)
    _confirm_all(family, family.ben)
    lists = [
        family.client.get(f"/api/v1/invites/{token}/checklist").json()
        for token in (shared.alices, shared.bens)
    ]
    seen = [[(i["id"], i["photo"], i["owner_names"]) for i in x["items"]] for x in lists]
    assert seen[0] == seen[1]  # one list, through either link
    whose = {item["photo"]: item["owner_names"] for item in lists[0]["items"]}
    assert whose == {
        "p/obama.jpg": ["Alice"],
        "p/biden.jpg": ["Ben"],
        "p/both.jpg": ["Alice", "Ben"],  # a photo of both is one item
    }
    [both] = [i for i in lists[0]["items"] if i["photo"] == "p/both.jpg"]
    answer = family.client.post(
        f"/api/v1/invites/{shared.alices}/checklist/{both['id']}", json={"status": "removed"}
    )
    assert answer.status_code == 200 and answer.json()["owner_names"] == ["Alice", "Ben"]
    # Each member sees the answer on their own match of it, and nothing of the other's photos.
    for who in (family.alice, family.ben):
        [friend] = _friends(family, who)
        matches = family.client.get(f"/api/v1/friends/{friend['id']}/matches", headers=who)
        statuses = {m["photo"]: m["status"] for m in matches.json()}
        assert statuses["p/both.jpg"] == "removed"
        assert len(statuses) == 2
    page = family.client.get(f"/checklist/{shared.bens}")
    assert "Photos Alice and Ben would like taken down" in page.text
    assert "That’s not Alice and Ben" in page.text


def test_tess_gets_one_series_of_reminders_and_one_unsubscribe(
    family: Family, tmp_path: Path
) -> None:
    shared = _shared(family, tmp_path)
    services = family.client.app.state.services  # type: ignore[attr-defined]
    for who in (family.alice, family.ben):
        _confirm_all(family, who)
    sent_at = utcnow() - timedelta(days=20)
    with Session(services.db) as session:
        for friend in session.exec(select(Friend)).all():
            owner = session.get_one(Owner, friend.owner_id)
            checklist_mail.send(
                session, services.settings, services.box, owner, friend, now=sent_at
            )
        session.commit()
    offsets = services.settings.reminder_offsets
    reminders = []
    for offset in offsets:
        due = sent_at + offset + timedelta(seconds=1)
        reminders.append(len(send_due_reminders(services.db, services.settings, services.box, due)))
    assert reminders == [1] * len(offsets)  # one series, not one per member
    *_, last = [m for m in _mails_to(family, "tess@example.org") if m.kind == "reminder"]
    text = " ".join(last.text.split())
    assert "on Alice and Ben's list" in text
    # One unsubscribe, through either link, stops everyone's.
    assert family.client.post(f"/unsubscribe/{shared.bens}").status_code == 200
    with Session(services.db) as session:
        friends = session.exec(select(Friend)).all()
    assert [f.unsubscribed_at is not None for f in friends] == [True, True]


def test_leaving_the_circle_makes_the_invitations_separate_again(
    family: Family, tmp_path: Path
) -> None:
    shared = _shared(family, tmp_path)
    members = f"/api/v1/circles/{_circle_id(family)}/members/{shared.ids[1]}"
    assert family.client.delete(members, headers=family.ben).status_code == 204
    assert "Alice asks for your help" in family.client.get(f"/invite/{shared.alices}").text
    assert "Ben asks for your help" in family.client.get(f"/invite/{shared.bens}").text
    # Tess stops helping ben, through whose link she uploaded: alice keeps her photos, since
    # the scan passes to the invitation that still has matches from it.
    stop = {"accept": False}
    assert family.client.post(f"/api/v1/invites/{shared.bens}/consent", json=stop).is_success
    assert _photos(family, family.alice) == ["p/both.jpg", "p/obama.jpg"]
    assert _photos(family, family.ben) == []
    scans = family.client.get(f"/api/v1/invites/{shared.alices}/scans").json()
    assert [s["status"] for s in scans] == ["done"]


def _circle_id(family: Family) -> int:
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        [circle] = session.exec(select(Circle)).all()
        return circle.id or 0


def _pending_match(family: Family, friend_id: int, owner_id: int) -> int:
    """A pending match of this friend on the same photo and face, written directly (as a scan
    before the circle formed would have left it)."""
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        source = Source(owner_id=owner_id, friend_id=friend_id, kind="export", label="old.zip")
        session.add(source)
        session.flush()
        scan = Scan(owner_id=owner_id, friend_id=friend_id, source_id=source.id, status="done")
        session.add(scan)
        session.flush()
        group = MatchGroup(owner_id=owner_id, sealed_centre=b"x", size=1)
        session.add(group)
        session.flush()
        match = Match(
            group_id=group.id,
            owner_id=owner_id,
            friend_id=friend_id,
            scan_id=scan.id or 0,
            photo="photos/reunion.jpg",
            photo_digest="same-photo",
            box_key="10,60,60,10",
            box=[10, 60, 60, 10],
            distance=0.4,
            band="strong",
            sealed_encoding=b"x",
        )
        session.add(match)
        session.commit()
        return match.id or 0


def test_both_members_are_told_when_they_confirm_the_same_face(family: Family) -> None:
    _circle_of_two(family)
    tess = [_invite_tess(family, who) for who in (family.alice, family.ben)]
    ids = [_id(family, who) for who in (family.alice, family.ben)]
    family.client.post(f"/api/v1/invites/{tess[0]}/consent", json={"accept": True, "owners": ids})
    friend_ids = [_friends(family, who)[0]["id"] for who in (family.alice, family.ben)]
    matches = [_pending_match(family, f, o) for f, o in zip(friend_ids, ids, strict=True)]
    bob = family.client.post(
        "/api/v1/friends", headers=family.bob, json={"name": "Tess", "email": "tess@example.org"}
    ).json()
    bobs = _pending_match(family, bob["id"], _id(family, family.bob))
    confirm = {"decision": "confirmed"}
    for match, who in ((matches[0], family.alice), (bobs, family.bob)):
        family.client.post(f"/api/v1/matches/{match}/review", headers=who, json=confirm)
    assert _same_face_mails(family) == []  # one claim each: nothing to tell
    family.client.post(f"/api/v1/matches/{matches[1]}/review", headers=family.ben, json=confirm)
    told = _same_face_mails(family)
    assert sorted(m.to for m in told) == ["alice@example.org", "ben@example.org"]
    [to_alice] = [m for m in told if m.to == "alice@example.org"]
    assert to_alice.subject == "You and Ben both said a face in Tess's photos is yours"
    # Deciding again tells no one twice; bob, of another family, is never told.
    family.client.delete(f"/api/v1/matches/{matches[1]}/review", headers=family.ben)
    family.client.post(f"/api/v1/matches/{matches[1]}/review", headers=family.ben, json=confirm)
    assert len(_same_face_mails(family)) == 2


def _same_face_mails(family: Family) -> list[OutgoingMail]:
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        query = select(OutgoingMail).where(OutgoingMail.kind == "same_face")
        return list(session.exec(query).all())


def test_a_circle_goes_with_its_last_member_when_she_deletes_her_account(
    family: Family,
) -> None:
    circle_id = _circle_of_two(family)
    for who in (family.ben, family.alice):
        assert family.client.delete("/api/v1/me", headers=who).status_code == 204
        with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
            left = session.exec(select(Circle)).all()
        assert [c.id for c in left] == ([circle_id] if who is family.ben else [])


# ---- reporting one relative ----


def test_tess_reports_one_relative_and_keeps_helping_the_other(
    family: Family, tmp_path: Path
) -> None:
    shared = _shared(family, tmp_path)
    alice_id, ben_id = shared.ids
    bob_id = _id(family, family.bob)
    report = f"/api/v1/invites/{shared.alices}/report"
    for stranger in (bob_id, 999999):  # not asking tess on this page: nobody is reported
        refused = family.client.post(report, json={"reason": "who?", "owner": stranger})
        assert refused.status_code == 422, stranger
    # Through alice's link, tess reports ben, through whose link she uploaded.
    answer = family.client.post(report, json={"reason": "not his face", "owner": ben_id})
    assert answer.status_code == 202
    assert answer.json()["detail"].startswith("thank you: Ben's invitation no longer works")
    # Ben's invitation is dead and he is frozen; alice's stands, with her photos and the scan.
    assert family.client.get(f"/invite/{shared.bens}").status_code == 404
    page = family.client.get(f"/invite/{shared.alices}")
    assert page.status_code == 200 and "Alice asks for your help" in page.text
    me = {who: family.client.get("/api/v1/me", headers=h).json() for who, h in _owners(family)}
    assert (me["alice"]["frozen"], me["ben"]["frozen"]) == (False, True)
    assert [(f["status"], f["matches"]) for f in _friends(family, family.ben)] == [("reported", 0)]
    assert _photos(family, family.alice) == ["p/both.jpg", "p/obama.jpg"]
    scans = family.client.get(f"/api/v1/invites/{shared.alices}/scans").json()
    assert [s["status"] for s in scans] == ["done"]
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        scan = session.get_one(Scan, shared.scan_id)
        assert scan.owner_id == alice_id
    [row] = family.client.get("/api/v1/admin/reports", headers=family.alice).json()
    assert (row["owner"]["name"], row["friend_email"]) == ("Ben", "tess@example.org")
    # Tess still helps alice: the consent given stands, and she can share more.
    helped = family.client.post(f"/api/v1/invites/{shared.alices}/consent", json={"accept": True})
    assert helped.json()["owners"] == [{"id": alice_id, "name": "Alice", "status": "accepted"}]


def _owners(family: Family) -> list[tuple[str, dict[str, str]]]:
    return [("alice", family.alice), ("ben", family.ben)]


def test_the_merged_page_has_a_report_for_each_relative(family: Family) -> None:
    _circle_of_two(family)
    alices = _invite_tess(family, family.alice)
    bens = _invite_tess(family, family.ben)
    ben_id, bob_id = _id(family, family.ben), _id(family, family.bob)
    page = family.client.get(f"/invite/{alices}").text
    assert f'href="/invite/{alices}/report">Report Alice’s invitation' in page
    assert f'href="/invite/{alices}/report?owner={ben_id}">Report Ben’s invitation' in page
    browser = TestClient(family.client.app, follow_redirects=False)
    form_page = browser.get(f"/invite/{alices}/report?owner={ben_id}")
    assert _context(form_page)["owner"].name == "Ben"
    assert "Ben (ben@example.org) invited you" in form_page.text
    assert f'<input type="hidden" name="owner" value="{ben_id}">' in form_page.text
    assert browser.get(f"/invite/{alices}/report?owner={bob_id}").status_code == 404
    form = {"csrf_token": _context(form_page)["csrf_token"], "reason": "unknown", "owner": ben_id}
    done = browser.post(f"/invite/{alices}/report", data=form)
    assert done.status_code == 202 and _context(done)["own_link"] is False
    assert "Ben’s invitation no longer works" in done.text
    assert browser.get(f"/invite/{bens}").status_code == 404
    assert "Alice asks for your help" in browser.get(f"/invite/{alices}").text
    assert [f["status"] for f in _friends(family, family.alice)] == ["invited"]


# ---- sending an invitation again ----


def _resend(family: Family, friend_id: int):  # type: ignore[no-untyped-def]
    return family.client.post(f"/api/v1/friends/{friend_id}/resend", headers=family.alice)


def _age_resendings(family: Family, by: timedelta) -> None:
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        for event in session.exec(
            select(AuditEvent).where(AuditEvent.action == "invitation_resent")
        ).all():
            event.at -= by
            session.add(event)
        session.commit()


def test_a_double_click_on_send_again_mails_one_live_link(family: Family) -> None:
    first = _invite_tess(family, family.alice)
    [friend] = _friends(family, family.alice)
    answers = [_resend(family, friend["id"]) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert "not sent again" in answers[1].json()["detail"]  # it says so, not "a new link"
    invitations = [m for m in _mails_to(family, "tess@example.org") if m.kind == "invitation"]
    assert len(invitations) == 2  # the first, and one sent again: not two
    link = mailed_link(family.client, "tess@example.org", "invitation").rsplit("/", 1)[1]
    assert family.client.get(f"/invite/{link}").status_code == 200  # the mailed link works
    assert family.client.get(f"/invite/{first}").status_code == 404
    # A request that read the link before another replaced it, and acts after, mails nothing
    # and leaves the other's link alone.
    services = family.client.app.state.services  # type: ignore[attr-defined]
    with Session(services.db) as late:
        stale = late.get_one(Friend, friend["id"])
        owner = late.get_one(Owner, stale.owner_id)
        _age_resendings(family, invites.RESEND_WINDOW)
        assert _resend(family, friend["id"]).status_code == 202  # a minute on: a new link
        newest = mailed_link(family.client, "tess@example.org", "invitation").rsplit("/", 1)[1]
        _age_resendings(family, invites.RESEND_WINDOW)
        token, mail = invites.resend(late, services.settings, services.box, owner, stale)
        late.commit()
    assert (token, mail) == (newest, None)
    assert newest != link and family.client.get(f"/invite/{newest}").status_code == 200
    invitations = [m for m in _mails_to(family, "tess@example.org") if m.kind == "invitation"]
    assert len(invitations) == 3


# ---- one checklist mail for the family's list ----


def _send_checklist(family: Family, who: dict[str, str]) -> dict[str, object]:
    [friend] = _friends(family, who)
    answer = family.client.post(f"/api/v1/friends/{friend['id']}/checklist/send", headers=who)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _checklist_mails(family: Family) -> list[str]:
    """The checklist mails to tess, each as one line of text."""
    mails = [m for m in _mails_to(family, "tess@example.org") if m.kind == "checklist"]
    return [" ".join(m.text.split()) for m in mails]


def _mark_sent(family: Family) -> None:
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        for mail in session.exec(select(OutgoingMail)).all():
            mail.status, mail.sent_at = "sent", utcnow()
            session.add(mail)
        session.commit()


def test_tess_gets_one_checklist_mail_when_both_relatives_send_it(
    family: Family, tmp_path: Path
) -> None:
    _shared(family, tmp_path)
    for who in (family.alice, family.ben):
        _confirm_all(family, who)
    first, second = (_send_checklist(family, who) for who in (family.alice, family.ben))
    assert (first["sent"], second["sent"]) == (True, False)
    assert "in one mail with the rest of their list" in str(second["detail"])
    [mail] = _checklist_mails(family)
    assert "Alice and Ben looked through what was found" in mail
    assert "take down 3 of your posts" in mail  # the photo of both is one of the three
    # Ben's photos are on the list its reminders are about: his sending counts.
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        bens = session.exec(select(Friend).where(Friend.owner_id == _id(family, family.ben))).one()
        assert bens.checklist_sent_at is not None and bens.next_reminder_at is not None
    with Session(family.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        sent = session.exec(select(OutgoingMail).where(OutgoingMail.kind == "checklist")).one()
    assert sent.status == "sent"  # it went seconds before ben's sending


def test_a_waiting_checklist_mail_is_written_anew_for_the_whole_list(
    family: Family, tmp_path: Path
) -> None:
    _shared(family, tmp_path)
    services = family.client.app.state.services  # type: ignore[attr-defined]
    services.jobs.huey.immediate = False  # the mails wait in the queue
    _confirm_all(family, family.alice)
    assert _send_checklist(family, family.alice)["sent"] is True
    [waiting] = _checklist_mails(family)
    assert "Alice looked through" in waiting and "take down 2 of your" in waiting
    _confirm_all(family, family.ben)
    folded = _send_checklist(family, family.ben)
    assert folded == {
        "items": 2,
        "open_items": 2,
        "sent": True,
        "detail": "The checklist is on its way to tess@example.org, in one mail.",
    }
    [rewritten] = _checklist_mails(family)
    assert "Alice and Ben looked through" in rewritten and "take down 3 of your" in rewritten
    # Once it went, a photo confirmed afterwards is news: its list is mailed (once).
    _mark_sent(family)
    [ben_friend] = _friends(family, family.ben)
    new = _pending_match(family, ben_friend["id"], _id(family, family.ben))
    family.client.post(f"/api/v1/matches/{new}/review", headers=family.ben, json=CONFIRM)
    assert _send_checklist(family, family.ben)["sent"] is True
    assert _send_checklist(family, family.alice)["sent"] is False  # the same list, waiting
    assert len(_checklist_mails(family)) == 2
    # Past FOLD_WINDOW, the same list sent is asked for deliberately.
    _mark_sent(family)
    later = utcnow() + checklist_mail.FOLD_WINDOW + timedelta(seconds=1)
    with Session(services.db) as session:
        alices = session.exec(select(Friend).where(Friend.owner_id == _id(family, family.alice)))
        friend = alices.one()
        owner = session.get_one(Owner, friend.owner_id)
        sending = checklist_mail.send(
            session, services.settings, services.box, owner, friend, later
        )
        session.commit()
    assert sending.sent and len(_checklist_mails(family)) == 3


CONFIRM = {"decision": "confirmed"}
