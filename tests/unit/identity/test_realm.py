"""The realm file and its rendering, without Keycloak: what the import will contain."""

from __future__ import annotations

import base64
import json
import random
import stat
from pathlib import Path
from typing import Any

import pyotp
import pytest

from infracalc.identity.realm import (
    PLACEHOLDERS,
    DemoAccount,
    RealmConfig,
    RealmError,
    generate_demo_accounts,
    realm_template,
    render_realm,
    resolve_placeholders,
    write_realm_import,
)
from infracalc.mail import MailSettings

HUB = "http://127.0.0.1:8000"
WEB = "http://127.0.0.1:8001"
MAIL = MailSettings(host="127.0.0.1", port=1025, sender="keycloak@infracalc.test", starttls=False)


@pytest.fixture
def config() -> RealmConfig:
    return RealmConfig.generate(HUB, WEB)


@pytest.fixture
def accounts() -> list[DemoAccount]:
    return generate_demo_accounts(random.SystemRandom())


def _client(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    (client,) = [c for c in realm["clients"] if c["clientId"] == client_id]
    return client


def _flow(realm: dict[str, Any], alias: str) -> dict[str, Any]:
    (flow,) = [f for f in realm["authenticationFlows"] if f["alias"] == alias]
    return flow


def _config(realm: dict[str, Any], alias: str) -> dict[str, str]:
    (entry,) = [c for c in realm["authenticatorConfig"] if c["alias"] == alias]
    config: dict[str, str] = entry["config"]
    return config


# -- demo accounts ----------------------------------------------------------------------------


def test_demo_accounts_have_the_three_roles_and_strong_random_credentials(accounts: list[DemoAccount]) -> None:
    assert [(a.username, a.roles) for a in accounts] == [
        ("alice", ("researcher",)),
        ("bruno", ("project-lead",)),
        ("claire", ("casd-staff",)),
    ]
    for account in accounts:
        assert len(account.password) >= 20
        assert any(c.isdigit() for c in account.password)
        assert any(c.isupper() for c in account.password)
        assert len(base64.b32decode(account.totp_secret + "=" * (-len(account.totp_secret) % 8))) == 20
        assert account.email
        assert account.first_name
        assert account.last_name
    again = generate_demo_accounts(random.SystemRandom())
    assert {a.password for a in accounts}.isdisjoint(a.password for a in again)
    assert {a.totp_secret for a in accounts}.isdisjoint(a.totp_secret for a in again)


def test_secrets_stay_out_of_repr(accounts: list[DemoAccount], config: RealmConfig) -> None:
    alice = accounts[0]
    assert alice.password not in repr(alice)
    assert alice.totp_secret not in repr(alice)
    assert config.jupyterhub_client_secret not in repr(config)


def test_otpauth_uri_is_what_an_authenticator_app_expects(accounts: list[DemoAccount]) -> None:
    alice = accounts[0]
    uri = alice.otpauth_uri()
    assert uri == (
        f"otpauth://totp/INFRACALC:alice?secret={alice.totp_secret}&issuer=INFRACALC&algorithm=SHA1&digits=6&period=30"
    )
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.now() == alice.totp().now()


# -- rendering --------------------------------------------------------------------------------


def test_shipped_file_has_only_known_placeholders_and_no_users() -> None:
    text = json.dumps(realm_template())
    used = {part.split("}", 1)[0] for part in text.split("${")[1:]}
    assert used == set(PLACEHOLDERS)
    # No person: the only user is the API's service account, which may look people up and enroll them (manage-users).
    (service_account,) = realm_template()["users"]
    assert service_account["serviceAccountClientId"] == "infracalc-api"
    assert service_account["clientRoles"] == {"realm-management": ["view-users", "query-users", "manage-users"]}
    assert "credentials" not in service_account
    assert "realmRoles" not in service_account


def test_render_resolves_every_placeholder(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    realm = render_realm(config, accounts, MAIL)
    assert "${" not in json.dumps(realm)
    hub = _client(realm, "jupyterhub")
    assert hub["secret"] == config.jupyterhub_client_secret
    assert hub["redirectUris"] == [f"{HUB}/hub/oauth_callback"]
    assert _client(realm, "infracalc-web")["redirectUris"] == [f"{WEB}/*"]
    assert _client(realm, "infracalc-api")["secret"] == config.api_client_secret


def test_keycloak_mails_through_the_service_relay(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    plain = render_realm(config, accounts, MAIL)["smtpServer"]
    assert plain == {
        "host": "127.0.0.1",
        "port": "1025",
        "from": "keycloak@infracalc.test",
        "fromDisplayName": "INFRACALC",
        "starttls": "false",
        "ssl": "false",
        "auth": "false",
        "user": "",
        "password": "",
    }
    relay = MailSettings(host="relay.example", port=587, sender="noreply@example.org", username="u", password="p")
    with_login = render_realm(config, accounts, relay)["smtpServer"]
    assert (with_login["starttls"], with_login["auth"], with_login["user"], with_login["password"]) == (
        "true",
        "true",
        "u",
        "p",
    )


def test_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(RealmError, match="INFRACALC_NOPE"):
        resolve_placeholders({"a": ["x ${INFRACALC_NOPE} y"]}, {"INFRACALC_HUB_URL": HUB})


def test_a_value_cannot_change_the_json_structure() -> None:
    hostile = 'x", "publicClient": true, "y": "'
    assert resolve_placeholders({"secret": "${S}"}, {"S": hostile}) == {"secret": hostile}


def test_clients_use_code_flow_with_pkce_and_require_mfa(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    realm = render_realm(config, accounts, MAIL)
    for client_id in ("jupyterhub", "infracalc-web"):
        client = _client(realm, client_id)
        assert client["publicClient"] is False
        assert client["standardFlowEnabled"] is True
        assert client["directAccessGrantsEnabled"] is False
        assert client["implicitFlowEnabled"] is False
        attributes = client["attributes"]
        assert attributes["pkce.code.challenge.method"] == "S256"
        assert attributes["default.acr.values"] == "mfa"
        assert attributes["minimum.acr.value"] == "mfa"
        mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
        assert mappers["oidc-audience-mapper"]["included.client.audience"] == "infracalc-api"
        assert mappers["oidc-amr-mapper"]["id.token.claim"] == "true"
    api = _client(realm, "infracalc-api")
    assert api["standardFlowEnabled"] is False
    assert api["directAccessGrantsEnabled"] is False


def test_the_command_line_client_is_public_device_only_and_signs_in_at_level_mfa(
    config: RealmConfig, accounts: list[DemoAccount]
) -> None:
    realm = render_realm(config, accounts, MAIL)
    cli = _client(realm, "infracalc-cli")
    # A workstation keeps no secret: public, and the device grant is its only way to a token.
    assert cli["publicClient"] is True
    assert (cli["standardFlowEnabled"], cli["implicitFlowEnabled"], cli["directAccessGrantsEnabled"]) == (
        False,
        False,
        False,
    )
    assert cli["serviceAccountsEnabled"] is False
    assert cli["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"
    assert cli["attributes"]["minimum.acr.value"] == "mfa"
    mappers = {m["protocolMapper"]: m["config"] for m in cli["protocolMappers"]}
    assert mappers["oidc-audience-mapper"]["included.client.audience"] == "infracalc-api"
    # Keycloak gives a device login no requested level: the client's own flow asks both factors at level 2.
    (flow,) = [
        f for f in realm["authenticationFlows"] if f.get("id") == cli["authenticationFlowBindingOverrides"]["browser"]
    ]
    assert [e.get("authenticator") for e in flow["authenticationExecutions"]] == [None]  # no SSO cookie
    (sub_flow,) = flow["authenticationExecutions"]
    condition, password, otp = _flow(realm, sub_flow["flowAlias"])["authenticationExecutions"]
    assert condition["authenticator"] == "conditional-level-of-authentication"
    assert _config(realm, condition["authenticatorConfig"]) == {"loa-condition-level": "2", "loa-max-age": "0"}
    assert (password["authenticator"], password["requirement"]) == ("auth-username-password-form", "REQUIRED")
    assert (otp["authenticator"], otp["requirement"]) == ("auth-otp-form", "REQUIRED")


def test_every_client_people_sign_in_with_tells_the_service_of_a_sign_out(
    config: RealmConfig, accounts: list[DemoAccount]
) -> None:
    realm = render_realm(config, accounts, MAIL)
    for client_id in ("jupyterhub", "infracalc-web", "infracalc-cli"):
        client = _client(realm, client_id)
        # Back-channel logout to the service, with the session id, so that its access tokens stop working.
        assert client["attributes"]["backchannel.logout.url"].endswith("/auth/backchannel-logout"), client_id
        assert client["attributes"]["backchannel.logout.session.required"] == "true", client_id
        assert client["frontchannelLogout"] is False, client_id


def test_login_pages_are_french_by_default_and_english_on_request(
    config: RealmConfig, accounts: list[DemoAccount]
) -> None:
    realm = render_realm(config, accounts, MAIL)
    assert realm["internationalizationEnabled"] is True
    assert realm["supportedLocales"] == ["fr", "en"]
    assert realm["defaultLocale"] == "fr"


def test_browser_flow_is_password_then_otp_by_level(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    realm = render_realm(config, accounts, MAIL)
    assert json.loads(realm["attributes"]["acr.loa.map"]) == {"pwd": 1, "mfa": 2}
    top = _flow(realm, realm["browserFlow"])
    assert [(e.get("authenticator") or e["flowAlias"], e["requirement"]) for e in top["authenticationExecutions"]] == [
        ("auth-cookie", "ALTERNATIVE"),
        ("infracalc browser forms", "ALTERNATIVE"),
    ]
    forms = _flow(realm, "infracalc browser forms")
    levels = [e["flowAlias"] for e in forms["authenticationExecutions"] if e["requirement"] == "CONDITIONAL"]
    expected = {
        "infracalc level pwd": ("1", "auth-username-password-form", "pwd"),
        "infracalc level mfa": ("2", "auth-otp-form", "otp"),
    }
    assert levels == [*expected, "infracalc otp without requested level"]
    for alias, (level, authenticator, reference) in expected.items():
        condition, step = _flow(realm, alias)["authenticationExecutions"]
        assert condition["authenticator"] == "conditional-level-of-authentication"
        assert _config(realm, condition["authenticatorConfig"])["loa-condition-level"] == level
        assert step["authenticator"] == authenticator
        assert step["requirement"] == "REQUIRED"
        step_config = _config(realm, step["authenticatorConfig"])
        assert step_config["default.reference.value"] == reference
        assert int(step_config["default.reference.maxAge"]) > 0
    mfa_condition = _flow(realm, "infracalc level mfa")["authenticationExecutions"][0]
    assert _config(realm, mfa_condition["authenticatorConfig"])["loa-max-age"] == "0"
    # A client that requests no level (the account console) still gets the second factor.
    condition, step = _flow(realm, "infracalc otp without requested level")["authenticationExecutions"]
    assert condition["authenticator"] == "conditional-sub-flow-executed"
    assert _config(realm, condition["authenticatorConfig"]) == {
        "flow_to_check": "infracalc level mfa",
        "check_result": "not-executed",
    }
    assert (step["authenticator"], step["requirement"]) == ("auth-otp-form", "REQUIRED")


def test_descriptions_fit_keycloaks_columns(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    # Keycloak stores flow and client descriptions in VARCHAR(255): a longer one fails the whole import.
    realm = render_realm(config, accounts, MAIL)
    for item in [*realm["authenticationFlows"], *realm["clients"], *realm["roles"]["realm"]]:
        assert len(item.get("description", "")) <= 255, item.get("alias") or item.get("clientId") or item["name"]


def test_realm_policies(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    realm = render_realm(config, accounts, MAIL)
    assert (
        realm["otpPolicyType"],
        realm["otpPolicyAlgorithm"],
        realm["otpPolicyDigits"],
        realm["otpPolicyPeriod"],
    ) == (
        "totp",
        "HmacSHA1",
        6,
        30,
    )
    assert realm["otpPolicyCodeReusable"] is False
    assert realm["bruteForceProtected"] is True
    assert realm["permanentLockout"] is False
    assert realm["failureFactor"] == 5
    actions = {a["alias"]: a["enabled"] for a in realm["requiredActions"]}
    assert actions["VERIFY_PROFILE"] is False
    assert actions["CONFIGURE_TOTP"] is True
    # An invited person (remote enrollment) sets the password first, then the TOTP app.
    priority = {a["alias"]: a["priority"] for a in realm["requiredActions"]}
    assert priority["UPDATE_PASSWORD"] < priority["CONFIGURE_TOTP"]
    assert {r["name"] for r in realm["roles"]["realm"]} >= {"casd-staff", "researcher", "project-lead"}


def test_users_get_roles_full_profile_and_base32_totp(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    realm = render_realm(config, accounts, MAIL)
    users = {u["username"]: u for u in realm["users"]}
    claire = users["claire"]
    assert claire["realmRoles"] == ["casd-staff"]
    assert claire["emailVerified"] is True
    assert claire["firstName"]
    assert claire["lastName"]
    assert claire["email"]
    credentials = {c["type"]: c for c in claire["credentials"]}
    assert credentials["password"]["temporary"] is False
    otp = credentials["otp"]
    assert json.loads(otp["secretData"]) == {"value": accounts[2].totp_secret}
    assert json.loads(otp["credentialData"]) == {
        "subType": "totp",
        "digits": 6,
        "counter": 0,
        "period": 30,
        "algorithm": "HmacSHA1",
        "secretEncoding": "BASE32",
    }


def test_duplicate_users_and_unknown_roles_are_refused(config: RealmConfig, accounts: list[DemoAccount]) -> None:
    with pytest.raises(RealmError, match="two accounts"):
        render_realm(config, [accounts[0], accounts[0]], MAIL)
    rogue = DemoAccount("eve", "Pw-123456789abc", accounts[0].totp_secret, ("admin",), "eve@example.org", "E", "V")
    with pytest.raises(RealmError, match="roles the realm lacks"):
        render_realm(config, [rogue], MAIL)


def test_write_realm_import_is_private(tmp_path: Path, config: RealmConfig, accounts: list[DemoAccount]) -> None:
    path = write_realm_import(tmp_path / "import", config, accounts, MAIL)
    assert path.name == "infracalc.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["realm"] == "infracalc"
