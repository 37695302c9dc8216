"""Routes of the exports domain under ``/api/v1``: thin, each one call into :mod:`.service`.

The two upload routes lift Litestar's body limit (``request_max_body_size=None``) and read the body
as a stream: the exports' own cap (``INFRACALC_EXPORT_MAX_BYTES``) is enforced as bytes arrive.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, Parameter, QueryParameter

from infracalc.db import ExportState
from infracalc.service.context import Context
from infracalc.service.exports import service
from infracalc.service.exports.schemas import DownloadOut, ExportDetail, ExportOut, ReviewIn
from infracalc.service.principals import Principal

AuthenticatedRequest = Request[Principal, Any, Any]
ProjectId = Parameter(str, description="the project's id (slug)", max_length=64)
ExportId = Parameter(str, description="the export's id", max_length=32)
StateFilter = Annotated[
    ExportState | None,
    QueryParameter(name="state", description="only exports in this state (default: those awaiting a review)"),
]
SampledFilter = Annotated[
    bool | None, QueryParameter(name="sampled", description="only exports drawn (or not) for a review after release")
]


class ProjectExportController(Controller):
    """A project's exports: submitted from its bubbles, listed for its members."""

    path = "/projects/{project_id:str}/exports"
    tags = ["exports"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post(
        "/",
        summary="Submit an export (a bubble of the project)",
        request_max_body_size=None,
        opt={"raw_body": True},
    )
    async def submit(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId
    ) -> ExportDetail:
        """Check the file for disclosure risk, store it and route it to review as governance and risk require.

        The answer says whether it was released at once or awaits reviewers, and why (the checks'
        findings). A file the checks fail is refused with 422 and its reasons; nothing is stored.

        The body is multipart/form-data: ``file`` (its filename is the export's name), ``justification``
        (20 characters or more) and optionally ``contributors`` (JSON ``{"<row label>|<column name>":
        [values]}`` for the dominance and p-ratio checks). The file is limited to
        INFRACALC_EXPORT_MAX_BYTES (413 above it).
        """
        return await service.submit(
            context,
            request.user,
            project_id,
            request.stream(),
            content_type=request.headers.get("content-type"),
            content_length=request.headers.get("content-length"),
        )

    @get("/", summary="The project's exports, newest first (members and CASD staff)")
    async def list_exports(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId
    ) -> list[ExportOut]:
        """Every export of the project, whatever its state."""
        return await service.list_project(context, request.user, project_id)


class ExportController(Controller):
    """One export: read, reviewed by CASD staff, re-submitted after changes, downloaded once released."""

    path = "/exports"
    tags = ["exports"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/", summary="Exports awaiting review, or in a given state (CASD staff)")
    async def queue(
        self,
        request: AuthenticatedRequest,
        context: Context,
        export_state: StateFilter = None,
        sampled: SampledFilter = None,
    ) -> list[ExportOut]:
        """By default the review queue: exports in review and sampled exports not yet reviewed after release."""
        return await service.queue(context, request.user, export_state, sampled)

    @get("/{export_id:str}", summary="One export, its versions and its reviews")
    async def read(self, request: AuthenticatedRequest, context: Context, export_id: str = ExportId) -> ExportDetail:
        """Members of its project, CASD staff, and the project's bubbles."""
        return await service.read(context, request.user, export_id)

    @post(
        "/{export_id:str}/versions",
        summary="Submit a new version after changes were requested (a bubble of the project)",
        request_max_body_size=None,
        opt={"raw_body": True},
    )
    async def resubmit(
        self, request: AuthenticatedRequest, context: Context, export_id: str = ExportId
    ) -> ExportDetail:
        """The new version is checked and routed afresh; the reviewers' votes start again."""
        return await service.resubmit(
            context,
            request.user,
            export_id,
            request.stream(),
            content_type=request.headers.get("content-type"),
            content_length=request.headers.get("content-length"),
        )

    @post("/{export_id:str}/reviews", summary="Approve, reject or request changes (CASD staff)", status_code=200)
    async def review(
        self, request: AuthenticatedRequest, context: Context, data: JSONBody[ReviewIn], export_id: str = ExportId
    ) -> ExportDetail:
        """One vote per reviewer and version; never on one's own export. Enough approvals release it."""
        return await service.review(context, request.user, export_id, data)

    @get("/{export_id:str}/inspect", summary="A URL to read a version under review, valid 15 minutes (CASD staff)")
    async def inspect(
        self,
        request: AuthenticatedRequest,
        context: Context,
        export_id: str = ExportId,
        version: Annotated[
            int | None, Parameter(ge=1, le=2**31 - 1, description="The version to read (default: the current one)")
        ] = None,
    ) -> DownloadOut:
        """Reviewers read what they decide on, in any state; each read is audited (``export.inspect``)."""
        return await service.inspect(context, request.user, export_id, version)

    @get("/{export_id:str}/download", summary="A download URL valid 15 minutes (members, once released)")
    async def download(self, request: AuthenticatedRequest, context: Context, export_id: str = ExportId) -> DownloadOut:
        """A presigned URL of the released file; nothing before release, nothing for non-members."""
        return await service.download(context, request.user, export_id)
