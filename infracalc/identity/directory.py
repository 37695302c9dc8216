"""Who exists in the realm: the service asks before it records a membership.

The service talks to Keycloak's admin API with python-keycloak, as the ``infracalc-api`` client's
service account, which holds only ``view-users`` and ``query-users`` of ``realm-management``: it
can look people up, nothing more. No administrator password is involved.
"""

from __future__ import annotations

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakError

from infracalc.errors import InfracalcError


class DirectoryUnavailable(InfracalcError):
    """Keycloak's admin API could not be asked; nothing that depends on the answer may proceed."""


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
