"""Who exists in the realm, and the accounts of people being enrolled.

The service talks to Keycloak's admin API with python-keycloak, as the ``infracalc-api`` client's
service account, which holds ``view-users``, ``query-users`` and ``manage-users`` of
``realm-management``: it looks people up before it records a membership, creates, inspects and
deletes the accounts of invited people (remote enrollment), and disables the accounts of people
leaving (offboarding). No administrator password is involved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakError

from infracalc.errors import InfracalcError


class DirectoryUnavailable(InfracalcError):
    """Keycloak's admin API could not be asked; nothing that depends on the answer may proceed."""


class ActionMailFailed(DirectoryUnavailable):
    """Keycloak did not send the e-mail with the link to its required actions (no realm SMTP server, a relay down)."""


#: The required actions an invited person goes through in Keycloak: a password, then a TOTP authenticator.
ENROLLMENT_ACTIONS = ("UPDATE_PASSWORD", "CONFIGURE_TOTP")


class AccountExists(InfracalcError):
    """An account with this username or e-mail address exists already."""


class AccountRefused(InfracalcError):
    """Keycloak refused the account's details (a name or an address its validators reject); ``field`` names it."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


#: Our names of the fields of a Keycloak user representation.
_FIELDS = {"firstName": "first_name", "lastName": "last_name", "email": "email", "username": "username"}
#: The largest HTTP status of a refusal (4xx) rather than a failure.
_CLIENT_ERRORS = range(400, 500)


@dataclass(frozen=True, slots=True)
class AccountState:
    """What Keycloak holds of an invited person's account: their credentials and the actions still required."""

    user_id: str
    enabled: bool
    credential_types: frozenset[str]
    required_actions: tuple[str, ...]

    @property
    def two_factors_set(self) -> bool:
        """A password and a TOTP authenticator exist, and no required action is left."""
        return {"password", "otp"} <= self.credential_types and not self.required_actions


@dataclass(frozen=True, slots=True)
class DisabledAccount:
    """An account offboarding disabled: its Keycloak id, and whether it was enabled until then."""

    user_id: str
    was_enabled: bool


class KeycloakDirectory:
    """Look users of one realm up through Keycloak's admin API."""

    def __init__(self, server_url: str, realm: str, client_id: str, client_secret: str, timeout: int = 5) -> None:
        self._admin = KeycloakAdmin(
            connection=KeycloakOpenIDConnection(
                server_url=f"{server_url.rstrip('/')}/",
                realm_name=realm,
                user_realm_name=realm,
                client_id=client_id,
                client_secret_key=client_secret,
                grant_type="client_credentials",
                timeout=timeout,
            )
        )

    def __repr__(self) -> str:
        return f"KeycloakDirectory(realm={self._admin.connection.realm_name!r})"

    async def exists(self, username: str) -> bool:
        """Whether ``username`` is a user of the realm (enabled or not).

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        try:
            return await self._admin.a_get_user_id(username) is not None
        except (KeycloakError, OSError) as error:
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error

    async def username_of_email(self, email: str) -> str | None:
        """The username of the account whose e-mail address is ``email`` (case-insensitive), or ``None``.

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        try:
            users: list[dict[str, Any]] = await self._admin.a_get_users({"email": email, "exact": True})
        except (KeycloakError, OSError) as error:
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error
        for user in users:
            if str(user.get("email", "")).lower() == email.lower():
                return str(user["username"])
        return None

    async def create_invitee(self, username: str, email: str, first_name: str, last_name: str) -> str:
        """Create the account of an invited person; return its Keycloak id.

        The account is enabled but holds no credential at all, so nobody can sign in with it until the
        person sets a password and a TOTP authenticator through Keycloak's required actions
        (:data:`ENROLLMENT_ACTIONS`). It is enabled because Keycloak refuses to send the action
        link to a disabled user.

        Raises:
            AccountExists: the username or the e-mail address is taken.
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        payload = {
            "username": username,
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
            "enabled": True,
            "emailVerified": False,
            "requiredActions": list(ENROLLMENT_ACTIONS),
        }
        try:
            return str(await self._admin.a_create_user(payload, exist_ok=False))
        except KeycloakError as error:
            if error.response_code == 409:  # noqa: PLR2004 - HTTP Conflict
                raise AccountExists(
                    f"Keycloak has an account with the username {username!r} or the e-mail {email!r}"
                ) from None
            if error.response_code in _CLIENT_ERRORS:
                raise _refusal(error) from None
            raise DirectoryUnavailable(f"Keycloak refused to create the account: {error}") from error
        except OSError as error:
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error

    async def send_required_actions(self, user_id: str, client_id: str, redirect_uri: str, lifespan: int) -> None:
        """Make Keycloak e-mail the person a link (an action token valid ``lifespan`` seconds) to its required actions.

        After the last action Keycloak sends the person back to ``redirect_uri``, which must be one of
        ``client_id``'s redirect URIs. Keycloak's realm must have an SMTP server.

        Raises:
            ActionMailFailed: Keycloak did not answer, or could not send the e-mail.
        """
        try:
            await self._admin.a_send_update_account(
                user_id, list(ENROLLMENT_ACTIONS), client_id=client_id, lifespan=lifespan, redirect_uri=redirect_uri
            )
        except (KeycloakError, OSError) as error:
            raise ActionMailFailed(f"Keycloak did not send the link to set a password and TOTP: {error}") from error

    async def account_state(self, user_id: str) -> AccountState | None:
        """The credentials and pending required actions of the account ``user_id``; ``None`` if it is gone.

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        try:
            user: dict[str, Any] = await self._admin.a_get_user(user_id)
            credentials: list[dict[str, Any]] = await self._admin.a_get_credentials(user_id)
        except KeycloakError as error:
            if error.response_code == 404:  # noqa: PLR2004 - HTTP Not Found
                return None
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error
        except OSError as error:
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error
        return AccountState(
            user_id=user_id,
            enabled=bool(user.get("enabled")),
            credential_types=frozenset(str(credential.get("type")) for credential in credentials),
            required_actions=tuple(user.get("requiredActions") or ()),
        )

    async def mark_email_verified(self, user_id: str) -> None:
        """Record that the person proved their mailbox (they followed the link Keycloak mailed them).

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        try:
            await self._admin.a_update_user(user_id, {"emailVerified": True})
        except (KeycloakError, OSError) as error:
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error

    async def delete_account(self, user_id: str) -> bool:
        """Delete the account ``user_id``; ``False`` when it was already gone.

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        try:
            await self._admin.a_delete_user(user_id)
        except KeycloakError as error:
            if error.response_code == 404:  # noqa: PLR2004 - HTTP Not Found
                return False
            raise DirectoryUnavailable(f"Keycloak did not delete the account: {error}") from error
        except OSError as error:
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error
        return True

    async def account_enabled(self, username: str) -> bool | None:
        """Whether ``username``'s account is enabled; ``None`` when the realm has no such account.

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        try:
            found = await self._user_named(username)
        except (KeycloakError, OSError) as error:
            raise DirectoryUnavailable(f"Keycloak's user directory did not answer: {error}") from error
        return None if found is None else bool(found[1].get("enabled"))

    async def _user_named(self, username: str) -> tuple[str, dict[str, Any]] | None:
        """The id and representation of ``username``'s account, ``None`` when there is none."""
        user_id = await self._admin.a_get_user_id(username)
        if user_id is None:
            return None
        user: dict[str, Any] = await self._admin.a_get_user(user_id)
        return user_id, user

    async def disable_and_sign_out(self, username: str) -> DisabledAccount | None:
        """Disable ``username``'s account and end all its sessions (offboarding); ``None`` when there is no account.

        A disabled account signs in nowhere and gets no new token; ending its sessions stops their
        refresh tokens too. Access tokens already issued stay valid until they expire (minutes).
        Doing it twice is harmless.

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        try:
            found = await self._user_named(username)
            if found is None:
                return None
            user_id, user = found
            was_enabled = bool(user.get("enabled"))
            if was_enabled:
                await self._admin.a_update_user(user_id, {"enabled": False})
            await self._admin.a_user_logout(user_id)
        except (KeycloakError, OSError) as error:
            raise DirectoryUnavailable(f"Keycloak did not disable the account: {error}") from error
        return DisabledAccount(user_id=user_id, was_enabled=was_enabled)

    async def end_session(self, session_id: str) -> bool:
        """End the Keycloak login session ``session_id`` (a token's ``sid``): its SSO cookie signs no one in again.

        Returns ``False`` when Keycloak no longer knew the session (it expired, or was ended elsewhere).

        Raises:
            DirectoryUnavailable: Keycloak did not answer, or refused the service account.
        """
        realm = self._admin.connection.realm_name or ""
        path = f"admin/realms/{quote(realm, safe='')}/sessions/{quote(session_id, safe='')}"
        try:
            answer = await self._admin.connection.a_raw_delete(path)
        except (KeycloakError, OSError) as error:
            raise DirectoryUnavailable(f"Keycloak's session admin did not answer: {error}") from error
        if answer.status_code == 404:  # noqa: PLR2004 - HTTP Not Found
            return False
        if answer.status_code >= 300:  # noqa: PLR2004 - not a success
            raise DirectoryUnavailable(f"Keycloak did not end the session: HTTP {answer.status_code}")
        return True


def _refusal(error: KeycloakError) -> AccountRefused:
    """What Keycloak's refusal of an account says: ``{"field": "firstName", "errorMessage": "error-..."}``."""
    try:
        body = json.loads(error.response_body or b"{}")
    except ValueError:
        body = {}
    field = _FIELDS.get(str(body.get("field"))) if isinstance(body, dict) else None
    reason = body.get("errorMessage") if isinstance(body, dict) else None
    what = f"the {field.replace('_', ' ')}" if field else "the account's details"
    return AccountRefused(
        f"Keycloak does not accept {what} ({reason or 'refused'}): use letters, digits and spaces", field
    )
