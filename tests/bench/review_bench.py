"""`make bench`, review half: does a friend page with 2,000 matches open as fast as one with 20?

Run: uv run python tests/bench/review_bench.py [--sizes 20 2000]
For each size, builds a data dir (one owner, one friend, N matches in five look-alike groups and a
few with no group, small real JPEG thumbnails written straight to the database), starts
`photo-removal serve` on 127.0.0.1, logs in with Chromium (Playwright) and opens the friend page
on a desktop (1280x800) and a phone (390x844). Prints one table: time to the first card visible,
bytes transferred (sum of response bodies), DOM nodes and page height.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from playwright.sync_api import Browser, Page, Response, sync_playwright

from service.config import Settings
from tests.review_world import PASSWORD, build

CHROMIUM = "/usr/bin/chromium"
SCREENS = {"desktop": (1280, 800), "phone": (390, 844)}
UNGROUPED = 10


@dataclass
class Row:
    matches: int
    screen: str
    first_card_ms: float
    kilobytes: float
    dom_nodes: int
    height_px: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_REMOVAL_")}
    env |= {"PHOTO_REMOVAL_DATA_DIR": str(data_dir), "PHOTO_REMOVAL_BASE_URL": url}
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    _stop(process)
    sys.exit(f"the server did not start; see {data_dir / 'server.log'}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("E-mail address").fill("alice@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")


def _measure(browser: Browser, url: str, friend_id: int, matches: int, screen: str) -> Row:
    width, height = SCREENS[screen]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    _log_in(page, url)
    sizes: list[int] = []

    def count(response: Response) -> None:
        with contextlib.suppress(Exception):  # a redirect has no body to count
            sizes.append(len(response.body()))

    page.on("response", count)
    start = time.perf_counter()
    page.goto(f"{url}/friends/{friend_id}", wait_until="commit")
    page.locator("[data-review-card]").first.wait_for(state="visible")
    first_card = (time.perf_counter() - start) * 1000
    page.wait_for_load_state("networkidle")
    nodes = page.evaluate("document.getElementsByTagName('*').length")
    page_height = page.evaluate("document.documentElement.scrollHeight")
    context.close()
    return Row(matches, screen, first_card, sum(sizes) / 1024, nodes, page_height)


def _run(browser: Browser, matches: int, work: Path) -> list[Row]:
    data_dir = work / f"n{matches}"
    data_dir.mkdir(parents=True)
    world = build(
        Settings(data_dir=data_dir, base_url="http://127.0.0.1"),
        matches=matches,
        groups=5,
        ungrouped=min(UNGROUPED, matches // 2),
    )
    process, url = _serve(data_dir)
    try:
        _measure(browser, url, world.friend_ids[0], matches, "desktop")  # warm the server up
        return [_measure(browser, url, world.friend_ids[0], matches, s) for s in SCREENS]
    finally:
        _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 2000])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="review-bench-"))
    rows: list[Row] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            for matches in args.sizes:
                rows += _run(browser, matches, work)
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{'matches':>8} {'screen':<8} {'first card':>11} {'transferred':>12} "
        f"{'DOM nodes':>10} {'page height':>12}"
    )
    for r in rows:
        print(
            f"{r.matches:>8} {r.screen:<8} {r.first_card_ms:>8.0f} ms {r.kilobytes:>9.0f} KB "
            f"{r.dom_nodes:>10} {r.height_px:>9} px"
        )


if __name__ == "__main__":
    main()
