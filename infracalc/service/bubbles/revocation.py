"""Revoking the bubbles of a person who is no longer a member of their project.

Removing a member (and offboarding a person, which removes every membership) revokes that
person's bubbles of the project in the same transaction as the removal: each bubble's token is
refused from the commit on (the service looks tokens up at every request), its session closes with
the reason, and ``bubble.revoke`` is audited beside ``member.remove``. Then, before the answer,
:func:`publish` copies each revocation to OPA (the egress proxy sees the project's revision change
and cuts the bubbles' open tunnels) and asks the hub to stop their servers.

The egress policy does not depend on this: it lets a bubble out only while its user is a member
of its project (``data.store.infracalc.members``), so a revocation that did not reach OPA still lets
nobody out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd import sessions
from infracalc.db import Bubble, Governance, utc_now
from infracalc.service.context import ServiceContext


@dataclass(frozen=True, slots=True)
class RevokedBubble:
    """A bubble revoked by a change: which one, whose, of which project (the hub's server is named after it)."""

    id: str
    project: str
    username: str


async def revoke_bubble(
    context: ServiceContext,
    session: AsyncSession,
    bubble: Bubble,
    *,
    actor: str,
    governance: Governance | None,
    reason: str | None = None,
) -> RevokedBubble:
    """Revoke ``bubble`` in the caller's transaction: token refused, session closed, ``bubble.revoke`` audited.

    Revoking a revoked bubble changes nothing. ``reason`` goes into the session's last event and the audit event.
    """
    if bubble.revoked_at is None:
        revoked_at = utc_now()
        bubble.revoked_at = revoked_at
        await sessions.close_session(session, bubble.id, clock=lambda: revoked_at, reason=reason)
        details = {"bubble": bubble.id, "username": bubble.username}
        await context.record(
            session,
            actor=actor,
            action="bubble.revoke",
            project_id=bubble.project_id,
            governance=governance,
            details=details if reason is None else {**details, "reason": reason},
        )
    return RevokedBubble(bubble.id, bubble.project_id, bubble.username)


async def revoke_member_bubbles(
    context: ServiceContext,
    session: AsyncSession,
    *,
    actor: str,
    project: str,
    governance: Governance,
    username: str,
    reason: str,
) -> list[RevokedBubble]:
    """Revoke, in the caller's transaction, every bubble of ``username`` in ``project`` that is not revoked yet."""
    live = await session.scalars(
        select(Bubble)
        .where(Bubble.project_id == project, Bubble.username == username, Bubble.revoked_at.is_(None))
        .order_by(Bubble.id)
        .with_for_update()
    )
    return [
        await revoke_bubble(context, session, bubble, actor=actor, governance=governance, reason=reason)
        for bubble in live.all()
    ]


async def publish(context: ServiceContext, revoked: list[RevokedBubble]) -> None:
    """After the commit: copy each revocation to OPA (the proxy then cuts their tunnels), then have the hub stop them.

    Raises:
        PolicyUnavailable: OPA did not take a revocation; the watcher resyncs within a second, and the
            membership check of the egress policy refuses the bubbles meanwhile. The hub is asked all the same.
    """
    try:
        for bubble in revoked:
            await context.policy_data.push_bubble(bubble.id)
    finally:
        await stop_servers(context, revoked)


async def stop_servers(context: ServiceContext, revoked: list[RevokedBubble]) -> None:
    """Have the hub stop the servers of ``revoked`` (:mod:`.hub`); never raises."""
    if context.hub_servers is not None and revoked:
        await context.hub_servers.stop_all((bubble.username, bubble.project) for bubble in revoked)
