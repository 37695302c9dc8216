"""Importing a file from the project page in Chromium: progress, the import listed with its state, refusals in French.

The service runs as a process (``live_enroll_service``); the member's console session is opened in
its database (the login itself is tested in ``test_console_browser``), and the page is used at
1280 and 390 pixels wide, in French and English. Screenshots go to
``test-artifacts/screenshots/console-upload-*.png``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.service import People
from tests.integration.service.test_imports_live import make_project
from tests.integration.web.test_console_browser import contexts, shot
from tests.integration.web.test_enroll_browser import browser
from tests.support.console_session import open_console_session_in_thread

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # the fixtures, shared with the other browser tests

MIB = 1024 * 1024
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


def signed_in(
    browser: Browser,
    contexts: list[BrowserContext],
    service: LiveEnrollService,
    people: People,
    who: str,
    *,
    locale: str = "fr-FR",
    viewport: dict[str, int] = WIDE,
) -> Page:
    """A page of ``who``, whose browser holds a console session opened in the service's database."""
    context = browser.new_context(locale=locale, viewport=viewport)
    contexts.append(context)
    session = open_console_session_in_thread(service.database_url, people, who)
    context.add_cookies([{"name": "infracalc_session", "value": session, "url": service.url}])
    return context.new_page()


def api_list(service: LiveEnrollService, people: People) -> list[dict[str, object]]:
    answer = requests.get(f"{service.api}/projects/cohort/imports", headers=people.headers("researcher"), timeout=30)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def fits(page: Page, width: int) -> None:
    """The page is no wider than the window: nothing to scroll sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def watch_progress(page: Page) -> None:
    """Keep every text the upload's progress line shows (kept in the tab's storage: the page moves on after)."""
    page.evaluate(
        """() => {
        sessionStorage.setItem("progressSeen", "[]");
        const line = document.getElementById("upload-progress-text");
        new MutationObserver(() => {
            const seen = JSON.parse(sessionStorage.getItem("progressSeen"));
            seen.push(line.textContent);
            sessionStorage.setItem("progressSeen", JSON.stringify(seen));
        }).observe(line, {childList: true, characterData: true, subtree: true});
    }"""
    )


def progress_seen(page: Page) -> list[str]:
    return list(page.evaluate("JSON.parse(sessionStorage.getItem('progressSeen') || '[]')"))


def test_a_member_imports_files_from_the_project_page_and_sees_progress_and_refusals(  # noqa: PLR0915 - one story
    live_enroll_service: LiveEnrollService,
    people: People,
    browser: Browser,
    contexts: list[BrowserContext],
    tmp_path: Path,
) -> None:
    service = live_enroll_service
    make_project(service, people, "cohort", "INFRACALC")

    # French, 1280 px: a 64 MiB table goes up with its progress shown, then waits for review.
    page = signed_in(browser, contexts, service, people, "researcher")
    page.goto(f"{service.url}/projects/cohort")
    assert page.locator("#upload-heading").inner_text() == "Importer un fichier"
    assert "Ni archives" in page.locator("#upload-help").inner_text()
    watch_progress(page)
    table = tmp_path / "cohorte.csv"
    table.write_bytes(b"id;age\n" + b"1;34\n" * (64 * MIB // 5))
    page.set_input_files("#upload-file", table)
    page.click("#upload-submit")
    page.wait_for_selector("#done")
    assert page.locator("#done").inner_text() == (
        "cohorte.csv est importé : il attend la relecture du personnel du CASD."
    )
    # The progress line moved from 0 % to the end, then said the file was being checked.
    seen = progress_seen(page)
    percents = [int(text.rsplit("(", 1)[1].split()[0]) for text in seen if text.startswith("Envoi de cohorte.csv")]
    assert percents[0] == 0, seen
    assert percents[-1] == 100, seen
    assert any(0 < percent < 100 for percent in percents), seen
    assert seen[-1] == "Fichier reçu ; vérification en cours…"
    [row] = api_list(service, people)
    assert (row["name"], row["size"], row["state"]) == ("cohorte.csv", table.stat().st_size, "in_review")
    assert page.locator(f"#import-{row['id']} .state").inner_text() == "en relecture"
    shot(page, "upload-fr-done")

    # An archive is refused in the page, in French, focus on the reason; nothing is listed.
    watch_progress(page)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a;b\n1;2\n")
    page.set_input_files(
        "#upload-file", {"name": "data.zip", "mimeType": "application/zip", "buffer": buffer.getvalue()}
    )
    page.click("#upload-submit")
    page.wait_for_selector("#upload-error:not([hidden])")
    error = page.locator("#upload-error")
    assert error.inner_text().startswith("les archives ne sont pas acceptées : importez les fichiers eux-mêmes")
    assert page.evaluate("document.activeElement.id") == "upload-error"
    shot(page, "upload-fr-refused")
    assert len(api_list(service, people)) == 1

    # A file over the limit is refused before a byte is sent.
    page.evaluate("""() => { document.getElementById("upload-form").dataset.maxBytes = "10"; }""")
    page.set_input_files("#upload-file", {"name": "big.csv", "mimeType": "text/csv", "buffer": b"a;b\n" * 10})
    page.click("#upload-submit")
    page.wait_for_function("() => document.getElementById('upload-error').textContent.startsWith('Ce fichier fait')")

    # English, 390 px: a small script is released at once; the page fits the screen.
    phone = signed_in(browser, contexts, service, people, "researcher", locale="en-GB", viewport=NARROW)
    phone.goto(f"{service.url}/projects/cohort?lang=en")
    fits(phone, NARROW["width"])
    watch_progress(phone)
    phone.set_input_files("#upload-file", {"name": "clean.py", "mimeType": "text/x-python", "buffer": b"print(1)\n"})
    phone.click("#upload-submit")
    phone.wait_for_selector("#done")
    assert phone.locator("#done").inner_text() == "clean.py is imported and available in the project's bubbles."
    fits(phone, NARROW["width"])
    names = phone.locator("#imports tbody tr").all_inner_texts()
    assert names[0].startswith("clean.py")
    assert "released" in names[0]
    shot(phone, "upload-en-390-done")
