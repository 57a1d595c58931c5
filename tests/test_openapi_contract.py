"""/openapi.json tells the truth: schemathesis calls every operation of the JSON API in-process,
as a confirmed owner with a friend's real invitation, and checks each answer against the document:
no 5xx, every status declared, bodies and content types as declared, requests that break the
schema refused, and methods a path does not take answered 405 with its true `Allow`.

Bounded and reproducible: a few examples per operation, derandomized from a fixed seed, no
example database; 25 to 40 s on two cores."""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from starlette.types import ASGIApp, Receive, Scope, Send

from service.app import create_app, routed_app
from tests.conftest import make_settings
from tests.test_api_journey import owner_token
from tests.test_authorization import _alice_match, _people

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20240901,
        "suppress-health-check": ["too_slow"],  # a busy machine is no failure of the API
        "generation": {"max-examples": 4, "deterministic": True, "database": "none"},
        # A well-formed request may still be refused with 422, as API.md says (a photo with no
        # face, a link that cannot be read, a checklist with nothing confirmed).
        "checks": {"positive_data_acceptance": {"enabled": False}},
    }
)


class AppUnderTest:
    """What schemathesis calls: the contract fixture's app, made after the document was read."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the contract fixture makes the app"
        await self.app(scope, receive, send)


APP = AppUnderTest()
schema = schemathesis.openapi.from_dict(routed_app().openapi(), config=CONFIG)
schema.app = APP
# The log-in of the cases that schemathesis logs in (not those testing a missing or wrong one),
# exchanged for the case's owner's in Contract.prepare.
LOGGED_IN = "Bearer (the owner's, given just before the call)"


@schema.auth()
class LoggedIn:
    def get(self, case: Any, context: Any) -> str:
        return LOGGED_IN

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


# Operations that end the caller's account or invitation, or delete what the friend shared: they
# get a spare owner and friend, so that alice and her objects stay for the other operations.
DESTRUCTIVE = {
    ("DELETE", "/api/v1/me"),
    ("POST", "/api/v1/invites/{token}/report"),
    ("POST", "/api/v1/invites/{token}/consent"),
    ("DELETE", "/api/v1/friends/{friend_id}"),
    ("POST", "/api/v1/friends/{friend_id}/resend"),
}
ROW_IDS = range(1, 2**31)


@dataclass
class Pair:
    """An owner's log-in, and a friend of theirs who accepted."""

    headers: dict[str, str]
    friend_id: int
    token: str


@dataclass
class Contract:
    client: TestClient
    alice: Pair
    match_id: int
    spare: Pair | None = None
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def prepare(self, case: Any) -> None:
        """Log the case in and give it a live invitation; a valid friend id of a destructive
        case is the spare friend's, so that deleting or re-inviting them is reached too."""
        pair, parameters = self.alice, case.path_parameters or {}
        if (case.method.upper(), case.path) in DESTRUCTIVE:
            pair = self.spare_pair()
            friend_id = parameters.get("friend_id")
            if type(friend_id) is int and friend_id in ROW_IDS:
                parameters["friend_id"] = pair.friend_id
        if (case.headers or {}).get("Authorization") == LOGGED_IN:
            case.headers.update(pair.headers)
        if "token" in parameters:
            parameters["token"] = pair.token
        if "/checklist" in case.path:  # alice's match is on Dana's checklist while confirmed
            review = {"decision": "confirmed"}
            url = f"/api/v1/matches/{self.match_id}/review"
            assert self.client.post(url, headers=self.alice.headers, json=review).is_success

    def spare_pair(self) -> Pair:
        if self.spare is None or not self.usable(self.spare):
            self.spare = self.pair()
        return self.spare

    def pair(self) -> Pair:
        n = next(self.numbers)
        headers = owner_token(self.client, f"spare{n}@example.org", f"Spare {n}")
        friend = self.client.post(
            "/api/v1/friends",
            headers=headers,
            json={"name": f"Friend {n}", "email": f"friend{n}@example.org"},
        )
        assert friend.status_code == 201, friend.text
        token = friend.json()["invite_url"].rsplit("/", 1)[1]
        return self.accepted(Pair(headers, friend.json()["id"], token))

    def accepted(self, pair: Pair) -> Pair:
        answer = self.client.post(f"/api/v1/invites/{pair.token}/consent", json={"accept": True})
        assert answer.status_code == 200, answer.text
        return pair

    def usable(self, pair: Pair) -> bool:
        me = self.client.get("/api/v1/me", headers=pair.headers)
        scans = self.client.get(f"/api/v1/invites/{pair.token}/scans")
        return me.status_code == 200 and not me.json()["frozen"] and scans.status_code == 200


RESOLVE = socket.getaddrinfo


def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Profile links are fuzzed: a name or address off this machine resolves to nothing, so no
    generated link can reach the internet."""
    if str(host) in ("127.0.0.1", "::1", "localhost"):
        return RESOLVE(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "no internet in this test")


@pytest.fixture(scope="module")
def contract(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contract]:
    settings = make_settings(
        tmp_path_factory.mktemp("contract"),
        invitations_per_hour=10**6,
        login_attempts_per_15min=10**6,
        registrations_per_hour=10**6,
    )
    with (
        pytest.MonkeyPatch.context() as patch,
        TestClient(create_app(settings, consume=False)) as client,
    ):
        patch.setattr(socket, "getaddrinfo", loopback_only)
        world = _people(client, faces_dir)
        _alice_match(world)
        ids = world.ids
        alice = Pair(world.alice, int(ids["alice_friend"]), str(ids["alice_token"]))
        contract = Contract(client, alice, int(ids["alice_match"]))
        contract.accepted(alice)
        APP.app = client.app
        yield contract
        shutdown_lifespans()  # schemathesis started the app's lifespan for its own calls
        APP.app = None


def test_it_serves_the_document_under_test(contract: Contract) -> None:
    document = contract.client.get("/openapi.json").json()
    assert document == routed_app().openapi()
    # Every 422 is declared as the app sends it (openapi.errors), none in FastAPI's own shape,
    # which has `input` and no sentence.
    assert "HTTPValidationError" not in document["components"]["schemas"]


@schema.parametrize()
def test_it_answers_as_its_openapi_document_says(case: Any, contract: Contract) -> None:
    contract.prepare(case)
    case.call_and_validate()


def test_it_answers_head_as_get_and_names_every_method_of_a_path_in_allow(
    contract: Contract,
) -> None:
    """HEAD (which schemathesis does not send) is GET without the body; a method the path does
    not take is a 405 whose `Allow` names exactly the methods the document declares for it."""
    alice = contract.alice
    for path, operations in routed_app().openapi()["paths"].items():
        url = re.sub(r"\{\w+_id\}", "1", path).replace("{token}", alice.token)
        declared = {method.upper() for method in operations}
        allow = declared | ({"HEAD"} if "GET" in declared else set())
        options = contract.client.options(url, headers=alice.headers)
        assert options.status_code == 405, url
        assert set(options.headers["allow"].split(", ")) == allow, url
        head = contract.client.head(url, headers=alice.headers)
        if "GET" in declared:
            get = contract.client.get(url, headers=alice.headers)
            assert (head.status_code, head.content) == (get.status_code, b""), url
            assert head.headers["content-type"] == get.headers["content-type"], url
        else:
            assert (head.status_code, head.headers["allow"]) == (405, options.headers["allow"])


def test_it_refuses_a_broken_export_form_without_a_server_error(contract: Contract) -> None:
    """The export is parsed as it streams in; the parser's error on a broken form was a 500."""
    quarantine = contract.client.app.state.services.settings.quarantine_dir  # type: ignore[attr-defined]
    before = sorted(quarantine.iterdir())
    for body in (b"not a form", b"--y\r\nanother boundary", b"--x\r\n\n"):
        answer = contract.client.post(
            f"/api/v1/invites/{contract.alice.token}/exports",
            content=body,
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert answer.status_code == 422, (body, answer.text)
    assert sorted(quarantine.iterdir()) == before  # nothing of the broken uploads is kept
