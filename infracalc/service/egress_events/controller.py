"""Routes of the egress events domain under ``/api/v1``: the egress proxy reports what it decided."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody

from infracalc.service.context import Context, ServiceContext
from infracalc.service.egress_events import service
from infracalc.service.egress_events.schemas import MAX_BODY_BYTES, EgressEventBatch


async def may_record_egress_events(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Ask the policy before the body is read: only the egress proxy may send a body this large."""
    context: ServiceContext = connection.app.state.context
    await context.authorize(connection.user, "egress.events.record")


class EgressEventController(Controller):
    """The egress proxy's reports: every decision and every tunnel's end, for the audit log and the sessions."""

    path = "/egress/events"
    tags = ["egress"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post(
        "/",
        summary="Record egress events (the egress proxy)",
        status_code=204,
        guards=[may_record_egress_events],
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def record(self, context: Context, data: JSONBody[EgressEventBatch]) -> None:
        """Append each event to the audit log and to its bubble's session, all in one transaction.

        Up to 1,000 events per request (``MAX_EVENTS``); a batch is recorded whole or not at all.
        """
        await service.record(context, data)
