"""Routes of the bubbles domain under ``/api/v1``: the hub registers and revokes bubbles."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, post, put
from litestar.params import JSONBody, Parameter

from infracalc.service.bubbles import service
from infracalc.service.bubbles.schemas import BubbleAddress, BubbleCreate, BubbleCreated, BubbleOut
from infracalc.service.context import Context
from infracalc.service.principals import Principal

BubbleId = Parameter(str, description="the bubble's id", max_length=32)


class BubbleController(Controller):
    """Bubbles as principals: one per user and project, each with a token valid for its project only."""

    path = "/bubbles"
    tags = ["bubbles"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post("/", summary="Register a bubble (the hub)")
    async def register(
        self, request: Request[Principal, Any, Any], context: Context, data: JSONBody[BubbleCreate]
    ) -> BubbleCreated:
        """Register a bubble for a member of the project; the answer holds its token, shown this once.

        ``address``: where the bubble runs, as the egress proxy will see its connections, or ``null``
        until the hub knows it (then ``PUT .../address``); the proxy refuses the bubble meanwhile.
        """
        return await service.register(context, request.user, data)

    @put("/{bubble_id:str}/address", summary="Record the address a bubble runs at (the hub)")
    async def bind_address(
        self,
        request: Request[Principal, Any, Any],
        context: Context,
        data: JSONBody[BubbleAddress],
        bubble_id: str = BubbleId,
    ) -> BubbleOut:
        """Bind the bubble's credentials to the network address it runs at, once the hub knows it.

        Until then the egress proxy refuses the bubble (407). The address never changes once set: the
        same one again is harmless, another is a 409.
        """
        return await service.bind_address(context, request.user, bubble_id, data)

    @delete("/{bubble_id:str}", summary="Revoke a bubble (the hub at stop, or CASD staff)")
    async def revoke(self, request: Request[Principal, Any, Any], context: Context, bubble_id: str = BubbleId) -> None:
        """Revoke the bubble's token at once; later requests with it get 401."""
        await service.revoke(context, request.user, bubble_id)
