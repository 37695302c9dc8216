"""Routes over the sealed audit log (CASD staff): read it, paged and filtered, and verify it (see `.audit_queries`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from infracalc.service import audit_queries
from infracalc.service.audit_queries import MAX_PAGE, VERIFY_BATCH, AuditEventOut, AuditPage, Verification
from infracalc.service.context import Context
from infracalc.service.principals import Principal

__all__ = ["MAX_PAGE", "VERIFY_BATCH", "AuditController", "AuditEventOut", "AuditPage", "Verification"]


#: The largest sequence number a database integer holds: a larger cursor is a 422, not a database error.
MAX_SEQ = 2**63 - 1


class AuditController(Controller):
    """The audit log, for CASD staff."""

    path = "/audit"
    tags = ["audit"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/", summary="Audit events, paged and filtered")
    async def list_events(
        self,
        request: Request[Principal, Any, Any],
        context: Context,
        *,
        project: Annotated[str | None, Parameter(description="only events of this project")] = None,
        actor: Annotated[str | None, Parameter(description="only events by this actor")] = None,
        action: Annotated[str | None, Parameter(description="only this action, e.g. governance.switch")] = None,
        since: Annotated[datetime | None, Parameter(description="events at or after this time")] = None,
        until: Annotated[datetime | None, Parameter(description="events before this time")] = None,
        after: Annotated[int, Parameter(ge=0, le=MAX_SEQ, description="events with a larger seq (the cursor)")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE, description="events per page")] = 100,
    ) -> AuditPage:
        """Events in sequence order, from ``after``; filters combine with AND."""
        filters = audit_queries.AuditFilter(project=project, actor=actor, action=action, since=since, until=until)
        return await audit_queries.events(context, request.user, filters, after=after, limit=limit)

    @get("/verify", summary="Verify the whole audit log")
    async def verify_log(self, request: Request[Principal, Any, Any], context: Context) -> Verification:
        """Recompute every hash and check every checkpoint; report the first bad sequence number."""
        return await audit_queries.verify_log(context, request.user)
