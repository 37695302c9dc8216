"""CASD staff's oversight pages in a real browser: Debian's Chromium driven by Playwright, signed in through Keycloak.

The service runs as a process (``live_enroll_service``), mailing through the test mailbox. A member
of staff searches a session and opens its timeline, verifies the audit log, and invites a person.
Each page is screenshotted into ``test-artifacts/screenshots/console-*.png`` (kept out of git).
"""

from __future__ import annotations

import secrets

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext

from tests.fixtures.enrollment import LiveEnrollService, Mailbox
from tests.fixtures.service import People
from tests.integration.web.test_console_browser import api_setup, contexts, new_page, shot, sign_in
from tests.integration.web.test_enroll_browser import browser

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # the fixtures, shared with the console's browser test


def start_session(service: LiveEnrollService, people: People, project: str) -> str:
    """The researcher's bubble on ``project`` (its session opens) and a hub event in it; the session's id."""
    staff = people.headers("staff")
    researcher = people.username("researcher")
    added = requests.put(
        f"{service.api}/projects/{project}/members/{researcher}", json={"role": "member"}, headers=staff, timeout=30
    )
    assert added.status_code in {200, 201}, added.text
    bubble = requests.post(
        f"{service.api}/bubbles",
        json={"project": project, "username": researcher, "address": None},
        headers=people.hub_headers(),
        timeout=30,
    )
    assert bubble.status_code == 201, bubble.text
    session_id: str = bubble.json()["id"]
    event = requests.post(
        f"{service.api}/sessions/{session_id}/events",
        json={"kind": "hub.spawn", "summary": "started the bubble with pandas and geopandas"},
        headers=people.hub_headers(),
        timeout=30,
    )
    assert event.status_code == 201, event.text
    return session_id


def test_staff_search_a_session_verify_the_log_and_invite_in_chromium(
    live_enroll_service: LiveEnrollService,
    people: People,
    mailbox: Mailbox,
    browser: Browser,
    contexts: list[BrowserContext],
) -> None:
    service = live_enroll_service
    project = "oversight"
    api_setup(service, people, project)
    session_id = start_session(service, people, project)

    # Staff search the sessions by a word of an event and open the timeline.
    staff = new_page(browser, contexts)
    staff.goto(f"{service.url}/staff/sessions?lang=en")
    sign_in(staff, people, "staff")
    staff.wait_for_selector("#session-search")
    staff.fill("#q", "geopandas")
    staff.click("#search")
    row = staff.locator(f"#session-{session_id}")
    row.wait_for()
    assert people.username("researcher") in row.inner_text()
    shot(staff, "staff-sessions")
    row.locator("a").click()
    staff.wait_for_selector("#timeline")
    kinds = staff.locator("#timeline .kind").all_inner_texts()
    assert kinds[-1] == "hub.spawn"
    assert "started the bubble with pandas and geopandas" in staff.locator("#timeline").inner_text()
    shot(staff, "staff-session-timeline")

    # The audit log: newest first, verified on demand.
    staff.click("#nav-staff-audit")
    staff.wait_for_selector("#events")
    staff.click("#verify")
    staff.wait_for_selector("#verification-result")
    assert staff.locator("#verification-result").inner_text().startswith("Log intact:")
    shot(staff, "staff-audit")

    # An invitation: a bad address first (kept, with its message), then the link is shown and mailed.
    staff.click("#nav-staff-enrollments")
    staff.wait_for_selector("#invite-form")
    email = f"grace.{secrets.token_hex(3)}@example.org"
    staff.fill("#email", "grace at example")
    staff.fill("#first_name", "Grace")
    staff.fill("#last_name", "Hopper")
    staff.select_option("#project", project)
    staff.click("#invite")
    staff.wait_for_selector("#email-error")
    assert staff.locator("#email").input_value() == "grace at example"
    assert staff.locator("#first_name").input_value() == "Grace"
    shot(staff, "staff-enrollments-refused-email")
    staff.fill("#email", email)
    staff.click("#invite")
    staff.wait_for_selector("#outcome")
    assert staff.locator("#outcome-mail").inner_text() == f"The link was e-mailed to {email}."
    shown = staff.locator("#outcome-link").inner_text()
    assert shown in mailbox.wait_for(email)[0].get_content()
    assert email in staff.locator("#invitations").inner_text()
    shot(staff, "staff-enrollments")
