"""Signing in from a workstation: ``infracalc login``, ``token``, ``logout`` (device grant, kept refresh token).

Standard library HTTP only, so that the commands need nothing beyond the package itself.
"""

from __future__ import annotations

from infracalc.workstation.credentials import Credential, CredentialStore, config_folder
from infracalc.workstation.device_grant import CLIENT_ID, DeviceAuthorization, Realm
from infracalc.workstation.errors import (
    CredentialFileUnsafe,
    KeycloakUnreachable,
    LoginFailed,
    NotSignedIn,
    SecondFactorNotUsed,
    WorkstationError,
)
from infracalc.workstation.session import SignedIn, access_token, choose_realm, sign_in, sign_out

__all__ = [
    "CLIENT_ID",
    "Credential",
    "CredentialFileUnsafe",
    "CredentialStore",
    "DeviceAuthorization",
    "KeycloakUnreachable",
    "LoginFailed",
    "NotSignedIn",
    "Realm",
    "SecondFactorNotUsed",
    "SignedIn",
    "WorkstationError",
    "access_token",
    "choose_realm",
    "config_folder",
    "sign_in",
    "sign_out",
]
