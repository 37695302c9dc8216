"""The web console in a real browser: Debian's Chromium driven by Playwright, signing in through the real Keycloak.

The service runs as a process (``live_enroll_service``: its ``/*`` is a redirect URI of the
``infracalc-web`` client for the test), OPA and Keycloak are the session's. People sign in with
their password and TOTP code in Keycloak's own pages. Each page is screenshotted into
``test-artifacts/screenshots/console-*.png`` (kept out of git).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People
from tests.integration.web.test_enroll_browser import SCREENSHOTS, browser

pytestmark = pytest.mark.integration

__all__ = ["browser"]  # the fixture, shared with the enrollment test


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


@pytest.fixture
def contexts(browser: Browser, request: pytest.FixtureRequest) -> Iterator[list[BrowserContext]]:
    """Browser contexts (one cookie jar each: one per person); the last page of each is saved on failure."""
    made: list[BrowserContext] = []
    yield made
    report = getattr(request.node, "rep_call", None)
    for index, context in enumerate(made):
        if (report is None or report.failed) and context.pages:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            context.pages[-1].screenshot(path=str(SCREENSHOTS / f"{request.node.name}-{index}.png"), full_page=True)
        context.close()


def new_page(browser: Browser, contexts: list[BrowserContext], locale: str = "en-GB") -> Page:
    context = browser.new_context(locale=locale)
    contexts.append(context)
    return context.new_page()


def sign_in(page: Page, people: People, who: str, *, otp: bool = True) -> None:
    """On Keycloak's login page: password, then (when ``otp``) the TOTP code."""
    account = people.accounts[who]
    page.wait_for_selector("#kc-form-login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.locator("#kc-form-login [type=submit]").click()
    if otp:
        page.wait_for_selector("#kc-otp-login-form")
        page.fill("#otp", people.fresh_code(who))
        page.locator("#kc-otp-login-form [type=submit]").click()


def api_setup(service: LiveEnrollService, people: People, project: str) -> None:
    staff = people.headers("staff")
    created = requests.post(
        f"{service.api}/projects",
        json={"id": project, "title": "Mobility survey", "governance": "INFRACALC"},
        headers=staff,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    lead = people.username("lead")
    added = requests.put(
        f"{service.api}/projects/{project}/members/{lead}", json={"role": "lead"}, headers=staff, timeout=30
    )
    assert added.status_code in {200, 201}, added.text


def test_a_lead_requests_staff_approve_and_switch_governance_in_chromium(  # noqa: PLR0915 - one story, in order
    live_enroll_service: LiveEnrollService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = live_enroll_service
    project = "mobility"
    api_setup(service, people, project)

    # The lead opens the project page: Keycloak asks password and code, then the page asked for shows.
    lead = new_page(browser, contexts)
    lead.goto(f"{service.url}/projects/{project}?lang=en")
    sign_in(lead, people, "lead")
    lead.wait_for_selector("h1:has-text('Mobility survey')")
    assert lead.url.startswith(f"{service.url}/projects/{project}")
    assert people.username("lead") in lead.locator("#nav-user").inner_text()

    # A bad host is refused next to its field, with what was typed kept.
    lead.fill("#host", "not a host!")
    lead.fill("#justification", "Geocoding of survey addresses")
    lead.click("#request")
    lead.wait_for_selector("#host-error")
    assert lead.locator("#host").input_value() == "not a host!"
    assert lead.locator("#justification").input_value() == "Geocoding of survey addresses"
    shot(lead, "project-refused-host")

    # A CSRF-less form post (same cookies, no token) is refused and records nothing.
    before = requests.get(
        f"{service.api}/projects/{project}/egress-requests", headers=people.headers("staff"), timeout=30
    ).json()
    forged = lead.request.post(
        f"{service.url}/projects/{project}/egress-requests",
        form={"host": "evil.example.org", "justification": "forged", "ports": "443", "expires_in_days": "30"},
        max_redirects=0,
    )
    assert forged.status == 403
    after = requests.get(
        f"{service.api}/projects/{project}/egress-requests", headers=people.headers("staff"), timeout=30
    ).json()
    assert after == before

    lead.fill("#host", "api.geo.example.org")
    lead.click("#request")
    lead.wait_for_selector("#requests .status")
    assert lead.locator("#requests .status").first.inner_text() == "pending"
    shot(lead, "project-lead")

    # Staff approve it from their queue.
    staff = new_page(browser, contexts)
    staff.goto(f"{service.url}/staff/egress-requests?lang=en")
    sign_in(staff, people, "staff")
    staff.wait_for_selector("section[id^=pending-]")
    shot(staff, "staff-egress-requests")
    pending = staff.locator("section[id^=pending-]", has_text="api.geo.example.org")
    pending.locator("textarea").fill("Public geocoder, no personal data sent")
    pending.locator("button.approve").click()
    staff.wait_for_selector("#no-pending")

    # The rule is in force, and the check page says allowed.
    lead.goto(f"{service.url}/projects/{project}")
    assert lead.locator("#rules").inner_text().count("api.geo.example.org") == 1
    lead.fill("#url", "https://api.geo.example.org/v1/search")
    lead.click("#check")
    lead.wait_for_selector("#check-result")
    assert lead.locator("#check-result").inner_text().startswith("Allowed")
    shot(lead, "project-check-allowed")

    # Staff switch the project to CASD: reason required, then the consequences to confirm.
    staff.goto(f"{service.url}/staff/projects")
    shot(staff, "staff-projects")
    staff.goto(f"{service.url}/projects/{project}/governance")
    staff.select_option("#owner", "CASD")
    staff.click("#preview-switch")
    staff.wait_for_selector("#reason-error")
    staff.fill("#reason", "Sensitive health data joins the project")
    staff.click("#preview-switch")
    staff.wait_for_selector("#consequences")
    assert "api.geo.example.org" in staff.locator("#rules-stopping").inner_text()
    shot(staff, "governance-confirm")
    staff.click("#confirm-switch")
    staff.wait_for_selector("#governance:has-text('CASD')")

    # The same check is now denied, with the policy's reason.
    lead.goto(f"{service.url}/projects/{project}?url=https://api.geo.example.org/v1/search")
    result = lead.locator("#check-result").inner_text()
    assert result.startswith("Denied")
    assert "CASD governance" in result
    shot(lead, "project-check-denied")

    # The lead's home page: the project and its governance.
    lead.goto(f"{service.url}/")
    assert "Mobility survey" in lead.locator("#projects").inner_text()
    shot(lead, "home")

    # Signing out ends the Keycloak session too: the next visit asks for the password again.
    lead.click("#logout")
    lead.wait_for_selector("h1:has-text('You are signed out')")
    lead.goto(f"{service.url}/")
    lead.wait_for_selector("#kc-form-login #password")
    assert not lead.url.startswith(service.url)


def test_a_login_without_the_second_factor_never_reaches_a_page(
    live_enroll_service: LiveEnrollService,
    keycloak: KeycloakServer,
    people: People,
    browser: Browser,
    contexts: list[BrowserContext],
) -> None:
    service = live_enroll_service
    # A person whose account has no TOTP app yet: Keycloak asks to set one up, the console never shows.
    account = keycloak.add_account("nototp", ("researcher",), with_totp=False)
    people.accounts["nototp"] = account
    page = new_page(browser, contexts)
    page.goto(f"{service.url}/?lang=en")
    sign_in(page, people, "nototp", otp=False)
    page.wait_for_selector("#kc-totp-settings-form")
    assert not page.url.startswith(service.url)
    shot(page, "login-without-totp")
    # Coming back without finishing: still no page, only the way to sign in.
    page.goto(f"{service.url}/")
    assert not page.url.startswith(service.url)
    assert page.context.request.get(f"{service.url}/", max_redirects=0).status in {302, 303, 307}

    # And someone who stops at the code prompt has no session either.
    other = new_page(browser, contexts)
    other.goto(f"{service.url}/")
    sign_in(other, people, "researcher", otp=False)
    other.wait_for_selector("#kc-otp-login-form")
    answer = other.context.request.get(f"{service.url}/projects/x", max_redirects=0)
    assert answer.status in {302, 303, 307}
    assert answer.headers["location"].startswith("/login?next=/projects/x")
