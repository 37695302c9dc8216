"""Routes of the projects domain under ``/api/v1``: thin, each one call into :mod:`.service`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import JSONBody, Parameter

from infracalc.service.context import Context
from infracalc.service.principals import Principal
from infracalc.service.projects import service
from infracalc.service.projects.schemas import (
    GovernanceChangeOut,
    GovernanceSwitch,
    Me,
    MemberOut,
    MemberPut,
    ProjectCreate,
    ProjectOut,
    ProjectSummary,
    RetagOut,
)

AuthenticatedRequest = Request[Principal, Any, Any]
ProjectId = Parameter(str, description="the project's id (slug)", max_length=64)
Username = Parameter(str, description="a Keycloak username", max_length=128)


class MeController(Controller):
    """The caller's own view."""

    path = "/me"
    tags = ["people"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/", summary="Who am I: username, roles, projects")
    async def read(self, request: AuthenticatedRequest, context: Context) -> Me:
        """The caller's username, realm roles and the projects they may see."""
        return await service.me(context, request.user)


class ProjectController(Controller):
    """Projects, their members and their governance owner."""

    path = "/projects"
    tags = ["projects"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post("/", summary="Create a project (CASD staff)")
    async def create(
        self, request: AuthenticatedRequest, context: Context, data: JSONBody[ProjectCreate]
    ) -> ProjectOut:
        """Create a project; its governance owner defaults to CASD."""
        return await service.create_project(context, request.user, data)

    @get("/", summary="The projects the caller may see")
    async def list_visible(self, request: AuthenticatedRequest, context: Context) -> list[ProjectSummary]:
        """Every project for CASD staff; the caller's own projects for anyone else."""
        return await service.visible_projects(context, request.user)

    @get("/{project_id:str}", summary="A project and its members")
    async def read(self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId) -> ProjectOut:
        """A project with its members (CASD staff, or a member of the project)."""
        return await service.read_project(context, request.user, project_id)

    @put("/{project_id:str}/members/{username:str}", summary="Add a member or change their role")
    async def put_member(
        self,
        request: AuthenticatedRequest,
        context: Context,
        data: JSONBody[MemberPut],
        project_id: str = ProjectId,
        username: str = Username,
    ) -> MemberOut:
        """CASD staff, or a lead of the project; a project's last lead cannot step down."""
        return await service.put_member(context, request.user, project_id, username, data)

    @delete("/{project_id:str}/members/{username:str}", summary="Remove a member")
    async def remove_member(
        self,
        request: AuthenticatedRequest,
        context: Context,
        project_id: str = ProjectId,
        username: str = Username,
    ) -> None:
        """CASD staff, or a lead of the project."""
        await service.remove_member(context, request.user, project_id, username)

    @put("/{project_id:str}/governance", summary="Switch the governance owner (CASD staff)")
    async def switch_governance(
        self,
        request: AuthenticatedRequest,
        context: Context,
        data: JSONBody[GovernanceSwitch],
        project_id: str = ProjectId,
    ) -> ProjectOut:
        """Move the project to CASD or INFRACALC governance, with a reason of at least 10 characters.

        Takes effect at once: OPA holds the new owner before this answers. A switch to INFRACALC is
        refused while the project holds data classed sensitive.
        """
        return await service.switch_governance(context, request.user, project_id, data)

    @post(
        "/{project_id:str}/governance/retag",
        summary="Re-tag the project's stored objects (CASD staff)",
        status_code=200,
    )
    async def retag(self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId) -> RetagOut:
        """Tag every stored object of the project with its governance owner; finishes a re-tag a switch left undone.

        A switch re-tags at once; when the object store failed part-way, the switch stands and the
        audit log records ``governance.retag`` with ``complete: false``: this route finishes it. It is
        idempotent (objects already right are left alone).
        """
        return await service.retag_objects(context, request.user, project_id)

    @get("/{project_id:str}/governance/history", summary="Past governance switches")
    async def governance_history(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId
    ) -> list[GovernanceChangeOut]:
        """Every switch of the project, oldest first: from, to, who, why, when."""
        return await service.governance_history(context, request.user, project_id)
