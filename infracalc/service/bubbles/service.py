"""Registering and revoking bubbles, each with its session and its audit event in the same transaction.

Registering a bubble opens its session (:mod:`infracalc.casd.sessions`, id = the bubble's id);
revoking it closes the session.
"""

from __future__ import annotations

from sqlalchemy import select

from infracalc.casd import sessions
from infracalc.db import Bubble, Project, utc_now
from infracalc.identity import bubble_tokens as tokens
from infracalc.service.bubbles.revocation import revoke_bubble, stop_servers
from infracalc.service.bubbles.schemas import BubbleCreate, BubbleCreated
from infracalc.service.context import ServiceContext, existing_project
from infracalc.service.errors import NotFound
from infracalc.service.principals import Hub, Principal


async def register(context: ServiceContext, principal: Principal, request: BubbleCreate) -> BubbleCreated:
    """Register a bubble for a member of the project (the hub) and mint its token.

    Raises:
        NotFound: the project does not exist.
        Forbidden: the caller is not the hub, or the user is not a member of the project.
    """
    await context.authorize(principal, "bubble.create", project=request.project, username=request.username)
    minted = tokens.mint()
    created_at = utc_now()
    async with context.sessions() as session, session.begin():
        project = await existing_project(session, request.project)
        bubble = Bubble(
            id=minted.bubble_id,
            project_id=project.id,
            username=request.username,
            token_sha256=minted.digest,
            created_at=created_at,
        )
        session.add(bubble)
        await session.flush()
        await sessions.open_session(
            session,
            session_id=bubble.id,
            project_id=project.id,
            username=bubble.username,
            governance=project.governance,
            clock=lambda: created_at,
        )
        await context.record(
            session,
            actor=principal.actor,
            action="bubble.create",
            project_id=project.id,
            governance=project.governance,
            details={"bubble": bubble.id, "username": request.username},
        )
    await context.policy_data.push_bubble(bubble.id)
    return BubbleCreated(bubble.id, project.id, request.username, minted.token, bubble.created_at)


async def revoke(context: ServiceContext, principal: Principal, bubble_id: str) -> None:
    """Revoke a bubble's token (the hub when it stops the bubble, or CASD staff). Revoking twice is harmless.

    Raises:
        NotFound: no bubble has this id.
    """
    await context.authorize(principal, "bubble.delete")
    async with context.sessions() as session, session.begin():
        bubble = await session.get(Bubble, bubble_id)
        if bubble is None:
            raise NotFound(f"no bubble {bubble_id!r}")
        revoking = bubble.revoked_at is None
        governance = await session.scalar(select(Project.governance).where(Project.id == bubble.project_id))
        revoked = await revoke_bubble(context, session, bubble, actor=principal.actor, governance=governance)
    # Also when it was revoked already: a push that failed then (OPA down) is made now.
    await context.policy_data.push_bubble(bubble_id)
    if revoking and not isinstance(principal, Hub):
        # CASD staff revoked it: the hub stops its server (when the hub revokes, it is stopping it already).
        await stop_servers(context, [revoked])
