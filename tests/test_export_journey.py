"""The friend's way from "no download yet" to a share: a guide per platform, a reminder when the
download should be ready (and once more), and what happens after the scan."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from service.app import create_app
from service.config import Settings
from service.export_guides import GB, guides, takeout_part_size
from service.notify.mail import unsealed
from service.tables import Friend, OutgoingMail, Scan, Source
from tests import test_circles as circles
from tests.smtp_server import SmtpServer
from tests.test_api_journey import owner_token


@dataclass
class Waiting:
    """Alice, and Dana who accepted her invitation and is about to ask for a download."""

    client: TestClient
    settings: Settings
    alice: dict[str, str]
    friend_id: int
    token: str

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.services  # type: ignore[attr-defined]

    def ask(self) -> datetime:
        answer = self.client.post(f"/api/v1/invites/{self.token}/export-reminder")
        assert answer.status_code == 202, answer.text
        return datetime.fromisoformat(answer.json()["remind_at"])

    def tick(self, now: datetime) -> int:
        """The periodic work at `now`; how many download reminders it wrote."""
        before = len(self.reminders())
        self.services.jobs.run_due_work(now)
        return len(self.reminders()) - before

    def reminders(self) -> list[OutgoingMail]:
        with Session(self.services.db) as session:
            query = select(OutgoingMail).where(OutgoingMail.kind == "export_reminder")
            return sorted(session.exec(query).all(), key=lambda m: m.id or 0)

    def page(self) -> str:
        answer = self.client.get(f"/invite/{self.token}/share")
        assert answer.status_code == 200
        return answer.text

    def upload(self) -> None:
        photo = io.BytesIO()
        Image.new("RGB", (8, 8)).save(photo, "JPEG")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("me.jpg", photo.getvalue())
        answer = self.client.post(
            f"/api/v1/invites/{self.token}/exports",
            files={"file": ("facebook.zip", archive.getvalue(), "application/zip")},
        )
        assert answer.status_code == 202, answer.text

    def consent(self, accept: bool) -> None:
        answer = self.client.post(f"/api/v1/invites/{self.token}/consent", json={"accept": accept})
        assert answer.status_code == 200, answer.text


def _waiting(settings: Settings) -> Iterator[Waiting]:
    with TestClient(create_app(settings, consume=False), follow_redirects=False) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        waiting = Waiting(client, settings, alice, friend["id"], token)
        waiting.consent(True)
        yield waiting


@pytest.fixture
def dana(settings: Settings) -> Iterator[Waiting]:
    yield from _waiting(settings)


class Links(HTMLParser):
    """The folded guides of a page, and the links in each."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.guides: dict[str, list[str]] = {}
        self._guide: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "details" and "export-guide" in (found.get("class") or ""):
            self._guide = (found.get("id") or "").removeprefix("guide-")
            self.guides[self._guide] = []
        elif tag == "a" and self._guide is not None:
            self.guides[self._guide].append(found.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._guide = None


def test_it_folds_a_guide_for_each_platform_with_its_links(dana: Waiting) -> None:
    page = Links(dana.page())
    expected = guides(dana.settings.max_upload_bytes)
    assert list(page.guides) == [g.key for g in expected]
    assert set(page.guides) >= {"facebook", "instagram", "google_photos", "x", "mastodon"}
    assert {"flickr", "folder"} <= set(page.guides)
    for guide in expected:
        assert page.guides[guide.key] == [link.url for link in guide.links], guide.key
        assert guide.steps and guide.wait, guide.key
    links = [url for urls in page.guides.values() for url in urls]
    assert "https://takeout.google.com/" in links
    assert "https://accountscenter.facebook.com/info_and_permissions/dyi" in links
    assert "https://accountscenter.instagram.com/info_and_permissions/dyi" in links
    assert "https://x.com/settings/download_your_data" in links


def test_it_gives_only_well_formed_https_links() -> None:
    for guide in guides(20 * GB):
        for link in guide.links:
            parts = urlsplit(link.url)
            assert parts.scheme == "https" and "." in parts.netloc, link.url
            assert link.url.strip() == link.url and " " not in link.url, link.url
            assert "<" not in link.url and link.label.strip(), link.url


def test_it_asks_meta_for_json_all_time_and_high_quality() -> None:
    for guide in guides(20 * GB)[:2]:
        steps = " ".join(guide.steps)
        for setting in ("“Download to device”", "“All time”", "“JSON”", "“High”"):
            assert setting in steps, (guide.key, setting)


def test_it_asks_takeout_for_parts_this_service_takes() -> None:
    assert takeout_part_size(20 * GB) == 10
    assert takeout_part_size(50 * GB) == 50
    assert takeout_part_size(3 * GB) == 2
    assert takeout_part_size(GB // 2) == 1  # the smallest Takeout makes
    [takeout] = [g for g in guides(20 * GB) if g.key == "google_photos"]
    assert "“10 GB”" in " ".join(takeout.steps)
    assert any("all the parts together" in note for note in takeout.notes)


def test_it_says_how_long_the_link_keeps_working(dana: Waiting) -> None:
    page = dana.page()
    with Session(dana.services.db) as session:
        friend = session.get_one(Friend, dana.friend_id)
    assert f"after {dana.settings.link_idle_days} days without a visit" in page
    assert friend.expires_at.strftime("%-d %B %Y") in page


def test_it_mails_the_link_two_days_after_asking_and_once_more(
    settings: Settings,
) -> None:
    smtp = SmtpServer().start()
    try:
        real_mail = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_starttls": False}
        )
        for dana in _waiting(real_mail):
            dana.services.jobs.huey.immediate = True  # each mail goes out as it is written
            remind_at = dana.ask()
            assert dana.tick(remind_at - timedelta(minutes=1)) == 0
            assert dana.tick(remind_at) == 1
            assert dana.tick(remind_at + timedelta(hours=1)) == 0  # not twice for the first
            assert dana.tick(remind_at + timedelta(days=2)) == 1
            assert dana.tick(remind_at + timedelta(days=30)) == 0  # nothing after the second
            mails = [m for m in smtp.messages if m["To"] == "dana@example.org"]
            first, second = mails[-2:]
    finally:
        smtp.stop()
    assert str(first["Subject"]) == "Your download for Alice should be ready"
    assert str(second["Subject"]).startswith("One last reminder")
    text = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"http://testserver/invite/{dana.token}/share" in text.splitlines()
    assert "once more in 2 days" in text
    assert "last reminder" in second.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert str(first["List-Unsubscribe"]).strip() == f"<http://testserver/unsubscribe/{dana.token}>"


def test_it_keeps_the_link_sealed_in_the_stored_mail(dana: Waiting) -> None:
    dana.tick(dana.ask())
    [mail] = dana.reminders()
    assert dana.token not in mail.text + mail.html + str(mail.headers)
    text, html, _ = unsealed(mail, dana.services.box)
    assert f"/invite/{dana.token}/share" in text and f"/invite/{dana.token}/share" in html


def test_it_sends_one_series_for_a_double_click(dana: Waiting) -> None:
    remind_at = dana.ask()
    assert dana.ask() == remind_at
    csrf = dana.client.get(f"/invite/{dana.token}/share").context["csrf_token"]  # type: ignore[attr-defined]
    for _ in range(2):
        answer = dana.client.post(
            f"/invite/{dana.token}/export-reminder", data={"csrf_token": csrf}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/invite/{dana.token}/share#waiting"
    assert dana.ask() == remind_at
    assert dana.tick(remind_at) == 1
    assert dana.tick(remind_at + timedelta(days=2)) == 1
    assert dana.tick(remind_at + timedelta(days=4)) == 0


def test_it_shows_the_reminder_asked_for_instead_of_the_button(dana: Waiting) -> None:
    assert "remind me in 2 days" in dana.page()
    remind_at = dana.ask()
    page = dana.page()
    assert "remind me in 2 days" not in page
    assert f"We will e-mail you this link on {remind_at.strftime('%-d %B')}" in page


def test_it_sends_nothing_once_the_friend_shared_something(dana: Waiting) -> None:
    remind_at = dana.ask()
    dana.upload()
    assert dana.tick(remind_at) == 0
    assert dana.tick(remind_at + timedelta(days=2)) == 0
    assert "remind me in 2 days" in dana.page()  # waiting for another platform: ask again


def test_it_stops_after_the_first_when_the_friend_shares_meanwhile(dana: Waiting) -> None:
    remind_at = dana.ask()
    assert dana.tick(remind_at) == 1
    dana.upload()
    assert dana.tick(remind_at + timedelta(days=2)) == 0


def test_it_sends_nothing_while_a_resumable_upload_is_on_its_way(dana: Waiting) -> None:
    remind_at = dana.ask()
    started = dana.client.post(
        f"/api/v1/invites/{dana.token}/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "100"},
    )
    assert started.status_code == 201
    assert dana.tick(remind_at) == 0


def test_it_still_reminds_a_friend_who_shared_before_asking(dana: Waiting) -> None:
    dana.upload()  # Facebook done; now waiting for Google Takeout
    assert dana.tick(dana.ask()) == 1


def test_it_sends_nothing_after_a_withdrawal(dana: Waiting) -> None:
    remind_at = dana.ask()
    dana.consent(False)
    assert dana.tick(remind_at) == 0
    assert dana.tick(remind_at + timedelta(days=2)) == 0


def test_it_sends_nothing_to_a_friend_who_withdrew_and_came_back(dana: Waiting) -> None:
    remind_at = dana.ask()
    dana.consent(False)
    dana.consent(True)  # back again: they have not asked for a download since
    assert "remind me in 2 days" in dana.page()
    assert dana.tick(remind_at) == 0


def test_it_sends_nothing_after_no_more_reminders(dana: Waiting) -> None:
    remind_at = dana.ask()
    assert dana.client.post(f"/unsubscribe/{dana.token}").status_code == 200
    assert dana.tick(remind_at) == 0


def test_it_refuses_before_consent_and_for_a_dead_link(settings: Settings) -> None:
    with TestClient(create_app(settings, consume=False), follow_redirects=False) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Eve", "email": "eve@example.org"}
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        answer = client.post(f"/api/v1/invites/{token}/export-reminder")
        assert answer.status_code == 403
        csrf = client.get(f"/invite/{token}").context["csrf_token"]  # type: ignore[attr-defined]
        page = client.post(f"/invite/{token}/export-reminder", data={"csrf_token": csrf})
        assert (page.status_code, page.headers["location"]) == (303, f"/invite/{token}")
        client.delete(f"/api/v1/friends/{friend['id']}", headers=alice)  # the link dies
        assert client.post(f"/api/v1/invites/{token}/export-reminder").status_code == 404
        with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
            assert (
                session.exec(
                    select(OutgoingMail).where(OutgoingMail.kind == "export_reminder")
                ).all()
                == []
            )


def test_it_says_what_happens_after_the_scan(dana: Waiting) -> None:
    assert "after-scan after-scan--waiting" in dana.page()  # shown only once a scan is done
    with Session(dana.services.db) as session:
        source = Source(owner_id=1, friend_id=dana.friend_id, kind="export", label="fb.zip")
        session.add(source)
        session.flush()
        assert source.id is not None
        session.add(Scan(owner_id=1, friend_id=dana.friend_id, source_id=source.id, status="done"))
        session.commit()
    page = dana.page()
    assert 'class="after-scan">' in page
    assert "Alice looks at the photos we found and chooses which to take down" in page
    assert "one list by e-mail" in page and "nothing is kept of the other photos" in page


family = circles.family


def test_it_sends_one_series_to_a_friend_asked_by_a_family_circle(family: circles.Family) -> None:
    circles._circle_of_two(family)
    alices = circles._invite_tess(family, family.alice)
    bens = circles._invite_tess(family, family.ben)
    owners = [
        family.client.get("/api/v1/me", headers=h).json()["id"] for h in (family.alice, family.ben)
    ]
    family.client.post(f"/api/v1/invites/{alices}/consent", json={"accept": True, "owners": owners})
    asked = [family.client.post(f"/api/v1/invites/{t}/export-reminder") for t in (alices, bens)]
    assert [a.status_code for a in asked] == [202, 202]
    remind_at = asked[0].json()["remind_at"]
    assert asked[1].json()["remind_at"] == remind_at  # one person, one series, by either link
    page = family.client.get(f"/invite/{bens}/share")
    assert "We will e-mail you this link on" in page.text
    services = family.client.app.state.services  # type: ignore[attr-defined]
    services.jobs.run_due_work(datetime.fromisoformat(remind_at))
    with Session(services.db) as session:
        mails = session.exec(
            select(OutgoingMail).where(OutgoingMail.kind == "export_reminder")
        ).all()
    assert [m.subject for m in mails] == ["Your download for Alice and Ben should be ready"]
