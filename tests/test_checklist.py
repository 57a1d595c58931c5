"""The checklist loop: the owner sends it, the friend answers, reminders follow on a clock."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session, select

from service import checklist, checklist_mail
from service.app import create_app
from service.config import Settings
from service.notify import reminders
from service.notify.mail import unsealed
from service.notify.reminders import send_due_digests, send_due_reminders
from service.tables import Friend, Match, OutgoingMail, Owner, Scan, Source, utcnow
from tests.test_api_journey import owner_token

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=utcnow().tzinfo)


@dataclass
class Circle:
    client: TestClient
    settings: Settings
    alice: dict[str, str]
    friend_id: int
    token: str
    matches: list[int]

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.services.db  # type: ignore[attr-defined]

    @property
    def box(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.services.box  # type: ignore[attr-defined]


def _thumbnail() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 140, 120)).save(out, "JPEG")
    return out.getvalue()


def add_matches(db: Engine, friend_id: int, owner_id: int, *photos: dict[str, Any]) -> list[int]:
    """Matches of one scan of the friend's, written directly (the scan is tested elsewhere):
    one per photo, each with the fields given, a face box and a thumbnail."""
    with Session(db) as session:
        source = Source(owner_id=owner_id, friend_id=friend_id, kind="export", label="fb.zip")
        session.add(source)
        session.flush()
        scan = Scan(owner_id=owner_id, friend_id=friend_id, source_id=source.id, status="done")
        session.add(scan)
        session.flush()
        ids = []
        for n, fields in enumerate(photos):
            match = Match(
                owner_id=owner_id,
                friend_id=friend_id,
                scan_id=scan.id,
                box_key="1,2,3,0",
                box=[1, 2, 3, 0],
                distance=0.4,
                band="strong",
                sealed_encoding=b"-",
                thumbnail=_thumbnail(),
                **{"photo_digest": f"{scan.id}-{n}", **fields},
            )
            session.add(match)
            session.flush()
            ids.append(match.id or 0)
        session.commit()
    return ids


def _matches(db: Engine, friend_id: int, owner_id: int) -> list[int]:
    """Three photos of a Facebook export, of no post known."""
    return add_matches(
        db,
        friend_id,
        owner_id,
        *(
            {
                "photo": f"your_facebook_activity/posts/media/{n}.jpg",
                "platform": "facebook",
                "caption": f"Summer {n}",
                "taken_at": T0 - timedelta(days=400 + n),
                "photo_digest": f"d{n}",
            }
            for n in range(3)
        ),
    )


def add_friend(circle: Circle, name: str, **fields: Any) -> int:
    """Another friend of Alice's who accepted, written directly."""
    with Session(circle.db) as session:
        friend = Friend(
            owner_id=1,
            name=name,
            email=f"{name.lower()}@example.org",
            token_hash=name.lower(),
            sealed_token=circle.box.seal_bytes(f"{name.lower()}-token".encode()),
            expires_at=T0 + timedelta(days=30),
            status="accepted",
            **fields,
        )
        session.add(friend)
        session.commit()
        assert friend.id is not None
        return friend.id


@pytest.fixture
def circle(settings: Settings) -> Iterator[Circle]:
    settings = settings.model_copy(update={"reminder_after": "10s,30s"})
    with TestClient(create_app(settings, consume=False)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
        services = client.app.state.services  # type: ignore[attr-defined]
        ids = _matches(services.db, friend["id"], 1)
        yield Circle(client, services.settings, alice, friend["id"], token, ids)


def _confirm(circle: Circle, *match_ids: int) -> None:
    for match_id in match_ids:
        answer = circle.client.post(
            f"/api/v1/matches/{match_id}/review",
            headers=circle.alice,
            json={"decision": "confirmed"},
        )
        assert answer.status_code == 200


def _send_at(circle: Circle, now: datetime) -> None:
    """Send the checklist as if at `now` (the stage takes the clock; the API uses the real one)."""
    services = circle.client.app.state.services  # type: ignore[attr-defined]
    with Session(circle.db) as session:
        friend, owner = session.get(Friend, circle.friend_id), session.get(Owner, 1)
        assert friend is not None and owner is not None
        checklist_mail.send(session, services.settings, services.box, owner, friend, now=now)
        session.commit()


def _mails(circle: Circle, kind: str) -> list[OutgoingMail]:
    with Session(circle.db) as session:
        return list(session.exec(select(OutgoingMail).where(OutgoingMail.kind == kind)).all())


def _remind(circle: Circle, now: datetime) -> int:
    return len(send_due_reminders(circle.db, circle.settings, circle.box, now))


def test_it_sends_the_friend_one_list_of_confirmed_photos(circle: Circle) -> None:
    assert (
        circle.client.post(
            f"/api/v1/friends/{circle.friend_id}/checklist/send", headers=circle.alice
        ).status_code
        == 422
    )  # nothing confirmed yet
    _confirm(circle, *circle.matches[:2])
    sent = circle.client.post(
        f"/api/v1/friends/{circle.friend_id}/checklist/send", headers=circle.alice
    )
    assert sent.status_code == 202 and sent.json() == {
        "items": 2,
        "open_items": 2,
        "sent": True,
        "detail": "The checklist is on its way to dana@example.org.",
    }
    [mail] = _mails(circle, "checklist")
    assert circle.token not in mail.text + mail.html + str(mail.headers)  # the link is sealed
    text, _, headers = unsealed(mail, circle.box)
    assert mail.to == "dana@example.org" and f"/checklist/{circle.token}" in text
    assert headers["List-Unsubscribe"] == f"<http://testserver/unsubscribe/{circle.token}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    listed = circle.client.get(f"/api/v1/invites/{circle.token}/checklist").json()
    assert listed["owner_name"] == "Alice"
    assert [i["caption"] for i in listed["items"]] == ["Summer 1", "Summer 0"]  # oldest first
    item = listed["items"][0]
    assert item["platform"] == "facebook" and item["status"] == "open"
    assert item["instructions"][0]["title"] == "Delete the post"
    assert circle.client.get(item["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    assert "distance" not in item  # the friend sees the photo and the steps, not the scores


def test_it_puts_a_working_report_link_in_every_mail_to_the_friend(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    _send_at(circle, T0)
    assert _remind(circle, T0 + timedelta(seconds=11)) == 1
    report = f"http://testserver/invite/{circle.token}/report"
    for kind in ("invitation", "checklist", "reminder"):
        [mail] = _mails(circle, kind)
        text, html, _ = unsealed(mail, circle.box)
        assert report in text and f'href="{report}"' in html, kind
    page = circle.client.get(report.removeprefix("http://testserver"))
    assert page.status_code == 200 and "Report this invitation" in page.text


def test_it_shares_the_friends_answer_with_the_owner(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    item = circle.matches[0]
    answer = circle.client.post(
        f"/api/v1/invites/{circle.token}/checklist/{item}", json={"status": "removed"}
    )
    assert answer.status_code == 200 and answer.json()["status"] == "removed"
    owner_view = circle.client.get(
        f"/api/v1/friends/{circle.friend_id}/matches", headers=circle.alice
    ).json()
    assert {m["id"]: m["status"] for m in owner_view}[item] == "removed"
    friends = circle.client.get("/api/v1/friends", headers=circle.alice).json()
    assert friends[0]["open_items"] == 2
    bad = circle.client.post(
        f"/api/v1/invites/{circle.token}/checklist/{item}", json={"status": "deleted"}
    )
    assert bad.status_code == 422


def test_it_lists_only_confirmed_photos_to_the_friend(circle: Circle) -> None:
    _confirm(circle, circle.matches[0])
    rejected = circle.matches[1]
    circle.client.post(
        f"/api/v1/matches/{rejected}/review", headers=circle.alice, json={"decision": "rejected"}
    )
    listed = circle.client.get(f"/api/v1/invites/{circle.token}/checklist").json()
    assert [i["id"] for i in listed["items"]] == [circle.matches[0]]
    assert (
        circle.client.post(
            f"/api/v1/invites/{circle.token}/checklist/{rejected}", json={"status": "keep"}
        ).status_code
        == 404
    )


def test_it_reminds_at_each_offset_while_items_are_open(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    _send_at(circle, T0)
    assert _remind(circle, T0 + timedelta(seconds=9)) == 0
    assert _remind(circle, T0 + timedelta(seconds=10)) == 1
    assert _remind(circle, T0 + timedelta(seconds=11)) == 0  # not twice for the same offset
    assert _remind(circle, T0 + timedelta(seconds=30)) == 1
    assert _remind(circle, T0 + timedelta(days=30)) == 0  # none after the last offset
    first, last = sorted(_mails(circle, "reminder"), key=lambda m: m.id or 0)
    assert "3 of the 3 items" in first.text and "last reminder" in last.text
    _, _, headers = unsealed(first, circle.box)
    assert headers["List-Unsubscribe"] == f"<http://testserver/unsubscribe/{circle.token}>"


def test_it_stops_reminding_once_every_item_is_answered(circle: Circle) -> None:
    _confirm(circle, *circle.matches[:2])
    _send_at(circle, T0)
    for item in circle.matches[:2]:
        circle.client.post(
            f"/api/v1/invites/{circle.token}/checklist/{item}", json={"status": "keep"}
        )
    assert _remind(circle, T0 + timedelta(seconds=10)) == 0
    assert _remind(circle, T0 + timedelta(seconds=30)) == 0


def test_it_honours_a_one_click_unsubscribe(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    _send_at(circle, T0)
    # What a mail client sends for RFC 8058: a POST with no cookie and no CSRF token.
    answer = TestClient(circle.client.app).post(
        f"/unsubscribe/{circle.token}", content=b"List-Unsubscribe=One-Click"
    )
    assert answer.status_code == 200 and "No more reminders" in answer.text
    assert _remind(circle, T0 + timedelta(seconds=10)) == 0
    assert _remind(circle, T0 + timedelta(seconds=30)) == 0
    page = circle.client.get(f"/checklist/{circle.token}")
    assert page.status_code == 200 and "Summer 0" in page.text  # the list itself stays open


def test_it_gathers_answers_into_one_digest_for_the_owner(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    for item, status in zip(circle.matches, ("removed", "private", "not_me"), strict=True):
        circle.client.post(
            f"/api/v1/invites/{circle.token}/checklist/{item}", json={"status": status}
        )
    now, settings = utcnow(), circle.settings
    assert send_due_digests(circle.db, settings, now) == []  # answers are gathered a while first
    send_due_digests(circle.db, settings, now + checklist.DIGEST_DELAY)  # the list is told of
    assert _mails(circle, "digest") == []  # the digest gathers a week
    [mail_id] = send_due_digests(circle.db, settings, now + reminders.DIGEST_EVERY)
    [digest] = _mails(circle, "digest")
    assert digest.id == mail_id and digest.to == "alice@example.org"
    assert "made private" in digest.text and "says it is not you" in digest.text
    assert send_due_digests(circle.db, settings, now + 2 * reminders.DIGEST_EVERY) == []


def test_it_shows_the_checklist_page_on_a_phone(circle: Circle) -> None:
    _confirm(circle, *circle.matches[:1])
    page = circle.client.get(f"/checklist/{circle.token}")
    assert page.template.name == "checklist.html"  # type: ignore[attr-defined]
    assert "How to take it down" in page.text and "Move to trash" in page.text
    csrf = circle.client.cookies.get("csrf")
    answer = circle.client.post(
        f"/checklist/{circle.token}/items/{circle.matches[0]}",
        data={"status": "private", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert "Every photo has an answer" in circle.client.get(f"/checklist/{circle.token}").text


def test_it_confirms_a_whole_band_at_once(circle: Circle) -> None:
    with Session(circle.db) as session:
        possible = session.get(Match, circle.matches[2])
        assert possible is not None
        possible.band = "possible"
        session.add(possible)
        session.commit()
    answer = circle.client.post(
        f"/api/v1/friends/{circle.friend_id}/matches/review",
        headers=circle.alice,
        json={"decision": "confirmed", "band": "strong"},
    )
    assert sorted(m["id"] for m in answer.json()) == sorted(circle.matches[:2])
    reviews = {
        m["id"]: m["review"]
        for m in circle.client.get(
            f"/api/v1/friends/{circle.friend_id}/matches", headers=circle.alice
        ).json()
    }
    assert reviews == {
        circle.matches[0]: "confirmed",
        circle.matches[1]: "confirmed",
        circle.matches[2]: "pending",
    }  # the possible one waits for a look


def test_a_reminder_that_fails_is_postponed_and_never_stops_the_others(
    circle: Circle, monkeypatch: pytest.MonkeyPatch
) -> None:
    _confirm(circle, *circle.matches)
    _send_at(circle, T0)
    # Erin's list is due too; hers breaks (a bad template).
    erin_id = add_friend(
        circle, "Erin", checklist_sent_at=T0, next_reminder_at=T0 + timedelta(seconds=10)
    )
    _confirm(circle, *_matches(circle.db, erin_id, 1))
    real = reminders.mail_friend

    def breaks_for_erin(session, settings, box, owner, friend, *a, **kw):  # type: ignore[no-untyped-def]
        if friend.id == erin_id:
            raise RuntimeError("the template broke")
        return real(session, settings, box, owner, friend, *a, **kw)

    monkeypatch.setattr(reminders, "mail_friend", breaks_for_erin)
    at = T0 + timedelta(seconds=10)
    assert _remind(circle, at) == 1  # Dana's, in spite of Erin's
    with Session(circle.db) as session:
        erin_row = session.get_one(Friend, erin_id)
        assert erin_row.next_reminder_at == at + reminders.RETRY_AFTER
        assert erin_row.reminders_sent == 0
