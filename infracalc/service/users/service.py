"""A person's projects (for the hub's spawn page) and registered networks (for the login policy).

Networks change with their audit event (``user.networks.set``, before and after) in one
transaction, and OPA holds the new list (``data.store.infracalc.users``) before the answer is sent. A
refusal raises before anything is written.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.db import Member, Project, UserNetwork
from infracalc.policy.sync import network_order
from infracalc.service.context import ServiceContext
from infracalc.service.errors import Conflict, NotFound
from infracalc.service.principals import Person, Principal
from infracalc.service.users.networks import normalise_networks
from infracalc.service.users.schemas import NetworksOut, NetworksPut, UserProject


async def projects(context: ServiceContext, principal: Principal, username: str) -> list[UserProject]:
    """The projects ``username`` is a member of, in id order (the hub, CASD staff, or the person themself).

    Raises:
        Forbidden: the caller may not list them.
        NotFound: the user is a member of nothing and unknown to the realm.
    """
    await context.authorize(principal, "user.projects", username=username)
    async with context.read_sessions() as session:
        rows = (
            await session.execute(
                select(Project, Member.role)
                .join(Member, Member.project_id == Project.id)
                .where(Member.username == username)
                .order_by(Project.id)
            )
        ).all()
    # Keycloak is asked only when there is nothing to show: most answers cost one query.
    if not rows:
        await _existing_user(context, principal, username)
    return [UserProject(project.id, project.title, project.governance, role) for project, role in rows]


async def networks(context: ServiceContext, principal: Principal, username: str) -> NetworksOut:
    """The networks ``username`` registered (CASD staff, or the person themself).

    Raises:
        Forbidden: the caller may not read them.
        NotFound: the user registered none and is unknown to the realm.
    """
    await context.authorize(principal, "user.networks.read", username=username)
    async with context.read_sessions() as session:
        cidrs = await _registered(session, username)
    if not cidrs:
        await _existing_user(context, principal, username)
    return NetworksOut(username, cidrs)


async def set_networks(
    context: ServiceContext, principal: Principal, username: str, request: NetworksPut
) -> NetworksOut:
    """Replace the networks ``username`` may sign in from (CASD staff, or the person within 5 minutes of signing in).

    Networks kept keep who added them and when; a list equal to the current one changes nothing and
    is not audited.

    Raises:
        Forbidden: the caller may not change them (the policy's reason says why).
        InvalidInput: a network is refused; ``field`` names it (``networks[<index>]``).
        NotFound: the user is unknown to the realm.
        Conflict: another change of the same list was committed meanwhile.
    """
    await context.authorize(principal, "user.networks.set", username=username)
    after = normalise_networks(request.networks)
    await _existing_user(context, principal, username)
    try:
        async with context.sessions() as session, session.begin():
            rows = (
                await session.scalars(select(UserNetwork).where(UserNetwork.username == username).with_for_update())
            ).all()
            before = sorted((row.cidr for row in rows), key=network_order)
            if before != after:
                for row in rows:
                    if row.cidr not in after:
                        await session.delete(row)
                session.add_all(
                    UserNetwork(username=username, cidr=cidr, added_by=principal.actor)
                    for cidr in after
                    if cidr not in before
                )
                await session.flush()
                await context.record(
                    session,
                    actor=principal.actor,
                    action="user.networks.set",
                    details={"username": username, "before": before, "after": after},
                )
    except IntegrityError:
        raise Conflict(f"the networks of {username!r} were changed meanwhile; read them and try again") from None
    # Also when nothing changed: a push that failed before (OPA down) is made now.
    await context.policy_data.push_user(username)
    return NetworksOut(username, after)


async def _registered(session: AsyncSession, username: str) -> list[str]:
    cidrs = await session.scalars(select(UserNetwork.cidr).where(UserNetwork.username == username))
    return sorted(cidrs.all(), key=network_order)


async def _existing_user(context: ServiceContext, principal: Principal, username: str) -> None:
    """Raise NotFound unless ``username`` is a user of the realm (a person's own token proves they are)."""
    if isinstance(principal, Person) and principal.username == username:
        return
    if not await context.directory.exists(username):
        raise NotFound(f"no user {username!r} in the realm")
