"""Egress allowlist rules: requests, decisions, revocations, each with its audit event in one transaction.

A lead asks for a host (``request_rule``); CASD staff approve or deny it (``decide``); a lead or staff
revoke an approved rule (``revoke``). Each function asks OPA first (``infracalc.authz``), then
changes the row and appends the audit event in the same transaction, commits, and pushes the
project's data to OPA before returning, so that the egress proxy sees an approval or a revocation
as soon as the API has answered. Only approved rules reach OPA (:mod:`infracalc.policy.sync`).

Decisions and revocations are conditional updates (``... WHERE status = 'requested'``), so two
members of staff deciding the same request at once cannot both succeed: the second gets 409.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Collection
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from infracalc.db import EgressMode, EgressRule, EgressRuleStatus, utc_now
from infracalc.egress.hosts import HostPattern, InvalidHost, normalise_host, parse_host_pattern
from infracalc.egress.modes import INSPECT, TUNNEL_RULES_VARIABLE
from infracalc.service.context import ServiceContext, existing_project
from infracalc.service.egress_rules.modes import settle
from infracalc.service.egress_rules.schemas import EgressCheckOut, EgressDecision, EgressRequestCreate, EgressRuleOut
from infracalc.service.errors import Conflict, InvalidInput, NotFound
from infracalc.service.principals import Principal

#: Random bytes in a rule id (shown as hex).
_ID_BYTES = 8
#: The bubble id ``egress/check`` gives the policy: no real bubble has it (real ids are 16 hex digits).
CHECK_BUBBLE = "check"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def pattern_of(rule: EgressRule) -> str:
    """The host a rule opens, as people write it: ``api.example.org``, or ``*.example.org`` for a wildcard."""
    return f"*.{rule.host}" if rule.wildcard else rule.host


def _out(rule: EgressRule) -> EgressRuleOut:
    return EgressRuleOut(
        id=rule.id,
        project=rule.project_id,
        host=rule.host,
        wildcard=rule.wildcard,
        pattern=pattern_of(rule),
        ports=list(rule.ports),
        mode=rule.mode,
        opaque=rule.mode is EgressMode.TUNNEL,
        methods=list(rule.methods),
        path_prefixes=list(rule.path_prefixes),
        max_request_bytes=rule.max_request_bytes,
        daily_upload_bytes=rule.daily_upload_bytes,
        max_response_bytes=rule.max_response_bytes,
        justification=rule.justification,
        expires_at=rule.expires_at,
        status=rule.status,
        requested_by=rule.requested_by,
        requested_at=rule.requested_at,
        decided_by=rule.decided_by,
        decided_at=rule.decided_at,
        decision_comment=rule.decision_comment,
        revoked_by=rule.revoked_by,
        revoked_at=rule.revoked_at,
    )


def _summary(rule: EgressRule) -> dict[str, Any]:
    """What the audit log keeps of a rule."""
    return {
        "rule": rule.id,
        "host": pattern_of(rule),
        "ports": list(rule.ports),
        "mode": rule.mode.value,
        "methods": list(rule.methods),
        "path_prefixes": list(rule.path_prefixes),
        "max_request_bytes": rule.max_request_bytes,
        "daily_upload_bytes": rule.daily_upload_bytes,
        "max_response_bytes": rule.max_response_bytes,
        "expires_at": rule.expires_at.isoformat(),
    }


def host_pattern(text: str) -> HostPattern:
    """The host a request names, checked (:func:`~infracalc.egress.hosts.parse_host_pattern`).

    Raises:
        InvalidInput: the validator's message (``field`` is ``host``).
    """
    try:
        return parse_host_pattern(text)
    except InvalidHost as error:
        raise InvalidInput(str(error), field="host") from None


async def request_rule(
    context: ServiceContext, principal: Principal, slug: str, request: EgressRequestCreate
) -> EgressRuleOut:
    """Record a lead's request for an external host (a lead of the project, or staff).

    Raises:
        NotFound: the project does not exist.
        Forbidden: the caller is neither staff nor a lead of the project.
        InvalidInput: the host pattern is refused (``field`` is ``host``); a tunnel rule restricts methods or
            paths, or the platform forbids tunnels (:func:`infracalc.service.egress_rules.modes.settle`).
    """
    await context.authorize(principal, "egress.request", project=slug)
    pattern = host_pattern(request.host)
    restrictions = settle(
        request.mode,
        request.methods,
        request.path_prefixes,
        tunnels=context.settings.egress_tunnels_allowed,
    )
    now = utc_now()
    async with context.sessions() as session, session.begin():
        project = await existing_project(session, slug)
        rule = EgressRule(
            id=secrets.token_hex(_ID_BYTES),
            project_id=slug,
            host=pattern.host,
            wildcard=pattern.wildcard,
            ports=sorted(set(request.ports)),
            mode=restrictions.mode,
            methods=restrictions.methods,
            path_prefixes=restrictions.path_prefixes,
            max_request_bytes=request.max_request_bytes,
            daily_upload_bytes=request.daily_upload_bytes,
            max_response_bytes=request.max_response_bytes,
            justification=request.justification,
            expires_at=now + timedelta(days=request.expires_in_days),
            status=EgressRuleStatus.REQUESTED,
            requested_by=principal.actor,
            requested_at=now,
        )
        session.add(rule)
        await session.flush()
        await context.record(
            session,
            actor=principal.actor,
            action="egress.request",
            project_id=slug,
            governance=project.governance,
            details={**_summary(rule), "justification": rule.justification},
        )
        answer = _out(rule)
    await context.policy_data.push_project(slug)
    return answer


async def list_requests(context: ServiceContext, principal: Principal, slug: str) -> list[EgressRuleOut]:
    """Every request of the project, whatever its status, newest first (members and staff)."""
    await context.authorize(principal, "egress.list", project=slug)
    async with context.read_sessions() as session:
        await existing_project(session, slug)
        rules = (
            await session.scalars(
                select(EgressRule)
                .where(EgressRule.project_id == slug)
                .order_by(EgressRule.requested_at.desc(), EgressRule.id)
            )
        ).all()
    return [_out(rule) for rule in rules]


async def active_rules(context: ServiceContext, principal: Principal, slug: str) -> list[EgressRuleOut]:
    """The project's approved rules that have not expired, by host (members and staff)."""
    await context.authorize(principal, "egress.list", project=slug)
    async with context.read_sessions() as session:
        await existing_project(session, slug)
        rules = (
            await session.scalars(
                select(EgressRule)
                .where(
                    EgressRule.project_id == slug,
                    EgressRule.status == EgressRuleStatus.APPROVED,
                    EgressRule.expires_at > utc_now(),
                )
                .order_by(EgressRule.host, EgressRule.wildcard, EgressRule.id)
            )
        ).all()
    return [_out(rule) for rule in rules]


async def decide(
    context: ServiceContext, principal: Principal, rule_id: str, request: EgressDecision, *, approve: bool
) -> EgressRuleOut:
    """Approve or deny a request (CASD staff); only a request still ``requested`` can be decided.

    Raises:
        Forbidden: the caller is not CASD staff.
        NotFound: no request has this id.
        Conflict: the request was decided already (a stale page), it expired before approval, or it asks
            for a tunnel rule where the platform now forbids them.
    """
    await context.authorize(principal, "egress.decide")
    status = EgressRuleStatus.APPROVED if approve else EgressRuleStatus.DENIED
    now = utc_now()
    async with context.sessions() as session, session.begin():
        rule = await session.get(EgressRule, rule_id)
        if rule is None:
            raise NotFound(f"no egress request {rule_id!r}")
        if approve and rule.status == EgressRuleStatus.REQUESTED and rule.expires_at <= now:
            raise Conflict(
                f"egress request {rule_id} expired at {rule.expires_at.isoformat()} before it was approved; "
                "the lead must ask again"
            )
        if approve and rule.mode is EgressMode.TUNNEL and not context.settings.egress_tunnels_allowed:
            raise Conflict(
                f"egress request {rule_id} asks for a tunnel rule, which this platform forbids "
                f"({TUNNEL_RULES_VARIABLE}=forbid): deny it, and the lead may ask for an inspect rule"
            )
        changed = await session.execute(
            update(EgressRule)
            .where(EgressRule.id == rule_id, EgressRule.status == EgressRuleStatus.REQUESTED)
            .values(status=status, decided_by=principal.actor, decided_at=now, decision_comment=request.comment)
            .returning(EgressRule.id)
            .execution_options(synchronize_session=False)
        )
        if changed.scalar_one_or_none() is None:
            await session.refresh(rule)
            raise Conflict(
                f"egress request {rule_id} is already {rule.status.value} "
                f"(by {rule.decided_by or rule.revoked_by}); reload to see its current state"
            )
        await session.refresh(rule)
        project = await existing_project(session, rule.project_id)
        await context.record(
            session,
            actor=principal.actor,
            action="egress.approve" if approve else "egress.deny",
            project_id=rule.project_id,
            governance=project.governance,
            details={**_summary(rule), "comment": request.comment},
        )
        answer = _out(rule)
    await context.policy_data.push_project(rule.project_id)
    return answer


async def revoke(context: ServiceContext, principal: Principal, slug: str, rule_id: str) -> None:
    """Revoke an approved rule of the project (a lead of the project, or staff); OPA drops it before this returns.

    Raises:
        NotFound: the project does not exist, or has no rule with this id.
        Conflict: the rule is not approved (still requested, denied, or revoked already).
    """
    await context.authorize(principal, "egress.revoke", project=slug)
    async with context.sessions() as session, session.begin():
        project = await existing_project(session, slug)
        rule = await session.get(EgressRule, rule_id)
        if rule is None or rule.project_id != slug:
            raise NotFound(f"project {slug!r} has no egress rule {rule_id!r}")
        changed = await session.execute(
            update(EgressRule)
            .where(EgressRule.id == rule_id, EgressRule.status == EgressRuleStatus.APPROVED)
            .values(status=EgressRuleStatus.REVOKED, revoked_by=principal.actor, revoked_at=utc_now())
            .returning(EgressRule.id)
            .execution_options(synchronize_session=False)
        )
        if changed.scalar_one_or_none() is None:
            await session.refresh(rule)
            raise Conflict(f"egress rule {rule_id} is {rule.status.value}: only an approved rule can be revoked")
        await session.refresh(rule)
        await context.record(
            session,
            actor=principal.actor,
            action="egress.revoke",
            project_id=slug,
            governance=project.governance,
            details=_summary(rule),
        )
    await context.policy_data.push_project(slug)


def proxy_input(slug: str, url: str) -> dict[str, Any]:
    """The first ``infracalc.egress`` input the proxy would send for a bubble of ``slug`` fetching ``url``.

    ``https`` is a CONNECT (host and port only: :func:`inspected_input` is the question that follows
    through an inspect rule); ``http`` is a plain-HTTP ``GET`` with the URL's path and query.

    Raises:
        InvalidInput: the URL is not an absolute http(s) URL with a valid host and port (``field`` is ``url``).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"not a valid URL: {error}", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidInput("give an absolute http:// or https:// URL", field="url")
    if not parts.hostname:
        raise InvalidInput("the URL names no host", field="url")
    host = _host(parts.hostname)
    payload: dict[str, Any] = {
        "bubble": {"id": CHECK_BUBBLE, "project": slug},
        "host": host,
        "port": port if port is not None else _DEFAULT_PORTS[scheme],
    }
    if scheme == "https":
        return {**payload, "scheme": "connect"}
    return {**payload, **_get(parts.path, parts.query), "scheme": "http"}


def inspected_input(connect: dict[str, Any], url: str) -> dict[str, Any]:
    """The question the proxy asks next, through an inspect rule, for a bodiless ``GET`` of ``url``'s path."""
    parts = urlsplit(url)
    return {**connect, **_get(parts.path, parts.query), "scheme": "https"}


def _get(path: str, query: str) -> dict[str, Any]:
    """A bodiless GET of ``path?query``, with nothing sent under any rule yet today."""
    target = f"{path or '/'}?{query}" if query else path or "/"
    return {"method": "GET", "path": target, "body_bytes": 0, "request_bytes": 0, "sent_today": {}}


def _host(hostname: str) -> str:
    """The host as the proxy gives it to the policy: an IP literal as text, a name in normal form."""
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        return normalise_host(hostname)
    except InvalidHost as error:
        raise InvalidInput(str(error), field="url") from None


async def check(context: ServiceContext, principal: Principal, slug: str, url: str) -> EgressCheckOut:
    """What the egress proxy would decide for a bubble of the project fetching ``url``, and why.

    For an https URL the proxy asks twice when the CONNECT is allowed by an inspect rule: about the
    CONNECT, then about the request inside; the answer is the second.
    """
    await context.authorize(principal, "egress.check", project=slug)
    payload = proxy_input(slug, url)
    decision = await context.policy.decide("infracalc.egress", payload)
    mode = decision.extra.get("mode")
    if decision.allow and payload["scheme"] == "connect" and mode == INSPECT:
        decision = await context.policy.decide("infracalc.egress", inspected_input(payload, url))
    rule_id = decision.extra.get("rule_id")
    return EgressCheckOut(
        allow=decision.allow,
        reason=decision.reason,
        rule_id=rule_id if isinstance(rule_id, str) else None,
        mode=mode if isinstance(mode, str) else None,
    )


async def rule_hosts(context: ServiceContext, principal: Principal, rule_ids: Collection[str]) -> dict[str, str]:
    """The host (pattern) of each rule named, by id, in any project (CASD staff, who read the record).

    The policy's reasons and the audit log name rules by id; the pages show them by host.
    """
    await context.authorize(principal, "egress.decide")
    wanted = sorted(set(rule_ids))
    if not wanted:
        return {}
    async with context.read_sessions() as session:
        rules = (await session.scalars(select(EgressRule).where(EgressRule.id.in_(wanted)))).all()
    return {rule.id: pattern_of(rule) for rule in rules}


async def pending_requests(context: ServiceContext, principal: Principal) -> list[EgressRuleOut]:
    """Every request still waiting for a decision, in every project, oldest first (who may decide: CASD staff)."""
    await context.authorize(principal, "egress.decide")
    async with context.read_sessions() as session:
        rules = (
            await session.scalars(
                select(EgressRule)
                .where(EgressRule.status == EgressRuleStatus.REQUESTED)
                .order_by(EgressRule.requested_at, EgressRule.id)
            )
        ).all()
    return [_out(rule) for rule in rules]
