"""The guides' pictures: each role's pages in Chromium, in French and in English, as the guides show them.

Three people sign in through Keycloak's own pages (the researcher in French, the lead in English, CASD
staff in French), then each page a guide shows is opened in both languages (the console's ``?lang=``
switch) and must answer with its heading. With ``INFRACALC_DOC_SCREENSHOTS=1`` (``make docs-screenshots``)
every page is saved under ``docs/images/generated/<language>/`` (:mod:`tests.support.doc_screenshots`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.service import People
from tests.integration.web.test_enroll_browser import browser
from tests.support.doc_screenshots import VIEWPORT, doc_screenshot
from tests.support.one_time_codes import one_time_code

pytestmark = pytest.mark.integration

__all__ = ["browser"]

SURVEY = "mobility"
BIRTHS = "births"
#: What each role's guide shows, opened in both languages: (picture, page).
RESEARCHER_PAGES = (("console-home", "/"), ("console-project-member", f"/projects/{BIRTHS}"))
LEAD_PAGES = (("console-project-lead", f"/projects/{SURVEY}"),)
STAFF_PAGES = (
    ("staff-egress-requests", "/staff/egress-requests"),
    ("staff-projects", "/staff/projects"),
    ("staff-governance", f"/projects/{SURVEY}/governance"),
    ("staff-imports", "/staff/imports"),
    ("staff-exports", "/staff/exports"),
    ("staff-audit", "/staff/audit"),
    ("staff-sessions", "/staff/sessions"),
    ("staff-enrollments", "/staff/enrollments"),
)
#: Every picture this test takes, in each language: the guides show these and no other.
PICTURES = ("keycloak-login", "keycloak-otp", *(name for name, _ in RESEARCHER_PAGES + LEAD_PAGES + STAFF_PAGES))


def api(service: LiveEnrollService, method: str, path: str, headers: dict[str, str], **kwargs: object) -> dict:
    answer = requests.request(method, f"{service.api}{path}", headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code in {200, 201}, (path, answer.status_code, answer.text)
    return answer.json() if answer.content else {}


def seed(service: LiveEnrollService, people: People) -> None:
    """A project calling out (a pending API request), a CASD project with an import and an export in review."""
    staff = people.headers("staff")
    lead, researcher = people.username("lead"), people.username("researcher")
    api(service, "POST", "/projects", staff, json={"id": SURVEY, "title": "Mobility survey", "governance": "INFRACALC"})
    api(service, "PUT", f"/projects/{SURVEY}/members/{lead}", staff, json={"role": "lead"})
    api(service, "PUT", f"/projects/{SURVEY}/members/{researcher}", staff, json={"role": "member"})
    request = {
        "host": "api.insee.fr",
        "ports": [443],
        "justification": "Population of each commune, to weight the survey's answers",
        "expires_in_days": 90,
    }
    api(service, "POST", f"/projects/{SURVEY}/egress-requests", people.headers("lead"), json=request)
    api(service, "POST", "/projects", staff, json={"id": BIRTHS, "title": "Births by region", "governance": "CASD"})
    api(service, "PUT", f"/projects/{BIRTHS}/members/{researcher}", staff, json={"role": "member"})
    bubble = api(
        service,
        "POST",
        "/bubbles",
        people.hub_headers(),
        json={"project": BIRTHS, "username": researcher, "address": None},
    )
    table = b"region,births\nBretagne,31000\nCorse,2900\nGuyane,8\n"
    api(
        service,
        "POST",
        f"/projects/{BIRTHS}/exports",
        {"Authorization": f"Bearer {bubble['token']}"},
        files={"file": ("births.csv", table, "application/octet-stream")},
        data={"justification": "Births by region for the annual report, table 2"},
    )
    api(
        service,
        "POST",
        f"/projects/{BIRTHS}/imports",
        {**people.headers("researcher"), "Content-Type": "application/octet-stream"},
        params={"name": "stations.csv"},
        data=b"station,temperature\nparis,12\n",
    )


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    made: list[BrowserContext] = []
    yield made
    for context in made:
        context.close()


def signed_in(
    browser: Browser, contexts: list[BrowserContext], service: LiveEnrollService, people: People, who: str, start: str
) -> Page:
    """``who`` signs in through Keycloak's pages in the language of ``start`` (its ``?lang=``), pictured."""
    language = "fr" if "lang=fr" in start else "en"
    context = browser.new_context(locale="fr-FR" if language == "fr" else "en-GB", viewport=VIEWPORT)
    contexts.append(context)
    page = context.new_page()
    # The person chose their language with the console's link first: the sign-in page of a page that needs
    # one (``/login?next=...``) does not see the page's ``?lang=``, only the language cookie.
    page.goto(f"{service.url}/signed-out?lang={language}")
    page.goto(f"{service.url}{start}")
    page.wait_for_selector("#kc-form-login")
    account = people.accounts[who]
    assert page.locator("html").get_attribute("lang") == language, "Keycloak's pages in the console's language"
    page.fill("#username", account.username)
    doc_screenshot(page, language, "keycloak-login")
    page.fill("#password", account.password)
    page.locator("#kc-form-login [type=submit]").click()
    page.wait_for_selector("#kc-otp-login-form")
    doc_screenshot(page, language, "keycloak-otp")
    page.fill("#otp", one_time_code(people, who))
    page.locator("#kc-otp-login-form [type=submit]").click()
    page.wait_for_url(f"{service.url}/**")
    return page


def tour(page: Page, service: LiveEnrollService, pages: tuple[tuple[str, str], ...]) -> None:
    """Each page in French then English: it answers with its heading, and is pictured."""
    for name, path in pages:
        for language in ("fr", "en"):
            answer = page.goto(f"{service.url}{path}?lang={language}")
            assert answer is not None
            assert answer.ok, (path, answer.status)
            assert page.locator("html").get_attribute("lang") == language
            assert page.locator("h1").first.inner_text().strip(), path
            doc_screenshot(page, language, name)


def test_the_guides_pages_in_french_and_english(
    live_enroll_service: LiveEnrollService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = live_enroll_service
    seed(service, people)

    researcher = signed_in(browser, contexts, service, people, "researcher", "/?lang=fr")
    tour(researcher, service, RESEARCHER_PAGES)
    lead = signed_in(browser, contexts, service, people, "lead", f"/projects/{SURVEY}?lang=en")
    tour(lead, service, LEAD_PAGES)
    assert lead.locator("#requests").inner_text().count("api.insee.fr") == 1
    staff = signed_in(browser, contexts, service, people, "staff", "/staff/egress-requests?lang=fr")
    tour(staff, service, STAFF_PAGES)
    staff.goto(f"{service.url}/staff/egress-requests")
    assert "api.insee.fr" in staff.locator("main").inner_text()
