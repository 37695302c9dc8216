"""``infracalc login`` with the person's side in a real browser: Debian's Chromium on Keycloak's pages.

The command runs as a process; the person opens the URL it prints, signs in with password and one-time
code on Keycloak's pages (in the browser's language: French here), grants access to the command line,
and the command finishes signed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.fixtures.keycloak import KeycloakServer
from tests.integration.web.test_console_browser import contexts, new_page
from tests.integration.web.test_enroll_browser import browser
from tests.support.device_login import CliLogin

pytestmark = pytest.mark.integration

__all__ = ["browser", "contexts"]  # fixtures shared with the console's browser tests


def test_a_person_signs_in_the_command_line_from_chromium(
    keycloak: KeycloakServer, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    account = keycloak.add_account("cli-browser")
    config_home = tmp_path / "config"
    login = CliLogin.start(keycloak.base_url, config_home)
    page = new_page(browser, contexts, locale="fr-FR")

    page.goto(login.verification_url())
    page.wait_for_selector("#kc-form-login")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.title() == "Se connecter à INFRACALC"
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("#kc-login")
    page.wait_for_selector("#kc-otp-login-form")
    page.fill("#otp", account.totp().now())
    page.click("#kc-login")
    # Keycloak asks the person to grant access to the command line, naming it.
    page.wait_for_selector("text=INFRACALC CLI (infracalc login)")
    page.click("#kc-login")
    page.wait_for_url("**/device/status**")
    assert "réussie" in page.locator("body").inner_text()

    assert login.wait() == 0, login.output
    assert f"Signed in as {account.username}" in login.output
    credentials = json.loads((config_home / "infracalc" / "credentials.json").read_text())
    assert credentials["credentials"][keycloak.issuer]["username"] == account.username
