"""Who may open an account, and confirmed addresses: alice is the first account (the admin), bob
another owner she invites, charlie nobody (wrong and used tokens), mallory someone who signs
up where anyone may and must confirm her address before she can invite a soul."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from service.app import create_app
from service.config import Settings
from service.security import token_hash
from service.tables import ConfirmationToken, OutgoingMail, OwnerInvitation, utcnow
from tests.conftest import DATABASES, make_settings
from tests.test_api_journey import mailed_link, owner_token
from tests.test_pages import _context, _csrf, _template

PASSWORD = "correct horse battery"


def _client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, consume=False)) as client:
        yield client


@pytest.fixture(params=DATABASES)
def invite_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(make_settings(tmp_path, database=request.param, signups="invite"))


@pytest.fixture
def open_doors(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(make_settings(tmp_path, signups="open"))


def _register(client: TestClient, email: str, name: str, invitation: str | None = None):  # type: ignore[no-untyped-def]
    body = {"email": email, "password": PASSWORD, "name": name}
    return client.post("/api/v1/auth/register", json=body | {"invitation": invitation})


def _login(client: TestClient, email: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _invite_owner(client: TestClient, headers: dict[str, str], email: str) -> str:
    """alice invites someone to open an account; returns the token of the mailed link."""
    answer = client.post("/api/v1/owner-invitations", headers=headers, json={"email": email})
    assert answer.status_code == 202, answer.text
    link = mailed_link(client, email, "owner_invitation")
    assert link.startswith("http://testserver/signup?invitation=")
    return link.split("=", 1)[1]


def _db(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.services.db  # type: ignore[attr-defined]


# ---- the policy ----


@pytest.mark.parametrize("signups", ["open", "invite", "closed"])
def test_it_makes_the_first_account_the_admin_whatever_the_policy(
    tmp_path: Path, signups: str
) -> None:
    for client in _client(make_settings(tmp_path, signups=signups)):
        first = _register(client, "alice@example.org", "Alice")
        assert first.status_code == 201, first.text
        me = client.get("/api/v1/me", headers=_login(client, "alice@example.org")).json()
        assert me["is_admin"] is True and me["confirmed"] is False

        second = _register(client, "mallory@example.org", "Mum")
        if signups == "open":
            assert second.status_code == 201
            mallory = client.get("/api/v1/me", headers=_login(client, "mallory@example.org"))
            assert mallory.json()["is_admin"] is False
        else:
            assert second.status_code == 403
            assert (
                second.json()["detail"]
                == {
                    "invite": "accounts here are by invitation: ask someone who uses this service "
                    "to invite you, and sign up with the link they send",
                    "closed": "this service takes no new accounts",
                }[signups]
            )


def test_it_lets_an_invited_owner_in_once(invite_only: TestClient) -> None:
    client = invite_only
    alice = owner_token(client, "alice@example.org", "Alice")
    token = _invite_owner(client, alice, "bob@example.org")
    with Session(_db(client)) as session:
        [mail] = session.exec(
            select(OutgoingMail).where(OutgoingMail.kind == "owner_invitation")
        ).all()
        [row] = session.exec(select(OwnerInvitation)).all()
    assert mail.headers["Reply-To"] == "Alice <alice@example.org>"
    assert "Alice (alice@example.org) invites you" in mail.subject
    assert row.token_hash == token_hash(token) and token not in str(row.model_dump())

    bob = _register(client, "Bob@Example.org", "Bob", invitation=token)
    assert bob.status_code == 201, bob.text
    # The invitation came to this address, so holding it confirmed the address.
    assert bob.json()["confirmed"] is True
    again = _register(client, "charlie@example.org", "Charlie", invitation=token)
    assert again.status_code == 403
    assert again.json()["detail"].startswith("this invitation link is unknown, used or expired")


def test_it_refuses_a_wrong_a_misused_or_an_expired_invitation(invite_only: TestClient) -> None:
    client = invite_only
    alice = owner_token(client, "alice@example.org", "Alice")
    token = _invite_owner(client, alice, "bob@example.org")
    wrong = _register(client, "charlie@example.org", "Charlie", invitation="not-a-token-" * 4)
    assert wrong.status_code == 403 and "unknown, used or expired" in wrong.json()["detail"]
    other = _register(client, "mallory@example.org", "Mum", invitation=token)
    assert other.status_code == 403
    assert other.json()["detail"] == (
        "this invitation is for bob@example.org: please sign up with that address"
    )
    with Session(_db(client)) as session:
        session.execute(update(OwnerInvitation).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    late = _register(client, "bob@example.org", "Bob", invitation=token)
    assert late.status_code == 403 and "expired" in late.json()["detail"]


def test_it_lets_only_confirmed_owners_invite_owners(tmp_path: Path) -> None:
    for client in _client(make_settings(tmp_path, signups="invite")):
        alice = owner_token(client, "alice@example.org", "Alice", confirm=False)
        answer = client.post(
            "/api/v1/owner-invitations", headers=alice, json={"email": "bob@example.org"}
        )
        assert answer.status_code == 403
        assert answer.json()["detail"].startswith(
            "confirm your address first: we sent a link to alice@example.org"
        )
        exists = client.post(
            "/api/v1/owner-invitations", headers=alice, json={"email": "alice@example.org"}
        )
        assert exists.status_code == 403  # the address comes first
    for client in _client(make_settings(tmp_path / "closed", signups="closed")):
        alice = owner_token(client, "alice@example.org", "Alice")
        answer = client.post(
            "/api/v1/owner-invitations", headers=alice, json={"email": "bob@example.org"}
        )
        assert answer.status_code == 403 and "takes no new accounts" in answer.json()["detail"]


# ---- confirmed addresses ----


def test_it_keeps_an_unconfirmed_owner_from_inviting_until_she_opens_the_link(
    open_doors: TestClient,
) -> None:
    client = open_doors
    owner_token(client, "alice@example.org", "Alice")
    mallory = owner_token(client, "mallory@example.org", "Mum", confirm=False)  # logs in at once
    dana = {"name": "Dana", "email": "dana@example.org"}
    refused = client.post("/api/v1/friends", headers=mallory, json=dana)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith(
        "confirm your address first: we sent a link to mallory@example.org"
    )

    link = mailed_link(client, "mallory@example.org", "confirm_address")
    assert link.startswith("http://testserver/confirm/")
    with Session(_db(client)) as session:
        [row] = session.exec(select(ConfirmationToken)).all()
    assert row.token_hash == token_hash(link.rsplit("/", 1)[1])  # the token only as its hash
    page = client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert "Your address mallory@example.org is confirmed" in page.text
    assert client.get("/api/v1/me", headers=mallory).json()["confirmed"] is True
    assert client.post("/api/v1/friends", headers=mallory, json=dana).status_code == 201
    used = client.get(link.removeprefix("http://testserver"), headers={"Accept": "text/html"})
    assert used.status_code == 404 and "not valid any more" in used.text


def test_it_sends_the_link_again_and_the_old_one_stops_working(open_doors: TestClient) -> None:
    client = open_doors
    alice = owner_token(client, "alice@example.org", "Alice", confirm=False)
    old = mailed_link(client, "alice@example.org", "confirm_address").rsplit("/", 1)[1]
    again = client.post("/api/v1/auth/confirm/resend", headers=alice)
    assert again.status_code == 202
    assert again.json() == {"detail": "a new confirmation link is on its way to alice@example.org"}
    new = mailed_link(client, "alice@example.org", "confirm_address").rsplit("/", 1)[1]
    assert new != old
    assert client.post("/api/v1/auth/confirm", json={"token": old}).status_code == 404
    confirmed = client.post("/api/v1/auth/confirm", json={"token": new})
    assert confirmed.status_code == 200 and confirmed.json()["confirmed"] is True
    assert client.post("/api/v1/auth/confirm/resend", headers=alice).status_code == 409


def test_it_limits_how_often_the_link_is_sent_again(open_doors: TestClient) -> None:
    client = open_doors
    alice = owner_token(client, "alice@example.org", "Alice", confirm=False)
    codes = [
        client.post("/api/v1/auth/confirm/resend", headers=alice).status_code for _ in range(6)
    ]
    assert codes == [202] * 5 + [429]
    with Session(_db(client)) as session:
        kinds = session.exec(
            select(OutgoingMail.kind).where(col(OutgoingMail.to) == "alice@example.org")
        ).all()
    assert kinds == ["confirm_address"] * 6  # the one of sign-up, and five again


# ---- the pages ----


def _browser(client: TestClient) -> TestClient:
    return TestClient(client.app, follow_redirects=False)


def _sign_up(browser: TestClient, name: str, email: str, **extra: str):  # type: ignore[no-untyped-def]
    form = {"csrf_token": _csrf(browser, "/signup"), "name": name, "email": email}
    answer = browser.post("/signup", data=form | {"password": PASSWORD} | extra)
    if answer.status_code == 303:
        browser.cookies.set("session", answer.cookies["session"])
    return answer


def test_it_welcomes_the_first_account_as_the_admin(invite_only: TestClient) -> None:
    alice = _browser(invite_only)
    page = alice.get("/signup")
    assert "You are the first to sign up here" in page.text and 'action="/signup"' in page.text
    assert _sign_up(alice, "Alice", "alice@example.org").status_code == 303
    assert 'href="/admin"' in alice.get("/").text


def test_it_fills_in_the_invited_address_on_the_sign_up_page(invite_only: TestClient) -> None:
    client = invite_only
    token = _invite_owner(
        client, owner_token(client, "alice@example.org", "Alice"), "bob@example.org"
    )
    bob = _browser(client)
    page = bob.get(f"/signup?invitation={token}")
    assert _template(page) == "signup.html"
    assert _context(page)["invited_address"] == "bob@example.org"
    assert 'value="bob@example.org"' in page.text
    assert "Alice (alice@example.org) invited you" in page.text
    assert f'name="invitation" value="{token}"' in page.text
    form = {"csrf_token": _csrf(bob, "/signup"), "name": "Bob", "email": "bob@example.org"}
    short = bob.post("/signup", data=form | {"password": "short", "invitation": token})
    assert short.status_code == 422  # a typo does not use the invitation up
    assert f'name="invitation" value="{token}"' in short.text
    assert _sign_up(bob, "Bob", "bob@example.org", invitation=token).status_code == 303
    home = bob.get("/")
    assert _template(home) == "dashboard.html" and _context(home)["owner"].confirmed_at
    assert "Please confirm your address" not in home.text and 'action="/friends"' in home.text
    assert 'href="/admin"' not in home.text


def test_it_explains_on_the_sign_up_page_who_may_sign_up(invite_only: TestClient) -> None:
    owner_token(invite_only, "alice@example.org", "Alice")
    charlie = _browser(invite_only)
    page = charlie.get("/signup")
    assert "Accounts here are by invitation" in page.text and 'action="/signup"' not in page.text
    refused = _sign_up(charlie, "Charlie", "charlie@example.org")
    assert refused.status_code == 403 and _template(refused) == "signup.html"
    assert "Accounts here are by invitation: ask someone" in refused.text
    assert "session" not in refused.cookies
    broken = charlie.get("/signup?invitation=not-a-real-token")
    assert "This invitation link is unknown, used or expired" in broken.text


def test_it_asks_for_the_address_on_the_dashboard_before_any_invitation(
    open_doors: TestClient,
) -> None:
    client = open_doors
    owner_token(client, "alice@example.org", "Alice")
    mallory = _browser(client)
    assert _sign_up(mallory, "Mum", "mallory@example.org").status_code == 303
    home = mallory.get("/")
    assert "Please confirm your address." in home.text and "mallory@example.org" in home.text
    assert 'action="/confirm/resend"' in home.text and 'action="/friends"' not in home.text
    assert 'action="/owner-invitations"' not in home.text
    form = {"csrf_token": _csrf(mallory, "/"), "name": "Dana", "email": "dana@example.org"}
    refused = mallory.post("/friends", data=form)
    assert refused.status_code == 403 and _template(refused) == "dashboard.html"
    assert "Confirm your address first: we sent a link to mallory@example.org" in refused.text

    resent = mallory.post("/confirm/resend", data={"csrf_token": _csrf(mallory, "/")})
    assert resent.status_code == 303
    assert "A new confirmation link is on its way to mallory@example.org." in mallory.get("/").text
    link = mailed_link(client, "mallory@example.org", "confirm_address")
    page = mallory.get(link.removeprefix("http://testserver"))
    assert _template(page) == "confirmed.html"
    assert _context(page)["confirmed"].email == "mallory@example.org"
    home = mallory.get("/")
    assert "Please confirm" not in home.text and 'action="/friends"' in home.text
    form = {"csrf_token": _csrf(mallory, "/"), "name": "Dana", "email": "dana@example.org"}
    assert mallory.post("/friends", data=form).status_code == 303


def test_it_invites_someone_to_open_an_account_from_the_dashboard(
    invite_only: TestClient,
) -> None:
    alice = _browser(invite_only)
    _sign_up(alice, "Alice", "alice@example.org")
    alice.get(mailed_link(invite_only, "alice@example.org", "confirm_address")[17:])
    home = alice.get("/")
    assert 'action="/owner-invitations"' in home.text
    form = {"csrf_token": _context(home)["csrf_token"], "email": "Bob@example.org"}
    answer = alice.post("/owner-invitations", data=form)
    assert answer.status_code == 303
    notice = alice.get(answer.headers["location"])
    assert "Invitation to open an account sent to bob@example.org." in notice.text
    assert mailed_link(invite_only, "bob@example.org", "owner_invitation").startswith(
        "http://testserver/signup?invitation="
    )
