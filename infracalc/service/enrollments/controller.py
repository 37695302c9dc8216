"""Routes of the enrollments domain under ``/api/v1``: invite, list, resend, revoke; thin over :mod:`.service`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, delete, get, post
from litestar.params import JSONBody, Parameter, QueryParameter

from infracalc.service.context import Context
from infracalc.service.enrollments import service
from infracalc.service.enrollments.schemas import EnrollmentCreate, EnrollmentLink, EnrollmentOut
from infracalc.service.principals import Principal

AuthenticatedRequest = Request[Principal, Any, Any]
EnrollmentId = Parameter(str, description="the invitation's id", max_length=32)


class EnrollmentController(Controller):
    """Invitations of people to projects: they enroll from their own browser (``/enroll/{token}``)."""

    path = "/enrollments"
    tags = ["people"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post("/", summary="Invite a person to a project (CASD staff)")
    async def invite(
        self, request: AuthenticatedRequest, context: Context, data: JSONBody[EnrollmentCreate]
    ) -> EnrollmentLink:
        """Create the person's Keycloak account (no credential yet) and a single-use link, mailed when SMTP is set.

        An e-mail that already has an account answers 409 with the membership route to use instead.
        """
        return await service.invite(context, request.user, data)

    @get("/", summary="Invitations, newest first (CASD staff)")
    async def list_enrollments(
        self,
        request: AuthenticatedRequest,
        context: Context,
        state_filter: Annotated[
            Literal["pending", "completed"] | None,
            QueryParameter(name="state", description="pending (invited or confirmed) or completed; all when absent"),
        ] = None,
    ) -> list[EnrollmentOut]:
        """Pending invitations say whether their link expired; none of them shows its token."""
        return await service.list_enrollments(context, request.user, state_filter)

    @post("/{enrollment_id:str}/resend", summary="Send a new link for an unfinished invitation (CASD staff)")
    async def resend(
        self, request: AuthenticatedRequest, context: Context, enrollment_id: str = EnrollmentId
    ) -> EnrollmentLink:
        """The old link dies; the new one lasts as long as the first did."""
        return await service.resend(context, request.user, enrollment_id)

    @delete("/{enrollment_id:str}", summary="Revoke an unfinished invitation (CASD staff)", status_code=200)
    async def revoke(
        self, request: AuthenticatedRequest, context: Context, enrollment_id: str = EnrollmentId
    ) -> EnrollmentOut:
        """Delete the half-created Keycloak account; a completed invitation is refused (409)."""
        return await service.revoke(context, request.user, enrollment_id)
