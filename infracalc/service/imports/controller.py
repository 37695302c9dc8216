"""Routes of the imports domain under ``/api/v1``: thin, each one call into :mod:`.service`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.response import Stream

from infracalc.db import ImportState
from infracalc.service.context import Context
from infracalc.service.errors import InvalidInput
from infracalc.service.imports import service
from infracalc.service.imports.schemas import ImportApproval, ImportOut, ImportRejection
from infracalc.service.principals import Principal

AuthenticatedRequest = Request[Principal, Any, Any]
ProjectId = Parameter(str, description="the project's id (slug)", max_length=64)
ImportId = Parameter(str, description="the import's id", max_length=32)
FileName = Parameter(
    str,
    description=(
        "the file's name (UTF-8, percent-encoded): no / or \\, no control characters, at most 255 bytes; "
        "normalised to Unicode NFC"
    ),
    max_length=4096,
)
State = QueryParameter(name="state", description="in_review (the default), released or rejected")


class ProjectImportController(Controller):
    """A project's imports: upload, list, read once released."""

    path = "/projects/{project_id:str}/imports"
    tags = ["imports"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post(
        "/",
        summary="Import a file (members and staff): the body is the file, application/octet-stream",
        # The body is streamed to the object store, never held: the app's JSON limit does not apply;
        # the service's own cap (INFRACALC_IMPORT_MAX_BYTES) does, as bytes arrive.
        request_max_body_size=None,
        opt={"raw_body": True},
    )
    async def upload(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId, name: str = FileName
    ) -> ImportOut:
        """Stream the file into quarantine; it is released at once (a small code file under INFRACALC) or reviewed.

        Refusals leave nothing behind: 413 over the cap, 415 for another declared type, an archive, an
        office document with macros or of another type than its name says, 422 for a bad name, an empty
        file or an unsafe office document, 400 for a body cut short.
        """
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        try:
            length = request.headers.get("content-length")
            content_length = None if length is None else int(length)
        except ValueError:
            raise InvalidInput("Content-Length is not a number") from None
        return await service.upload(
            context,
            request.user,
            project_id,
            name=name,
            media_type=media_type,
            content_length=content_length,
            chunks=request.stream(),
        )

    @get("/", summary="The project's imports, newest first")
    async def list_imports(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId
    ) -> list[ImportOut]:
        """Every import of the project, whatever its state (members, the project's bubbles, staff)."""
        return await service.list_imports(context, request.user, project_id)

    @get("/{import_id:str}/content", summary="A released file's bytes (members, the project's bubbles)")
    async def content(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId, import_id: str = ImportId
    ) -> Stream:
        """The file, streamed; 409 while it is in review or once rejected (reviewers may read it in review)."""
        content = await service.read_content(context, request.user, project_id, import_id)
        row = content.row
        return Stream(
            content.chunks,
            media_type=row.content_type,
            headers={
                "Content-Length": str(row.size),
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.name, safe='')}",
                "X-Content-Type-Options": "nosniff",
                "X-Infracalc-SHA256": row.sha256,
            },
        )


class ImportReviewController(Controller):
    """CASD staff's review of imports."""

    path = "/imports"
    tags = ["imports"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/", summary="Imports by state, oldest first: the review queue (CASD staff)")
    async def queue(
        self,
        request: AuthenticatedRequest,
        context: Context,
        import_state: Annotated[ImportState, State] = ImportState.IN_REVIEW,
    ) -> list[ImportOut]:
        """Every project's imports in ``state`` (in_review by default)."""
        return await service.queue(context, request.user, import_state)

    @post("/{import_id:str}/approve", summary="Release an import (CASD staff)", status_code=200)
    async def approve(
        self, request: AuthenticatedRequest, context: Context, data: JSONBody[ImportApproval], import_id: str = ImportId
    ) -> ImportOut:
        """Release an import in review as standard or sensitive data."""
        return await service.approve(context, request.user, import_id, data)

    @post("/{import_id:str}/reject", summary="Reject an import and delete its file (CASD staff)", status_code=200)
    async def reject(
        self,
        request: AuthenticatedRequest,
        context: Context,
        data: JSONBody[ImportRejection],
        import_id: str = ImportId,
    ) -> ImportOut:
        """Reject an import in review; its object is deleted."""
        return await service.reject(context, request.user, import_id, data)
