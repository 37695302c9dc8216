"""The hub's sign-in: Keycloak's ``infracalc`` realm, two factors always, from an allowed address.

:class:`InfracalcAuthenticator` is oauthenticator's ``GenericOAuthenticator`` set up for the
realm's ``jupyterhub`` client (authorization code with PKCE, ``acr_values=mfa``, scopes
``openid profile email``, the username from ``preferred_username``), with two checks of its own:

- **Two factors.** The ID token of every sign-in *and every refresh* must verify against the
  realm's published keys (signature, issuer, audience ``jupyterhub``, expiry, type ``ID``) and say
  ``acr == "mfa"``, which Keycloak writes only after password and one-time code. The check sits in
  :meth:`~InfracalcAuthenticator.update_auth_model`, which oauthenticator calls from
  ``_token_to_auth_model``, the one path shared by ``authenticate`` and ``refresh_user``, and
  before JupyterHub looks at ``allow_all`` or the allow lists: no allow setting skips it. The
  required level is a constant, not an option: configuration cannot turn the second factor off.
- **Source address.** At sign-in, OPA's ``infracalc.login`` decides on the user, the ``acr`` and
  the address the browser connects from (see :mod:`infracalc.hub.source_address`: the socket peer, and
  ``X-Forwarded-For`` only as far as ``trusted_proxies`` vouch for it). OPA unreachable: refused.

A refused sign-in is a 403 (:class:`~infracalc.hub.refusals.LoginRefused`) whose page tells the person
why, in French or English, with a link to where to fix it (:mod:`infracalc.hub.refusals`), and whose log
line tells operators, never with a token in it. A refused refresh makes ``refresh_user`` return
``False``, which JupyterHub turns into a new sign-in. Keycloak's pages open in the person's language
(``ui_locales``, :mod:`infracalc.hub.login_pages`).

``enable_auth_state`` is on (refresh needs the tokens), so the hub needs ``JUPYTERHUB_CRYPT_KEY``
(32 random bytes, hex: ``openssl rand -hex 32``) to encrypt them in its database; JupyterHub
refuses to start without it. Which projects a person may use is not decided here: the spawner
asks the service.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Final

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Float, Instance, List, TraitError, Unicode, default, validate

from infracalc.hub.login_pages import LanguageLoginHandler, RefusalPageCallbackHandler
from infracalc.hub.refusals import LoginRefused, Refusal
from infracalc.hub.source_address import DEFAULT_TRUSTED_PROXIES, parse_networks, peer_address, source_address
from infracalc.identity.realm import REALM_NAME
from infracalc.identity.tokens import Claims, JwksUnavailable, SecondFactorMissing, TokenError, TokenVerifier
from infracalc.policy.opa import OpaSettings, PolicyClient, PolicyUnavailable

#: The Level of Authentication every hub session needs: password and one-time code.
REQUIRED_ACR: Final = "mfa"
#: The OPA package deciding on sign-ins (rule ``decision``).
LOGIN_POLICY: Final = "infracalc.login"
#: The realm client the hub signs in with.
CLIENT_ID: Final = "jupyterhub"

#: The authenticator's own refusals (the login policy's carry their code).
SECOND_FACTOR: Final = Refusal("second_factor_missing")
UNVERIFIED: Final = Refusal("unverified")
KEYS_UNAVAILABLE: Final = Refusal("keys_unavailable")
SOURCE_UNKNOWN: Final = Refusal("source_unknown")
POLICY_UNAVAILABLE: Final = Refusal("policy_unavailable")
_AUTH_STATE_REQUIRED: Final = (
    "InfracalcAuthenticator needs auth_state (enable_auth_state): a refresh re-checks the second factor"
)

__all__ = ["InfracalcAuthenticator", "LoginRefused"]


class InfracalcAuthenticator(GenericOAuthenticator):  # type: ignore[misc]
    """Keycloak sign-in for the hub: two factors always, source address decided by OPA."""

    #: ``INFRACALC_JUPYTERHUB_CLIENT_SECRET``: the ``jupyterhub`` client's secret (when not configured otherwise).
    client_secret_env = "INFRACALC_JUPYTERHUB_CLIENT_SECRET"  # noqa: S105 - the variable's name
    login_handler = LanguageLoginHandler
    callback_handler = RefusalPageCallbackHandler

    console_url = Unicode(
        config=True,
        help="""The web console's public URL (e.g. ``https://infracalc.example.org``).

        A refusal the person can fix there (an address outside their registered networks, no
        network registered yet) links to the console's networks section. Default:
        ``$INFRACALC_WEB_URL``; empty: the page says what to do, without a link.
        """,
    )

    @default("console_url")
    def _console_url_default(self) -> str:
        return os.environ.get("INFRACALC_WEB_URL", "").rstrip("/")

    keycloak_url = Unicode(
        config=True,
        help="""Keycloak's public base URL, as browsers reach it (e.g. ``https://id.example.org``).

        Browsers are sent to its authorization endpoint, and ID tokens must name its realm as their
        issuer. Default: ``$INFRACALC_KEYCLOAK_URL``; required.
        """,
    )

    @default("keycloak_url")
    def _keycloak_url_default(self) -> str:
        return os.environ.get("INFRACALC_KEYCLOAK_URL", "").rstrip("/")

    keycloak_internal_url = Unicode(
        config=True,
        help="""Keycloak's base URL as the hub reaches it (e.g. ``http://keycloak:8080``).

        The hub redeems codes, asks userinfo and fetches the realm's keys there. Default:
        ``$INFRACALC_KEYCLOAK_INTERNAL_URL``, else :attr:`keycloak_url`.
        """,
    )

    @default("keycloak_internal_url")
    def _keycloak_internal_url_default(self) -> str:
        return (os.environ.get("INFRACALC_KEYCLOAK_INTERNAL_URL") or self.keycloak_url).rstrip("/")

    realm = Unicode(REALM_NAME, config=True, help="The Keycloak realm people sign in to.")

    opa_url = Unicode(
        config=True,
        help="OPA's base URL, asked about every sign-in (``infracalc.login``). Default: ``$INFRACALC_OPA_URL``.",
    )

    @default("opa_url")
    def _opa_url_default(self) -> str:
        return OpaSettings.from_env().url

    opa_timeout = Float(
        config=True,
        help="Seconds to wait for OPA's sign-in decision before refusing. Default: ``$INFRACALC_OPA_TIMEOUT``.",
    )

    @default("opa_timeout")
    def _opa_timeout_default(self) -> float:
        return OpaSettings.from_env().timeout

    trusted_proxies = List(
        Unicode(),
        default_value=list(DEFAULT_TRUSTED_PROXIES),
        config=True,
        help="""Networks (CIDRs) of the proxies whose ``X-Forwarded-For`` entries the hub believes.

        The default trusts loopback only: configurable-http-proxy runs beside the hub and appends
        the address it saw. Add the address of a TLS reverse proxy in front of it (as the hub's
        proxy sees it) so that the browser's own address is the one decided on. An address
        outside these networks is taken as the client's, whatever headers it sent.
        """,
    )

    @validate("trusted_proxies")
    def _validate_trusted_proxies(self, proposal: Any) -> list[str]:
        value: list[str] = proposal["value"]
        try:
            parse_networks(value)
        except ValueError as error:
            raise TraitError(f"trusted_proxies must be networks such as 10.0.0.0/8: {error}") from error
        return value

    token_verifier = Instance(
        TokenVerifier,
        help="Verifies the realm's ID tokens; built from the options above (not configurable).",
    )

    @default("token_verifier")
    def _token_verifier_default(self) -> TokenVerifier:
        return TokenVerifier(
            self.issuer,
            audience=self.client_id,
            jwks_url=f"{self._internal_realm_url}/protocol/openid-connect/certs",
            required_acr=REQUIRED_ACR,
            token_type="ID",  # noqa: S106 - a token type, not a secret
        )

    # -- oauthenticator's options, set for the realm --------------------------------------------

    @default("login_service")
    def _login_service_default(self) -> str:
        return "INFRACALC"

    @default("client_id")
    def _client_id_default(self) -> str:
        return CLIENT_ID

    @default("authorize_url")
    def _authorize_url_default(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/auth"

    @default("token_url")
    def _token_url_default(self) -> str:
        return f"{self._internal_realm_url}/protocol/openid-connect/token"

    @default("userdata_url")
    def _userdata_url_default(self) -> str:
        return f"{self._internal_realm_url}/protocol/openid-connect/userinfo"

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email"]

    @default("username_claim")
    def _username_claim_default(self) -> str:
        return "preferred_username"

    @default("enable_pkce")
    def _enable_pkce_default(self) -> bool:
        return True

    @default("extra_authorize_params")
    def _extra_authorize_params_default(self) -> dict[str, str]:
        return {"acr_values": REQUIRED_ACR}

    @validate("extra_authorize_params")
    def _validate_extra_authorize_params(self, proposal: Any) -> dict[str, str]:
        # Other parameters are the deployer's business; the level asked for is not.
        return {**proposal["value"], "acr_values": REQUIRED_ACR}

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True

    @validate("enable_auth_state")
    def _validate_enable_auth_state(self, proposal: Any) -> bool:
        if not proposal["value"]:
            raise TraitError(_AUTH_STATE_REQUIRED)
        return True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # traitlets skips validation when configuration sets a trait to its class default (False
        # here), so the validator above cannot be the only guard.
        if not self.enable_auth_state:
            raise TraitError(_AUTH_STATE_REQUIRED)
        if not self.keycloak_url:
            raise ValueError("InfracalcAuthenticator.keycloak_url is required (or set INFRACALC_KEYCLOAK_URL)")

    @property
    def issuer(self) -> str:
        """The issuer the realm's tokens carry (the public URL)."""
        return f"{self.keycloak_url.rstrip('/')}/realms/{self.realm}"

    @property
    def _internal_realm_url(self) -> str:
        return f"{self.keycloak_internal_url.rstrip('/')}/realms/{self.realm}"

    # -- the checks ------------------------------------------------------------------------------

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Refuse unless Keycloak's ID token proves a two-factor sign-in of this user.

        oauthenticator calls this for every sign-in and every refresh, before any allow setting
        is looked at; the verified ``acr`` and ``auth_time`` are kept in ``auth_state`` (the bubble's
        session records the sign-in behind each start).

        Raises:
            LoginRefused: the ID token is missing, does not verify, or says another level than ``mfa``.
        """
        auth_state: dict[str, Any] = auth_model.get("auth_state") or {}
        claims = await self._verified_id_token(auth_state, str(auth_model["name"]))
        auth_state["acr"] = claims.acr
        # The language the person chose on Keycloak's pages, if any: their refusal page follows it.
        locale = claims.raw.get("locale")
        auth_state["locale"] = locale if isinstance(locale, str) else None
        # Seconds since the epoch: auth_state is stored as JSON.
        auth_state["auth_time"] = None if claims.auth_time is None else int(claims.auth_time.timestamp())
        return auth_model

    async def authenticate(
        self, handler: web.RequestHandler, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Sign in with Keycloak (two factors checked on the way), then ask OPA about the source address.

        Raises:
            LoginRefused: the second factor is missing, or the login policy refuses (or cannot be asked).
        """
        auth_model: dict[str, Any] = await super().authenticate(handler, data, **kwargs)
        auth_state = auth_model["auth_state"]
        await self._check_login_policy(
            handler, str(auth_model["name"]), str(auth_state["acr"]), auth_state.get("locale")
        )
        return auth_model

    async def refresh_user(self, user: Any, handler: web.RequestHandler | None = None, **kwargs: Any) -> Any:
        """Refresh as oauthenticator does, where a token that fails :meth:`update_auth_model` means a new sign-in.

        Returns ``True`` (up to date), ``False`` (sign in again) or a fresh auth model, as JupyterHub expects.
        """
        try:
            return await super().refresh_user(user, handler, **kwargs)
        except LoginRefused as refusal:
            # oauthenticator turns a refusal after a refresh grant into False itself, but lets one
            # on the stored tokens through as an exception: both mean "sign in again".
            self.log.warning("Refresh of %r refused, a new sign-in is required: %s", user.name, refusal.get_message())
            return False

    async def _verified_id_token(self, auth_state: dict[str, Any], username: str) -> Claims:
        id_token = auth_state.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise LoginRefused(f"sign-in of {username!r} refused: Keycloak returned no ID token", UNVERIFIED)
        try:
            # verify() may fetch the realm's keys over HTTP: not on the event loop.
            claims = await asyncio.to_thread(
                self.token_verifier.verify, id_token, audience=self.client_id, required_acr=REQUIRED_ACR
            )
        except SecondFactorMissing as error:
            raise LoginRefused(f"sign-in of {username!r} refused: {error}", SECOND_FACTOR) from error
        except JwksUnavailable as error:
            raise LoginRefused(f"sign-in of {username!r} refused: {error}", KEYS_UNAVAILABLE) from error
        except TokenError as error:
            raise LoginRefused(
                f"sign-in of {username!r} refused, its ID token does not verify: {error}", UNVERIFIED
            ) from error
        # OpenID Connect Core 5.3.2: userinfo's subject must be the ID token's.
        user_info = auth_state.get(self.user_auth_state_key)
        if not isinstance(user_info, dict) or user_info.get("sub") != claims.subject:
            raise LoginRefused(
                f"sign-in of {username!r} refused: userinfo and the ID token name different subjects",
                UNVERIFIED,
            )
        if claims.authorized_party not in (None, self.client_id):
            raise LoginRefused(
                f"sign-in of {username!r} refused: the ID token was issued to {claims.authorized_party!r}",
                UNVERIFIED,
            )
        return claims

    async def _check_login_policy(
        self, handler: web.RequestHandler, username: str, acr: str, locale: str | None
    ) -> None:
        source = source_address(handler.request, parse_networks(self.trusted_proxies))
        if source is None:
            raise LoginRefused(
                f"sign-in of {username!r} refused: no trustworthy source address"
                f" (peer {peer_address(handler.request)}, X-Forwarded-For not usable)",
                SOURCE_UNKNOWN,
                locale=locale,
            )
        payload = {"username": username, "acr": acr, "source_ip": str(source)}
        try:
            async with PolicyClient(OpaSettings(url=self.opa_url.rstrip("/"), timeout=self.opa_timeout)) as policy:
                decision = await policy.decide(LOGIN_POLICY, payload)
        except PolicyUnavailable as error:
            raise LoginRefused(
                f"sign-in of {username!r} from {source} refused, the login policy could not be asked: {error}",
                POLICY_UNAVAILABLE,
                locale=locale,
            ) from error
        if not decision.allow:
            code = decision.extra.get("code")
            refusal = Refusal(
                code if isinstance(code, str) else "other",
                {"source_ip": str(source), "reason": decision.reason},
            )
            raise LoginRefused(
                f"sign-in of {username!r} from {source} refused by {LOGIN_POLICY}: {decision.reason}",
                refusal,
                locale=locale,
            )
        self.log.info("Sign-in of %r from %s allowed by %s: %s", username, source, LOGIN_POLICY, decision.reason)
