"""InfracalcAuthenticator's configuration, built from a traitlets ``Config()`` without running a hub.

What a sign-in does with these settings against the real Keycloak and OPA is in
``tests/integration/hub/test_authenticator.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from infracalc.hub.authenticator import (
    CLIENT_ID,
    REQUIRED_ACR,
    InfracalcAuthenticator,
    LoginRefused,
)
from infracalc.hub.login_pages import LanguageLoginHandler, RefusalPageCallbackHandler
from infracalc.hub.refusals import Refusal

_ENV = (
    "INFRACALC_KEYCLOAK_URL",
    "INFRACALC_KEYCLOAK_INTERNAL_URL",
    "INFRACALC_JUPYTERHUB_CLIENT_SECRET",
    "INFRACALC_OPA_URL",
    "INFRACALC_OPA_TIMEOUT",
    "INFRACALC_WEB_URL",
    "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def build(**settings: Any) -> InfracalcAuthenticator:
    config = Config()
    settings.setdefault("keycloak_url", "https://id.example.org")
    for name, value in settings.items():
        setattr(config.InfracalcAuthenticator, name, value)
    return InfracalcAuthenticator(config=config)


def test_endpoints_come_from_the_keycloak_url_and_realm() -> None:
    authenticator = build(keycloak_url="https://id.example.org/")
    oidc = "https://id.example.org/realms/infracalc/protocol/openid-connect"
    assert authenticator.authorize_url == f"{oidc}/auth"
    assert authenticator.token_url == f"{oidc}/token"
    assert authenticator.userdata_url == f"{oidc}/userinfo"
    assert authenticator.issuer == "https://id.example.org/realms/infracalc"
    assert authenticator.client_id == CLIENT_ID == "jupyterhub"


def test_browser_side_and_hub_side_urls_can_differ() -> None:
    authenticator = build(keycloak_url="https://id.example.org", keycloak_internal_url="http://keycloak:8080")
    # Browsers go to the public URL, tokens carry it as their issuer...
    assert authenticator.authorize_url.startswith("https://id.example.org/realms/infracalc/")
    assert authenticator.token_verifier.issuer == "https://id.example.org/realms/infracalc"
    # ...the hub talks to Keycloak over the internal network.
    assert authenticator.token_url == "http://keycloak:8080/realms/infracalc/protocol/openid-connect/token"
    assert authenticator.userdata_url == "http://keycloak:8080/realms/infracalc/protocol/openid-connect/userinfo"
    assert (
        authenticator.token_verifier.jwks_url == "http://keycloak:8080/realms/infracalc/protocol/openid-connect/certs"
    )


def test_another_realm() -> None:
    authenticator = build(realm="staging")
    assert authenticator.authorize_url == "https://id.example.org/realms/staging/protocol/openid-connect/auth"
    assert authenticator.token_verifier.issuer == "https://id.example.org/realms/staging"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFRACALC_KEYCLOAK_URL", "https://id.example.org")
    monkeypatch.setenv("INFRACALC_KEYCLOAK_INTERNAL_URL", "http://keycloak:8080")
    monkeypatch.setenv("INFRACALC_JUPYTERHUB_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("INFRACALC_OPA_URL", "http://opa:8181/")
    monkeypatch.setenv("INFRACALC_OPA_TIMEOUT", "0.5")
    monkeypatch.setenv("INFRACALC_WEB_URL", "https://infracalc.example.org/")
    authenticator = InfracalcAuthenticator(config=Config())
    assert authenticator.console_url == "https://infracalc.example.org"
    assert authenticator.keycloak_url == "https://id.example.org"
    assert authenticator.token_url.startswith("http://keycloak:8080/")
    assert authenticator.client_secret == "s3cret"
    assert authenticator.opa_url == "http://opa:8181"
    assert authenticator.opa_timeout == 0.5


def test_defaults_without_environment() -> None:
    authenticator = build()
    assert authenticator.keycloak_internal_url == "https://id.example.org"
    assert authenticator.opa_url == "http://127.0.0.1:8181"
    assert authenticator.opa_timeout == 2.0
    assert authenticator.trusted_proxies == ["127.0.0.1/32", "::1/128"]
    assert authenticator.login_service == "INFRACALC"
    assert authenticator.console_url == ""


def test_sign_in_pages_are_infracalcs_own() -> None:
    # Keycloak's pages in the person's language (ui_locales), refusals on INFRACALC's page.
    authenticator = build()
    handlers = dict(authenticator.get_handlers(None))
    assert handlers["/oauth_login"] is LanguageLoginHandler
    assert handlers["/oauth_callback"] is RefusalPageCallbackHandler


def test_keycloak_url_is_required() -> None:
    with pytest.raises(ValueError, match="keycloak_url is required"):
        InfracalcAuthenticator(config=Config())


def test_authorization_request_pkce_scopes_and_level() -> None:
    authenticator = build()
    assert authenticator.enable_pkce is True
    assert authenticator.scope == ["openid", "profile", "email"]
    assert authenticator.extra_authorize_params == {"acr_values": "mfa"}
    assert authenticator.username_claim == "preferred_username"
    # The username comes from Keycloak's userinfo endpoint, the ID token is verified separately.
    assert authenticator.userdata_from_id_token is False


def test_acr_values_cannot_be_configured_away() -> None:
    authenticator = build(extra_authorize_params={"prompt": "login", "acr_values": "pwd"})
    assert authenticator.extra_authorize_params == {"prompt": "login", "acr_values": REQUIRED_ACR}
    authenticator.extra_authorize_params = {}
    assert authenticator.extra_authorize_params == {"acr_values": REQUIRED_ACR}


def test_auth_state_is_on_and_stays_on() -> None:
    authenticator = build()
    assert authenticator.enable_auth_state is True
    # oauthenticator refreshes (and so re-checks the second factor) before every spawn.
    assert authenticator.refresh_pre_spawn is True
    with pytest.raises(TraitError, match="needs auth_state"):
        build(enable_auth_state=False)
    config = Config()
    config.Authenticator.enable_auth_state = False
    config.InfracalcAuthenticator.keycloak_url = "https://id.example.org"
    with pytest.raises(TraitError, match="needs auth_state"):
        InfracalcAuthenticator(config=config)


def test_the_verifier_checks_id_tokens_for_mfa() -> None:
    verifier = build().token_verifier
    assert verifier.audience == "jupyterhub"
    assert verifier.token_type == "ID"
    assert verifier.required_acr == "mfa"
    # Not an option: a deployer cannot hand in another verifier through configuration.
    assert not InfracalcAuthenticator.class_traits()["token_verifier"].metadata.get("config")


def test_trusted_proxies() -> None:
    authenticator = build(trusted_proxies=["127.0.0.1/32", "172.18.0.1/32", "fd00::/8"])
    assert authenticator.trusted_proxies == ["127.0.0.1/32", "172.18.0.1/32", "fd00::/8"]
    assert build(trusted_proxies=[]).trusted_proxies == []
    for bad in (["10.0.0.1/8"], ["proxy.example.org"], ["10.0.0.0/33"]):
        with pytest.raises(TraitError, match="trusted_proxies"):
            build(trusted_proxies=bad)


def test_parent_sections_apply() -> None:
    config = Config()
    config.InfracalcAuthenticator.keycloak_url = "https://id.example.org"
    config.GenericOAuthenticator.allow_all = True
    config.OAuthenticator.client_secret = "from-config"
    authenticator = InfracalcAuthenticator(config=config)
    assert authenticator.allow_all is True
    assert authenticator.client_secret == "from-config"


def test_a_refusal_is_a_403_with_a_message_for_people_and_a_reason_for_the_log() -> None:
    refusal = LoginRefused(
        "sign-in of 'ada' from 2001:db8::1%eth0 refused: 100% wrong",
        Refusal("source_not_registered", {"source_ip": "2001:db8::1"}),
        locale="en",
    )
    assert refusal.status_code == 403
    assert refusal.get_message() == "sign-in of 'ada' from 2001:db8::1%eth0 refused: 100% wrong"
    assert refusal.jupyterhub_message == (
        "You are connecting from 2001:db8::1, which is in none of the networks you registered."
    )
    assert refusal.refusal.code == "source_not_registered"
    assert refusal.locale == "en"
    assert "100% wrong" in str(refusal)
