"""Routes of the users domain under ``/api/v1``: a person's projects and networks, thin over :mod:`.service`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.params import JSONBody, Parameter

from infracalc.service.context import Context
from infracalc.service.principals import Principal
from infracalc.service.users import offboarding, service
from infracalc.service.users.schemas import NetworksOut, NetworksPut, OffboardIn, OffboardOut, UserProject

AuthenticatedRequest = Request[Principal, Any, Any]
Username = Parameter(str, description="a Keycloak username", max_length=128)


class UserController(Controller):
    """What the service knows of a person: the projects they belong to, the networks they sign in from."""

    path = "/users"
    tags = ["people"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/{username:str}/projects", summary="A user's projects (the hub, CASD staff, or the user)")
    async def projects(
        self, request: AuthenticatedRequest, context: Context, username: str = Username
    ) -> list[UserProject]:
        """The projects the user is a member of, with title, governance and their role, in id order."""
        return await service.projects(context, request.user, username)

    @get("/{username:str}/networks", summary="A user's registered networks (CASD staff, or the user)")
    async def networks(self, request: AuthenticatedRequest, context: Context, username: str = Username) -> NetworksOut:
        """The networks the user may sign in to the hub from; none means any (unless a CASD project requires one)."""
        return await service.networks(context, request.user, username)

    @put("/{username:str}/networks", summary="Replace a user's registered networks (CASD staff, or the user)")
    async def set_networks(
        self, request: AuthenticatedRequest, context: Context, data: JSONBody[NetworksPut], username: str = Username
    ) -> NetworksOut:
        """Replace the list (0 to 20 networks in strict CIDR form, IPv4 /16 or IPv6 /48 at widest).

        The user themself must have signed in within the last 5 minutes. Takes effect at once: OPA
        holds the new list before this answers, and the next sign-in to the hub is checked against it.
        """
        return await service.set_networks(context, request.user, username, data)

    @post("/{username:str}/offboard", summary="Offboard a person (CASD staff)", status_code=200)
    async def offboard(
        self, request: AuthenticatedRequest, context: Context, data: JSONBody[OffboardIn], username: str = Username
    ) -> OffboardOut:
        """Disable the person's Keycloak account and end its sessions, remove every membership, revoke every bubble.

        With a reason of at least 10 characters; audited ``user.offboard`` with the ``member.remove`` and
        ``bubble.revoke`` events it causes. OPA holds the change before this answers (the egress proxy cuts
        the bubbles' tunnels), and the hub is asked to stop their servers. Asking again changes nothing.
        CASD staff only, never about themselves.
        """
        return await offboarding.offboard(context, request.user, username, data)
