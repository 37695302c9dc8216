"""Offboarding in a real browser: CASD staff confirm a person's departure; the person's console and login stop.

Debian's Chromium driven by Playwright, signing in through the real Keycloak, against the service as a
process (``live_enroll_service``). Screenshots go to ``test-artifacts/screenshots/console-offboard-*.png``.
"""

from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from infracalc.identity import DemoAccount
from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People
from tests.integration.web.test_console_browser import contexts, new_page, shot, sign_in
from tests.integration.web.test_enroll_browser import browser

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # the fixtures, shared with the other browser tests


def sign_in_as(page: Page, account: DemoAccount) -> None:
    """Keycloak's login form, for an account outside the shared cast."""
    page.wait_for_selector("#kc-form-login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.locator("#kc-form-login [type=submit]").click()
    page.wait_for_selector("#kc-otp-login-form")
    page.fill("#otp", account.totp().now())
    page.locator("#kc-otp-login-form [type=submit]").click()


def test_staff_offboard_a_person_who_is_then_signed_out_and_cannot_sign_in_again(
    live_enroll_service: LiveEnrollService,
    people: People,
    keycloak: KeycloakServer,
    browser: Browser,
    contexts: list[BrowserContext],
) -> None:
    service, staff_headers = live_enroll_service, people.headers("staff")
    account = keycloak.add_account("leaver")
    created = requests.post(
        f"{service.api}/projects",
        json={"id": "leaving", "title": "Leaving project", "governance": "INFRACALC"},
        headers=staff_headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    added = requests.put(
        f"{service.api}/projects/leaving/members/{account.username}",
        json={"role": "member"},
        headers=staff_headers,
        timeout=30,
    )
    assert added.status_code == 200, added.text

    # The person is signed in to the console and sees their project.
    leaver = new_page(browser, contexts)
    leaver.goto(f"{service.url}/?lang=en")
    sign_in_as(leaver, account)
    leaver.wait_for_selector("text=Leaving project")

    # CASD staff: a short reason is refused next to its field, then the confirmation says what stops.
    staff = new_page(browser, contexts)
    staff.goto(f"{service.url}/staff/offboarding?lang=en")
    sign_in(staff, people, "staff")
    staff.wait_for_selector("#offboard-form")
    staff.fill("#username", account.username)
    staff.fill("#reason", "gone")
    staff.click("#preview-offboard")
    staff.wait_for_selector("#reason-error")
    assert staff.locator("#username").input_value() == account.username
    staff.fill("#reason", "left CASD at the end of the contract")
    staff.click("#preview-offboard")
    staff.wait_for_selector("#consequences")
    assert "leaving" in staff.locator("#consequence-memberships").inner_text()
    shot(staff, "offboard-confirm")
    staff.click("#confirm-offboard")
    staff.wait_for_selector("#done")
    assert "Removed from the projects: leaving." in staff.locator("#done-memberships").inner_text()
    assert "Console sessions ended: 1." in staff.locator("#done-console").inner_text()
    shot(staff, "offboard-done")

    # The person's console session is gone, and Keycloak no longer lets them in.
    leaver.goto(f"{service.url}/?lang=en")
    leaver.wait_for_selector("#kc-form-login")
    leaver.fill("#username", account.username)
    leaver.fill("#password", account.password)
    leaver.locator("#kc-form-login [type=submit]").click()
    deadline = time.monotonic() + 15
    while "disabled" not in leaver.content().lower():
        assert time.monotonic() < deadline, leaver.content()[:2000]
        time.sleep(0.2)
    shot(leaver, "offboard-disabled")
    assert (
        requests.get(f"{service.api}/users/{account.username}/projects", headers=staff_headers, timeout=30).json() == []
    )
