"""axe-core in the browser, on every kind of mail (each in each of its branches) and on the pages
anyone can open, on a desktop and a phone: 0 violations. axe-core's script comes inside the
axe-playwright-python wheel, so nothing is fetched. The journeys' pages behind a log-in or a link
are next (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.e2e import test_journey as first_journey
from tests.e2e.test_journey import DESKTOP, PHONE, Server
from tests.notify.test_mail_templates import _cases, _rendered

pytestmark = pytest.mark.slow

server = first_journey.server
browser = first_journey.browser

AXE = Axe()


def _violations(page: Page) -> list[str]:
    results = AXE.run(page)
    return [f"{v['id']}: {v['help']}" for v in results.response["violations"]]


@pytest.fixture(scope="module")
def page(browser: Browser) -> Page:
    return browser.new_context(viewport=DESKTOP).new_page()


@pytest.mark.parametrize(("kind", "overrides"), _cases())
def test_each_mail_has_no_axe_violation(page: Page, kind: str, overrides: dict[str, Any]) -> None:
    page.set_content(_rendered(kind, overrides).html)
    assert _violations(page) == []


@pytest.mark.parametrize("path", ["/", "/login", "/signup", "/invite/not-a-real-link"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_each_open_page_has_no_axe_violation(
    page: Page, server: Server, path: str, viewport: Any
) -> None:
    page.set_viewport_size(viewport)
    page.goto(server.url + path)
    assert _violations(page) == []
