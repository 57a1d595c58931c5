"""The official tus client in a real browser: a friend chooses both parts of a split export on
the share page; the connection drops in the middle of the big part, and tus-js-client asks where
the upload stands and sends only the rest; the parts are scanned as one export."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Request, Route, expect

from tests.e2e import test_journey as first_journey
from tests.e2e.test_circle_journey import _owner
from tests.e2e.test_journey import DESKTOP, Server
from tests.pages_support import EXPORT_PHOTOS, OBAMA, build_export, face_photo

pytestmark = pytest.mark.slow

server = first_journey.server
browser = first_journey.browser

CHUNK = 32 * 1024 * 1024  # the page's chunk size (web/static/app.js)


def _big_part(folder: Path) -> Path:
    """The second part of a download: a video bigger than one chunk, stored as it is."""
    part = folder / "takeout-002.zip"
    with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("Takeout/Google Photos/Photos from 2021/VID_0001.mp4", os.urandom(CHUNK + 2**20))
    return part


def test_a_split_export_survives_a_dropped_connection_with_the_official_client(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as api:
        alice = _owner(api, server, "alice@example.org", "Alice", None)
        reference = face_photo(OBAMA).read_bytes()
        enrolled = api.post(
            "/api/v1/reference-photos", headers=alice, files={"file": ("me.jpg", reference)}
        )
        assert enrolled.status_code == 201, enrolled.text
        invited = api.post(
            "/api/v1/friends", headers=alice, json={"name": "Rosa", "email": "rosa@example.org"}
        )
        token = invited.json()["invite_url"].rsplit("/", 1)[1]
        assert api.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).is_success

    parts = [build_export(tmp_path, EXPORT_PHOTOS), _big_part(tmp_path)]
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(30_000)
    seen: list[tuple[str, str]] = []
    page.on("request", lambda r: seen.append((r.method, r.headers.get("upload-offset", ""))))
    cut: list[str] = []

    def drop_the_second_chunk_once(route: Route, request: Request) -> None:
        offset = request.headers.get("upload-offset", "0")
        if request.method == "PATCH" and offset != "0" and not cut:
            cut.append(offset)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/uploads/**", drop_the_second_chunk_once)
    page.goto(f"{server.url}/invite/{token}/share")
    page.get_by_label("Your download (ZIP or TAR file").set_input_files(parts)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-message")).to_contain_text("Uploaded.", timeout=90_000)

    assert cut == [str(CHUNK)]  # the big part's second piece was lost once...
    after = seen[seen.index(("PATCH", str(CHUNK))) + 1 :]
    assert ("HEAD", "") in after  # ...the client asked where the upload stood...
    assert after.count(("PATCH", str(CHUNK))) == 1  # ...and sent that piece again, not all
    assert [method for method, _ in seen].count("PATCH") == 4  # part 1; part 2 in 2, one again

    done = page.locator(".scan--done")
    expect(done).to_be_visible(timeout=60_000)
    expect(done).to_contain_text("4 of 4 photos")  # both parts, one scan
    expect(done).to_contain_text("Found 2 photos")
    expect(page.locator(".scan")).to_have_count(1)
    assert not list((server.data_dir / "quarantine").glob("*"))  # nothing kept after the scan
