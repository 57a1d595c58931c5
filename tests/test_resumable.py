"""Big exports arrive in pieces: resumable uploads by the tus protocol, cut off at half and
resumed on a real connection, and the parts of a split Takeout sent together, each scanned as
one export with the same matches as the plain upload of the whole."""
# ruff: noqa: F401, F811 (the ingest tests' fixtures, imported, are parameters here)

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from service.resumable import OPEN_AT_ONCE
from tests import friend_exports as exports
from tests.friend_exports import Photos
from tests.ingest.builders import Files, write_zip
from tests.test_ingest_api import (
    Scanned,
    Service,
    finished,
    invite,
    photos,
    provenance,
    service,
    upload,
)

TUS = {"Tus-Resumable": "1.0.0"}
BYTES = {**TUS, "Content-Type": "application/offset+octet-stream"}


def start(service: Service, token: str, data: bytes, filename: str) -> str:
    """A new resumable upload of `data`'s length; its URL."""
    name = base64.b64encode(filename.encode()).decode()
    created = service.client.post(
        f"/api/v1/invites/{token}/uploads",
        headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["Tus-Resumable"] == "1.0.0"
    return created.headers["Location"]


def offset(service: Service, url: str) -> int:
    answer = service.client.head(url, headers=TUS)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    return int(answer.headers["Upload-Offset"])


def send(service: Service, url: str, data: bytes, at: int = 0) -> None:
    """The rest of the file from `at`, in one PATCH, as a tus client sends it."""
    sent = service.client.patch(url, content=data[at:], headers={**BYTES, "Upload-Offset": str(at)})
    assert sent.status_code == 204, sent.text
    assert sent.headers["Upload-Offset"] == str(len(data))


def scan_uploads(service: Service, friend_id: int, token: str, urls: list[str]) -> Scanned:
    keys = [url.rsplit("/", 1)[1] for url in urls]
    queued = service.client.post(f"/api/v1/invites/{token}/exports", json={"uploads": keys})
    assert queued.status_code == 202, queued.text
    return finished(service, friend_id, token, queued.json()["scan_id"])


def found(scanned: Scanned) -> dict[str, tuple[Any, ...]]:
    assert scanned.scan["status"] == "done", scanned.scan
    return {photo: provenance(match) for photo, match in scanned.matches.items()}


@contextmanager
def on_the_wire(app: FastAPI) -> Iterator[int]:
    """The running app (its services started by the test client) served on a loopback port
    too, for what only a real connection does: drop in the middle of a body."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def cut_off_at_half(service: Service, port: int, url: str, data: bytes) -> None:
    """A PATCH announcing the whole file whose connection drops after half of it."""
    half = len(data) // 2
    head = (
        f"PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as wire:
        wire.sendall(head + data[:half])
        deadline = time.monotonic() + 20
        while offset(service, url) < half and time.monotonic() < deadline:
            time.sleep(0.05)
        assert offset(service, url) == half  # every byte that arrived is on disk


def resume(service: Service, url: str, data: bytes) -> None:
    """HEAD, then the rest: as soon as the server has noticed the drop (the cut-off PATCH
    holds the upload until then, and a second one meanwhile is told 409)."""
    deadline = time.monotonic() + 20
    while True:
        at = offset(service, url)
        sent = service.client.patch(
            url, content=data[at:], headers={**BYTES, "Upload-Offset": str(at)}
        )
        if sent.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sent.status_code == 204, sent.text
    assert sent.headers["Upload-Offset"] == str(len(data))


def test_an_upload_cut_off_at_half_resumes_and_finds_what_a_plain_upload_finds(
    service: Service, photos: Photos
) -> None:
    archive = write_zip(service.folder / "resume.zip", exports.facebook_2024(photos)).read_bytes()
    plain = upload(service, "Plain", exports.facebook_2024(photos), "facebook.zip")
    friend_id, token = invite(service, "Resumer")
    url = start(service, token, archive, "facebook.zip")
    assert offset(service, url) == 0
    with on_the_wire(service.client.app) as port:  # type: ignore[arg-type]
        cut_off_at_half(service, port, url, archive)
    resume(service, url, archive)
    resumed = scan_uploads(service, friend_id, token, [url])
    assert found(resumed) == found(plain) and len(found(plain)) == 2
    assert resumed.scan["photos_total"] == plain.scan["photos_total"]
    sources = service.client.get(f"/api/v1/invites/{token}/scans").json()
    assert [s["id"] for s in sources] == [resumed.scan["id"]]
    assert not list(service.folder.rglob("tus-*"))  # the upload went with its scan


def split(files: Files, first: set[str]) -> tuple[Files, Files]:
    return (
        {name: data for name, data in files.items() if name in first},
        {name: data for name, data in files.items() if name not in first},
    )


def test_a_takeout_in_two_parts_sent_together_is_scanned_as_one(
    service: Service, photos: Photos
) -> None:
    whole = exports.google_takeout(photos)
    # The photos in the first part, the JSON that describes them in the second, as Takeout does.
    one, two = split(whole, {name for name in whole if name.endswith(".jpg")})
    parts = [
        write_zip(service.folder / f"takeout-20261205T1-00{n}.zip", files).read_bytes()
        for n, files in ((1, one), (2, two))
    ]
    plain = upload(service, "Whole", whole, "takeout.zip")
    assert plain.matches[f"{exports.TAKEOUT_YEAR}/IMG_20190111_231110.jpg"]["caption"]

    # Both parts in one form, as the page without JavaScript sends them.
    friend_id, token = invite(service, "Parts")
    queued = service.client.post(
        f"/api/v1/invites/{token}/exports",
        files=[
            ("file", (f"takeout-00{n}.zip", data, "application/zip"))
            for n, data in enumerate(parts, start=1)
        ],
    )
    assert queued.status_code == 202, queued.text
    together = finished(service, friend_id, token, queued.json()["scan_id"])
    assert found(together) == found(plain)
    [listed] = service.client.get(f"/api/v1/invites/{token}/scans").json()
    assert listed["photos_total"] == plain.scan["photos_total"]

    # Both parts by tus, then scanned as one.
    friend_id, token = invite(service, "TusParts")
    urls = [start(service, token, data, f"takeout-00{n}.zip") for n, data in enumerate(parts, 1)]
    for url, data in zip(urls, parts, strict=True):
        send(service, url, data)
    assert found(scan_uploads(service, friend_id, token, urls)) == found(plain)


def test_it_speaks_tus(service: Service) -> None:
    _, token = invite(service, "Protocol")
    base = f"/api/v1/invites/{token}/uploads"
    options = service.client.options(base)
    assert options.status_code == 204
    assert options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) >= {"creation", "termination"}
    assert int(options.headers["Tus-Max-Size"]) > 0

    no_version = service.client.post(base, headers={"Upload-Length": "10"})
    assert no_version.status_code == 412 and no_version.headers["Tus-Version"] == "1.0.0"

    archive = b"PK\x03\x04" + bytes(2000)
    url = start(service, token, archive, "x.zip")
    wrong_place = service.client.patch(
        url, content=archive[5:], headers={**BYTES, "Upload-Offset": "5"}
    )
    assert wrong_place.status_code == 409
    not_bytes = service.client.patch(
        url, content=archive, headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"}
    )
    assert not_bytes.status_code == 415
    too_much = service.client.patch(
        url, content=archive + b"more", headers={**BYTES, "Upload-Offset": "0"}
    )
    assert too_much.status_code == 413
    unfinished = service.client.post(
        f"/api/v1/invites/{token}/exports", json={"uploads": [url.rsplit("/", 1)[1]]}
    )
    assert unfinished.status_code == 409
    assert service.client.delete(url, headers=TUS).status_code == 204
    assert service.client.head(url, headers=TUS).status_code == 404

    too_big = service.client.post(base, headers={**TUS, "Upload-Length": str(2**50)})
    assert too_big.status_code == 413


def test_it_refuses_what_is_no_archive_as_soon_as_it_shows(service: Service) -> None:
    _, token = invite(service, "Pictures")
    data = b"\xff\xd8\xff\xe0" + bytes(4000)  # a JPEG, not an export
    url = start(service, token, data, "me.jpg")
    first = service.client.patch(url, content=data[:1000], headers={**BYTES, "Upload-Offset": "0"})
    assert first.status_code == 415
    assert "not a ZIP or TAR" in first.json()["detail"]
    assert service.client.head(url, headers=TUS).status_code == 404  # nothing of it is kept


def test_a_friend_has_only_their_own_uploads(service: Service) -> None:
    _, token = invite(service, "Uploader")
    _, other = invite(service, "Other")
    _, waiting = invite(service, "Waiter", accept=False)
    data = b"PK\x03\x04" + bytes(100)
    url = start(service, token, data, "a.zip")
    key = url.rsplit("/", 1)[1]
    elsewhere = f"/api/v1/invites/{other}/uploads/{key}"
    assert service.client.head(elsewhere, headers=TUS).status_code == 404
    assert service.client.delete(elsewhere, headers=TUS).status_code == 404
    taken = service.client.post(f"/api/v1/invites/{other}/exports", json={"uploads": [key]})
    assert taken.status_code == 404
    before_consent = service.client.post(
        f"/api/v1/invites/{waiting}/uploads", headers={**TUS, "Upload-Length": "10"}
    )
    assert before_consent.status_code == 403
    dead = service.client.post(
        "/api/v1/invites/not-a-token/uploads", headers={**TUS, "Upload-Length": "10"}
    )
    assert dead.status_code == 404


def test_withdrawing_deletes_an_upload_still_arriving(service: Service) -> None:
    _, token = invite(service, "Withdrawer")
    data = b"PK\x03\x04" + bytes(5000)
    url = start(service, token, data, "half.zip")
    half = service.client.patch(url, content=data[:2500], headers={**BYTES, "Upload-Offset": "0"})
    assert half.status_code == 204 and half.headers["Upload-Offset"] == "2500"
    key = url.rsplit("/", 1)[1]
    assert list(service.folder.rglob(f"tus-{key}"))
    withdrawn = service.client.post(f"/api/v1/invites/{token}/consent", json={"accept": False})
    assert withdrawn.status_code == 200
    assert not list(service.folder.rglob(f"tus-{key}"))


def test_a_friend_may_leave_only_so_many_uploads_unfinished(service: Service) -> None:
    _, token = invite(service, "Hoarder")
    for _ in range(OPEN_AT_ONCE):
        start(service, token, b"PK\x03\x04", "a.zip")
    refused = service.client.post(
        f"/api/v1/invites/{token}/uploads", headers={**TUS, "Upload-Length": "4"}
    )
    assert refused.status_code == 409


@pytest.mark.parametrize("keys", [[], ["a", "a"]])
def test_it_wants_each_finished_upload_named_once(service: Service, keys: list[str]) -> None:
    _, token = invite(service, "Namer")
    answer = service.client.post(f"/api/v1/invites/{token}/exports", json={"uploads": keys})
    assert answer.status_code == 422
    assert isinstance(answer.json()["detail"], (str, list))
