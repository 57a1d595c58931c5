"""The owner hears how their friends' lists go, through a real SMTP server on loopback: answers
at most daily, a finished list at once, a post seen gone from the web, and a weekly digest that
names photos as people recall them; each mail can be muted, and the dashboard says it all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from service.app import create_app
from service.checklist import DIGEST_DELAY
from service.notify.owner_mails import day
from service.notify.reminders import ANSWERS_EVERY, DIGEST_EVERY
from service.tables import Match, Scan, utcnow
from tests.conftest import make_settings
from tests.ingest.builders import jpeg
from tests.ingest.conftest import Answer, Request, Site
from tests.smtp_server import SmtpServer
from tests.test_api_journey import owner_token
from tests.test_checklist import add_matches
from tests.test_pages import PASSWORD, _context, _csrf

SUBJECTS = {
    "list_answered": "Dana answered 1 photo on their list",
    "list_finished": "Dana finished their list: 2 removed, 1 made private",
    "removal_verified": "A photo Dana posted is gone from the web",
    "digest": "3 new answers from your friends",
}
FILE_PATH = "your_facebook_activity/posts/media/201903/17970322908340048.jpg"


class Carousel:
    """A public post of two photos on a stand-in platform; the test takes it down."""

    def __init__(self, site: Site) -> None:
        self.site, self.up = site, True
        self.images = [f"{site.url}/media/7a.jpg", f"{site.url}/media/7b.jpg"]
        self.url = f"{site.url}/@dana/7"
        for image in self.images:
            site.route(image.removeprefix(site.url), Answer(200, jpeg(1), {"ETag": '"v1"'}))
        site.route("/@dana/7", self._post)

    def _post(self, request: Request) -> Answer:
        if not self.up:
            return Answer(404, b"gone")
        page = "".join(f'<img src="{image}">' for image in self.images)
        return Answer(200, page.encode(), {"Content-Type": "text/html"})


@dataclass
class World:
    client: TestClient
    smtp: SmtpServer
    carousel: Carousel
    alice: dict[str, str]
    token: str  # Dana's
    items: list[int]  # her list: two Facebook photos, then the carousel (by its first photo)

    def answer(self, item: int, status: str) -> None:
        answered = self.client.post(
            f"/api/v1/invites/{self.token}/checklist/{item}", json={"status": status}
        )
        assert answered.status_code == 200, answered.text

    def run_due_work(self, at: datetime) -> None:
        self.client.app.state.services.jobs.run_due_work(now=at)  # type: ignore[attr-defined]

    def subjects(self) -> list[str]:
        """What reached Alice's inbox, besides the confirmation of her address."""
        return [
            str(m["Subject"])
            for m in self.smtp.messages
            if m["To"] == "alice@example.org" and "confirm" not in str(m["Subject"]).lower()
        ]

    def received(self, subject: str) -> tuple[str, str]:
        """The plain text and the HTML of the one mail with this subject."""
        [message] = [m for m in self.smtp.messages if m["Subject"] == subject]
        text, html = (message.get_body((part,)) for part in ("plain", "html"))
        assert text is not None and html is not None
        return text.get_content().replace("\r\n", "\n"), html.get_content()


def _photos(carousel: Carousel) -> list[dict[str, object]]:
    facebook = {"platform": "facebook"}
    return [
        {
            **facebook,
            "photo": FILE_PATH,
            "caption": "Summer at the lake with the whole family, before the storm came",
            "taken_at": datetime(2019, 3, 3, 12, tzinfo=UTC),
        },
        {
            **facebook,
            "photo": "your_facebook_activity/posts/media/201908/2.jpg",
            "album": "Holidays",
            "taken_at": datetime(2019, 8, 10, 12, tzinfo=UTC),
        },
        *(
            {
                "platform": "mastodon",
                "photo": image,
                "post_url": carousel.url,
                "post_key": "dana/7",
                "caption": "At the café",
                "taken_at": datetime(2021, 5, 4, 12, tzinfo=UTC),
                "next_check_at": utcnow(),
            }
            for image in carousel.images
        ),
    ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    smtp, site = SmtpServer().start(), Site()
    settings = make_settings(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        allow_private_fetch=True,
        verify_every="10s",
    )
    try:
        with TestClient(create_app(settings, consume=False)) as client:
            services = client.app.state.services  # type: ignore[attr-defined]
            services.jobs.huey.immediate = True  # each mail goes to the relay as it is queued
            alice = owner_token(client, "alice@example.org", "Alice")
            dana = client.post(
                "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
            ).json()
            token = dana["invite_url"].rsplit("/", 1)[1]
            client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
            carousel = Carousel(site)
            ids = add_matches(services.db, dana["id"], 1, *_photos(carousel))
            with Session(services.db) as session:
                session.execute(
                    update(Match).where(col(Match.id).in_(ids)).values(review="confirmed")
                )
                session.execute(update(Scan).values(finished_at=utcnow()))
                session.commit()
            yield World(client, smtp, carousel, alice, token, ids[:3])
    finally:
        smtp.stop()
        site.close()


def _live_through(world: World) -> datetime:
    """Dana answers one photo, then the rest; her post goes; a week passes. Returns when the
    post was seen gone."""
    first, second, carousel = world.items
    world.answer(first, "removed")
    world.run_due_work(utcnow() + DIGEST_DELAY)
    world.answer(second, "private")
    world.answer(carousel, "removed")
    world.run_due_work(utcnow() + DIGEST_DELAY)
    world.carousel.up = False
    checked = utcnow() + timedelta(hours=1)
    world.run_due_work(checked)
    world.run_due_work(utcnow() + DIGEST_EVERY + timedelta(hours=1))
    return checked


def test_it_tells_of_answers_at_most_daily_and_of_a_finished_list_at_once(world: World) -> None:
    first, second, carousel = world.items
    world.answer(first, "removed")
    world.run_due_work(utcnow())
    assert world.subjects() == ["Dana agreed to help you"]  # answers are gathered a while first
    world.run_due_work(utcnow() + DIGEST_DELAY)
    assert world.subjects()[-1] == "Dana answered 1 photo on their list"
    text, html = world.received("Dana answered 1 photo on their list")
    assert "- Facebook, 3 March 2019, “Summer at the lake with the whole family, before the" in text
    assert "storm…”: removed" in text and "2 still wait for an answer" in text
    assert "http://testserver/friends/1#checklist" in text
    assert 'href="http://testserver/friends/1#checklist"' in html
    assert ".jpg" not in text + html

    world.answer(second, "private")
    world.run_due_work(utcnow() + 2 * DIGEST_DELAY)
    assert len(world.subjects()) == 2  # told of Dana's answers less than a day ago
    world.run_due_work(utcnow() + ANSWERS_EVERY + DIGEST_DELAY)
    assert world.subjects()[-1] == "Dana answered 1 photo on their list"
    assert len(world.subjects()) == 3

    world.answer(carousel, "removed")
    world.run_due_work(utcnow() + DIGEST_DELAY)  # finished: told at once, though within the day
    assert world.subjects()[-1] == SUBJECTS["list_finished"]
    text, _ = world.received(SUBJECTS["list_finished"])
    assert "Dana answered every photo on their list: 2 removed, 1 made private." in text
    world.run_due_work(utcnow() + ANSWERS_EVERY + DIGEST_DELAY)
    assert len(world.subjects()) == 4  # nothing new to tell


def test_it_tells_once_when_a_post_is_seen_gone_from_the_web(world: World) -> None:
    world.run_due_work(utcnow())  # the post is up
    assert world.subjects() == ["Dana agreed to help you"]
    world.carousel.up = False
    checked = utcnow() + timedelta(minutes=1)
    world.run_due_work(checked)
    assert world.subjects()[-1] == SUBJECTS["removal_verified"]
    assert len(world.subjects()) == 2  # the post of two photos: one mail
    text, html = world.received(SUBJECTS["removal_verified"])
    assert f"We checked on {day(checked)}" in text
    assert "- Mastodon, 4 May 2021, 2 photos, “At the café”" in text
    assert 'href="http://testserver/friends/1#checklist"' in html
    world.run_due_work(checked + timedelta(minutes=1))
    assert len(world.subjects()) == 2


def test_it_gathers_a_week_of_answers_in_a_digest_with_links_and_no_file_paths(
    world: World,
) -> None:
    first, second, carousel = world.items
    world.answer(first, "removed")
    world.answer(second, "keep")
    world.run_due_work(utcnow() + DIGEST_DELAY)
    world.answer(carousel, "not_me")
    world.run_due_work(utcnow() + DIGEST_DELAY)
    world.run_due_work(utcnow() + DIGEST_EVERY - timedelta(hours=1))
    assert not [s for s in world.subjects() if "new answer" in s]  # not before the week is out
    world.run_due_work(utcnow() + DIGEST_EVERY + DIGEST_DELAY)
    text, html = world.received(SUBJECTS["digest"])
    for words in (
        "Facebook, 3 March 2019, “Summer at the lake with the whole family, before the storm…”: "
        "removed",
        "Facebook, 10 August 2019, album “Holidays”: would rather keep it",
        "Mastodon, 4 May 2021, 2 photos, “At the café”: says it is not you",
    ):
        assert f"- {words}" in text
    assert "your_facebook_activity" not in text + html and ".jpg" not in text + html
    assert "See Dana's list:\nhttp://testserver/friends/1#checklist" in text
    assert '<a href="http://testserver/friends/1#checklist"' in html
    assert '<a href="http://testserver/"' in html  # the dashboard
    world.run_due_work(utcnow() + 2 * DIGEST_EVERY)
    assert len([s for s in world.subjects() if "new answer" in s]) == 1


@pytest.mark.parametrize("kind", sorted(SUBJECTS))
def test_the_owner_can_mute_each_kind(world: World, kind: str) -> None:
    muted = world.client.put("/api/v1/me/mails", headers=world.alice, json={"muted": [kind]})
    assert muted.status_code == 200 and muted.json()["muted"] == [kind]
    _live_through(world)
    heard = world.subjects()
    assert SUBJECTS[kind] not in heard
    assert all(SUBJECTS[other] in heard for other in SUBJECTS if other != kind)


def test_the_dashboard_says_what_happened(world: World) -> None:
    _live_through(world)
    browser = TestClient(world.client.app, follow_redirects=False)
    logged_in = browser.post(
        "/login",
        data={
            "csrf_token": _csrf(browser),
            "email": "alice@example.org",
            "password": PASSWORD,
        },
    )
    assert logged_in.status_code == 303
    page = browser.get("/")
    news = _context(page)["news"]
    assert [(event.text, event.url) for event in news] == [
        (
            "A photo Dana posted is gone from the web: Mastodon, 4 May 2021, 2 photos, "
            "“At the café”",
            "/friends/1#checklist",
        ),
        ("Dana finished their list: 2 removed, 1 made private", "/friends/1#checklist"),
        ("Dana answered 1 photo on their list", "/friends/1#checklist"),
        ("We found 4 photos that may show you in what Dana shared", "/friends/1"),
        ("Dana accepted your invitation", "/friends/1"),
    ]
    assert '<h2 id="news">What happened</h2>' in page.text
    assert '<a href="/friends/1#checklist">Dana finished their list: 2 removed' in page.text


def test_the_dashboard_shows_no_list_before_anything_happened(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path), consume=False)) as client:
        owner_token(client, "alice@example.org", "Alice")
        browser = TestClient(client.app, follow_redirects=False)
        browser.post(
            "/login",
            data={"csrf_token": _csrf(browser), "email": "alice@example.org", "password": PASSWORD},
        )
        page = browser.get("/")
        assert _context(page)["news"] == [] and "What happened" not in page.text
