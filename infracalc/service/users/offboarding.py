"""Offboarding: a person leaves, and nothing of theirs keeps working.

CASD staff offboard a person with a reason (``infracalc.authz``: ``user.offboard``, staff only and
never themselves). In this order:

1. Keycloak: the account is disabled and all its sessions are ended (the ``infracalc-api`` service
   account). If Keycloak fails, nothing else changes (503), and asking again is safe. A refusal
   (policy, reason, unknown person) changes nothing at all.
2. One transaction: ``user.offboard`` is audited, then every membership is removed (``member.remove``
   each), every bubble of the person still valid is revoked (``bubble.revoke``, its session closed
   with the reason), their unfinished invitations are withdrawn (``enrollment.revoke``; the account
   is kept, disabled, for the record) and their web console sessions end.
3. Before the answer: OPA holds the new members and the revoked bubbles (the egress proxy cuts their
   tunnels within a second), and the hub is asked to stop their servers.

Offboarding twice changes nothing the second time (no event is recorded when nothing changed).
The person's registered networks stay: they concern sign-in, which the disabled account no
longer passes. Access tokens Keycloak issued before stay valid until they expire (5 minutes in the
realm), with no membership left to use them on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.db import Bubble, Enrollment, EnrollmentState, Governance, Member, Project, utc_now
from infracalc.service.bubbles import revocation
from infracalc.service.context import ServiceContext
from infracalc.service.errors import InvalidInput, NotFound
from infracalc.service.principals import Principal
from infracalc.service.users.console_sessions import end_console_sessions
from infracalc.service.users.schemas import MembershipRemoved, OffboardIn, OffboardOut

#: The shortest reason accepted, once surrounding whitespace is trimmed (as for a governance switch).
MIN_REASON = 10
#: Invitations not completed nor revoked: offboarding withdraws them.
_UNFINISHED = (EnrollmentState.INVITED, EnrollmentState.CONFIRMED)


async def offboard(context: ServiceContext, principal: Principal, username: str, request: OffboardIn) -> OffboardOut:
    """Disable ``username``'s account, end its sessions, remove every membership and revoke every bubble.

    Raises:
        Forbidden: the caller may not offboard this person.
        InvalidInput: the reason is shorter than :data:`MIN_REASON` characters.
        NotFound: the realm has no such account.
        DirectoryUnavailable: Keycloak failed; nothing was changed.
    """
    await context.authorize(principal, "user.offboard", username=username)
    reason = request.reason.strip()
    if len(reason) < MIN_REASON:
        raise InvalidInput(f"give a reason of at least {MIN_REASON} characters", field="reason")
    account = await context.directory.disable_and_sign_out(username)
    if account is None:
        raise NotFound(f"no user {username!r} in the realm", field="username")
    why = f"{username} was offboarded by {principal.actor}: {reason}"
    async with context.sessions() as session, session.begin():
        memberships = await _memberships(session, username)
        live = (
            await session.scalars(
                select(Bubble)
                .where(Bubble.username == username, Bubble.revoked_at.is_(None))
                .order_by(Bubble.id)
                .with_for_update()
            )
        ).all()
        invitations = (
            await session.scalars(
                select(Enrollment)
                .where(
                    Enrollment.username == username,
                    Enrollment.state.in_(_UNFINISHED),
                )
                .order_by(Enrollment.id)
                .with_for_update()
            )
        ).all()
        console = await end_console_sessions(session, username)
        changed = account.was_enabled or bool(memberships or live or invitations or console)
        removed = [MembershipRemoved(member.project_id, member.role) for member, _ in memberships]
        if changed:
            await context.record(
                session,
                actor=principal.actor,
                action="user.offboard",
                details={
                    "username": username,
                    "reason": reason,
                    "account_was_enabled": account.was_enabled,
                    "memberships": [{"project": item.project, "role": item.role.value} for item in removed],
                    "bubbles": [bubble.id for bubble in live],
                    "invitations": [invitation.id for invitation in invitations],
                    "console_sessions_ended": console,
                },
            )
        for member, project in memberships:
            await session.delete(member)
            await context.record(
                session,
                actor=principal.actor,
                action="member.remove",
                project_id=project.id,
                governance=project.governance,
                details={"username": username, "role": member.role.value, "reason": why},
            )
        governance = await _governance_of(
            session, {bubble.project_id for bubble in live} | {invitation.project_id for invitation in invitations}
        )
        revoked = [
            await revocation.revoke_bubble(
                context, session, bubble, actor=principal.actor, governance=governance[bubble.project_id], reason=why
            )
            for bubble in live
        ]
        now = utc_now()
        for invitation in invitations:
            invitation.state = EnrollmentState.REVOKED
            invitation.revoked_by = principal.actor
            invitation.revoked_at = now
            await context.record(
                session,
                actor=principal.actor,
                action="enrollment.revoke",
                project_id=invitation.project_id,
                governance=governance[invitation.project_id],
                details={
                    "enrollment": invitation.id,
                    "username": username,
                    "keycloak_account_deleted": False,
                    "reason": why,
                },
            )
    for slug in sorted({item.project for item in removed}):
        await context.policy_data.push_project(slug)
    await revocation.publish(context, revoked)
    return OffboardOut(
        username=username,
        account_disabled=True,
        already_offboarded=not changed,
        memberships_removed=removed,
        bubbles_revoked=[bubble.id for bubble in revoked],
        invitations_withdrawn=[invitation.id for invitation in invitations],
        console_sessions_ended=console,
    )


@dataclass(frozen=True, slots=True)
class OffboardingPreview:
    """What offboarding a person would change, shown before it is confirmed; nothing is written to show it."""

    username: str
    account_enabled: bool
    memberships: list[MembershipRemoved]
    #: Ids of the person's bubbles still valid, and of their unfinished invitations.
    open_bubbles: list[str]
    invitations: list[str]


async def preview(context: ServiceContext, principal: Principal, username: str) -> OffboardingPreview:
    """What :func:`offboard` would do to ``username`` (asked of who may offboard: CASD staff).

    Raises:
        Forbidden: the caller may not offboard this person.
        NotFound: the realm has no such account.
        DirectoryUnavailable: Keycloak cannot be asked.
    """
    await context.authorize(principal, "user.offboard", username=username)
    enabled = await context.directory.account_enabled(username)
    if enabled is None:
        raise NotFound(f"no user {username!r} in the realm", field="username")
    async with context.read_sessions() as session:
        members = (
            await session.scalars(select(Member).where(Member.username == username).order_by(Member.project_id))
        ).all()
        bubbles = (
            await session.scalars(
                select(Bubble.id).where(Bubble.username == username, Bubble.revoked_at.is_(None)).order_by(Bubble.id)
            )
        ).all()
        invitations = (
            await session.scalars(
                select(Enrollment.id)
                .where(Enrollment.username == username, Enrollment.state.in_(_UNFINISHED))
                .order_by(Enrollment.id)
            )
        ).all()
    return OffboardingPreview(
        username=username,
        account_enabled=enabled,
        memberships=[MembershipRemoved(member.project_id, member.role) for member in members],
        open_bubbles=list(bubbles),
        invitations=list(invitations),
    )


async def _memberships(session: AsyncSession, username: str) -> list[tuple[Member, Project]]:
    rows = await session.execute(
        select(Member, Project)
        .join(Project, Project.id == Member.project_id)
        .where(Member.username == username)
        .order_by(Member.project_id)
        .with_for_update(of=Member)
    )
    return [(member, project) for member, project in rows]


async def _governance_of(session: AsyncSession, projects: set[str]) -> dict[str, Governance]:
    rows = await session.execute(select(Project.id, Project.governance).where(Project.id.in_(projects)))
    return {project: governance for project, governance in rows}
