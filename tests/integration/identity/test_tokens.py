"""TokenVerifier against tokens a real Keycloak issued, and its real JWKS.

Crafted tokens (expired, unknown key, ...) are covered in ``tests/unit/identity/test_token_verifier.py``
with a local JWKS double; this module proves the same verifier against Keycloak's own output.
"""

from __future__ import annotations

import base64
import json

import pytest

from infracalc.identity.tokens import (
    SecondFactorMissing,
    TokenSignatureInvalid,
    TokenVerifier,
    TokenWrongAudience,
    TokenWrongIssuer,
    TokenWrongType,
)
from tests.fixtures.keycloak import KeycloakServer
from tests.support.oidc_browser import TokenResponse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tokens(keycloak: KeycloakServer) -> TokenResponse:
    """Tokens of one two-factor login of a project lead (one OTP code, used once)."""
    account = keycloak.add_account("tokens", roles=["project-lead"])
    return keycloak.browser().login(account.username, account.password, account.totp().now()).tokens


@pytest.fixture(scope="module")
def verifier(keycloak: KeycloakServer) -> TokenVerifier:
    return TokenVerifier(keycloak.issuer)


def test_the_realm_publishes_signing_keys(verifier: TokenVerifier) -> None:
    assert verifier.refresh_keys() >= 1


def test_access_token_of_a_two_factor_login_is_accepted(verifier: TokenVerifier, tokens: TokenResponse) -> None:
    claims = verifier.verify(tokens.access_token)
    assert claims.acr == "mfa"
    assert "project-lead" in claims.roles
    assert claims.username.startswith("tokens-")
    # The login's time, which the service holds recent logins to (changing one's registered networks).
    assert claims.auth_time is not None
    assert claims.auth_time <= claims.expires_at


def test_service_account_token_has_no_second_factor(keycloak: KeycloakServer, verifier: TokenVerifier) -> None:
    token = keycloak.service_account_token()
    with pytest.raises(SecondFactorMissing):
        verifier.verify(token)
    # Everything else about it is valid: only the level of authentication is missing.
    assert verifier.verify(token, required_acr=None).username == "service-account-infracalc-api"


def test_id_token_is_not_for_the_api(verifier: TokenVerifier, tokens: TokenResponse) -> None:
    with pytest.raises(TokenWrongAudience):
        verifier.verify(tokens.id_token)
    with pytest.raises(TokenWrongType):
        verifier.verify(tokens.id_token, audience="jupyterhub")


def test_refresh_token_is_refused(verifier: TokenVerifier, tokens: TokenResponse) -> None:
    assert tokens.refresh_token is not None
    with pytest.raises(TokenSignatureInvalid, match="not accepted"):  # Keycloak signs refresh tokens with HMAC
        verifier.verify(tokens.refresh_token)


def test_tampered_token_is_refused(verifier: TokenVerifier, tokens: TokenResponse) -> None:
    header, payload, signature = tokens.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": ["casd-staff"]}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenSignatureInvalid):
        verifier.verify(f"{header}.{forged}.{signature}")


def test_token_of_another_issuer_is_refused(keycloak: KeycloakServer, tokens: TokenResponse) -> None:
    # Same server and keys, other issuer name (as with a realm reached under another host name).
    other = TokenVerifier(
        keycloak.issuer.replace("127.0.0.1", "localhost"),
        jwks_url=f"{keycloak.issuer}/protocol/openid-connect/certs",
    )
    with pytest.raises(TokenWrongIssuer):
        other.verify(tokens.access_token)
