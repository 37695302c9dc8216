"""The console asks Keycloak for its own language (``ui_locales``): Keycloak's pages follow the console's switch.

Over HTTP with the in-process service (``service``), then in Debian's Chromium with the service as a
process (``live_enroll_service``) and the real Keycloak.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.fixtures.enrollment import LiveEnrollService
from tests.fixtures.service import ServiceUnderTest
from tests.integration.web.test_console_browser import contexts, new_page, shot
from tests.integration.web.test_enroll_browser import browser

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # fixtures shared with the console's browser tests


@pytest.mark.parametrize(
    ("query", "cookie", "expected"), [("", None, "fr"), ("?lang=en", None, "en"), ("", "en", "en")]
)
async def test_the_login_redirect_carries_the_consoles_language(
    service: ServiceUnderTest, query: str, cookie: str | None, expected: str
) -> None:
    if cookie is not None:
        service.client.cookies.set("infracalc_lang", cookie)
    answer = await service.client.get(f"/login{query}", follow_redirects=False)
    assert answer.status_code in {302, 303}, answer.text
    parameters = parse_qs(urlsplit(answer.headers["location"]).query)
    assert parameters["ui_locales"] == [expected]
    assert parameters["acr_values"] == ["mfa"]


@pytest.mark.parametrize(
    ("browser_locale", "query", "language", "title"),
    [
        # A browser whose own language is English still gets French, the console's default...
        ("en-GB", "", "fr", "Se connecter à INFRACALC"),
        # ...and English once the console's switch says so.
        ("fr-FR", "?lang=en", "en", "Sign in to INFRACALC"),
    ],
)
def test_keycloaks_login_page_is_in_the_consoles_language(
    live_enroll_service: LiveEnrollService,
    browser: Browser,
    contexts: list[BrowserContext],
    browser_locale: str,
    query: str,
    language: str,
    title: str,
) -> None:
    page = new_page(browser, contexts, locale=browser_locale)
    page.goto(f"{live_enroll_service.url}/login{query}")
    page.wait_for_selector("#kc-form-login")
    assert page.locator("html").get_attribute("lang") == language
    assert page.title() == title
    shot(page, f"keycloak-login-{language}")
