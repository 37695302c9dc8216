"""Two-factor login against a real Keycloak with the ``infracalc`` realm, driven like a browser.

OTP codes are single-use (``otpPolicyCodeReusable`` false), so every test that completes a login
uses an account of its own; the demo accounts are each used once at most.
"""

from __future__ import annotations

import base64
import time

import jwt
import pyotp
import pytest

from infracalc.identity.tokens import TokenVerifier
from tests.fixtures.keycloak import KeycloakServer
from tests.support.oidc_browser import ClientRedirect, KeycloakPage, LoginIncomplete

pytestmark = pytest.mark.integration


def _old_code(totp: pyotp.TOTP) -> str:
    """A well-formed code from ten minutes ago, outside Keycloak's look-ahead window."""
    return totp.at(time.time() - 600)


def test_password_and_totp_give_mfa_tokens(keycloak: KeycloakServer) -> None:
    alice = keycloak.accounts["alice"]
    browser = keycloak.browser()

    result = browser.login(alice.username, alice.password, alice.totp().now())

    id_verifier = TokenVerifier(keycloak.issuer, audience="jupyterhub", token_type="ID")
    id_token = id_verifier.verify(result.tokens.id_token)
    assert id_token.acr == "mfa"
    assert {"pwd", "otp"} <= set(id_token.amr)
    assert id_token.username == "alice"
    assert id_token.raw["nonce"] == result.nonce

    access = TokenVerifier(keycloak.issuer).verify(result.tokens.access_token)
    assert "infracalc-api" in access.audience
    assert access.acr == "mfa"
    assert "otp" in access.amr
    assert "researcher" in access.roles
    assert access.authorized_party == "jupyterhub"


def test_web_console_login_gives_api_tokens_too(keycloak: KeycloakServer) -> None:
    claire = keycloak.accounts["claire"]
    result = keycloak.browser("infracalc-web").login(claire.username, claire.password, claire.totp().now())
    access = TokenVerifier(keycloak.issuer).verify(result.tokens.access_token)
    assert access.username == "claire"
    assert "casd-staff" in access.roles
    assert access.authorized_party == "infracalc-web"


@pytest.mark.parametrize("acr_values", ["mfa", "pwd", None])
def test_password_alone_never_yields_a_code(keycloak: KeycloakServer, acr_values: str | None) -> None:
    account = keycloak.add_account("pwd-only")
    browser = keycloak.browser(acr_values=acr_values)

    after_password = browser.submit_password(_login_page(browser.start()), account.username, account.password)

    assert isinstance(after_password, KeycloakPage), "Keycloak redirected to the client after the password alone"
    assert after_password.kind == "otp", after_password.describe()
    # Coming back to the authorization endpoint with the same cookies does not skip the second factor.
    again = browser.start()
    assert isinstance(again, KeycloakPage), again
    assert again.kind in {"login", "otp"}, again.describe()


def test_wrong_totp_is_refused(keycloak: KeycloakServer) -> None:
    account = keycloak.add_account("wrong-otp")
    browser = keycloak.browser()
    otp_page = browser.submit_password(_login_page(browser.start()), account.username, account.password)
    assert isinstance(otp_page, KeycloakPage)
    assert otp_page.kind == "otp"

    refused = browser.submit_otp(otp_page, _old_code(account.totp()))

    assert isinstance(refused, KeycloakPage), f"a wrong TOTP code was accepted: {refused}"
    assert refused.kind == "otp", refused.describe()
    assert any("invalid" in m.lower() for m in refused.messages), refused.describe()
    # The same session then succeeds with the right code: the refusal was about the code.
    assert browser.finish(browser.submit_otp(refused, account.totp().now())).code


def test_repeated_wrong_passwords_lock_the_account(keycloak: KeycloakServer) -> None:
    account = keycloak.add_account("lockout")

    def wrong_password(n: int) -> None:
        browser = keycloak.browser()
        page = browser.submit_password(_login_page(browser.start()), account.username, f"wrong-password-{n}")
        assert isinstance(page, KeycloakPage)
        assert page.kind == "login"
        # Failures closer than quickLoginCheckMilliSeconds (1 s) lock at once; space them to count to five.
        time.sleep(1.2)

    for n in range(4):
        wrong_password(n)
    assert keycloak.brute_force_status(account.username)["disabled"] is False
    wrong_password(4)
    status = keycloak.brute_force_status(account.username)
    assert status["disabled"] is True
    assert status["numFailures"] == 5

    with pytest.raises(LoginIncomplete) as refused:
        keycloak.browser().login(account.username, account.password, account.totp().now())
    assert refused.value.page is not None
    assert refused.value.page.kind == "login"


def test_user_without_otp_must_configure_it_before_any_code(keycloak: KeycloakServer) -> None:
    account = keycloak.add_account("enrol", with_totp=False)
    browser = keycloak.browser()

    page = browser.submit_password(_login_page(browser.start()), account.username, account.password)

    assert isinstance(page, KeycloakPage), "a user without OTP got a code with the password alone"
    assert page.kind == "configure-totp", page.describe()
    # Enrolling (as an authenticator app would, from the secret on the page) completes the login at level mfa.
    form = page.forms["kc-totp-settings-form"]
    key = base64.b32encode(form.inputs["totpSecret"].encode()).decode()
    done = browser.submit_form(page, "kc-totp-settings-form", {"totp": pyotp.TOTP(key).now(), "userLabel": "phone"})
    result = browser.finish(done)
    claims = jwt.decode(result.tokens.id_token, options={"verify_signature": False})
    assert claims["acr"] == "mfa"


def test_sso_cookie_does_not_skip_the_otp_at_a_new_login(keycloak: KeycloakServer) -> None:
    account = keycloak.add_account("sso")
    browser = keycloak.browser()
    browser.login(account.username, account.password, account.totp().now())

    browser.state = "second-login"
    second = browser.start()

    assert isinstance(second, KeycloakPage), f"the SSO cookie alone gave a new code: {second}"
    assert second.kind == "otp", second.describe()


def _login_page(where: KeycloakPage | ClientRedirect) -> KeycloakPage:
    assert isinstance(where, KeycloakPage), where
    assert where.kind == "login", where.describe()
    return where
