"""Authentication: every ``/api/v1`` request carries a bearer credential, which becomes a principal.

Four kinds of callers, each a :class:`CredentialScheme` tried in order by the middleware:

- people and the hub send a Keycloak access token (:class:`KeycloakScheme`), checked by the
  foundation's :class:`~infracalc.identity.TokenVerifier`: signature through the realm's keys,
  issuer, audience ``infracalc-api``, expiry. A person's token must say ``acr == "mfa"``; the
  hub's token is its service account's (client ``jupyterhub``, client credentials), which has no
  person and so no second factor behind it;
- bubbles send the token the service minted when the hub registered them (:class:`BubbleScheme`);
- the egress proxy sends its secret (:class:`ProxyScheme`), which the service knows as a digest
  only (``INFRACALC_EGRESS_PROXY_SECRET_SHA256``).

Verification may fetch the realm's keys over HTTP, so it runs in a worker thread, and a verified
token is remembered until it expires: its signature is checked once, not at every request.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread
import jwt
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from infracalc.db import Bubble
from infracalc.identity import Claims, TokenError, TokenMalformed, TokenVerifier, proxy_secret
from infracalc.identity import bubble_tokens as tokens
from infracalc.service.ended_sessions import SessionEnded
from infracalc.service.principals import BubblePrincipal, EgressProxy, Hub, Person, Principal

if TYPE_CHECKING:
    from infracalc.service.context import ServiceContext

#: The Keycloak client JupyterHub logs people in with; its service account is the hub itself.
HUB_CLIENT = "jupyterhub"


class CredentialScheme(Protocol):
    """One way of proving who one is: it recognises its own credentials and checks them."""

    def recognises(self, credential: str) -> bool:
        """Whether ``credential`` (the text after ``Bearer``) is of this scheme."""
        ...

    async def authenticate(self, credential: str, context: ServiceContext) -> Principal:
        """The principal ``credential`` proves, or an :class:`~infracalc.errors.InfracalcError` saying why not."""
        ...


class MissingCredentials(TokenMalformed):
    """No ``Authorization: Bearer`` header, or one of no known kind."""


class BubbleTokenRefused(TokenError):
    """A bubble token that is unknown, revoked, or whose secret does not match."""


class ProxySecretRefused(TokenError):
    """An egress proxy secret that is malformed or wrong, or sent to a service that has no proxy configured."""


class KeycloakScheme:
    """Keycloak access tokens: of people (acr ``mfa`` required) and of the hub's service account."""

    def __init__(self, verifier: TokenVerifier, cache_size: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self.verifier = verifier
        self.cache_size = cache_size
        self._clock = clock
        # credential -> (principal, when the token expires, when its person signed in, its Keycloak session)
        self._verified: OrderedDict[str, tuple[Person | Hub, float, float | None, str | None]] = OrderedDict()

    def recognises(self, credential: str) -> bool:
        """A JWT has three dot-separated parts."""
        return credential.count(".") == 2  # noqa: PLR2004 - header.payload.signature

    async def authenticate(self, credential: str, context: ServiceContext) -> Person | Hub:
        """The token's principal: from the cache while the token is unexpired, else verified in a worker thread.

        A person's ``auth_age_seconds`` is worked out at each request (the cache keeps the login's time).
        """
        cached = self._verified.get(credential)
        now = self._clock()
        if cached is not None and now >= cached[1]:
            del self._verified[credential]
            cached = None
        if cached is None:
            cached = await anyio.to_thread.run_sync(self._verify, credential)
            self._verified[credential] = cached
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
            now = self._clock()
        principal, _, auth_time, sid = cached
        # Asked at every request, cached token or not: a sign-out must reach tokens verified before it.
        if sid is not None and await context.ended_sessions.is_ended(context.read_sessions, sid):
            raise SessionEnded("this sign-in was ended (signed out); sign in again")
        if isinstance(principal, Person) and auth_time is not None:
            # A login a few seconds "in the future" (clock skew with Keycloak) is a login just now. Whole
            # seconds, rounded up (never younger than it is): the same question within a second is the
            # same policy input, which the decision cache can answer.
            return dataclasses.replace(principal, auth_age_seconds=float(math.ceil(max(0.0, now - auth_time))))
        return principal

    def _verify(self, credential: str) -> tuple[Person | Hub, float, float | None, str | None]:
        if _looks_like_hub(credential):
            # Fully verified like any token; only the second factor is not asked of a service account.
            claims = self.verifier.verify(credential, required_acr=None)
            if claims.authorized_party != HUB_CLIENT or claims.username != f"service-account-{HUB_CLIENT}":
                raise TokenMalformed("a service-account token of another client")
            return Hub(), claims.expires_at.timestamp(), None, _session_of(claims)
        claims = self.verifier.verify(credential)
        auth_time = None if claims.auth_time is None else claims.auth_time.timestamp()
        return _person(claims), claims.expires_at.timestamp(), auth_time, _session_of(claims)


def _session_of(claims: Claims) -> str | None:
    """The Keycloak session the token was issued in (``sid``), when it says."""
    sid = claims.raw.get("sid")
    return sid if isinstance(sid, str) and sid else None


def _looks_like_hub(credential: str) -> bool:
    """Routing only (which checks to apply), never trust: the claims are read again once verified."""
    try:
        unverified = jwt.decode(credential, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return (
        unverified.get("azp") == HUB_CLIENT and unverified.get("preferred_username") == f"service-account-{HUB_CLIENT}"
    )


def _person(claims: Claims) -> Person:
    return Person(username=claims.username, roles=frozenset(claims.roles), acr=claims.acr, subject=claims.subject)


class BubbleScheme:
    """Tokens the service minted for bubbles; looked up at every request, so a revocation is immediate."""

    def recognises(self, credential: str) -> bool:
        """Bubble tokens start with ``ibt_``."""
        return credential.startswith(tokens.PREFIX)

    async def authenticate(self, credential: str, context: ServiceContext) -> BubblePrincipal:
        """The bubble the token belongs to, if it is still running."""
        parsed = tokens.parse(credential)
        if parsed is None:
            raise BubbleTokenRefused("a malformed bubble token")
        bubble_id, secret = parsed
        async with context.read_sessions() as session:
            bubble = await session.get(Bubble, bubble_id)
        if bubble is None or not tokens.matches(secret, bubble.token_sha256):
            raise BubbleTokenRefused("an unknown bubble token")
        if bubble.revoked_at is not None:
            raise BubbleTokenRefused("this bubble was stopped: its token is revoked")
        return BubblePrincipal(bubble_id=bubble.id, project=bubble.project_id, username=bubble.username)


class ProxyScheme:
    """The egress proxy's secret, compared in constant time with the configured digest."""

    def __init__(self, secret_sha256: str | None) -> None:
        """``secret_sha256``: the digest of the proxy's secret; ``None`` refuses every proxy credential."""
        self._digest = secret_sha256

    def __repr__(self) -> str:
        return f"ProxyScheme(configured={self._digest is not None})"

    def recognises(self, credential: str) -> bool:
        """Proxy secrets start with ``iep_``."""
        return credential.startswith(proxy_secret.PREFIX)

    async def authenticate(self, credential: str, context: ServiceContext) -> EgressProxy:
        """The egress proxy, if ``credential`` is its secret."""
        if self._digest is None:
            raise ProxySecretRefused(
                "no egress proxy is configured (set INFRACALC_EGRESS_PROXY_SECRET_SHA256 to accept its secret)"
            )
        if not proxy_secret.well_formed(credential):
            raise ProxySecretRefused("a malformed egress proxy secret")
        if not proxy_secret.matches(credential, self._digest):
            raise ProxySecretRefused("an unknown egress proxy secret")
        return EgressProxy()


class TokenAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the :data:`Principal` the bearer credential proves.

    The schemes come from ``app.state.credential_schemes`` (set by ``create_app``): middleware
    options are deep-copied per route, and a verifier with its key cache and lock must be shared.
    """

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        """Find the scheme of the bearer credential and let it authenticate the caller."""
        header = connection.headers.get("authorization", "")
        kind, _, credential = header.partition(" ")
        if kind.lower() != "bearer" or not credential.strip():
            raise MissingCredentials("this route needs an Authorization: Bearer token (sign in with two factors)")
        credential = credential.strip()
        schemes: list[CredentialScheme] = connection.app.state.credential_schemes
        for scheme in schemes:
            if scheme.recognises(credential):
                principal = await scheme.authenticate(credential, connection.app.state.context)
                return AuthenticationResult(user=principal, auth=None)
        raise MissingCredentials("the bearer credential is of no known kind")
