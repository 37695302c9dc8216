"""The hub's login in a real browser: Debian's Chromium driven by Playwright, password then one-time code.

A screenshot of the page is saved under test-artifacts/screenshots/ when the test fails. Chromium
comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it), not from Playwright's
download, which this network does not reach.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.fixtures.hub import HubUnderTest
from tests.fixtures.service import People

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


@pytest.fixture
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def test_a_person_signs_in_to_the_hub_with_password_and_one_time_code(
    hub: HubUnderTest, people: People, page: Page
) -> None:
    account = people.accounts["lead"]
    page.goto(f"{hub.url}/hub/oauth_login")
    page.wait_for_selector("#kc-form-login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("#kc-login")
    page.wait_for_selector("#kc-otp-login-form")
    page.fill("#otp", people.fresh_code("lead"))
    page.click("#kc-login")
    page.wait_for_url(f"{hub.url}/hub/**", timeout=30_000)
    assert "/hub/" in page.url
    assert account.username in page.content()
