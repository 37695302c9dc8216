"""The hub's sign-in against the real Keycloak and the real OPA: two factors always, from an allowed address.

Requests reach the authenticator through a real tornado server started like JupyterHub's (see
``tests/support/hub_login.py`` for the stand-in callback handler and what it is). Token responses
are Keycloak's own: a live code exchange after password and TOTP, or one captured earlier and
replayed. Tokens Keycloak cannot produce for this client are made from real ones: an ID token
re-signed with a foreign key (the signature check), and the ID token of the ``jupyterhub``
client's service account, which Keycloak issues with ``acr`` ``pwd`` (the realm gives browser
sign-ins of this client nothing below ``mfa``, see ``minimum.acr.value``). An expired token is a
real one verified with PyJWT's clock six minutes on.

OPA data is written per test under ``/v1/data/store/infracalc/<document>/<key>`` and removed after.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import jwt.api_jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from traitlets.config import Config

from infracalc.hub.authenticator import (
    POLICY_UNAVAILABLE,
    SECOND_FACTOR,
    SOURCE_UNKNOWN,
    UNVERIFIED,
    InfracalcAuthenticator,
    LoginRefused,
)
from infracalc.hub.refusals import Refusal
from infracalc.identity.tokens import TokenVerifier
from infracalc.stack.ports import free_port
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer
from tests.support.hub_login import (
    Outcome,
    ReplayingAuthenticator,
    StoredUser,
    authorization_code,
    callback_server,
)

pytestmark = pytest.mark.integration

SCOPE = "openid profile email"


# -- real tokens ---------------------------------------------------------------------------------


class SignedIn:
    """One two-factor sign-in of a fresh account: its username and Keycloak's token response.

    ``locale``: the language the account chose in Keycloak (its ``locale`` attribute, which Keycloak
    sets when a person picks a language on its pages), carried by the ID token.
    """

    def __init__(self, keycloak: KeycloakServer, prefix: str, *, locale: str | None = None) -> None:
        account = keycloak.add_account(prefix)
        if locale is not None:
            path = f"/users/{keycloak.user_id(account.username)}"
            user = keycloak.admin("GET", path).json()
            user["attributes"] = {**user.get("attributes", {}), "locale": [locale]}
            assert keycloak.admin("PUT", path, json=user).status_code == 204
        browser = keycloak.browser("jupyterhub", acr_values="mfa")
        browser.scope = SCOPE
        result = browser.login(account.username, account.password, account.totp().now())
        self.username = account.username
        self.tokens: dict[str, Any] = dict(result.tokens.raw)


@pytest.fixture(scope="module")
def signed_in(keycloak: KeycloakServer) -> SignedIn:
    """A sign-in shared by the module's replayed tests (its tokens live five minutes; the module takes far less)."""
    return SignedIn(keycloak, "hub-replayed")


@pytest.fixture(scope="module")
def service_account_tokens(keycloak: KeycloakServer) -> dict[str, Any]:
    """The ``jupyterhub`` client's own tokens (client credentials): a real ID token, ``acr`` ``pwd``."""
    response = requests.post(
        keycloak.token_url,
        data={"grant_type": "client_credentials", "scope": SCOPE},
        auth=("jupyterhub", keycloak.config.jupyterhub_client_secret),
        timeout=30,
    )
    response.raise_for_status()
    tokens: dict[str, Any] = response.json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["aud"] == "jupyterhub"
    assert claims["acr"] != "mfa"
    return tokens


def resigned(token: str, **changes: Any) -> str:
    """``token``'s claims (with ``changes``) signed by a key of our own, under the realm key's id."""
    header = jwt.get_unverified_header(token)
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, foreign_key, algorithm="RS256", headers={"kid": header["kid"]})


def secrets_of(tokens: dict[str, Any]) -> list[str]:
    """Every token of a response, and the signature of each JWT (a leak of part of one counts too)."""
    found = [value for key, value in tokens.items() if key.endswith("token") and isinstance(value, str) and value]
    return found + [value.rsplit(".", 1)[-1] for value in found if value.count(".") == 2]


# -- the authenticator and its surroundings ------------------------------------------------------


MakeAuthenticator = Callable[..., InfracalcAuthenticator]


@pytest.fixture
def make_authenticator(keycloak: KeycloakServer, opa: OpaServer) -> MakeAuthenticator:
    """An authenticator for the test realm and OPA, as the hub configuration would set it up."""

    def make(cls: type[InfracalcAuthenticator] = InfracalcAuthenticator, **settings: Any) -> InfracalcAuthenticator:
        config = Config()
        section = config.InfracalcAuthenticator
        section.keycloak_url = keycloak.base_url
        section.client_secret = keycloak.config.jupyterhub_client_secret
        section.oauth_callback_url = keycloak.hub_redirect_uri
        section.opa_url = opa.url
        section.allow_all = True
        for name, value in settings.items():
            setattr(section, name, value)
        return cls(config=config)

    return make


@pytest.fixture(params=[False, True], ids=["allowed_users", "allow_all"])
def allow_all(request: pytest.FixtureRequest) -> bool:
    """Refusals must not depend on the allow settings: each runs with and without ``allow_all``."""
    value: bool = request.param
    return value


def replaying(make: MakeAuthenticator, tokens: dict[str, Any], **settings: Any) -> ReplayingAuthenticator:
    authenticator = make(ReplayingAuthenticator, **settings)
    assert isinstance(authenticator, ReplayingAuthenticator)
    authenticator.token_response = tokens
    return authenticator


class OpaDocuments:
    """Sub-documents of ``data.store.infracalc`` written for one test, removed at its end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.paths: list[str] = []

    def put(self, document: str, key: str, value: dict[str, Any]) -> None:
        path = f"{self.url}/v1/data/store/infracalc/{document}/{key}"
        requests.put(path, json=value, timeout=10).raise_for_status()
        self.paths.append(path)

    def remove_all(self) -> None:
        for path in reversed(self.paths):
            requests.delete(path, timeout=10).raise_for_status()
        self.paths.clear()


@pytest.fixture
def opa_data(opa: OpaServer) -> Iterator[OpaDocuments]:
    documents = OpaDocuments(opa.url)
    try:
        yield documents
    finally:
        documents.remove_all()


def assert_refused(
    outcome: Outcome, expected: Refusal, reason: str, caplog: pytest.LogCaptureFixture, tokens: list[str]
) -> LoginRefused:
    """A 403 refusing for ``expected`` (code and parameters), ``reason`` in the log, and no token in either."""
    assert outcome.model is None
    assert isinstance(outcome.error, LoginRefused), outcome.error
    refusal = outcome.error
    assert refusal.status_code == 403
    assert refusal.refusal == expected
    assert reason in (refusal.get_message() or "")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert reason in logged, "the refusal was not logged"
    for token in tokens:
        assert token not in logged
        for language in ("fr", "en"):
            assert token not in refusal.refusal.text(language)
    return refusal


def policy_refusal(code: str, source_ip: str, reason: str) -> Refusal:
    """The refusal the login policy's decision ``code`` makes for a sign-in from ``source_ip``."""
    return Refusal(code, {"source_ip": source_ip, "reason": reason})


@pytest.fixture(autouse=True)
def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


# -- sign-in: two factors ------------------------------------------------------------------------


@pytest.mark.parametrize("allow_all", [True, False], ids=["allow_all", "allowed_users"])
async def test_two_factor_sign_in_is_accepted(
    keycloak: KeycloakServer, make_authenticator: MakeAuthenticator, allow_all: bool, caplog: pytest.LogCaptureFixture
) -> None:
    account = keycloak.add_account("hub-sign-in")
    settings: dict[str, Any] = {"allow_all": allow_all}
    if not allow_all:
        settings["allowed_users"] = {account.username}
    authenticator = make_authenticator(**settings)
    code, verifier = authorization_code(keycloak, account, authenticator)

    async with callback_server(authenticator) as hub:
        # Through the hub's proxy: the loopback peer vouches for the browser's address.
        outcome = await hub.callback(code=code, code_verifier=verifier, forwarded_for="198.51.100.7")

    assert outcome.error is None, outcome.error
    assert outcome.model is not None
    assert outcome.model["name"] == account.username
    state = outcome.model["auth_state"]
    assert state["acr"] == "mfa"
    assert state["oauth_user"]["preferred_username"] == account.username
    assert state["access_token"]
    assert state["refresh_token"]
    claims = TokenVerifier(keycloak.issuer, audience="jupyterhub", token_type="ID").verify(state["id_token"])
    assert claims.username == account.username
    assert {"pwd", "otp"} <= set(claims.amr)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"Sign-in of {account.username!r} from 198.51.100.7 allowed by infracalc.login" in logged
    for token in secrets_of(state["token_response"]):
        assert token not in logged


async def test_sign_in_without_second_factor_is_refused(
    make_authenticator: MakeAuthenticator,
    service_account_tokens: dict[str, Any],
    allow_all: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    authenticator = replaying(make_authenticator, service_account_tokens, allow_all=allow_all)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(
        outcome,
        SECOND_FACTOR,
        "sign-in of 'service-account-jupyterhub' refused: the login reached acr 'pwd', 'mfa' is required",
        caplog,
        secrets_of(service_account_tokens),
    )


async def test_sign_in_with_a_foreign_signature_is_refused(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn, allow_all: bool, caplog: pytest.LogCaptureFixture
) -> None:
    forged = {**signed_in.tokens, "id_token": resigned(signed_in.tokens["id_token"])}
    authenticator = replaying(make_authenticator, forged, allow_all=allow_all)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(
        outcome,
        UNVERIFIED,
        "its ID token does not verify: the signature does not match the realm's key",
        caplog,
        secrets_of(forged) + secrets_of(signed_in.tokens),
    )


async def test_forged_acr_is_caught_by_the_signature(
    make_authenticator: MakeAuthenticator,
    service_account_tokens: dict[str, Any],
    allow_all: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    forged_id = resigned(service_account_tokens["id_token"], acr="mfa", amr=["pwd", "otp"])
    forged = {**service_account_tokens, "id_token": forged_id}
    authenticator = replaying(make_authenticator, forged, allow_all=allow_all)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(outcome, UNVERIFIED, "the signature does not match", caplog, secrets_of(forged))


class _SixMinutesLater(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + timedelta(minutes=6)


async def test_sign_in_with_an_expired_id_token_is_refused(
    make_authenticator: MakeAuthenticator,
    signed_in: SignedIn,
    allow_all: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The realm's ID tokens live five minutes and the verifier allows 30 s of skew: PyJWT's clock
    # six minutes on sees a real, untouched token as expired.
    monkeypatch.setattr(jwt.api_jwt, "datetime", _SixMinutesLater)
    authenticator = replaying(make_authenticator, signed_in.tokens, allow_all=allow_all)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(
        outcome,
        UNVERIFIED,
        "its ID token does not verify: the token has expired",
        caplog,
        secrets_of(signed_in.tokens),
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(lambda tokens: tokens.pop("id_token"), "Keycloak returned no ID token", id="no ID token"),
        pytest.param(
            lambda tokens: tokens.update(id_token=tokens["access_token"]),
            "its ID token does not verify",
            id="access token as ID token",
        ),
        pytest.param(
            lambda tokens: tokens.update(id_token=tokens["refresh_token"]),
            "its ID token does not verify",
            id="refresh token as ID token",
        ),
        pytest.param(lambda tokens: tokens.update(id_token="not.a.jwt"), "not a readable JWT", id="garbage"),
    ],
)
async def test_sign_in_without_a_valid_id_token_is_refused(
    make_authenticator: MakeAuthenticator,
    signed_in: SignedIn,
    caplog: pytest.LogCaptureFixture,
    change: Callable[[dict[str, Any]], object],
    reason: str,
) -> None:
    tokens = dict(signed_in.tokens)
    change(tokens)
    authenticator = replaying(make_authenticator, tokens)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(outcome, UNVERIFIED, reason, caplog, secrets_of(signed_in.tokens))


async def test_id_token_of_another_user_than_userinfo_is_refused(
    make_authenticator: MakeAuthenticator,
    signed_in: SignedIn,
    service_account_tokens: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # userinfo answers for the service account, the ID token is a person's (two factors, valid).
    mixed = {**service_account_tokens, "id_token": signed_in.tokens["id_token"]}
    authenticator = replaying(make_authenticator, mixed)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(outcome, UNVERIFIED, "userinfo and the ID token name different subjects", caplog, secrets_of(mixed))


# -- refresh -------------------------------------------------------------------------------------


async def stored_auth_state(authenticator: InfracalcAuthenticator, tokens: dict[str, Any]) -> dict[str, Any]:
    """The auth_state the hub would have stored for ``tokens`` (built by oauthenticator, userinfo asked for real)."""
    user_info = await authenticator.token_to_user(tokens)
    auth_state: dict[str, Any] = authenticator.build_auth_state_dict(dict(tokens), user_info)
    return auth_state


async def test_refresh_of_a_two_factor_session_keeps_it(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn
) -> None:
    authenticator = make_authenticator()
    user = StoredUser(signed_in.username, await stored_auth_state(authenticator, signed_in.tokens))

    refreshed = await authenticator.refresh_user(user)

    assert isinstance(refreshed, dict)
    assert refreshed["name"] == signed_in.username
    assert refreshed["auth_state"]["acr"] == "mfa"


async def test_refresh_with_an_expired_access_token_gets_new_two_factor_tokens(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn
) -> None:
    authenticator = make_authenticator()
    auth_state = await stored_auth_state(authenticator, signed_in.tokens)
    # userinfo refuses the stored access token, so oauthenticator uses the refresh token.
    auth_state["token_response"]["access_token"] = "expired"
    user = StoredUser(signed_in.username, auth_state)

    refreshed = await authenticator.refresh_user(user)

    assert isinstance(refreshed, dict)
    fresh = refreshed["auth_state"]
    assert fresh["id_token"] != signed_in.tokens["id_token"]
    assert fresh["acr"] == "mfa"
    # Keycloak keeps the session's level through a refresh: the new ID token still says mfa.
    verifier = TokenVerifier(authenticator.issuer, audience="jupyterhub", token_type="ID")
    assert verifier.verify(fresh["id_token"]).acr == "mfa"


async def test_refresh_without_second_factor_is_refused(
    make_authenticator: MakeAuthenticator,
    service_account_tokens: dict[str, Any],
    allow_all: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    authenticator = make_authenticator(allow_all=allow_all)
    user = StoredUser("service-account-jupyterhub", await stored_auth_state(authenticator, service_account_tokens))

    assert await authenticator.refresh_user(user) is False

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Refresh of 'service-account-jupyterhub' refused, a new sign-in is required" in logged
    assert "the login reached acr 'pwd'" in logged
    for token in secrets_of(service_account_tokens):
        assert token not in logged


async def test_refresh_with_a_foreign_signature_is_refused(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn, allow_all: bool
) -> None:
    authenticator = make_authenticator(allow_all=allow_all)
    auth_state = await stored_auth_state(authenticator, signed_in.tokens)
    auth_state["token_response"]["id_token"] = resigned(signed_in.tokens["id_token"])
    assert await authenticator.refresh_user(StoredUser(signed_in.username, auth_state)) is False


async def test_tokens_from_the_refresh_grant_are_checked_too(
    make_authenticator: MakeAuthenticator,
    signed_in: SignedIn,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authenticator = make_authenticator()
    auth_state = await stored_auth_state(authenticator, signed_in.tokens)
    auth_state["token_response"]["access_token"] = "expired"  # so oauthenticator uses the refresh grant
    # Keycloak's fresh ID token, seen six minutes on, is expired: the check after the grant refuses it.
    monkeypatch.setattr(jwt.api_jwt, "datetime", _SixMinutesLater)

    assert await authenticator.refresh_user(StoredUser(signed_in.username, auth_state)) is False

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"Error refreshing auth with fresh access_token for {signed_in.username}" in logged
    assert "its ID token does not verify: the token has expired" in logged


async def test_refresh_after_the_keycloak_session_ended_requires_a_new_sign_in(
    keycloak: KeycloakServer, make_authenticator: MakeAuthenticator
) -> None:
    session = SignedIn(keycloak, "hub-logged-out")  # its own: this test ends the session
    authenticator = make_authenticator()
    user = StoredUser(session.username, await stored_auth_state(authenticator, session.tokens))
    assert isinstance(await authenticator.refresh_user(user), dict)

    keycloak.admin("POST", f"/users/{keycloak.user_id(session.username)}/logout").raise_for_status()

    assert await authenticator.refresh_user(user) is False


async def test_refresh_without_auth_state_requires_a_new_sign_in(make_authenticator: MakeAuthenticator) -> None:
    assert await make_authenticator().refresh_user(StoredUser("ada", None)) is False


# -- sign-in: the source address (OPA infracalc.login) -------------------------------------------


@pytest.mark.parametrize(
    ("forwarded_for", "networks"),
    [
        ("203.0.113.9", ["203.0.113.0/24"]),
        ("2001:db8:1:ff::1", ["203.0.113.0/24", "2001:db8:1::/56"]),
        ("::ffff:203.0.113.9", ["203.0.113.0/24"]),  # Node's spelling of an IPv4 client
    ],
)
async def test_sign_in_from_a_registered_network_is_accepted(
    make_authenticator: MakeAuthenticator,
    signed_in: SignedIn,
    opa_data: OpaDocuments,
    forwarded_for: str,
    networks: list[str],
) -> None:
    opa_data.put("users", signed_in.username, {"networks": networks})
    authenticator = replaying(make_authenticator, signed_in.tokens)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for=forwarded_for)
    assert outcome.error is None, outcome.error
    assert outcome.model is not None
    assert outcome.model["name"] == signed_in.username


async def test_sign_in_from_outside_the_registered_networks_is_refused(
    make_authenticator: MakeAuthenticator,
    signed_in: SignedIn,
    opa_data: OpaDocuments,
    allow_all: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    opa_data.put("users", signed_in.username, {"networks": ["203.0.113.0/24"]})
    authenticator = replaying(make_authenticator, signed_in.tokens, allow_all=allow_all)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(
        outcome,
        policy_refusal(
            "source_not_registered", "198.51.100.7", "source address 198.51.100.7 is not a registered network"
        ),
        f"sign-in of {signed_in.username!r} from 198.51.100.7 refused by infracalc.login",
        caplog,
        secrets_of(signed_in.tokens),
    )


async def test_a_refusal_carries_the_language_the_person_chose_in_keycloak(
    keycloak: KeycloakServer, make_authenticator: MakeAuthenticator, opa_data: OpaDocuments
) -> None:
    english = SignedIn(keycloak, "hub-english", locale="en")
    assert jwt.decode(english.tokens["id_token"], options={"verify_signature": False})["locale"] == "en"
    opa_data.put("users", english.username, {"networks": ["203.0.113.0/24"]})
    authenticator = replaying(make_authenticator, english.tokens)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7", headers={"Accept-Language": "fr-FR"})
    assert isinstance(outcome.error, LoginRefused), outcome.error
    # The refusal page follows the ID token's locale before the browser's Accept-Language.
    assert outcome.error.locale == "en"
    assert outcome.error.refusal.code == "source_not_registered"


async def test_casd_project_member_without_a_registered_network_is_refused(
    make_authenticator: MakeAuthenticator,
    signed_in: SignedIn,
    opa_data: OpaDocuments,
    allow_all: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    project = f"cohort-{secrets.token_hex(3)}"
    opa_data.put("projects", project, {"title": "Cohort", "governance": "CASD", "sensitive_data": True})
    opa_data.put("members", project, {signed_in.username: {"role": "member"}})
    authenticator = replaying(make_authenticator, signed_in.tokens, allow_all=allow_all)
    async with callback_server(authenticator) as hub:
        refused = await hub.callback(forwarded_for="198.51.100.7")
        assert_refused(
            refused,
            policy_refusal(
                "network_required", "198.51.100.7", "a member of a CASD-governed project must register a network first"
            ),
            "a member of a CASD-governed project must register a network first",
            caplog,
            secrets_of(signed_in.tokens),
        )
        # Once a network is registered, a sign-in from it passes.
        opa_data.put("users", signed_in.username, {"networks": ["198.51.100.0/24"]})
        accepted = await hub.callback(forwarded_for="198.51.100.7")
    assert accepted.error is None, accepted.error


async def test_sign_in_is_refused_when_opa_is_down(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn, allow_all: bool, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    authenticator = replaying(make_authenticator, signed_in.tokens, allow_all=allow_all, opa_url=dead)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="198.51.100.7")
    assert_refused(
        outcome, POLICY_UNAVAILABLE, "the login policy could not be asked", caplog, secrets_of(signed_in.tokens)
    )


async def test_headers_from_an_untrusted_peer_are_not_believed(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn, opa_data: OpaDocuments, caplog: pytest.LogCaptureFixture
) -> None:
    opa_data.put("users", signed_in.username, {"networks": ["203.0.113.0/24"]})
    # The browser talks to the hub directly (no proxy trusted) and names a registered address twice.
    authenticator = replaying(make_authenticator, signed_in.tokens, trusted_proxies=[])
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="203.0.113.9", headers={"X-Real-Ip": "203.0.113.9"})
    assert_refused(
        outcome,
        policy_refusal("source_not_registered", "127.0.0.1", "source address 127.0.0.1 is not a registered network"),
        "from 127.0.0.1 refused by infracalc.login",
        caplog,
        secrets_of(signed_in.tokens),
    )


async def test_an_address_the_browser_adds_before_the_proxy_is_not_believed(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn, opa_data: OpaDocuments, caplog: pytest.LogCaptureFixture
) -> None:
    opa_data.put("users", signed_in.username, {"networks": ["203.0.113.0/24"]})
    authenticator = replaying(make_authenticator, signed_in.tokens)
    async with callback_server(authenticator) as hub:
        # The browser sent "X-Forwarded-For: 203.0.113.9"; the hub's proxy appended the address it saw.
        outcome = await hub.callback(forwarded_for="203.0.113.9,198.51.100.7", headers={"X-Real-Ip": "203.0.113.9"})
    assert_refused(
        outcome,
        policy_refusal(
            "source_not_registered", "198.51.100.7", "source address 198.51.100.7 is not a registered network"
        ),
        "from 198.51.100.7 refused by infracalc.login",
        caplog,
        secrets_of(signed_in.tokens),
    )


async def test_an_unreadable_forwarded_address_is_refused(
    make_authenticator: MakeAuthenticator, signed_in: SignedIn, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = replaying(make_authenticator, signed_in.tokens)
    async with callback_server(authenticator) as hub:
        outcome = await hub.callback(forwarded_for="unknown")
    assert_refused(outcome, SOURCE_UNKNOWN, "no trustworthy source address (peer 127.0.0.1", caplog, [])


def test_the_replayed_sign_in_is_still_fresh(signed_in: SignedIn) -> None:
    """Guards the module's assumption: the shared tokens outlive its tests (five minutes)."""
    claims = jwt.decode(signed_in.tokens["id_token"], options={"verify_signature": False})
    assert datetime.fromtimestamp(claims["exp"], tz=UTC) > datetime.now(UTC)
