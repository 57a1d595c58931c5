"""Hostile requests (issue 9), each found by probing the service as an attacker would: alice owns
things, bob is another owner, mallory sends what no page or client of ours ever would."""

from __future__ import annotations

import io
import json
import random
import re
import signal
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from service.app import create_app
from service.config import Settings
from service.ingest.fetch import is_public_address
from service.routes.headers import CONTENT_SECURITY_POLICY
from service.tables import Friend, Owner
from tests.conftest import PROJECT, make_settings
from tests.test_api_journey import owner_token
from tests.test_chaos import Fleet, free_port, until

PASSWORD = "correct horse battery"
JSON = {"content-type": "application/json"}


@dataclass
class World:
    client: TestClient  # the JSON API, as alice
    alice: dict[str, str]
    friend_id: int
    token: str  # alice's friend's invitation token

    def page(self, email: str = "alice@example.org") -> tuple[TestClient, str]:
        """A browser logged in to the pages, and the CSRF token its forms carry."""
        browser = TestClient(self.client.app, follow_redirects=False)
        form = {"email": email, "password": PASSWORD, "csrf_token": csrf_of(browser, "/login")}
        assert browser.post("/login", data=form).status_code == 303
        return browser, csrf_of(browser, "/")


def csrf_of(browser: TestClient, page: str) -> str:
    token: str = browser.get(page).context["csrf_token"]  # type: ignore[attr-defined]
    return token


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with TestClient(create_app(settings, consume=False), follow_redirects=False) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        owner_token(client, "bob@example.org", "Bob")
        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        yield World(client, alice, friend["id"], token)


def _consent(world: World) -> None:
    answer = world.client.post(f"/api/v1/invites/{world.token}/consent", json={"accept": True})
    assert answer.status_code == 200


# --- 1. bodies: limited before parsing, and never echoed --------------------------------------


def test_it_refuses_a_json_body_over_64_kb_by_its_length(world: World) -> None:
    body = json.dumps({"email": "a@example.org", "password": "x" * 70_000, "name": "A"})
    answer = world.client.post("/api/v1/auth/register", content=body, headers=JSON)
    assert answer.status_code == 413
    assert answer.json() == {"detail": "the request is larger than the limit of 64 KB"}


def test_it_refuses_a_body_over_64_kb_sent_without_a_length(world: World) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@example.org", "name": "'
        for _ in range(10):
            yield b"x" * 10_000

    answer = world.client.post("/api/v1/auth/register", content=chunks(), headers=JSON)
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413


def test_it_refuses_a_large_form_with_a_page_a_person_can_read(world: World) -> None:
    browser, csrf = world.page()
    answer = browser.post(
        "/friends",
        data={"csrf_token": csrf, "name": "x" * 70_000, "email": "e@example.org"},
        headers={"accept": "text/html"},
    )
    assert answer.status_code == 413
    assert answer.template.name == "error.html"  # type: ignore[attr-defined]


def test_it_still_takes_uploads_larger_than_the_body_limit(world: World) -> None:
    noise = Image.frombytes("RGB", (200, 200), random.Random(7).randbytes(200 * 200 * 3))
    photo = io.BytesIO()
    noise.save(photo, "PNG")
    assert len(photo.getvalue()) > 64 * 1024
    files = {"file": ("me.png", photo.getvalue())}
    answer = world.client.post("/api/v1/reference-photos", headers=world.alice, files=files)
    assert answer.status_code == 422 and "face" in answer.text  # read and judged: no face
    _consent(world)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photos/noise.png", photo.getvalue())
    upload = world.client.post(
        f"/api/v1/invites/{world.token}/exports", files={"file": ("x.zip", archive.getvalue())}
    )
    assert upload.status_code == 202, upload.text


def test_it_answers_an_invalid_body_without_echoing_it(world: World) -> None:
    body = {"email": "a@example.org", "password": ["my-secret-password"], "name": "x" * 300}
    answer = world.client.post("/api/v1/auth/register", json=body)
    assert answer.status_code == 422
    assert "my-secret-password" not in answer.text and "x" * 300 not in answer.text
    errors = answer.json()["detail"]
    assert [e["loc"] for e in errors] == [["body", "password"], ["body", "name"]]
    assert all(set(e) <= {"loc", "msg", "type", "ctx"} for e in errors)
    assert errors[1]["ctx"] == {"max_length": 200}


# --- 4. ids and text that no database can hold -------------------------------------------------


def test_it_answers_422_for_text_that_is_not_storable(world: World) -> None:
    """A lone surrogate is not Unicode (its echo in the 422 was a 500); PostgreSQL cannot store
    a NUL."""
    for text in ("\ud800", "a\udfffb", "nul\x00"):
        for path, body in (
            (
                "/api/v1/auth/register",
                {"email": "e@example.org", "password": PASSWORD, "name": text},
            ),
            ("/api/v1/auth/token", {"email": "alice@example.org", "password": text}),
            ("/api/v1/friends", {"name": text, "email": "f@example.org"}),
        ):
            raw = json.dumps(body)  # ensure_ascii: a lone surrogate goes as the escape "\ud800"
            answer = world.client.post(path, content=raw, headers={**JSON, **world.alice})
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["detail"][0]["loc"][0] == "body"
    browser, csrf = world.page()
    form = {"csrf_token": csrf, "name": "a\x00b", "email": "nul@example.org"}
    assert browser.post("/friends", data=form).status_code == 422
    stranger = TestClient(world.client.app, follow_redirects=False)
    form = {"csrf_token": csrf_of(stranger, "/signup"), "name": "a\x00b", "password": PASSWORD}
    assert stranger.post("/signup", data={**form, "email": "n@example.org"}).status_code == 422


def _routes_with_ids(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        nested = getattr(route, "original_router", None)
        for r in list(nested.routes) if nested is not None else [route]:
            if isinstance(r, APIRoute) and re.search(r"\{\w+_id\}", r.path):
                found += [(method, r.path) for method in r.methods]
    return found


def test_it_answers_every_id_no_column_can_hold_with_422(world: World) -> None:
    _consent(world)  # past consent, the friend's routes look their ids up
    browser, csrf = world.page()
    routes = _routes_with_ids(world.client)
    assert len(routes) > 20
    for huge, expected in ((2**31, {422}), (2**63, {422}), (2**31 - 1, {404})):
        for method, path in routes:
            url = re.sub(r"\{\w+_id(?::int)?\}", str(huge), path).replace("{token}", world.token)
            if url.startswith("/api/"):
                answer = world.client.request(
                    method,
                    url,
                    headers=world.alice,
                    json={"decision": "confirmed", "status": "keep", "email": "x@example.org"},
                )
            else:
                form = {"csrf_token": csrf, "decision": "confirmed", "status": "keep"}
                form["email"] = "x@example.org"
                answer = browser.request(method, url, data=form if method == "POST" else None)
            assert answer.status_code in expected, (method, url, answer.status_code, answer.text)


# --- 3. addresses: one address, no display name, no line break --------------------------------

HOSTILE_ADDRESSES = [
    "Mum <mum@example.org>",
    "mum@example.org, eve@example.org",
    "mum@example.org\r\nBcc: eve@example.org",
    "mum\n@example.org",
    "mum\x00@example.org",
    "mum@localhost",
    "not an address",
]


def test_it_refuses_an_address_that_is_not_one_address(world: World) -> None:
    browser, csrf = world.page()
    stranger = TestClient(world.client.app, follow_redirects=False)
    for address in HOSTILE_ADDRESSES:
        for path, body in (
            ("/api/v1/auth/register", {"email": address, "password": PASSWORD, "name": "Mum"}),
            ("/api/v1/auth/token", {"email": address, "password": PASSWORD}),
            ("/api/v1/friends", {"email": address, "name": "Mum"}),
        ):
            answer = world.client.post(path, json=body, headers=world.alice)
            assert answer.status_code == 422, (path, address, answer.text)
            assert "valid e-mail address" in answer.json()["detail"][0]["msg"]
        form = {"csrf_token": csrf, "name": "Mum", "email": address}
        invited = browser.post("/friends", data=form)
        if "\x00" in address:  # no form field may hold one (PostgreSQL cannot store it)
            assert invited.status_code == 422
            continue
        assert invited.status_code == 422, address  # the dashboard again, saying why
        assert "valid e-mail address" in invited.context["form"].errors["email"]  # type: ignore[attr-defined]
        form = {"csrf_token": csrf_of(stranger, "/login"), "email": address, "password": PASSWORD}
        login = stranger.post("/login", data=form)
        assert login.status_code == 422, address
        assert "valid e-mail address" in login.context["form"].errors["email"]  # type: ignore[attr-defined]
    with Session(world.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        assert [f.email for f in session.exec(select(Friend)).all()] == ["dana@example.org"]
        assert len(session.exec(select(Owner)).all()) == 2  # no mail to anyone of these either


def test_it_stores_addresses_in_their_normal_form(world: World) -> None:
    mixed = {"email": "  Carol@Example.ORG \r\n", "password": PASSWORD, "name": "Carol"}
    assert world.client.post("/api/v1/auth/register", json=mixed).json()["email"] == (
        "carol@example.org"
    )
    friend = {"name": "Ann", "email": "Ann@Bücher.example"}
    added = world.client.post("/api/v1/friends", headers=world.alice, json=friend)
    assert added.json()["email"] == "ann@xn--bcher-kva.example"  # any mail relay takes it


# --- 5. headers on every answer -----------------------------------------------------------------


def test_it_sends_a_token_page_with_csp_and_no_store(world: World) -> None:
    page = world.client.get(f"/invite/{world.token}")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    api = world.client.get(f"/api/v1/invites/{world.token}/scans")
    assert api.headers["cache-control"] == "no-store"


def test_it_sends_logged_in_api_answers_with_no_store(world: World) -> None:
    answer = world.client.get("/api/v1/friends", headers=world.alice)
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in world.client.get("/static/style.css").headers
    assert "cache-control" not in world.client.get("/healthz").headers  # nobody's: cacheable


def test_no_page_holds_inline_script_or_style() -> None:
    """The CSP allows scripts and styles from our own files only: nothing inline would run."""
    templates = [p for p in (PROJECT / "web/templates").glob("*.html")]
    assert len(templates) > 10
    for template in templates:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\s(on\w+|style)=", text), template.name
        assert "<style" not in text and "javascript:" not in text, template.name


# --- 6. forms: same origin, and a CSRF token bound to the session ------------------------------


def test_it_refuses_a_form_posted_from_another_site(world: World) -> None:
    browser, csrf = world.page()
    form = {"csrf_token": csrf, "name": "Eve", "email": "eve@example.org"}
    for sent in (
        {"origin": "https://evil.example"},
        {"origin": "null"},  # a sandboxed frame, or a page with no-referrer
        {"origin": "http://testserver.evil.example"},
        {"referer": "https://evil.example/page"},  # no Origin: the Referer is looked at
    ):
        answer = browser.post("/friends", data=form, headers=sent)
        assert answer.status_code == 403, sent
        assert "another site" in answer.json()["detail"]
    own = browser.post("/friends", data=form, headers={"origin": "http://testserver"})
    assert own.status_code == 303 and "invited=" in own.headers["location"]


def test_it_refuses_a_csrf_token_made_for_another_session(world: World) -> None:
    alice, _ = world.page()
    bob, bobs = world.page("bob@example.org")
    alice.cookies.set("csrf", bobs)  # planted, say from a sibling subdomain
    form = {"csrf_token": bobs, "name": "Eve", "email": "eve@example.org"}
    assert alice.post("/friends", data=form).status_code == 403
    anonymous = csrf_of(TestClient(world.client.app), "/login")  # made for no session at all
    alice.cookies.set("csrf", anonymous)
    assert alice.post("/friends", data={**form, "csrf_token": anonymous}).status_code == 403
    assert bob.post("/friends", data=form).status_code == 303  # bob's own still works
    assert bob.post("/friends", data={**form, "csrf_token": "é"}).status_code == 403  # not a 500


# --- 7. fetching: no private address hidden inside an IPv6 one ---------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", False),  # NAT64 even of a public one: the translator goes anywhere
        ("64:ff9b:1::a9fe:a9fe", False),  # local-use NAT64 of 169.254.169.254
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("::a9fe:a9fe", False),  # IPv4-compatible 169.254.169.254
        ("::c0a8:101", False),  # IPv4-compatible 192.168.1.1
        ("::ffff:0:a00:1", False),  # IPv4-translated 10.0.0.1
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:808:808", True),
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", True),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo, client 10.0.0.1
        ("::1", False),
        ("::", False),
        ("2606:4700:4700::1111", True),
        ("8.8.8.8", True),
    ],
)
def test_it_judges_an_ipv6_address_by_the_ipv4_inside(address: str, public: bool) -> None:
    assert is_public_address(address) is public


# --- 2 and 1 against a real server: proxies, and bodies refused before they arrive -------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serving(tmp_path_factory.mktemp("served"), trusted_proxies="") as url:
        yield url


class _serving:
    """`photo-removal serve` on a free loopback port, as an operator starts it."""

    def __init__(self, folder: Path, trusted_proxies: str) -> None:
        settings = make_settings(folder)
        self.fleet = Fleet(settings, folder / "serve.log")
        self.trusted = trusted_proxies

    def __enter__(self) -> str:
        env = self.fleet.env()
        env["PHOTO_REMOVAL_TRUSTED_PROXIES"] = self.trusted
        self.fleet.env = lambda: env  # type: ignore[method-assign]
        port = free_port()
        self.proc = self.fleet.start("serve", "--port", str(port))
        self.url = f"http://127.0.0.1:{port}"
        until(lambda: _answers(self.url) or self.proc.poll() is not None, 60, "serve")
        assert self.proc.poll() is None, self.fleet.tail()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _log_ins(url: str, email: str) -> list[int]:
    register = {"email": email, "password": PASSWORD, "name": "Victim"}
    assert httpx.post(f"{url}/api/v1/auth/register", json=register).status_code == 201
    return [
        httpx.post(
            f"{url}/api/v1/auth/token",
            json={"email": email, "password": f"guess number {n}"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(12)
    ]


def test_it_rate_limits_log_ins_whatever_x_forwarded_for_says(served: str) -> None:
    answers = _log_ins(served, "victim@example.org")
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]


def test_it_believes_x_forwarded_for_from_a_trusted_proxy(tmp_path: Path) -> None:
    with _serving(tmp_path, trusted_proxies="127.0.0.1") as url:
        assert _log_ins(url, "proxied@example.org") == [401] * 12  # twelve clients, one try each


def _raw(url: str, request: bytes, then: list[bytes]) -> bytes:
    """Send a request by hand; return the answer (it must come within 10 s)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        for part in then:
            try:
                connection.sendall(part)
            except OSError:  # the server answered and closed: the rest is not read
                break
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
        return answer


def test_the_server_refuses_a_huge_declared_body_before_it_arrives(served: str) -> None:
    head = (
        b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    answer = _raw(served, head, [b'{"email": "'])  # the other 300 MB never come
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert answer.endswith(b'{"detail":"the request is larger than the limit of 64 KB"}')


def test_the_server_refuses_an_endless_chunked_body(served: str) -> None:
    head = (
        b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    answer = _raw(served, head, [chunk] * 8)  # 128 KB, and no last chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"64 KB" in answer


def test_it_rate_limits_sign_ups_from_one_address(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, registrations_per_hour=3)
    with TestClient(create_app(settings, consume=False)) as client:
        answers = [
            client.post(
                "/api/v1/auth/register",
                json={"email": f"o{n}@example.org", "password": PASSWORD, "name": f"O{n}"},
            )
            for n in range(4)
        ]
        assert [a.status_code for a in answers] == [201, 201, 201, 429]
        assert int(answers[-1].headers["Retry-After"]) > 0
        browser = TestClient(client.app, follow_redirects=False)
        form = {"name": "P", "email": "p@example.org", "password": PASSWORD}
        page = browser.post("/signup", data={**form, "csrf_token": csrf_of(browser, "/signup")})
        assert page.status_code == 429 and page.template.name == "signup.html"  # type: ignore[attr-defined]
        with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
            assert len(session.exec(select(Owner)).all()) == 3
