"""Mail over a real SMTP server on loopback: multipart, and exactly once across an outage."""

from __future__ import annotations

import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.app import create_app
from service.tables import OutgoingMail
from tests.conftest import make_settings
from tests.smtp_server import SmtpServer, free_port
from tests.test_api_journey import owner_token


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _rows(client: TestClient) -> list[OutgoingMail]:
    """The invitations (owner_token's confirmation mail to alice aside)."""
    with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
        query = select(OutgoingMail).where(OutgoingMail.kind == "invitation")
        return list(session.exec(query).all())


def _to_friends(server: SmtpServer) -> list[EmailMessage]:
    return [m for m in server.messages if m["To"] != "alice@example.org"]


def _invite(client: TestClient, alice: dict[str, str], name: str) -> None:
    answer = client.post(
        "/api/v1/friends",
        headers=alice,
        json={"name": name, "email": f"{name.lower()}@example.org"},
    )
    assert answer.status_code == 201


def test_it_sends_text_and_html_through_the_relay(tmp_path: Path) -> None:
    server = SmtpServer().start()
    try:
        settings = make_settings(
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_starttls=False,
            mail_from="photos@example.org",
        )
        with TestClient(create_app(settings, consume=True)) as client:
            _invite(client, owner_token(client, "alice@example.org", "Alice"), "Dana")
            _wait(lambda: _to_friends(server), 20, "the invitation")
        [message] = _to_friends(server)
        assert message["To"] == "dana@example.org"
        assert "photos@example.org" in message["From"]
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "http://testserver/invite/" in text and "<a href=" in html
        assert list(settings.outbox_dir.iterdir()) == []  # the relay, not the outbox
    finally:
        server.stop()


def test_it_delivers_each_mail_exactly_once_across_an_outage(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
    server = SmtpServer(port)
    with TestClient(create_app(settings, consume=True)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        for name in ("Dana", "Eli", "Fay"):
            _invite(client, alice, name)
        # The relay is down: every mail is tried, kept pending, and tried again later.
        _wait(
            lambda: (
                len(_rows(client)) == 3
                and all(m.attempts >= 2 and m.status == "pending" for m in _rows(client))
            ),
            30,
            "failed attempts",
        )
        assert all("Connect call failed" in (m.last_error or "") for m in _rows(client))
        server.start()
        try:
            _wait(lambda: all(m.status == "sent" for m in _rows(client)), 40, "delivery")
            time.sleep(3)  # time enough for any stray retry to send a second copy
            received = Counter(str(m["Message-ID"]) for m in server.messages)
        finally:
            server.stop()
    assert sorted(m["To"] for m in _to_friends(server)) == [
        "dana@example.org",
        "eli@example.org",
        "fay@example.org",
    ]
    assert set(received.values()) == {1}
    assert all(m.last_error is None and m.sent_at for m in _rows(client))
