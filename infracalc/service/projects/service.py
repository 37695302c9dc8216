"""Projects, members and governance: the state changes, each with its audit event in one transaction.

Each function asks OPA first (through :meth:`ServiceContext.authorize`), then changes the
database and appends the audit event in the same transaction, commits, and pushes the project's
new state to OPA before returning. A refusal raises before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd import imports
from infracalc.casd.objects import ObjectStoreError
from infracalc.db import Bubble, EgressRule, EgressRuleStatus, Governance, GovernanceChange, Member, Project
from infracalc.db.base import utc_now
from infracalc.service.bubbles import revocation
from infracalc.service.context import ServiceContext, existing_project
from infracalc.service.errors import Conflict, Forbidden, NotFound, Unavailable
from infracalc.service.principals import Principal
from infracalc.service.projects.schemas import (
    GovernanceChangeOut,
    GovernanceSwitch,
    Me,
    MemberOut,
    MemberPut,
    ProjectCreate,
    ProjectOut,
    ProjectSummary,
    RetagOut,
)

logger = logging.getLogger(__name__)


def _summary(project: Project) -> ProjectSummary:
    return ProjectSummary(id=project.id, title=project.title, governance=project.governance)


async def _project_out(session: AsyncSession, project: Project) -> ProjectOut:
    members = (
        await session.scalars(select(Member).where(Member.project_id == project.id).order_by(Member.username))
    ).all()
    return ProjectOut(
        id=project.id,
        title=project.title,
        governance=project.governance,
        created_at=project.created_at,
        members=[MemberOut(m.username, m.role, m.added_at) for m in members],
    )


async def visible_projects(context: ServiceContext, principal: Principal) -> list[ProjectSummary]:
    """The projects ``principal`` may see, as OPA's ``visible_projects`` says, in id order."""
    await context.authorize(principal, "project.list")
    slugs = await context.policy.query("infracalc.authz", "visible_projects", {"caller": principal.caller()})
    if not isinstance(slugs, list) or not slugs:
        return []
    async with context.read_sessions() as session:
        projects = (await session.scalars(select(Project).where(Project.id.in_(slugs)).order_by(Project.id))).all()
    return [_summary(project) for project in projects]


async def me(context: ServiceContext, principal: Principal) -> Me:
    """The caller's name, roles and the projects they may see."""
    await context.authorize(principal, "me.read")
    return Me(
        username=principal.username,
        roles=sorted(principal.roles),
        projects=await visible_projects(context, principal),
    )


async def create_project(context: ServiceContext, principal: Principal, request: ProjectCreate) -> ProjectOut:
    """Create a project (CASD staff).

    Raises:
        Forbidden: the caller may not create projects.
        Conflict: a project with this id exists.
    """
    await context.authorize(principal, "project.create")
    try:
        async with context.sessions() as session, session.begin():
            project = Project(id=request.id, title=request.title, governance=request.governance)
            session.add(project)
            await session.flush()
            await context.record(
                session,
                actor=principal.actor,
                action="project.create",
                project_id=project.id,
                governance=project.governance,
                details={"title": project.title},
            )
            answer = await _project_out(session, project)
    except IntegrityError:
        raise Conflict(f"a project {request.id!r} already exists", field="id") from None
    await context.policy_data.push_project(request.id)
    return answer


#: A project and its members in one statement: a row per member (one row of nulls for a project without any).
_PROJECT_AND_MEMBERS = (
    select(
        Project.id,
        Project.title,
        Project.governance,
        Project.created_at,
        Member.username,
        Member.role,
        Member.added_at,
    )
    .outerjoin(Member, Member.project_id == Project.id)
    .where(Project.id == bindparam("slug"))
    .order_by(Member.username)
)


async def read_project(context: ServiceContext, principal: Principal, slug: str) -> ProjectOut:
    """A project with its members (staff, or a member of it).

    One of the hottest routes: one statement on a connection, no ORM session (a third of the cost).
    """
    await context.authorize(principal, "project.read", project=slug)
    rows = await context.read_rows(_PROJECT_AND_MEMBERS, {"slug": slug})
    if not rows:
        raise NotFound(f"no project {slug!r}")
    project = rows[0]
    return ProjectOut(
        id=project.id,
        title=project.title,
        governance=project.governance,
        created_at=project.created_at,
        members=[MemberOut(row.username, row.role, row.added_at) for row in rows if row.username is not None],
    )


async def put_member(
    context: ServiceContext, principal: Principal, slug: str, username: str, request: MemberPut
) -> MemberOut:
    """Add a member or change their role (staff, or a lead of the project).

    Raises:
        NotFound: the project, or the user (looked up in Keycloak), does not exist.
    """
    await context.authorize(principal, "member.put", project=slug, username=username, role=request.role.value)
    if not await context.directory.exists(username):
        raise NotFound(f"no user {username!r} in the realm", field="username")
    async with context.sessions() as session, session.begin():
        project = await existing_project(session, slug)
        member = await session.get(Member, (slug, username))
        before = None if member is None else member.role.value
        if member is None:
            member = Member(project_id=slug, username=username, role=request.role)
            session.add(member)
        elif member.role == request.role:
            return MemberOut(member.username, member.role, member.added_at)
        else:
            member.role = request.role
        await session.flush()
        await context.record(
            session,
            actor=principal.actor,
            action="member.add" if before is None else "member.role",
            project_id=slug,
            governance=project.governance,
            details={"username": username, "role": request.role.value, "previous_role": before},
        )
        answer = MemberOut(member.username, member.role, member.added_at)
    await context.policy_data.push_project(slug)
    return answer


async def remove_member(context: ServiceContext, principal: Principal, slug: str, username: str) -> None:
    """Remove a member (staff, or a lead of the project), revoking their bubbles of the project.

    Their bubbles' tokens are refused from the commit on, their sessions close with the reason, and
    OPA holds the removal before the answer, so the egress proxy cuts their tunnels.

    Raises:
        NotFound: the project, or the membership, does not exist.
    """
    await context.authorize(principal, "member.delete", project=slug, username=username)
    async with context.sessions() as session, session.begin():
        project = await existing_project(session, slug)
        member = await session.get(Member, (slug, username))
        if member is None:
            raise NotFound(f"{username!r} is not a member of project {slug!r}", field="username")
        role = member.role.value
        await session.delete(member)
        await context.record(
            session,
            actor=principal.actor,
            action="member.remove",
            project_id=slug,
            governance=project.governance,
            details={"username": username, "role": role},
        )
        revoked = await revocation.revoke_member_bubbles(
            context,
            session,
            actor=principal.actor,
            project=slug,
            governance=project.governance,
            username=username,
            reason=f"{username} was removed from project {slug} by {principal.actor}",
        )
    # The membership first: the egress policy refuses the bubbles from then on, whatever follows.
    await context.policy_data.push_project(slug)
    await revocation.publish(context, revoked)


async def switch_governance(
    context: ServiceContext, principal: Principal, slug: str, request: GovernanceSwitch
) -> ProjectOut:
    """Move a project to another governance owner (CASD staff, with a reason).

    ``infracalc.authz`` says who may switch; ``infracalc.governance`` says whether this switch may
    happen (a reason, a real change, no sensitive data leaving CASD). The change, its history row
    and its audit event are one transaction; OPA has the new owner before the answer is sent.
    """
    await context.authorize(principal, "governance.switch", project=slug)
    decision = await context.policy.decide(
        "infracalc.governance",
        {"caller": principal.caller(), "project": slug, "to": request.owner.value, "reason": request.reason},
    )
    context.enforce(decision, {"project": slug})
    async with context.sessions() as session, session.begin():
        project = await existing_project(session, slug)
        before = project.governance
        if before == request.owner:
            # The policy answered from OPA's copy; the database is the truth.
            raise Forbidden(f"project is already under {before.value} governance")
        project.governance = request.owner
        retagged_rows = await imports.set_governance(session, slug, request.owner)
        session.add(
            GovernanceChange(
                project_id=slug,
                from_owner=before,
                to_owner=project.governance,
                actor=principal.actor,
                reason=request.reason,
            )
        )
        await session.flush()
        await context.record(
            session,
            actor=principal.actor,
            action="governance.switch",
            project_id=slug,
            governance=project.governance,
            details={
                "from": before.value,
                "to": request.owner.value,
                "reason": request.reason,
                "import_rows": retagged_rows,
            },
        )
        answer = await _project_out(session, project)
    await context.policy_data.push_project(slug)
    if context.objects is not None:
        try:
            await _retag(context, principal, slug)
        except Unavailable as error:
            # The switch stands; the audit log says the re-tag is incomplete and staff finish it
            # with POST .../governance/retag (idempotent: it only touches objects still wrong).
            logger.warning("project %s switched, but its objects are not all re-tagged: %s", slug, error)
    return answer


async def retag_objects(context: ServiceContext, principal: Principal, slug: str) -> RetagOut:
    """Tag every stored object of the project with its governance owner (CASD staff).

    Idempotent: objects already right are left alone, so this finishes a re-tag a switch could not complete.

    Raises:
        NotFound: the project does not exist.
        Unavailable: S3 is not configured, or failed part-way (the audit log says how far it got: run it again).
    """
    await context.authorize(principal, "governance.retag", project=slug)
    if context.objects is None:
        raise Unavailable("object storage is not configured")
    async with context.read_sessions() as session:
        await existing_project(session, slug)
    return await _retag(context, principal, slug)


async def _retag(context: ServiceContext, principal: Principal, slug: str) -> RetagOut:
    """Re-tag the project's prefix with its current owner and audit ``governance.retag``, complete or not."""
    if context.objects is None:  # pragma: no cover - callers check
        raise Unavailable("object storage is not configured")
    async with context.read_sessions() as session:
        owner = (await existing_project(session, slug)).governance
    prefix = imports.project_prefix(slug)
    failure: ObjectStoreError | None = None
    try:
        report = await context.objects.retag(prefix, owner)
    except ObjectStoreError as error:
        failure = error
    async with context.sessions() as session, session.begin():
        details: dict[str, Any] = {"prefix": prefix, "governance": owner.value, "complete": failure is None}
        if failure is None:
            details |= {"changed": report.changed, "unchanged": report.unchanged}
        else:
            details |= {"error": str(failure)}
        await context.record(
            session,
            actor=principal.actor,
            action="governance.retag",
            project_id=slug,
            governance=owner,
            details=details,
        )
    if failure is not None:
        raise Unavailable(
            f"the objects of project {slug} are not all tagged {owner.value} yet ({failure}); "
            f"run POST /api/v1/projects/{slug}/governance/retag again"
        )
    return RetagOut(project=slug, governance=owner, changed=report.changed, unchanged=report.unchanged)


async def governance_history(context: ServiceContext, principal: Principal, slug: str) -> list[GovernanceChangeOut]:
    """Every governance switch of a project, oldest first."""
    await context.authorize(principal, "governance.history", project=slug)
    async with context.read_sessions() as session:
        await existing_project(session, slug)
        changes = (
            await session.scalars(
                select(GovernanceChange).where(GovernanceChange.project_id == slug).order_by(GovernanceChange.id)
            )
        ).all()
    return [GovernanceChangeOut(c.from_owner, c.to_owner, c.actor, c.reason, c.at) for c in changes]


@dataclass(frozen=True, slots=True)
class SwitchConsequences:
    """What a governance switch would change, shown before it is confirmed."""

    project: str
    before: Governance
    after: Governance
    #: Approved, unexpired egress rules (their hosts): under CASD they stop applying, under INFRACALC again.
    rules: list[str]
    #: Bubbles of the project not revoked: their tunnels out stop when the egress proxy sees the new governance.
    open_bubbles: int
    #: Why ``infracalc.governance`` would refuse this switch with the reason given (sensitive data...), if it would.
    refusal: str | None = None

    @property
    def rules_stopping(self) -> list[str]:
        """The rules that stop applying (a switch to CASD)."""
        return self.rules if self.after == Governance.CASD else []

    @property
    def rules_resuming(self) -> list[str]:
        """The rules that apply again (a switch to INFRACALC)."""
        return self.rules if self.after == Governance.INFRACALC else []


async def switch_consequences(
    context: ServiceContext, principal: Principal, slug: str, owner: Governance, reason: str = ""
) -> SwitchConsequences:
    """What switching ``slug`` to ``owner`` would change, and whether it would be refused (CASD staff); no write.

    With a ``reason``, ``infracalc.governance`` is asked, as the switch will ask it, so that a refusal
    (data classed sensitive leaving CASD) shows before the confirmation rather than after.
    """
    await context.authorize(principal, "governance.switch", project=slug)
    refusal = None
    if reason:
        decision = await context.policy.decide(
            "infracalc.governance",
            {"caller": principal.caller(), "project": slug, "to": owner.value, "reason": reason},
        )
        refusal = None if decision.allow else decision.reason
    async with context.read_sessions() as session:
        project = await existing_project(session, slug)
        rows = await session.scalars(
            select(EgressRule).where(
                EgressRule.project_id == slug,
                EgressRule.status == EgressRuleStatus.APPROVED,
                EgressRule.expires_at > utc_now(),
            )
        )
        rules = sorted(f"*.{rule.host}" if rule.wildcard else rule.host for rule in rows)
        bubbles = await session.scalar(
            select(func.count()).select_from(Bubble).where(Bubble.project_id == slug, Bubble.revoked_at.is_(None))
        )
    return SwitchConsequences(slug, project.governance, owner, rules, int(bubbles or 0), refusal)
