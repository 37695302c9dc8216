"""Signing in from a workstation, getting access tokens from the sign-in, and signing out.

:func:`sign_in` runs the device login (:mod:`.device_grant`), checks the access token it yields
exactly as the service will (:class:`~infracalc.identity.TokenVerifier`: the realm's signature,
issuer, audience ``infracalc-api``, and ``acr == "mfa"``), and keeps the refresh token
(:mod:`.credentials`). The person signs in through the ``infracalc-cli`` client's own browser flow
(password and one-time code at level ``mfa``: Keycloak gives a device login no requested level, so the
realm's shared flow would end at ``pwd``). Whatever a realm's flows do, the ``acr`` check here is what
keeps a sign-in without the second factor from being kept: such a token is revoked at once, and the
person told.

:func:`access_token` refreshes the kept sign-in into a fresh access token (checked the same way) and
keeps the refresh token Keycloak answers with. :func:`sign_out` revokes the refresh token at Keycloak
and forgets it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from infracalc.identity.realm import REALM_NAME
from infracalc.identity.tokens import Claims, SecondFactorMissing, TokenError, TokenVerifier
from infracalc.workstation import device_grant
from infracalc.workstation.credentials import Credential, CredentialStore
from infracalc.workstation.device_grant import DeviceAuthorization, Realm, TokenSet
from infracalc.workstation.errors import (
    KeycloakUnreachable,
    LoginFailed,
    NotSignedIn,
    SecondFactorNotUsed,
    WorkstationError,
)

#: The audience the service verifies people's tokens for.
API_AUDIENCE: Final = "infracalc-api"
#: The Level of Authentication the service requires: password and one-time code.
REQUIRED_ACR: Final = "mfa"
#: Keycloak's URL when nothing else names one: the local stack's (``infracalc up``).
LOCAL_KEYCLOAK_URL: Final = "http://127.0.0.1:8080"


def choose_realm(keycloak_url: str | None, store: CredentialStore) -> Realm:
    """The realm a command talks to: ``keycloak_url`` if given, else the last signed in to, else the local stack's.

    Raises:
        WorkstationError: ``keycloak_url`` is not an http(s) URL.
    """
    if keycloak_url:
        parts = urlsplit(keycloak_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
            raise WorkstationError(
                f"the Keycloak URL must be an http(s) URL such as https://id.example.org, not {keycloak_url!r}"
            )
        return Realm(keycloak_url.rstrip("/"), REALM_NAME)
    latest = store.latest()
    if latest is not None:
        return Realm(latest.keycloak_url, latest.realm)
    return Realm(LOCAL_KEYCLOAK_URL, REALM_NAME)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A completed sign-in: who, and what was kept."""

    credential: Credential
    claims: Claims


def _verified(realm: Realm, tokens: TokenSet) -> Claims:
    """The access token's claims, verified as the service verifies them; refuse a login without the second factor.

    Raises:
        SecondFactorNotUsed: the login reached another level than ``mfa`` (the token is revoked first).
        LoginFailed: the token does not verify (another realm, audience or client, or a bad signature).
    """
    verifier = TokenVerifier(realm.issuer, audience=API_AUDIENCE, required_acr=REQUIRED_ACR)
    try:
        claims = verifier.verify(tokens.access_token)
    except SecondFactorMissing:
        _revoke_quietly(realm, tokens.refresh_token)
        raise SecondFactorNotUsed(
            "Keycloak signed you in without the second factor (one-time code); INFRACALC requires it, so nothing was"
            " kept. Sign in again with your password and the code of your authenticator app"
        ) from None
    except TokenError as error:
        _revoke_quietly(realm, tokens.refresh_token)
        raise LoginFailed(f"the token Keycloak issued cannot be used with INFRACALC: {error}") from None
    if claims.authorized_party != realm.client_id:
        _revoke_quietly(realm, tokens.refresh_token)
        raise LoginFailed(
            f"the token Keycloak issued is for client {claims.authorized_party!r}, not {realm.client_id!r}"
        )
    return claims


def _revoke_quietly(realm: Realm, refresh_token: str) -> None:
    # Best effort: the token is refused and never stored either way.
    with contextlib.suppress(KeycloakUnreachable):
        device_grant.revoke(realm, refresh_token)


def _credential(realm: Realm, tokens: TokenSet, claims: Claims, signed_in_at: datetime) -> Credential:
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=tokens.refresh_expires_in) if tokens.refresh_expires_in > 0 else None
    return Credential(
        issuer=realm.issuer,
        keycloak_url=realm.keycloak_url.rstrip("/"),
        realm=realm.realm,
        username=claims.username,
        signed_in_at=signed_in_at,
        expires_at=expires_at,
        refresh_token=tokens.refresh_token,
    )


def sign_in(
    realm: Realm,
    store: CredentialStore,
    show: Callable[[DeviceAuthorization], None],
) -> SignedIn:
    """The device login: ``show`` tells the person where to go, then wait, check and keep the sign-in.

    Raises:
        LoginFailed: refused, expired, or a token INFRACALC cannot use.
        SecondFactorNotUsed: the login did not use the second factor; nothing kept.
        KeycloakUnreachable: Keycloak did not answer.
    """
    authorization = device_grant.start(realm)
    show(authorization)
    tokens = device_grant.poll(realm, authorization)
    claims = _verified(realm, tokens)
    signed_in_at = claims.auth_time or datetime.now(UTC)
    credential = _credential(realm, tokens, claims, signed_in_at)
    store.save(credential)
    return SignedIn(credential, claims)


def access_token(realm: Realm, store: CredentialStore) -> tuple[str, Claims]:
    """A fresh access token from the kept sign-in (its refresh token replaced by Keycloak's new one).

    Raises:
        NotSignedIn: nothing kept for the realm, or Keycloak no longer honours it (then it is forgotten).
        SecondFactorNotUsed: the refreshed token does not say ``mfa`` (then the sign-in is revoked and forgotten).
        KeycloakUnreachable: Keycloak did not answer.
    """
    credential = store.load(realm.issuer)
    if credential is None:
        raise NotSignedIn(f"you are not signed in to {realm.issuer}; run `infracalc login`")
    try:
        tokens = device_grant.refresh(realm, credential.refresh_token)
    except NotSignedIn:
        store.remove(realm.issuer)
        raise
    try:
        claims = _verified(realm, tokens)
    except (SecondFactorNotUsed, LoginFailed):
        store.remove(realm.issuer)
        raise
    store.save(_credential(realm, tokens, claims, credential.signed_in_at))
    return tokens.access_token, claims


def sign_out(realm: Realm, store: CredentialStore) -> Credential | None:
    """Revoke the kept sign-in at Keycloak and forget it; the credential that was kept, if any.

    The local copy is forgotten even when Keycloak cannot be reached (the error then says the sign-in
    stays valid at Keycloak until it expires).

    Raises:
        KeycloakUnreachable: the revocation failed; the file no longer holds the sign-in.
    """
    credential = store.remove(realm.issuer)
    if credential is None:
        return None
    try:
        device_grant.revoke(realm, credential.refresh_token)
    except KeycloakUnreachable as error:
        until = f" until {credential.expires_at:%Y-%m-%d %H:%M} UTC unless used" if credential.expires_at else ""
        raise KeycloakUnreachable(
            f"the sign-in was removed from this computer, but Keycloak could not revoke it ({error}): it stays valid"
            f" there{until}. Sign out of every session in Keycloak's account console to end it now"
        ) from None
    return credential


__all__ = [
    "API_AUDIENCE",
    "LOCAL_KEYCLOAK_URL",
    "REQUIRED_ACR",
    "SignedIn",
    "access_token",
    "choose_realm",
    "sign_in",
    "sign_out",
]
