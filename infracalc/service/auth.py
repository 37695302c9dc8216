"""Authentication: every ``/api/v1`` request carries a token, and the middleware turns it into a principal.

People send ``Authorization: Bearer <Keycloak access token>``. The token is checked by the
foundation's :class:`~infracalc.identity.TokenVerifier` (signature through the realm's keys,
issuer, audience ``infracalc-api``, expiry, and ``acr == "mfa"``). Verification may fetch the
realm's keys over HTTP, so it runs in a worker thread and never blocks the event loop.

The middleware keeps one list of :class:`CredentialScheme` objects, tried in order: the egress
issue adds bubble tokens as a second scheme without touching the routes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from infracalc.identity import Claims, TokenMalformed, TokenVerifier
from infracalc.service.principals import Person, Principal


class CredentialScheme(Protocol):
    """One way of proving who one is: it recognises its own credentials and checks them."""

    def recognises(self, credential: str) -> bool:
        """Whether ``credential`` (the text after ``Bearer``) is of this scheme."""
        ...

    async def authenticate(self, credential: str) -> Principal:
        """The principal ``credential`` proves, or an :class:`~infracalc.errors.InfracalcError` saying why not."""
        ...


class KeycloakPersonScheme:
    """Keycloak access tokens of people: JWTs, checked with the realm's keys, acr ``mfa`` required.

    A client sends the same token with every request until it expires, so a verified token is
    remembered (up to ``cache_size`` of them) until its ``exp``: the signature is checked once per
    token, not once per request. A token is immutable, so nothing it proves can change meanwhile.
    """

    def __init__(self, verifier: TokenVerifier, cache_size: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self.verifier = verifier
        self.cache_size = cache_size
        self._clock = clock
        self._verified: OrderedDict[str, tuple[Person, float]] = OrderedDict()

    def recognises(self, credential: str) -> bool:
        """A JWT has three dot-separated parts."""
        return credential.count(".") == 2  # noqa: PLR2004 - header.payload.signature

    async def authenticate(self, credential: str) -> Person:
        """The token's person: from the cache while the token is unexpired, else verified in a worker thread."""
        cached = self._verified.get(credential)
        if cached is not None:
            person, expires_at = cached
            if self._clock() < expires_at:
                return person
            del self._verified[credential]
        claims: Claims = await anyio.to_thread.run_sync(self.verifier.verify, credential)
        person = Person(username=claims.username, roles=frozenset(claims.roles), acr=claims.acr, subject=claims.subject)
        self._verified[credential] = (person, claims.expires_at.timestamp())
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return person


class MissingCredentials(TokenMalformed):
    """No ``Authorization: Bearer`` header, or one of no known scheme."""


class TokenAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the :data:`Principal` the bearer credential proves.

    The schemes come from ``app.state.credential_schemes`` (set by ``create_app``): middleware
    options are deep-copied per route, and a verifier with its key cache and lock must be shared.
    """

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        """Find the scheme of the bearer credential and let it authenticate the caller."""
        header = connection.headers.get("authorization", "")
        kind, _, credential = header.partition(" ")
        if kind.lower() != "bearer" or not credential.strip():
            raise MissingCredentials("this route needs an Authorization: Bearer token (sign in with two factors)")
        credential = credential.strip()
        schemes: list[CredentialScheme] = connection.app.state.credential_schemes
        for scheme in schemes:
            if scheme.recognises(credential):
                principal = await scheme.authenticate(credential)
                return AuthenticationResult(user=principal, auth=None)
        raise MissingCredentials("the bearer credential is of no known kind")
