"""The review queues in a real browser: a bubble submits an export, two reviewers release it, the researcher gets it.

Debian's Chromium driven by Playwright, people signing in through the real Keycloak (password, then
TOTP), the service as a process (``live_enroll_service``) with the session's OPA and versitygw. The
export is a high-risk table, so that the two-reviewer rule shows: after the first approval the page
says it needs a second reviewer. The researcher's download goes through the audited presigned link
and must hold the very bytes the bubble submitted. Each page is screenshotted into
``test-artifacts/screenshots/console-review-*.png`` (kept out of git).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.service import People
from tests.integration.service.test_exports import JUSTIFICATION, SECOND_STAFF, high_risk_csv, second_staff
from tests.integration.web.test_console_browser import contexts, new_page, shot, sign_in
from tests.integration.web.test_enroll_browser import browser

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # the fixtures, shared with the other browser tests

PROJECT = "births"


def setup(service: LiveEnrollService, people: People, content: bytes) -> tuple[str, str]:
    """A CASD project with the researcher, an export submitted from their bubble, an import held for review."""
    staff = people.headers("staff")
    created = requests.post(
        f"{service.api}/projects",
        json={"id": PROJECT, "title": "Births by region", "governance": "CASD"},
        headers=staff,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    member = requests.put(
        f"{service.api}/projects/{PROJECT}/members/{people.username('researcher')}",
        json={"role": "member"},
        headers=staff,
        timeout=30,
    )
    assert member.status_code == 200, member.text
    registered = requests.post(
        f"{service.api}/bubbles",
        json={"project": PROJECT, "username": people.username("researcher"), "address": None},
        headers=people.hub_headers(),
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    export = requests.post(
        f"{service.api}/projects/{PROJECT}/exports",
        files={"file": ("births.csv", content, "application/octet-stream")},
        data={"justification": JUSTIFICATION},
        headers={"Authorization": f"Bearer {registered.json()['token']}"},
        timeout=60,
    )
    assert export.status_code == 201, export.text
    assert (export.json()["risk_level"], export.json()["required_reviews"]) == ("high", 2)
    upload = requests.post(
        f"{service.api}/projects/{PROJECT}/imports",
        params={"name": "stations.csv"},
        data=b"station,temp\nparis,12\n",
        headers={**people.headers("researcher"), "Content-Type": "application/octet-stream"},
        timeout=60,
    )
    assert upload.status_code == 201, upload.text
    return str(export.json()["id"]), str(upload.json()["id"])


def approve(page: Page, comment: str = "") -> None:
    page.check("#verdict-approve")
    page.fill("#comment", comment)
    page.click("#submit-review")


def test_a_reviewer_approves_an_export_and_the_researcher_downloads_it_in_chromium(
    live_enroll_service: LiveEnrollService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = live_enroll_service
    second_staff(people)
    content = high_risk_csv()
    export_id, import_id = setup(service, people, content)

    # Reviewer 1: the queue shows the checks' reasons and the rule; they approve without a comment.
    first = new_page(browser, contexts)
    first.goto(f"{service.url}/staff/exports?lang=en")
    sign_in(first, people, "staff")
    first.wait_for_selector(f"#export-{export_id}")
    queued = first.locator(f"#export-{export_id}").inner_text()
    assert "small_counts (review)" in queued
    assert "2 of 2 approval(s) missing." in queued
    shot(first, "review-exports")
    first.click(f"#open-{export_id}")
    first.wait_for_selector("#review-form")
    assert "small_counts" in first.locator("#version-1 table.findings").inner_text()
    shot(first, "review-export")
    approve(first)
    first.wait_for_selector(f"#status-{export_id}:has-text('needs a second reviewer')")
    assert first.locator("#review-form").count() == 0
    shot(first, "review-export-needs-second")

    # The imports queue, with why the file was held.
    first.goto(f"{service.url}/staff/imports")
    assert "under CASD governance every import is reviewed" in first.locator(f"#import-{import_id}").inner_text()
    shot(first, "review-imports")
    first.click(f"#import-{import_id} a")
    first.wait_for_selector("#decision-form")
    shot(first, "review-import")

    # Reviewer 2: a rejection without a comment is refused next to the field; then the approval releases it.
    second = new_page(browser, contexts)
    second.goto(f"{service.url}/staff/exports/{export_id}?lang=en")
    sign_in(second, people, SECOND_STAFF)
    second.wait_for_selector("#review-form")
    second.check("#verdict-reject")
    second.click("#submit-review")
    second.wait_for_selector("#comment-error")
    assert second.locator("#verdict-reject").is_checked()
    shot(second, "review-export-refused")
    approve(second, "Counts checked against the protocol")
    second.wait_for_selector("#state:has-text('released')")

    # The researcher sees it released with the reviewers' comments, and downloads the very bytes submitted.
    researcher = new_page(browser, contexts)
    researcher.goto(f"{service.url}/projects/{PROJECT}?lang=en")
    sign_in(researcher, people, "researcher")
    researcher.wait_for_selector(f"#export-{export_id} .state:has-text('released')")
    row = researcher.locator(f"#export-{export_id}").inner_text()
    assert "Counts checked against the protocol" in row
    shot(researcher, "review-project-files")
    with researcher.expect_download() as started:
        researcher.click(f"#download-{export_id}")
    download = started.value
    assert download.suggested_filename == "births.csv"
    assert Path(download.path()).read_bytes() == content
