"""The demo project ``infracalc up`` starts with, so that the demo accounts can open a bubble at once.

``INFRACALC_DEMO_MEMBERS`` (``bruno:lead,alice:member``), set by ``infracalc up`` and by nobody in
production, makes the service create project ``demo`` under INFRACALC governance with those
members the first time it starts on a database without it. The project is written like any
other: rows and audit events in one transaction (actor ``system:demo``), then pushed to OPA with
the rest of the service's data. An existing ``demo`` project is left exactly as it is, so
whatever people changed survives restarts.
"""

from __future__ import annotations

from collections.abc import Sequence

from infracalc.db import Governance, Member, MemberRole, Project
from infracalc.service.context import ServiceContext

#: The demo project's id.
DEMO_PROJECT = "demo"
#: Its title.
DEMO_TITLE = "Demo project (created by infracalc up)"
#: The audit log's actor for what the service does on its own at start.
SYSTEM_ACTOR = "system:demo"


async def seed_demo_project(context: ServiceContext, members: Sequence[tuple[str, MemberRole]]) -> bool:
    """Create the demo project with ``members`` unless it exists; does not push to OPA (the start-up resync does).

    Returns:
        Whether the project was created.
    """
    if not members:
        return False
    async with context.sessions() as session, session.begin():
        if await session.get(Project, DEMO_PROJECT) is not None:
            return False
        project = Project(id=DEMO_PROJECT, title=DEMO_TITLE, governance=Governance.INFRACALC)
        session.add(project)
        session.add_all(Member(project_id=DEMO_PROJECT, username=username, role=role) for username, role in members)
        await session.flush()
        await context.record(
            session,
            actor=SYSTEM_ACTOR,
            action="project.create",
            project_id=DEMO_PROJECT,
            governance=Governance.INFRACALC,
            details={"title": DEMO_TITLE},
        )
        for username, role in members:
            await context.record(
                session,
                actor=SYSTEM_ACTOR,
                action="member.add",
                project_id=DEMO_PROJECT,
                governance=Governance.INFRACALC,
                details={"username": username, "role": role.value, "previous_role": None},
            )
    return True
