"""Remote enrollment in a real browser: Debian's Chromium driven by Playwright, from the link to a two-factor login.

The service runs as a process (``live_enroll_service``), Keycloak is the session's, and both
e-mails (the invitation, then Keycloak's action link) are caught by the test mailbox. Each page is
screenshotted into ``test-artifacts/screenshots/enroll-*.png`` (kept out of git); on failure the
last page is saved too.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pyotp
import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People
from tests.support.keycloak_actions import action_link, totp_for
from tests.support.mailbox import Mailbox, text_of

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
    context = browser.new_context(locale="fr-FR")
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"enroll-{name}.png"), full_page=True)


def set_two_factors(page: Page, link: str) -> tuple[str, pyotp.TOTP, int]:
    """Follow Keycloak's action link: a password, then a TOTP app; end back on the service's pages."""
    page.goto(link)
    password_or_info = page.locator("#password-new").or_(page.locator("a[href*='login-actions']"))
    password_or_info.first.wait_for()
    if not page.locator("#password-new").is_visible():
        page.locator("a[href*='login-actions']").first.click()
        page.wait_for_selector("#password-new")
    password = "Grace-" + secrets.token_urlsafe(12)
    page.fill("#password-new", password)
    page.fill("#password-confirm", password)
    page.locator("#kc-passwd-update-form [type=submit]").click()
    page.wait_for_selector("#kc-totp-settings-form")
    shot(page, "4-keycloak-totp")
    totp = totp_for(page.locator("input[name=totpSecret]").input_value())
    used_step = int(time.time() // 30)
    page.fill("#totp", totp.now())
    page.fill("#userLabel", "phone")
    page.locator("#kc-totp-settings-form [type=submit]").click()
    back = page.locator("#finish-form, h1:has-text('Enrollment complete'), a[href*='/done']")
    back.first.wait_for(timeout=30_000)
    if page.locator("a[href*='/done']").count():  # Keycloak's "back to application" info page
        page.locator("a[href*='/done']").first.click()
    return password, totp, used_step


def test_a_person_enrolls_in_chromium_and_signs_in_with_two_factors(
    live_enroll_service: LiveEnrollService, people: People, keycloak: KeycloakServer, mailbox: Mailbox, page: Page
) -> None:
    service = live_enroll_service
    staff = people.headers("staff")
    created = requests.post(
        f"{service.api}/projects", json={"id": "panel", "title": "Household panel"}, headers=staff, timeout=30
    )
    assert created.status_code == 201, created.text
    email = f"grace.{secrets.token_hex(3)}@example.org"
    invited = requests.post(
        f"{service.api}/enrollments",
        json={"email": email, "first_name": "Grace", "last_name": "Hopper", "project": "panel", "role": "lead"},
        headers=staff,
        timeout=30,
    )
    assert invited.status_code == 201, invited.text
    username = invited.json()["enrollment"]["username"]
    (invitation,) = mailbox.wait_for(email)
    link = invited.json()["link"]
    assert link in text_of(invitation)

    # The invitation page, in French, with the current address proposed; then in English.
    page.goto(link)
    assert page.locator("h1").inner_text() == "Inscription à INFRACALC"
    assert "Household panel" in page.locator("#invitation").inner_text()
    assert page.locator("#networks").input_value() == "127.0.0.1/32"
    page.click("#language-switch")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("h1").inner_text() == "Enrolling in INFRACALC"
    shot(page, "1-invitation")
    # A too-wide network is refused next to the field, keeping what was typed.
    page.fill("#networks", "203.0.0.0/15")
    page.check("#accept")
    page.click("#confirm")
    page.wait_for_selector("#networks-error")
    assert "/16 at widest" in page.locator("#networks-error").inner_text()
    assert page.locator("#networks").input_value() == "203.0.0.0/15"
    shot(page, "2-refused-network")
    # Networks that leave out where the browser is: said first, confirmed only when asked again.
    page.fill("#networks", "203.0.113.0/24")
    page.check("#accept")
    page.click("#confirm")
    page.wait_for_selector("#confirm-outside")
    page.click("#save-outside")
    page.wait_for_selector("#finish-form")
    shot(page, "3-mailbox")

    # Keycloak's own pages: password, then TOTP with the QR code; then back to the service.
    keycloak_mail = mailbox.wait_for(email, count=2)[1]
    password, totp, used_step = set_two_factors(page, action_link(text_of(keycloak_mail)))
    page.wait_for_selector("h1:has-text('Enrollment complete')")
    assert username in page.locator("#message").inner_text()
    shot(page, "5-done")

    # A login with password and TOTP yields acr mfa.
    while int(time.time() // 30) <= used_step:
        time.sleep(1)
    result = keycloak.browser("jupyterhub").login(username, password, totp.now())
    claims = jwt.decode(result.tokens.id_token, options={"verify_signature": False})
    assert claims["acr"] == "mfa"
    members = requests.get(f"{service.api}/projects/panel", headers=staff, timeout=30).json()["members"]
    assert any(m["username"] == username and m["role"] == "lead" for m in members)
