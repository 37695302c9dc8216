"""What an egress rule binds, in Chromium: the lead picks the mode; lead and approver see mode, methods, paths, caps.

Same set-up as ``test_console_browser``: the service as a process, the session's Keycloak and OPA,
people signing in with password and TOTP in Keycloak's own pages.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.service import People
from tests.integration.web.test_console_browser import api_setup, contexts, new_page, shot, sign_in
from tests.integration.web.test_enroll_browser import browser

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # the fixtures


def test_the_lead_chooses_the_mode_and_both_see_what_each_rule_binds(  # noqa: PLR0915 - one story, in order
    live_enroll_service: LiveEnrollService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = live_enroll_service
    project = "consult"
    api_setup(service, people, project)

    lead = new_page(browser, contexts)
    lead.goto(f"{service.url}/projects/{project}?lang=en")
    sign_in(lead, people, "lead")
    lead.wait_for_selector("#request-form")
    assert lead.locator("#mode").input_value() == "inspect"  # the default

    # An inspected rule, restricted to reading /v1/.
    lead.fill("#host", "api.consult.example.org")
    lead.fill("#path_prefixes", "/v1/")
    lead.fill("#justification", "The statistics office's public API for the survey")
    lead.click("#request")
    lead.wait_for_selector("#requests .terms")
    inspected = lead.locator("#requests tr", has_text="api.consult.example.org").inner_text()
    assert "inspected (each request decided)" in inspected
    assert "HTTP methods : GET, HEAD" in inspected
    assert "Path prefixes : /v1/" in inspected
    assert "body ≤ 1 MiB per request · 16 MiB sent a day per bubble · answer ≤ 256 MiB" in inspected

    # A tunnel restricting methods is refused next to the field; without them it is asked for, opaque.
    lead.fill("#host", "pinned.consult.example.org")
    lead.select_option("#mode", "tunnel")
    lead.fill("#methods", "GET")
    lead.fill("#justification", "A client that pins the host's certificate")
    lead.click("#request")
    lead.wait_for_selector("#methods-error")
    assert "A tunnel rule carries TLS unopened" in lead.locator("#methods-error").inner_text()
    assert lead.locator("#mode").input_value() == "tunnel"
    shot(lead, "egress-tunnel-refused")
    lead.fill("#methods", "")
    lead.click("#request")
    lead.wait_for_selector("#requests tr:has-text('pinned.consult.example.org')")
    tunnel = lead.locator("#requests tr", has_text="pinned.consult.example.org").inner_text()
    assert "tunnel (opaque)" in tunnel
    assert "opaque: the proxy sees host and port only" in tunnel
    shot(lead, "egress-requests-terms")

    # The approver sees the same terms, the tunnel flagged, before deciding.
    staff = new_page(browser, contexts)
    staff.goto(f"{service.url}/staff/egress-requests?lang=en")
    sign_in(staff, people, "staff")
    staff.wait_for_selector("section[id^=pending-] .terms")
    shot(staff, "egress-pending-terms")
    opaque = staff.locator("section[id^=pending-]", has_text="pinned.consult.example.org")
    assert opaque.locator(".terms .opaque").count() == 1
    assert "(plain HTTP only: a tunnel is opaque)" in opaque.inner_text()
    consulted = staff.locator("section[id^=pending-]", has_text="api.consult.example.org")
    assert consulted.locator(".terms .opaque").count() == 0
    assert "Path prefixes : /v1/" in consulted.inner_text()
    for pending in (opaque, consulted):
        pending.locator("textarea").fill("Approved for the survey")
        pending.locator("button.approve").click()
        pending.wait_for(state="detached")
    staff.wait_for_selector("#no-pending")

    # The rules in force, as the lead sees them.
    lead.goto(f"{service.url}/projects/{project}?lang=en")
    rules = lead.locator("#rules").inner_text()
    assert "inspected (each request decided)" in rules
    assert "tunnel (opaque)" in rules
    shot(lead, "egress-rules-terms")
