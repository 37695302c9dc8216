"""Keycloak's side of things, with a Keycloak of the module's own (it is killed at the end).

Its realm knows the service at the URL the test runs it on, so the realm file's own back-channel logout
settings are what sends Keycloak's logout tokens to the service. First, signing out in Keycloak ends the
session's API tokens and console sessions within a second; then Keycloak is killed: ``/login`` says so in the
page's language, tokens already issued keep working from the cached keys, a token of an unknown key is a 503
that names nothing internal.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
import requests

from infracalc.config import SOURCE_ROOT
from infracalc.db import utc_now
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess
from infracalc.tools import Tools
from tests.fixtures.keycloak import KeycloakServer, running_keycloak
from tests.fixtures.live_service import LiveService, start_live_service
from tests.fixtures.servers import OpaServer, S3Server
from tests.integration.faults.support import audit_intact, rows
from tests.support.mailbox import Mailbox
from tests.support.oidc_browser import KeycloakPage, OidcBrowser

pytestmark = pytest.mark.integration


@dataclass
class Realm:
    """The module's Keycloak, and the service that its realm sends back-channel logouts to."""

    keycloak: KeycloakServer
    process: ManagedProcess
    service: LiveService


@pytest.fixture(scope="module")
def realm(
    tools: Tools,
    logs_dir: Path,
    opa: OpaServer,
    s3: S3Server,
    mailbox: Mailbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Realm]:
    base = tmp_path_factory.mktemp("keycloak-faults")
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    data_dir = SOURCE_ROOT / "test-artifacts" / "keycloak-faults"
    with running_keycloak(
        tools, logs_dir / "keycloak-faults.log", base / "import", data_dir, mailbox, web_url=web_url
    ) as (
        keycloak,
        process,
    ):
        service = start_live_service(opa.url, keycloak, s3, base, port=port)
        try:
            yield Realm(keycloak, process, service)
        finally:
            service.stop()


def sign_in(realm: Realm, roles: tuple[str, ...]) -> tuple[OidcBrowser, str]:
    """A fresh account signed in through the hub's client (password and code): its browser and access token."""
    account = realm.keycloak.add_account("fault", roles)
    browser = realm.keycloak.browser("jupyterhub")
    result = browser.login(account.username, account.password, account.totp().now())
    return browser, result.tokens.access_token


def me(realm: Realm, token: str) -> requests.Response:
    return requests.get(f"{realm.service.api}/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def sign_out_in_keycloak(realm: Realm, browser: OidcBrowser) -> None:
    """What the account console's "Sign out" does: Keycloak's end-session endpoint, confirmed, in the same browser."""
    page = browser.visit(f"{realm.keycloak.issuer}/protocol/openid-connect/logout", {"client_id": "account-console"})
    assert isinstance(page, KeycloakPage)
    (form_id,) = [form_id for form_id in page.forms if "logout" in form_id.lower()] or list(page.forms)
    done = browser.submit_form(page, form_id, {})
    assert isinstance(done, KeycloakPage)
    assert done.status == 200, done.describe()


def test_signing_out_in_keycloak_ends_the_sessions_tokens_and_console_sessions_within_a_second(realm: Realm) -> None:
    browser, token = sign_in(realm, ("researcher",))
    _, other_token = sign_in(realm, ("researcher",))
    assert me(realm, token).status_code == 200
    sid = jwt.decode(token, options={"verify_signature": False})["sid"]
    database = Path(realm.service.database_url.split("///", 1)[1])
    now = utc_now()
    with sqlite3.connect(database) as connection:  # a console session opened by the same Keycloak session
        connection.execute(
            "INSERT INTO web_sessions (id_sha256, username, subject, roles, acr, keycloak_sid, created_at, "
            "last_seen_at, expires_at) VALUES (?, 'someone', 'sub', '[]', 'mfa', ?, ?, ?, ?)",
            ("0" * 64, sid, now.isoformat(), now.isoformat(), (now + timedelta(hours=8)).isoformat()),
        )

    sign_out_in_keycloak(realm, browser)
    signed_out = time.monotonic()

    while (answer := me(realm, token)).status_code == 200:
        assert time.monotonic() - signed_out < 1.0, "the token still works a second after the sign-out"
        time.sleep(0.05)
    assert answer.status_code == 401
    assert answer.json()["message"] == "this sign-in was ended (signed out); sign in again"
    assert sid not in {found for (found,) in rows(realm.service, "SELECT keycloak_sid FROM web_sessions")}
    assert rows(realm.service, "SELECT sid FROM ended_sessions") == [(sid,)]
    assert me(realm, other_token).status_code == 200  # another person's session is untouched


def test_a_forged_logout_token_ends_nothing(realm: Realm) -> None:
    _, token = sign_in(realm, ("researcher",))
    sid = jwt.decode(token, options={"verify_signature": False})["sid"]
    forged = jwt.encode(
        {
            "iss": realm.keycloak.issuer,
            "aud": "jupyterhub",
            "iat": int(time.time()),
            "sid": sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        },
        "not-the-realm-key-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    answer = requests.post(f"{realm.service.url}/auth/backchannel-logout", data={"logout_token": forged}, timeout=30)
    assert answer.status_code == 400
    assert answer.headers["Cache-Control"] == "no-store"
    assert me(realm, token).status_code == 200
    assert sid not in {found for (found,) in rows(realm.service, "SELECT sid FROM ended_sessions")}


def test_keycloak_killed_login_says_so_and_issued_tokens_keep_working(realm: Realm) -> None:
    _, token = sign_in(realm, ("casd-staff",))
    assert me(realm, token).status_code == 200  # the service holds the realm's keys now
    audit_before = rows(realm.service, "SELECT count(*) FROM audit_events")

    realm.process.stop(grace=0)  # SIGTERM then at once SIGKILL of its whole group

    # What a person sees: a page in the page's language, not a redirect to a dead host.
    french = requests.get(f"{realm.service.url}/login", allow_redirects=False, timeout=30)
    assert french.status_code == 503
    assert "Le service de connexion (Keycloak) ne répond pas" in french.text
    english = requests.get(f"{realm.service.url}/login", params={"lang": "en"}, allow_redirects=False, timeout=30)
    assert english.status_code == 503
    assert "The sign-in service (Keycloak) is not answering" in english.text
    # Tokens already issued keep working from the cached keys.
    assert me(realm, token).status_code == 200
    assert requests.get(f"{realm.service.api}/projects", headers={"Authorization": f"Bearer {token}"}, timeout=30).ok
    # A token of a key the service never saw cannot be checked now: 503, nothing internal said.
    _, payload, signature = token.split(".")
    header = jwt.utils.base64url_encode(b'{"alg":"RS256","typ":"JWT","kid":"a-key-rotated-in-meanwhile"}').decode()
    unknown = f"{header}.{payload}.{signature}"
    refused = me(realm, unknown)
    assert refused.status_code in {401, 503}, refused.text
    for internal in ("127.0.0.1", "certs", "Errno"):
        assert internal not in refused.text
    # Nothing was written by any of it; the log verifies.
    assert rows(realm.service, "SELECT count(*) FROM audit_events") == audit_before
    audit_intact(realm.service, {"Authorization": f"Bearer {token}"})
