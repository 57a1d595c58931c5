"""Every mail is keyed by what it is about, never the clock, and a repeated send within the
window sends nothing and says why; on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service import checklist, checklist_mail, verify
from service.app import create_app
from service.checklist_mail import REPEAT_WINDOW, ago
from service.config import Settings
from service.ingest.fetch import Fetcher
from service.jobs import fetch_options
from service.notify.reminders import DIGEST_EVERY, send_due_digests
from service.tables import Friend, Match, OutgoingMail, Owner, utcnow
from tests.ingest.conftest import Site
from tests.test_api_journey import owner_token
from tests.test_checklist import T0, Circle, _confirm, _mails, _matches, _remind
from tests.test_verify import Platform

REPEATED = re.compile(r"The checklist was sent (just now|\d+ s ago), so it was not sent again\.")


@pytest.fixture
def circle(settings: Settings) -> Iterator[Circle]:
    """Alice, and Dana who accepted and has three matches waiting for Alice's review."""
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


def _send(circle: Circle, at: timedelta) -> checklist_mail.Sending:
    """Send the checklist from a session of its own, as if at T0 + `at`."""
    with Session(circle.db) as session:
        return _send_in(session, circle, at)


def _send_in(session: Session, circle: Circle, at: timedelta) -> checklist_mail.Sending:
    friend, owner = session.get(Friend, circle.friend_id), session.get(Owner, 1)
    assert friend is not None and owner is not None
    sending = checklist_mail.send(session, circle.settings, circle.box, owner, friend, now=T0 + at)
    session.commit()
    return sending


def _friend(circle: Circle) -> Friend:
    with Session(circle.db) as session:
        friend = session.get(Friend, circle.friend_id)
        assert friend is not None
        return friend


def _post_send(circle: Circle) -> dict[str, object]:
    answer = circle.client.post(
        f"/api/v1/friends/{circle.friend_id}/checklist/send", headers=circle.alice
    )
    assert answer.status_code == 202, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_it_sends_one_checklist_when_sends_race(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    racers = 4
    start, answers = threading.Barrier(racers), []

    def click() -> None:
        start.wait()
        answers.append(_post_send(circle))  # list.append is atomic

    threads = [threading.Thread(target=click) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == racers  # every click was answered 202, none failed
    [won] = [a for a in answers if a["sent"]]
    assert won["detail"] == "The checklist is on its way to dana@example.org."
    assert all(REPEATED.fullmatch(str(a["detail"])) for a in answers if not a["sent"])
    assert len(_mails(circle, "checklist")) == 1
    friend = _friend(circle)
    assert friend.checklist_sent_at is not None and friend.reminders_sent == 0
    assert friend.next_reminder_at == friend.checklist_sent_at + timedelta(seconds=10)


def test_it_tells_the_loser_of_a_race_that_the_checklist_was_just_sent(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    with Session(circle.db) as late:
        # This send reads the friend before the other one commits, and acts after it did.
        stale = late.get(Friend, circle.friend_id)  # held: the session keeps what it read
        assert stale is not None and stale.checklist_sent_at is None
        assert _send(circle, timedelta(0)).sent
        loser = _send_in(late, circle, timedelta(seconds=4))
    assert (loser.sent, loser.detail) == (
        False,
        "The checklist was sent 4 s ago, so it was not sent again.",
    )
    assert len(_mails(circle, "checklist")) == 1
    friend = _friend(circle)
    assert friend.checklist_sent_at == T0  # the winner's schedule stands
    assert friend.next_reminder_at == T0 + timedelta(seconds=10)


def test_it_does_not_restart_the_reminders_for_a_repeated_send(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    assert _send(circle, timedelta(0)).sent
    assert _remind(circle, T0 + timedelta(seconds=10)) == 1
    again = _send(circle, timedelta(seconds=20))
    assert not again.sent and "sent 20 s ago" in again.detail
    friend = _friend(circle)
    assert (friend.checklist_sent_at, friend.reminders_sent) == (T0, 1)
    assert friend.next_reminder_at == T0 + timedelta(seconds=30)
    assert len(_mails(circle, "checklist")) == 1


def test_it_says_why_a_second_click_sent_nothing(circle: Circle) -> None:
    _confirm(circle, *circle.matches[:2])
    first = _post_send(circle)
    second = _post_send(circle)
    assert first["sent"] is True and second["sent"] is False
    assert REPEATED.fullmatch(str(second["detail"]))
    assert (second["items"], second["open_items"]) == (2, 2)

    browser = TestClient(circle.client.app, follow_redirects=False)
    browser.get("/login")
    csrf = browser.cookies.get("csrf")
    login = {"email": "alice@example.org", "password": "correct horse battery", "csrf_token": csrf}
    assert browser.post("/login", data=login).status_code == 303
    browser.get("/")  # the CSRF token of the logged-in session
    csrf = browser.cookies.get("csrf")
    clicked = browser.post(f"/friends/{circle.friend_id}/checklist/send", data={"csrf_token": csrf})
    assert clicked.status_code == 303
    page = browser.get(f"/friends/{circle.friend_id}")
    notice = page.context["notice"]  # type: ignore[attr-defined]
    assert REPEATED.fullmatch(notice) and notice in page.text
    assert len(_mails(circle, "checklist")) == 1


def test_it_sends_a_list_with_a_newly_confirmed_photo_at_once(circle: Circle) -> None:
    # A new photo is news for the friend: the window only holds back the very same list.
    _confirm(circle, *circle.matches[:2])
    assert _send(circle, timedelta(0)).sent
    _confirm(circle, circle.matches[2])
    assert _send(circle, timedelta(seconds=5)).sent
    assert _send(circle, timedelta(seconds=6)).detail == (
        "The checklist was sent 1 s ago, so it was not sent again."
    )
    first, second = sorted(_mails(circle, "checklist"), key=lambda m: m.id or 0)
    assert "take down 2 of your" in first.text and "take down 3 of your" in second.text
    assert _friend(circle).checklist_sent_at == T0 + timedelta(seconds=5)


def test_it_sends_the_same_list_again_once_the_window_has_passed(circle: Circle) -> None:
    # Asked for again minutes later, it is a deliberate reminder from the owner, not a double click.
    _confirm(circle, *circle.matches)
    assert _send(circle, timedelta(0)).sent
    assert _remind(circle, T0 + timedelta(seconds=10)) == 1
    assert not _send(circle, REPEAT_WINDOW - timedelta(seconds=1)).sent
    assert _send(circle, REPEAT_WINDOW).sent
    friend = _friend(circle)
    assert (friend.checklist_sent_at, friend.reminders_sent) == (T0 + REPEAT_WINDOW, 0)
    # Its reminders are its own: the first one is mailed, although the first list had one too.
    assert _remind(circle, T0 + REPEAT_WINDOW + timedelta(seconds=10)) == 1
    assert len(_mails(circle, "checklist")) == 2 and len(_mails(circle, "reminder")) == 2


def test_it_never_mails_a_digest_of_the_same_answers_twice(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    for item in circle.matches[:2]:
        circle.client.post(
            f"/api/v1/invites/{circle.token}/checklist/{item}", json={"status": "removed"}
        )
    settings, week = circle.settings, utcnow() + DIGEST_EVERY
    send_due_digests(circle.db, settings, week)
    assert len(_mails(circle, "digest")) == 1
    # A worker whose clock and schedule say otherwise, over the same answers, sends nothing.
    with Session(circle.db) as session:
        owner = session.get(Owner, 1)
        assert owner is not None
        owner.digest_due_at, owner.last_digest_at = week, None
        session.add(owner)
        session.commit()
    assert send_due_digests(circle.db, settings, week) == []
    # A new answer is a new digest, a week after the last.
    with Session(circle.db) as session:
        friend = session.get_one(Friend, circle.friend_id)
        item = checklist.item_on_list(session, friend, circle.matches[2])
        assert item is not None
        checklist.answer(session, friend, item, "keep", now=week + timedelta(days=1))
        session.commit()
    assert send_due_digests(circle.db, settings, week + DIGEST_EVERY - timedelta(seconds=1)) == [
        _mails(circle, "list_finished")[0].id
    ]  # the friend's list is told of at once; the digest waits for its week
    send_due_digests(circle.db, settings, week + DIGEST_EVERY)
    digests = sorted(_mails(circle, "digest"), key=lambda mail: mail.id or 0)
    assert len(digests) == 2 and "would rather keep it" in digests[1].text


@pytest.fixture
def platform(settings: Settings) -> Iterator[tuple[TestClient, Platform, int]]:
    """Alice's confirmed match on a loopback platform whose post the test takes down and back."""
    site = Site()
    settings = settings.model_copy(update={"allow_private_fetch": True, "verify_every": "10s"})
    with TestClient(create_app(settings, consume=False)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        db = client.app.state.services.db  # type: ignore[attr-defined]
        [match_id] = _matches(db, friend["id"], 1)[:1]
        with Session(db) as session:
            match = session.get(Match, match_id)
            assert match is not None
            match.photo, match.post_url = f"{site.url}/media/1.jpg", f"{site.url}/@jane/1"
            match.review, match.next_check_at = "confirmed", T0
            session.add(match)
            session.commit()
        yield client, Platform(site), match_id
    site.close()


def _check(client: TestClient, at: timedelta) -> None:
    client.app.state.services.jobs.run_due_work(now=T0 + at)  # type: ignore[attr-defined]


def _photo_back_mails(client: TestClient) -> list[OutgoingMail]:
    with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
        query = select(OutgoingMail).where(OutgoingMail.kind == "photo_back")
        return list(session.exec(query).all())


def test_it_mails_each_return_of_a_photo_once(
    platform: tuple[TestClient, Platform, int],
) -> None:
    client, site, match_id = platform
    services = client.app.state.services  # type: ignore[attr-defined]
    site.post_up = False
    _check(client, timedelta(0))  # removed
    site.post_up = True
    _check(client, timedelta(seconds=10))  # back: the first return
    assert len(_photo_back_mails(client)) == 1
    site.post_up = False
    _check(client, timedelta(seconds=20))  # removed again
    site.post_up = True
    with Session(services.db) as late:
        # A second worker read the match while it was still removed, and checks it after the
        # first worker has already reopened it: the same return, seen twice.
        stale = late.get(Match, match_id)  # held: the session keeps what it read
        assert stale is not None and stale.status == "removed"
        _check(client, timedelta(seconds=30))  # back: the second return
        with Fetcher(fetch_options(services.settings)) as fetcher:
            verdict = verify.look(fetcher, stale)
        interval = services.settings.verify_interval
        base_url = services.settings.base_url
        verify.settle(late, match_id, verdict, interval, T0 + timedelta(seconds=31), base_url)
        late.commit()
    assert len(_photo_back_mails(client)) == 2


def test_it_says_how_long_ago_in_seconds_minutes_and_hours() -> None:
    assert [ago(timedelta(seconds=s)) for s in (0.4, 4, 59, 60, 599, 3600, 7300)] == [
        "just now",
        "4 s ago",
        "59 s ago",
        "1 min ago",
        "9 min ago",
        "1 h ago",
        "2 h ago",
    ]
