"""Trusting a Keycloak token: the one verification every part of INFRACALC uses.

:class:`TokenVerifier` checks an **access token** of the ``infracalc`` realm for the API: its
signature against the realm's published keys (JWKS), its validity period, its issuer, its
audience (``infracalc-api`` by default), its type (``Bearer``) and its Level of Authentication
(``acr == "mfa"``, which Keycloak only writes after password *and* TOTP). ID tokens are the
hub's business: the hub checks its own ID token's ``acr`` (a verifier with ``audience="jupyterhub"``
and ``token_type="ID"`` can do that too).

Errors, all subclasses of :class:`TokenError` (itself an :class:`~infracalc.errors.InfracalcError`):

- :class:`TokenMalformed`: not a JWT, no key id, or a required claim is missing;
- :class:`TokenSignatureInvalid`: a refused algorithm (``none``, ``HS*``), an unknown key id even
  after refreshing the keys, or a signature that does not match the key;
- :class:`TokenExpired`: past its ``exp`` (or issued in the future), beyond the leeway;
- :class:`TokenWrongIssuer`: issued by another realm or server;
- :class:`TokenWrongAudience`: meant for another client;
- :class:`TokenWrongType`: an ID or refresh token where an access token is expected;
- :class:`SecondFactorMissing`: valid, but the login did not reach the required level (``mfa``);
- :class:`JwksUnavailable`: the keys could not be fetched; verification fails closed.

Keys are kept in a small cache of our own rather than PyJWT's ``PyJWKClient``: the cache is
refreshed when a token names a key id it does not hold (Keycloak rotated its keys) or when it is
older than ``jwks_max_age``, but never more often than once per ``min_refresh_interval``, so a
flood of tokens with made-up key ids cannot make us hammer Keycloak (``PyJWKClient`` fetches
again for every unknown key id). It also keeps only signing keys (Keycloak publishes an
encryption key too) and holds each key to the algorithm it declares.

``verify`` is synchronous and may fetch the keys over HTTP (at most ``http_timeout`` seconds):
async callers run it in a worker thread, or call :meth:`TokenVerifier.refresh_keys` at start-up.
"""

from __future__ import annotations

import enum
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import jwt

from infracalc.errors import InfracalcError

#: Asymmetric signature algorithms a Keycloak realm key can use. ``none`` and ``HS*`` are never accepted.
ACCEPTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_REQUIRED_CLAIMS: Final = ["exp", "iat", "iss", "aud", "sub"]
#: The event a back-channel logout token carries (OpenID Connect Back-Channel Logout 1.0).
BACKCHANNEL_LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
_KEYS_UNAVAILABLE: Final = "the sign-in service's keys cannot be fetched now; try again later"


class _Unset(enum.Enum):
    """Marks an argument left to the verifier's configuration."""

    UNSET = enum.auto()


class TokenError(InfracalcError):
    """A token was refused; the subclass says why, the message says it to people."""


class TokenMalformed(TokenError):
    """Not a JWT we can read: bad encoding, no key id, or a required claim missing."""


class TokenSignatureInvalid(TokenError):
    """The signature cannot be trusted: refused algorithm, unknown key (after a refresh), or a mismatch."""


class TokenExpired(TokenError):
    """Outside its validity period (past ``exp``, or issued in the future), beyond the leeway."""


class TokenWrongIssuer(TokenError):
    """Issued by another realm or server than the one we trust."""


class TokenWrongAudience(TokenError):
    """Not meant for this audience (``aud`` does not name it)."""


class TokenWrongType(TokenError):
    """Another kind of token (ID, refresh) than the one expected (an access token, ``typ`` Bearer)."""


class SecondFactorMissing(TokenError):
    """A valid token whose login did not reach the required Level of Authentication (``acr`` is not ``mfa``)."""


class JwksUnavailable(TokenError):
    """The realm's keys could not be fetched; no token is accepted until they can (fail closed).

    The message is for the caller; ``detail`` (the URL, the error) is for the operator's log only.
    """

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says about its holder."""

    #: Keycloak's user id (``sub``): stable, unlike the username.
    subject: str
    #: ``preferred_username``.
    username: str
    #: Realm roles (``realm_access.roles``).
    roles: frozenset[str]
    #: Level of Authentication reached at login (``mfa`` after password and TOTP).
    acr: str
    #: Authentication methods used (``pwd``, ``otp``), when the realm's mapper reports them.
    amr: tuple[str, ...]
    #: Every audience the token names.
    audience: tuple[str, ...]
    issuer: str
    expires_at: datetime
    #: When the person signed in (``auth_time``): a refreshed token keeps its login's time. ``None`` when absent
    #: (service accounts).
    auth_time: datetime | None
    #: The client the token was issued to (``azp``), when present.
    authorized_party: str | None
    #: Every claim, as verified.
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class LogoutClaims:
    """What a verified back-channel logout token says: the Keycloak session that ended, and whose."""

    sid: str
    subject: str | None


class TokenVerifier:
    """Verifies Keycloak tokens of one realm for one audience; thread-safe, keys cached."""

    def __init__(
        self,
        issuer: str,
        *,
        audience: str = "infracalc-api",
        jwks_url: str | None = None,
        leeway: float = 30.0,
        required_acr: str | None = "mfa",
        token_type: str | None = "Bearer",  # noqa: S107 - a token type, not a secret
        http_timeout: float = 5.0,
        min_refresh_interval: float = 10.0,
        jwks_max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure the verifier.

        Args:
            issuer: The realm's issuer URL, e.g. ``http://127.0.0.1:8080/realms/infracalc``.
            audience: The ``aud`` a token must name.
            jwks_url: The realm's JWKS; defaults to ``<issuer>/protocol/openid-connect/certs``.
            leeway: Seconds of clock skew tolerated on ``exp`` and ``iat``.
            required_acr: The ``acr`` a token must carry; ``None`` skips the check (service accounts).
            token_type: The ``typ`` a token must carry (``Bearer`` for access tokens, ``ID`` for ID tokens);
                ``None`` skips the check.
            http_timeout: Seconds allowed for one JWKS fetch.
            min_refresh_interval: Seconds that must pass between two JWKS fetches.
            jwks_max_age: Seconds after which cached keys are fetched again before use.
            clock: Monotonic clock, replaceable in tests.
        """
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks_url = jwks_url or f"{self.issuer}/protocol/openid-connect/certs"
        self.leeway = leeway
        self.required_acr = required_acr
        self.token_type = token_type
        self.http_timeout = http_timeout
        self.min_refresh_interval = min_refresh_interval
        self.jwks_max_age = jwks_max_age
        self._clock = clock
        self._lock = threading.Lock()
        # kid -> (key, the algorithm the JWK declares, if it does)
        self._keys: dict[str, tuple[jwt.PyJWK, str | None]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        #: How many times the JWKS was fetched (successfully or not); for tests and metrics.
        self.fetch_count = 0

    # -- keys ----------------------------------------------------------------------------------

    def refresh_keys(self) -> int:
        """Fetch the JWKS now (ignoring the rate limit); return how many signing keys it holds.

        Raises:
            JwksUnavailable: the JWKS could not be fetched or holds no usable key.
        """
        with self._lock:
            self._fetch_locked()
            return len(self._keys)

    def _key_for(self, kid: str, algorithm: str) -> jwt.PyJWK:
        # The lock is held during a fetch on purpose: concurrent callers wait for one fetch instead of starting theirs.
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self.jwks_max_age
            if stale or kid not in self._keys:
                if self._may_fetch(now):
                    self._fetch_locked()
                elif stale:
                    raise JwksUnavailable(
                        _KEYS_UNAVAILABLE,
                        detail=f"{self.jwks_url}: the last fetch failed; the next is allowed "
                        f"{self.min_refresh_interval:g} s after it",
                    )
            try:
                key, declared_algorithm = self._keys[kid]
            except KeyError:
                raise TokenSignatureInvalid(f"the token is signed with an unknown key (kid {kid!r})") from None
        if declared_algorithm is not None and declared_algorithm != algorithm:
            raise TokenSignatureInvalid(f"key {kid!r} is for {declared_algorithm}, the token says {algorithm}")
        return key

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.min_refresh_interval

    def _fetch_locked(self) -> None:
        self._attempted_at = self._clock()
        self.fetch_count += 1
        try:
            request = urllib.request.Request(self.jwks_url, headers={"Accept": "application/json"})  # noqa: S310
            with urllib.request.urlopen(request, timeout=self.http_timeout) as response:  # noqa: S310 - configured URL
                document = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            # The URL and the error (an errno) are for the operator's log, not for the caller.
            raise JwksUnavailable(_KEYS_UNAVAILABLE, detail=f"{self.jwks_url}: {error}") from error
        keys: dict[str, tuple[jwt.PyJWK, str | None]] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not entry.get("kid"):
                continue
            if entry.get("alg") is not None and entry["alg"] not in ACCEPTED_ALGORITHMS:
                continue
            try:
                declared = entry.get("alg")
                keys[str(entry["kid"])] = (jwt.PyJWK(entry), str(declared) if declared is not None else None)
            except jwt.PyJWTError:
                continue  # a key type this library cannot use: never trusted
        if not keys:
            raise JwksUnavailable(
                "the sign-in service publishes no usable signing key", detail=f"{self.jwks_url}: no usable signing key"
            )
        self._keys = keys
        self._fetched_at = self._attempted_at

    # -- tokens --------------------------------------------------------------------------------

    def verify(
        self,
        token: str,
        *,
        audience: str | None = None,
        required_acr: str | _Unset | None = _Unset.UNSET,
    ) -> Claims:
        """Verify ``token`` and return its claims.

        Args:
            token: The compact JWT (without ``Bearer``).
            audience: Overrides the verifier's audience for this call.
            required_acr: Overrides the verifier's required ``acr`` for this call (``None`` skips it).

        Raises:
            TokenError: one of its subclasses, as listed in the module documentation.
        """
        expected_audience = audience or self.audience
        expected_acr = self.required_acr if required_acr is _Unset.UNSET else required_acr
        key, algorithm = self._signing_key(token)
        claims = self._decode(token, key, algorithm, expected_audience)
        if self.token_type is not None and claims.get("typ") != self.token_type:
            raise TokenWrongType(f"expected a {self.token_type} token, got typ {claims.get('typ')!r}")
        acr = claims.get("acr")
        if expected_acr is not None and acr != expected_acr:
            raise SecondFactorMissing(f"the login reached acr {acr!r}, {expected_acr!r} is required")
        return self._claims(claims)

    def _signing_key(self, token: str) -> tuple[jwt.PyJWK, str]:
        """The realm key ``token`` names (``kid``), held to an accepted algorithm; the algorithm."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TokenMalformed(f"not a readable JWT: {error}") from error
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise TokenSignatureInvalid(f"the signature algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenMalformed("the token names no key id (kid)")
        return self._key_for(kid, algorithm), str(algorithm)

    def verify_logout(self, token: str, *, audiences: frozenset[str]) -> LogoutClaims:
        """Verify a back-channel ``logout_token`` (OpenID Connect Back-Channel Logout 1.0, section 2.6).

        Checked like an ID token (signature through the realm's keys, issuer, ``iat``, ``exp`` when present), for
        one of ``audiences`` (the clients whose logouts are accepted); it must carry the back-channel logout event
        and a ``sid``, and no ``nonce``.

        Raises:
            TokenError: one of its subclasses; :class:`TokenMalformed` for a token that is not a logout token.
        """
        key, algorithm = self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["iat", "iss", "aud"], "verify_aud": False},
            )
        except jwt.InvalidSignatureError as error:
            raise TokenSignatureInvalid("the signature does not match the realm's key") from error
        except jwt.ExpiredSignatureError as error:
            raise TokenExpired("the logout token has expired") from error
        except jwt.InvalidIssuerError as error:
            raise TokenWrongIssuer(f"the token was not issued by {self.issuer}") from error
        except jwt.PyJWTError as error:
            raise TokenMalformed(f"the logout token cannot be read: {error}") from error
        audience = claims["aud"]
        named = {audience} if isinstance(audience, str) else set(audience) if isinstance(audience, list) else set()
        if not named & audiences:
            raise TokenWrongAudience(f"the logout token is not meant for {', '.join(sorted(audiences))}")
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_LOGOUT_EVENT not in events or "nonce" in claims:
            raise TokenMalformed("not a back-channel logout token (no logout event, or a nonce)")
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid:
            raise TokenMalformed("the logout token names no session (sid)")
        subject = claims.get("sub")
        return LogoutClaims(sid=sid, subject=subject if isinstance(subject, str) else None)

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str, audience: str) -> dict[str, Any]:
        try:
            decoded: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.InvalidSignatureError as error:
            raise TokenSignatureInvalid("the signature does not match the realm's key") from error
        except jwt.ExpiredSignatureError as error:
            raise TokenExpired("the token has expired") from error
        except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError) as error:
            raise TokenExpired(f"the token is not valid yet: {error}") from error
        except jwt.InvalidIssuerError as error:
            raise TokenWrongIssuer(f"the token was not issued by {self.issuer}") from error
        except jwt.InvalidAudienceError as error:
            raise TokenWrongAudience(f"the token is not meant for {audience!r}") from error
        except jwt.MissingRequiredClaimError as error:
            raise TokenMalformed(str(error)) from error
        except jwt.PyJWTError as error:
            raise TokenMalformed(f"the token cannot be read: {error}") from error
        return decoded

    @staticmethod
    def _claims(claims: dict[str, Any]) -> Claims:
        username = claims.get("preferred_username")
        if not isinstance(username, str) or not username:
            raise TokenMalformed("the token has no preferred_username")
        realm_access = claims.get("realm_access")
        roles = realm_access.get("roles", []) if isinstance(realm_access, dict) else []
        amr = claims.get("amr", [])
        audience = claims["aud"]
        auth_time = claims.get("auth_time")
        return Claims(
            subject=str(claims["sub"]),
            username=username,
            roles=frozenset(str(role) for role in roles),
            acr=str(claims.get("acr", "")),
            amr=tuple(str(method) for method in amr) if isinstance(amr, list) else (),
            audience=(audience,) if isinstance(audience, str) else tuple(str(item) for item in audience),
            issuer=str(claims["iss"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=UTC),
            auth_time=_timestamp(auth_time),
            authorized_party=str(claims["azp"]) if claims.get("azp") is not None else None,
            raw=claims,
        )


def _timestamp(value: object) -> datetime | None:
    """A NumericDate claim as a time; ``None`` when absent or not a number (never trusted as a fresh login)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
