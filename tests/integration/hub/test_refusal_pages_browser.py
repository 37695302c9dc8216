"""A refused hub sign-in in a real browser (Debian's Chromium), in French and in English, and its fix.

The hub, Keycloak, OPA and the service are the real ones (``hub`` fixture). A member of a project under
CASD governance with no registered network is refused by the login policy. The browser's language
(Playwright's ``locale``, sent as ``Accept-Language``) is passed to Keycloak as ``ui_locales`` and
picks the language of the refusal page, whose link leads to the console's networks section; once a
network is registered there, the same person signs in to the hub.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.fixtures.hub import HubUnderTest
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People
from tests.integration.hub.test_browser_login import SCREENSHOTS, browser
from tests.integration.hub.test_hub_end_to_end import project
from tests.integration.web.test_console_browser import contexts, new_page

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # fixtures shared with the hub's login test and the console's


@pytest.fixture
def console(keycloak: KeycloakServer, live_service: LiveService) -> Iterator[str]:
    """The service's console, signing in through the ``infracalc-web`` client (its URL a redirect URI meanwhile)."""

    def web_client() -> dict[str, Any]:
        (client,) = keycloak.admin("GET", "/clients", params={"clientId": "infracalc-web"}).json()
        return dict(client)

    redirect = f"{live_service.url}/*"
    client = web_client()
    uris = list(client["redirectUris"])
    assert keycloak.admin("PUT", f"/clients/{client['id']}", json={**client, "redirectUris": [*uris, redirect]}).ok
    try:
        yield live_service.url
    finally:
        client = web_client()
        kept = [uri for uri in client["redirectUris"] if uri != redirect]
        keycloak.admin("PUT", f"/clients/{client['id']}", json={**client, "redirectUris": kept})


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"hub-refusal-{name}.png"), full_page=True)


def sign_in_to_the_hub(page: Page, hub: HubUnderTest, people: People, who: str, language: str) -> None:
    """Keycloak's pages, in ``language``: password, then one-time code."""
    account = people.accounts[who]
    page.goto(f"{hub.url}/hub/oauth_login")
    page.wait_for_selector("#kc-form-login")
    assert f"ui_locales={language}" in page.url
    assert page.locator("html").get_attribute("lang") == language
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("#kc-login")
    page.wait_for_selector("#kc-otp-login-form")
    page.fill("#otp", people.fresh_code(who))
    page.click("#kc-login")


def test_a_refused_sign_in_says_why_in_french_by_default(
    hub: HubUnderTest, live_service: LiveService, people: People, browser: Browser, contexts: list[BrowserContext]
) -> None:
    project(live_service, people, "CASD")
    page = new_page(browser, contexts, "fr-FR")

    sign_in_to_the_hub(page, hub, people, "researcher", "fr")

    page.wait_for_selector("#refusal-title")
    shot(page, "fr")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("#refusal-title").inner_text() == "Connexion à INFRACALC refusée"
    assert page.locator("#refusal-message").inner_text() == (
        "Vous êtes membre d'un projet sous gouvernance CASD : enregistrez d'abord le réseau depuis lequel vous vous"
        " connectez (votre adresse actuelle est 127.0.0.1)."
    )
    link = page.locator("#fix-link")
    assert link.inner_text() == "Enregistrer un réseau dans la console INFRACALC"
    assert link.get_attribute("href") == f"{live_service.url}/?lang=fr#networks-heading"


def test_a_refused_sign_in_in_english_links_to_the_fix_and_the_person_then_signs_in(
    hub: HubUnderTest,
    live_service: LiveService,
    console: str,
    people: People,
    browser: Browser,
    contexts: list[BrowserContext],
) -> None:
    project(live_service, people, "CASD")
    page = new_page(browser, contexts, "en-GB")

    sign_in_to_the_hub(page, hub, people, "lead", "en")

    page.wait_for_selector("#refusal-title")
    shot(page, "en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#refusal-title").inner_text() == "Sign-in to INFRACALC refused"
    assert page.locator("#refusal-message").inner_text() == (
        "You are a member of a project under CASD governance: register the network you connect from first (your"
        " address now is 127.0.0.1)."
    )
    assert page.locator("#fix-link").get_attribute("href") == f"{console}/?lang=en#networks-heading"

    # The link: the console (Keycloak asks the one-time code again), its networks section; register this address.
    page.click("#fix-link")
    page.wait_for_selector("#kc-otp-login-form")
    page.fill("#otp", people.fresh_code("lead"))
    page.click("#kc-login")
    page.wait_for_selector("#network-form")
    page.fill("#network", "127.0.0.1/32")
    page.click("#add-network")
    page.wait_for_selector("#networks li")
    assert "127.0.0.1/32" in page.locator("#networks").inner_text()
    shot(page, "en-fixed")

    # Back to the hub: signed in this time.
    time.sleep(0.5)
    page.goto(f"{hub.url}/hub/oauth_login")
    page.wait_for_selector("#kc-otp-login-form")
    page.fill("#otp", people.fresh_code("lead"))
    page.click("#kc-login")
    page.wait_for_url(f"{hub.url}/hub/**", timeout=60_000)
    assert page.locator("#refusal-title").count() == 0
    assert people.username("lead") in page.content()
