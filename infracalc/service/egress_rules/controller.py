"""Routes of the egress rules domain under ``/api/v1``: thin, each one call into :mod:`.service`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.params import JSONBody, Parameter

from infracalc.service.context import Context
from infracalc.service.egress_rules import service
from infracalc.service.egress_rules.schemas import EgressCheckOut, EgressDecision, EgressRequestCreate, EgressRuleOut
from infracalc.service.principals import Principal

AuthenticatedRequest = Request[Principal, Any, Any]
ProjectId = Parameter(str, description="the project's id (slug)", max_length=64)
RuleId = Parameter(str, description="the egress request's or rule's id", max_length=32)
CheckUrl = Parameter(
    str,
    description="an absolute http:// or https:// URL, such as https://api.example.org/v1/items",
    min_length=1,
    max_length=4096,
)


class EgressRuleController(Controller):
    """A project's egress allowlist: requests by its leads, the rules in force, and what the proxy would do."""

    path = "/projects/{project_id:str}"
    tags = ["egress"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post("/egress-requests", summary="Ask for an external host (a lead of the project)")
    async def request_rule(
        self,
        request: AuthenticatedRequest,
        context: Context,
        data: JSONBody[EgressRequestCreate],
        project_id: str = ProjectId,
    ) -> EgressRuleOut:
        """Ask CASD staff to let the project's bubbles call a host, with a justification.

        ``mode`` ``inspect`` (the default): the proxy opens the TLS and decides each request by
        ``methods`` (default GET and HEAD), ``path_prefixes`` and the size caps, over HTTPS as over
        plain HTTP. ``tunnel``: an opaque CONNECT (host and port only), which may not restrict methods
        or paths and is refused where the platform forbids tunnels. The rule expires
        ``expires_in_days`` after the request.
        """
        return await service.request_rule(context, request.user, project_id, data)

    @get("/egress-requests", summary="The project's egress requests, newest first")
    async def list_requests(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId
    ) -> list[EgressRuleOut]:
        """Every request of the project, whatever its status (members and CASD staff)."""
        return await service.list_requests(context, request.user, project_id)

    @get("/egress-rules", summary="The project's rules in force")
    async def active_rules(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId
    ) -> list[EgressRuleOut]:
        """The approved rules of the project that have not expired (members and CASD staff)."""
        return await service.active_rules(context, request.user, project_id)

    @delete("/egress-rules/{rule_id:str}", summary="Revoke a rule (a lead of the project, or CASD staff)")
    async def revoke(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId, rule_id: str = RuleId
    ) -> None:
        """Revoke an approved rule; the policy engine drops it before this answers."""
        await service.revoke(context, request.user, project_id, rule_id)

    @get("/egress/check", summary="What the egress proxy would decide for a URL, and why")
    async def check(
        self, request: AuthenticatedRequest, context: Context, project_id: str = ProjectId, url: str = CheckUrl
    ) -> EgressCheckOut:
        """Ask the egress policy as the proxy would for a bubble of the project (members and CASD staff).

        An https:// URL is a CONNECT and, through an inspect rule, a GET of its path inside it; an
        http:// URL is a plain-HTTP GET of its path. The port defaults to 443 or 80.
        """
        return await service.check(context, request.user, project_id, url)


class EgressRequestController(Controller):
    """CASD staff's decisions on egress requests."""

    path = "/egress-requests"
    tags = ["egress"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post("/{rule_id:str}/approve", summary="Approve an egress request (CASD staff)", status_code=200)
    async def approve(
        self,
        request: AuthenticatedRequest,
        context: Context,
        data: JSONBody[EgressDecision],
        rule_id: str = RuleId,
    ) -> EgressRuleOut:
        """Approve a pending request; the project's bubbles may use the rule as soon as this answers."""
        return await service.decide(context, request.user, rule_id, data, approve=True)

    @post("/{rule_id:str}/deny", summary="Deny an egress request (CASD staff)", status_code=200)
    async def deny(
        self,
        request: AuthenticatedRequest,
        context: Context,
        data: JSONBody[EgressDecision],
        rule_id: str = RuleId,
    ) -> EgressRuleOut:
        """Deny a pending request, with a comment for the lead."""
        return await service.decide(context, request.user, rule_id, data, approve=False)
