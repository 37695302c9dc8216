"""The errors of signing in from a workstation; each message tells the person what to do.

- :class:`NotSignedIn`: no sign-in is kept for the realm, or it has ended;
- :class:`LoginFailed`: the device login did not complete (refused, expired, cancelled);
- :class:`SecondFactorNotUsed`: Keycloak issued a token whose login did not use the second factor;
- :class:`KeycloakUnreachable`: Keycloak did not answer, or answered something that is not OAuth;
- :class:`CredentialFileUnsafe`: the credentials file can be read by others, or is not ours.
"""

from __future__ import annotations

from infracalc.errors import InfracalcError


class WorkstationError(InfracalcError):
    """Signing in from a workstation failed; the subclass says why."""


class NotSignedIn(WorkstationError):
    """No sign-in is kept for the realm, or Keycloak no longer honours it."""


class LoginFailed(WorkstationError):
    """The device login did not complete: refused at Keycloak's page, code expired, or cancelled."""


class SecondFactorNotUsed(WorkstationError):
    """The token's login did not reach ``acr`` ``mfa``; nothing was kept."""


class KeycloakUnreachable(WorkstationError):
    """Keycloak could not be reached, or answered something that is not an OAuth answer."""


class CredentialFileUnsafe(WorkstationError):
    """The credentials file (or its folder) is readable by others, belongs to someone else, or is not ours."""


__all__ = [
    "CredentialFileUnsafe",
    "KeycloakUnreachable",
    "LoginFailed",
    "NotSignedIn",
    "SecondFactorNotUsed",
    "WorkstationError",
]
