"""Registering and revoking bubbles, each with its session and its audit event in the same transaction.

Registering a bubble opens its session (:mod:`infracalc.casd.sessions`, id = the bubble's id);
revoking it closes the session. A bubble's credentials are bound to the network address it runs
at: the hub gives it at registration, or once it knows it (:func:`bind_address`, a container's
address is known once it started). Until then the egress proxy lets the bubble nowhere; once set,
the address never changes (a bubble that moves is a new bubble).
"""

from __future__ import annotations

from sqlalchemy import select

from infracalc.casd import sessions
from infracalc.db import Bubble, Project, utc_now
from infracalc.egress import InvalidSourceAddress, source_address
from infracalc.identity import bubble_tokens as tokens
from infracalc.service.bubbles.revocation import revoke_bubble, stop_servers
from infracalc.service.bubbles.schemas import BubbleAddress, BubbleCreate, BubbleCreated, BubbleOut
from infracalc.service.context import ServiceContext, existing_project
from infracalc.service.errors import Conflict, InvalidInput, NotFound
from infracalc.service.principals import Hub, Principal


async def register(context: ServiceContext, principal: Principal, request: BubbleCreate) -> BubbleCreated:
    """Register a bubble for a member of the project (the hub) and mint its token.

    Raises:
        NotFound: the project does not exist.
        Forbidden: the caller is not the hub, or the user is not a member of the project.
    """
    await context.authorize(principal, "bubble.create", project=request.project, username=request.username)
    address = None if request.address is None else _address(request.address)
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
            address=address,
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
            details={"bubble": bubble.id, "username": request.username, "address": address},
        )
    await context.policy_data.push_bubble(bubble.id)
    return BubbleCreated(bubble.id, project.id, request.username, minted.token, bubble.created_at, address)


async def bind_address(
    context: ServiceContext, principal: Principal, bubble_id: str, request: BubbleAddress
) -> BubbleOut:
    """Record the network address a bubble runs at (the hub, once it knows it); giving the same one again is harmless.

    The bubble's session gets an event saying so, ``bubble.address`` is audited, and OPA holds the
    address before the answer: from then on the bubble's credentials work from there only.

    Raises:
        Forbidden: the caller is not the hub.
        InvalidInput: not an IP address a bubble can connect from.
        NotFound: no bubble has this id.
        Conflict: the bubble is revoked, or bound to another address already.
    """
    await context.authorize(principal, "bubble.address")
    address = _address(request.address)
    async with context.sessions() as session, session.begin():
        bubble = await session.get(Bubble, bubble_id, with_for_update=True)
        if bubble is None:
            raise NotFound(f"no bubble {bubble_id!r}")
        if bubble.revoked_at is not None:
            raise Conflict(f"bubble {bubble_id} is revoked: its address can no longer be set")
        if bubble.address is not None and bubble.address != address:
            raise Conflict(f"bubble {bubble_id} is bound to another address already: start a new bubble")
        if bubble.address is None:
            bubble.address = address
            now = utc_now()
            await sessions.append_events(
                session,
                bubble.id,
                [sessions.NewEvent(now, sessions.SERVICE, "bubble.address", f"the bubble runs at {address}")],
            )
            governance = await session.scalar(select(Project.governance).where(Project.id == bubble.project_id))
            await context.record(
                session,
                actor=principal.actor,
                action="bubble.address",
                project_id=bubble.project_id,
                governance=governance,
                details={"bubble": bubble.id, "username": bubble.username, "address": address},
            )
        answer = BubbleOut(
            bubble.id, bubble.project_id, bubble.username, bubble.address, bubble.created_at, bubble.revoked_at
        )
    await context.policy_data.push_bubble(bubble_id)
    return answer


def _address(text: str) -> str:
    try:
        return source_address(text)
    except InvalidSourceAddress as error:
        raise InvalidInput(str(error), field="address") from None


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
