"""Keycloak's pages in French by default and in English on request (``ui_locales``), on the real realm.

The browser tests of the same pages, reached through the console and the hub, are in
``tests/integration/web/test_login_language_browser.py`` and ``tests/integration/hub/test_refusal_pages_browser.py``.
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.fixtures.keycloak import KeycloakServer
from tests.support.oidc_browser import KeycloakPage

pytestmark = pytest.mark.integration

_HTML_LANG = re.compile(r'<html[^>]*\blang="([^"]+)"')


def login_page(keycloak: KeycloakServer, headers: dict[str, str] | None = None, **extra: str) -> KeycloakPage:
    """The console client's login page, asked with ``extra`` parameters (``ui_locales``...)."""
    answer = requests.get(
        f"{keycloak.issuer}/protocol/openid-connect/auth",
        params={
            "client_id": "infracalc-web",
            "response_type": "code",
            "redirect_uri": f"{keycloak.config.web_url}/auth/callback",
            "scope": "openid",
            "acr_values": "mfa",
            # The client requires PKCE; the page is shown before any code exists, so any challenge will do.
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            **extra,
        },
        headers=headers or {},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text[:300]
    page = KeycloakPage.parse(answer)
    assert page.kind == "login", page.describe()
    return page


def language_and_title(page: KeycloakPage) -> tuple[str, str]:
    match = _HTML_LANG.search(page.html)
    assert match is not None
    title = re.search(r"<title>\s*(.*?)\s*</title>", page.html, re.S)
    assert title is not None
    return match.group(1), title.group(1)


def test_the_login_page_is_french_by_default(keycloak: KeycloakServer) -> None:
    assert language_and_title(login_page(keycloak)) == ("fr", "Se connecter à INFRACALC")


@pytest.mark.parametrize(
    ("ui_locales", "expected"), [("en", "Sign in to INFRACALC"), ("fr", "Se connecter à INFRACALC")]
)
def test_ui_locales_picks_the_language(keycloak: KeycloakServer, ui_locales: str, expected: str) -> None:
    # ui_locales wins over the browser's own languages.
    other = "fr-FR,fr" if ui_locales == "en" else "en-GB,en"
    page = login_page(keycloak, {"Accept-Language": other}, ui_locales=ui_locales)
    assert language_and_title(page) == (ui_locales, expected)


def test_a_language_the_realm_does_not_offer_falls_back_to_french(keycloak: KeycloakServer) -> None:
    page = login_page(keycloak, {"Accept-Language": "de-DE,de"}, ui_locales="de")
    assert language_and_title(page)[0] == "fr"
