"""``infracalc login``, ``token``, ``import`` and ``logout`` against the real Keycloak and the service as a process.

The commands run as processes with their own configuration folder (``XDG_CONFIG_HOME``); the person's
side (Keycloak's verification page: password, one-time code, consent) is driven with ``requests``
(:mod:`tests.support.device_login`). Keycloak polls at its 5-second interval, so each login takes
five to ten seconds.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from infracalc.identity.realm import REALM_NAME
from infracalc.identity.tokens import TokenVerifier
from infracalc.workstation import (
    CredentialStore,
    DeviceAuthorization,
    LoginFailed,
    Realm,
    SecondFactorNotUsed,
    device_grant,
    sign_in,
)
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People
from tests.integration.service.test_imports_live import make_project
from tests.support.device_login import CliLogin, DeviceBrowser

pytestmark = pytest.mark.integration


def run_cli(config_home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``infracalc ARGUMENTS`` with ``XDG_CONFIG_HOME=config_home`` and no token in the environment."""
    env = {key: value for key, value in os.environ.items() if key not in {"INFRACALC_TOKEN", "INFRACALC_KEYCLOAK_URL"}}
    return subprocess.run(
        [sys.executable, "-m", "infracalc", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**env, "XDG_CONFIG_HOME": str(config_home)},
    )


def kept_refresh_token(config_home: Path, keycloak: KeycloakServer) -> str | None:
    entry = json.loads((config_home / "infracalc" / "credentials.json").read_text())["credentials"].get(keycloak.issuer)
    return None if entry is None else str(entry["refresh_token"])


def refresh_at_keycloak(keycloak: KeycloakServer, refresh_token: str) -> requests.Response:
    return requests.post(
        keycloak.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "infracalc-cli"},
        timeout=30,
    )


def test_login_keeps_a_private_refresh_token_that_import_and_token_use_and_logout_revokes(
    keycloak: KeycloakServer, live_service: LiveService, people: People, tmp_path: Path
) -> None:
    make_project(live_service, people, "cohort", "INFRACALC")
    account = people.accounts["researcher"]
    config_home = tmp_path / "config"

    # The person signs in on Keycloak's page (password, one-time code, consent) while the command waits.
    login = CliLogin.start(keycloak.base_url, config_home)
    url = login.verification_url()
    DeviceBrowser().approve(url, account.username, account.password, people.fresh_code("researcher"))
    assert login.wait() == 0, login.output
    assert f"Signed in as {account.username} (password and one-time code)" in login.output

    folder = config_home / "infracalc"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "credentials.json").stat().st_mode) == 0o600
    entry = json.loads((folder / "credentials.json").read_text())["credentials"][keycloak.issuer]
    assert entry["username"] == account.username
    assert "access_token" not in entry
    refresh_token = entry["refresh_token"]
    assert refresh_token not in login.output

    # `infracalc token`: a fresh access token the service accepts (acr mfa, audience infracalc-api), and the
    # refresh token Keycloak answered with replaces the old one.
    printed = run_cli(config_home, "token")
    assert printed.returncode == 0, printed.stderr
    access = TokenVerifier(keycloak.issuer).verify(printed.stdout.strip())
    assert (access.username, access.acr, access.authorized_party) == (account.username, "mfa", "infracalc-cli")
    assert {"pwd", "otp"} <= set(access.amr)
    assert "infracalc-api" in access.audience
    assert kept_refresh_token(config_home, keycloak) != refresh_token
    refresh_token = kept_refresh_token(config_home, keycloak)
    assert refresh_token is not None

    # `infracalc import` with neither --token-file nor INFRACALC_TOKEN acts with the kept sign-in.
    script = tmp_path / "analysis.py"
    script.write_bytes(b"print('hello')\n")
    imported = run_cli(config_home, "import", "cohort", str(script), "--api", live_service.api)
    assert imported.returncode == 0, imported.stderr
    import_id, state = imported.stdout.split()
    assert state == "released"
    listed = requests.get(f"{live_service.api}/projects/cohort/imports", headers=people.headers("staff"), timeout=30)
    assert [(row["id"], row["uploaded_by"]) for row in listed.json()] == [(import_id, account.username)]
    refresh_token = kept_refresh_token(config_home, keycloak)
    assert refresh_token is not None

    # `infracalc logout` revokes the sign-in at Keycloak and removes it from the file.
    signed_out = run_cli(config_home, "logout")
    assert signed_out.returncode == 0, signed_out.stderr
    assert "revoked and removed" in signed_out.stdout
    assert kept_refresh_token(config_home, keycloak) is None
    revoked = refresh_at_keycloak(keycloak, refresh_token)
    assert revoked.status_code == 400
    assert revoked.json()["error"] == "invalid_grant"
    after = run_cli(config_home, "token", "--keycloak-url", keycloak.base_url)
    assert after.returncode == 1
    assert after.stdout == ""
    assert f"you are not signed in to {keycloak.issuer}; run `infracalc login`" in after.stderr


@pytest.mark.parametrize("with_totp", [True, False], ids=["otp-not-entered", "otp-not-configured"])
def test_a_password_without_the_one_time_code_gets_no_token(
    keycloak: KeycloakServer, tmp_path: Path, with_totp: bool
) -> None:
    account = keycloak.add_account("cli-password-only", with_totp=with_totp)
    config_home = tmp_path / "config"
    login = CliLogin.start(keycloak.base_url, config_home)
    browser = DeviceBrowser()

    page = browser.submit(
        browser.open(login.verification_url()),
        "kc-form-login",
        {
            "username": account.username,
            "password": account.password,
        },
    )

    # Keycloak asks for the second factor (or to configure it); the command keeps polling and gets nothing.
    assert page.keycloak.kind == ("otp" if with_totp else "configure-totp"), page.keycloak.describe()
    time.sleep(12)  # two of the command's polls (every 5 seconds)
    assert login.process.poll() is None, login.output
    assert not (config_home / "infracalc").exists()
    login.process.send_signal(signal.SIGINT)
    assert login.wait() == 1
    assert "error: sign-in cancelled; nothing was kept" in login.output
    assert not (config_home / "infracalc").exists()


DeviceClient = Callable[..., str]


@pytest.fixture
def device_client(keycloak: KeycloakServer) -> Iterator[DeviceClient]:
    """Makes public device-grant clients with the given attributes (removed after the test); returns their ids.

    Unlike ``infracalc-cli`` they use the realm's browser flow. Keycloak passes no requested level to a
    device login; on that flow the one-time code is still asked, but the level reached is pwd: the
    case the command's own check must refuse.
    """
    made: list[str] = []

    def make(**attributes: str) -> str:
        client_id = f"cli-test-{secrets.token_hex(3)}"
        created = keycloak.admin(
            "POST",
            "/clients",
            json={
                "clientId": client_id,
                "publicClient": True,
                "standardFlowEnabled": False,
                "directAccessGrantsEnabled": False,
                "attributes": {"oauth2.device.authorization.grant.enabled": "true", **attributes},
                "protocolMappers": [
                    {
                        "name": "audience infracalc-api",
                        "protocol": "openid-connect",
                        "protocolMapper": "oidc-audience-mapper",
                        "config": {"included.client.audience": "infracalc-api", "access.token.claim": "true"},
                    }
                ],
            },
        )
        assert created.status_code == 201, created.text
        made.append(created.headers["Location"].rsplit("/", 1)[-1])
        return client_id

    try:
        yield make
    finally:
        for client_uuid in made:
            keycloak.admin("DELETE", f"/clients/{client_uuid}")


Show = Callable[[DeviceAuthorization], None]


class InThread:
    """A device login running in a thread, as ``infracalc login`` runs it; what it showed, how it ended.

    ``login`` gets a ``show`` to call with the device authorization (as :func:`sign_in` takes one).
    """

    def __init__(self, login: Callable[[Show], object]) -> None:
        self.shown: list[DeviceAuthorization] = []
        self.outcome: list[BaseException | None] = []
        self._thread = threading.Thread(target=self._run, args=(login,), daemon=True)
        self._thread.start()

    def _run(self, login: Callable[[Show], object]) -> None:
        try:
            login(self.shown.append)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            self.outcome.append(error)
        else:
            self.outcome.append(None)

    def url(self) -> str:
        deadline = time.monotonic() + 60
        while not self.shown and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.shown[0].verification_uri_complete

    def result(self, timeout: float = 120) -> BaseException | None:
        self._thread.join(timeout=timeout)
        assert len(self.outcome) == 1, "the sign-in did not end"
        return self.outcome[0]


def test_refusing_on_keycloaks_consent_page_ends_the_login_with_nothing_kept(
    keycloak: KeycloakServer, tmp_path: Path
) -> None:
    account = keycloak.add_account("cli-consent-refused")
    config_home = tmp_path / "config"
    login = CliLogin.start(keycloak.base_url, config_home)
    browser = DeviceBrowser()
    page = browser.submit(
        browser.open(login.verification_url()),
        "kc-form-login",
        {"username": account.username, "password": account.password},
    )
    page = browser.submit(page, "kc-otp-login-form", {"otp": account.totp().now()})
    assert page.is_consent, page.keycloak.describe()

    browser.consent(page, accept=False)

    assert login.wait() == 1
    assert "error: the sign-in was refused at Keycloak's page; nothing was kept" in login.output
    assert not (config_home / "infracalc").exists()


def test_polling_too_fast_is_slowed_down_and_an_expired_code_ends_the_login(
    keycloak: KeycloakServer, device_client: DeviceClient, tmp_path: Path
) -> None:
    client_id = device_client(**{"oauth2.device.code.lifespan": "12", "oauth2.device.polling.interval": "2"})
    asked: list[float] = []

    def impatient(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(0.5)  # polls far more often than Keycloak's interval allows

    realm = Realm(keycloak.base_url, REALM_NAME, client_id=client_id)

    def login(show: Show) -> None:
        authorization = device_grant.start(realm)
        show(authorization)
        device_grant.poll(realm, authorization, sleep=impatient)

    signing = InThread(login)
    signing.url()
    ended = signing.result()

    # Each slow_down adds five seconds to the wait asked for (RFC 8628 §3.5); the code then expires.
    assert asked[:3] == [2, 2, 7], asked
    assert isinstance(ended, LoginFailed), ended
    assert "the code expired before the sign-in was completed" in str(ended)


def test_a_token_whose_login_did_not_reach_mfa_is_refused_revoked_and_not_kept(
    keycloak: KeycloakServer, device_client: DeviceClient, tmp_path: Path
) -> None:
    client_without_level = device_client()
    account = keycloak.add_account("cli-level-pwd")
    store = CredentialStore(tmp_path / "config" / "infracalc")
    realm = Realm(keycloak.base_url, REALM_NAME, client_id=client_without_level)
    signing = InThread(lambda show: sign_in(realm, store, show))

    DeviceBrowser().approve(signing.url(), account.username, account.password, account.totp().now())

    refused = signing.result()
    assert isinstance(refused, SecondFactorNotUsed), refused
    assert "INFRACALC requires it, so nothing was kept" in str(refused)
    assert not store.folder.exists()
    # The refresh token was revoked: no session of the person holds this client any more.
    sessions = keycloak.admin("GET", f"/users/{keycloak.user_id(account.username)}/sessions").json()
    assert all(client_without_level not in session.get("clients", {}).values() for session in sessions), sessions
