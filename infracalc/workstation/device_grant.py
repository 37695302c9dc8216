"""OAuth 2.0 Device Authorization Grant (RFC 8628) with Keycloak, and the refresh and revocation around it.

The ``infracalc-cli`` client of the realm is public (a workstation keeps no secret) and has the device
grant on. :func:`start` asks Keycloak for a device code and a short user code; the person opens the
verification URL in any browser and signs in there through the realm's browser flow (password, then
one-time code); meanwhile :func:`poll` asks the token endpoint every ``interval`` seconds
(``authorization_pending``: not yet; ``slow_down``: five seconds more between asks, as RFC 8628 §3.5
says) until it answers tokens, refuses (``access_denied``) or the code expires. :func:`refresh` and
:func:`revoke` use the refresh token later.

Standard library HTTP only (``urllib``), like the import client. Tokens never appear in an error
message: Keycloak's error answers name the OAuth error and a description, which are kept.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from infracalc.workstation.errors import KeycloakUnreachable, LoginFailed, NotSignedIn

#: The realm's client for the command line.
CLIENT_ID: Final = "infracalc-cli"
#: Scopes asked for: ``openid`` for an ID token naming the person.
SCOPE: Final = "openid"
#: Seconds added to the polling interval at each ``slow_down`` (RFC 8628 §3.5).
SLOW_DOWN_STEP: Final = 5
_DEVICE_CODE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
_HTTP_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class Realm:
    """Where the realm's OAuth endpoints are, and the client the command line is."""

    #: Keycloak's base URL, as the workstation reaches it (``https://id.example.org``).
    keycloak_url: str
    realm: str
    client_id: str = CLIENT_ID

    @property
    def issuer(self) -> str:
        """The realm's issuer URL, as its tokens carry it."""
        return f"{self.keycloak_url.rstrip('/')}/realms/{self.realm}"

    def endpoint(self, name: str) -> str:
        """``<issuer>/protocol/openid-connect/<name>``."""
        return f"{self.issuer}/protocol/openid-connect/{name}"


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """Keycloak's answer to a device authorization request: what the person does, what the command polls with."""

    user_code: str
    verification_uri: str
    #: The verification URL with the user code filled in.
    verification_uri_complete: str
    #: Seconds the codes stay valid.
    expires_in: int
    #: Seconds to wait between two polls.
    interval: int
    device_code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A token response: the access token, the refresh token and how long each lasts."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    #: Seconds the access token lasts.
    expires_in: int
    #: Seconds the refresh token lasts at most (0: as long as its session, with no fixed end given).
    refresh_expires_in: int


class OAuthRefused(Exception):  # an OAuth error answer, handled inside this package; never shown as it is
    """Keycloak answered an OAuth error (``error``, ``error_description``) with an HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.status = status
        self.error = error
        self.description = description


def _post(url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST ``form`` to ``url``; the JSON answer, or :class:`OAuthRefused` for an OAuth error answer."""
    body = urllib.parse.urlencode(form).encode("ascii")
    request = urllib.request.Request(  # noqa: S310 - the URL is Keycloak's, from configuration
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT) as answer:  # noqa: S310
            raw, status = answer.read(), answer.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise KeycloakUnreachable(f"cannot reach Keycloak at {url}: {reason}") from None
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise KeycloakUnreachable(f"Keycloak answered {url} with HTTP {status} and no OAuth answer")
    if status >= 400:  # noqa: PLR2004 - HTTP client and server errors
        if isinstance(document.get("error"), str):
            raise OAuthRefused(status, document["error"], str(document.get("error_description") or ""))
        raise KeycloakUnreachable(f"Keycloak answered {url} with HTTP {status}")
    return document


def _integer(document: dict[str, Any], name: str, default: int) -> int:
    value = document.get(name, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def start(realm: Realm) -> DeviceAuthorization:
    """Ask Keycloak for a device code and a user code (RFC 8628 §3.1).

    Raises:
        KeycloakUnreachable: Keycloak did not answer, or not with codes.
        LoginFailed: Keycloak refused (for instance, the client does not allow the device grant).
    """
    try:
        answer = _post(realm.endpoint("auth/device"), {"client_id": realm.client_id, "scope": SCOPE})
    except OAuthRefused as refused:
        raise LoginFailed(
            f"Keycloak refused to start a device login for client {realm.client_id!r} of realm {realm.realm!r}:"
            f" {refused}"
        ) from None
    needed = ("device_code", "user_code", "verification_uri")
    if not all(isinstance(answer.get(name), str) and answer[name] for name in needed):
        raise KeycloakUnreachable("Keycloak's device authorization answer lacks its codes")
    return DeviceAuthorization(
        user_code=answer["user_code"],
        verification_uri=answer["verification_uri"],
        verification_uri_complete=str(answer.get("verification_uri_complete") or answer["verification_uri"]),
        expires_in=_integer(answer, "expires_in", 600),
        interval=max(1, _integer(answer, "interval", 5)),
        device_code=answer["device_code"],
    )


def _token_set(answer: dict[str, Any]) -> TokenSet:
    access, refresh = answer.get("access_token"), answer.get("refresh_token")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise KeycloakUnreachable("Keycloak's token answer lacks an access or a refresh token")
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_in=_integer(answer, "expires_in", 0),
        refresh_expires_in=_integer(answer, "refresh_expires_in", 0),
    )


def poll(
    realm: Realm,
    authorization: DeviceAuthorization,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TokenSet:
    """Ask the token endpoint until the person has signed in, refused, or the code expired (RFC 8628 §3.4-3.5).

    Raises:
        LoginFailed: refused at Keycloak's page, the code expired, or another OAuth error.
        KeycloakUnreachable: Keycloak stopped answering.
    """
    deadline = clock() + authorization.expires_in
    interval = authorization.interval
    form = {"grant_type": _DEVICE_CODE_GRANT, "device_code": authorization.device_code, "client_id": realm.client_id}
    while True:
        sleep(interval)
        try:
            return _token_set(_post(realm.endpoint("token"), form))
        except OAuthRefused as refused:
            if refused.error == "authorization_pending":
                pass
            elif refused.error == "slow_down":
                interval += SLOW_DOWN_STEP
            elif refused.error == "access_denied":
                raise LoginFailed("the sign-in was refused at Keycloak's page; nothing was kept") from None
            elif refused.error == "expired_token":
                raise LoginFailed(
                    "the code expired before the sign-in was completed; run `infracalc login` again"
                ) from None
            else:
                raise LoginFailed(f"Keycloak refused the device login: {refused}") from None
        if clock() >= deadline:
            raise LoginFailed("the code expired before the sign-in was completed; run `infracalc login` again")


def refresh(realm: Realm, refresh_token: str) -> TokenSet:
    """New tokens for ``refresh_token`` (the refresh token may be new too: keep the answer's).

    Raises:
        NotSignedIn: Keycloak no longer honours the refresh token (session ended, revoked, expired).
        KeycloakUnreachable: Keycloak did not answer.
    """
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": realm.client_id}
    try:
        return _token_set(_post(realm.endpoint("token"), form))
    except OAuthRefused as refused:
        raise NotSignedIn(
            f"your sign-in to {realm.issuer} has ended ({refused.description or refused.error}); run `infracalc login`"
        ) from None


def revoke(realm: Realm, refresh_token: str) -> None:
    """Revoke ``refresh_token`` at Keycloak (RFC 7009): it, and the tokens refreshed from it, stop working.

    Raises:
        KeycloakUnreachable: Keycloak did not answer, or refused the revocation.
    """
    form = {"token": refresh_token, "token_type_hint": "refresh_token", "client_id": realm.client_id}
    try:
        _post(realm.endpoint("revoke"), form)
    except OAuthRefused as refused:
        raise KeycloakUnreachable(f"Keycloak refused to revoke the sign-in: {refused}") from None


__all__ = [
    "CLIENT_ID",
    "DeviceAuthorization",
    "OAuthRefused",
    "Realm",
    "TokenSet",
    "poll",
    "refresh",
    "revoke",
    "start",
]
