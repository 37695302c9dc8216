"""The service's tables: constraints hold on both databases, and times come back aware in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.db import Governance, GovernanceChange, Member, MemberRole, Project

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]


async def add_project(sessions: Sessions, project_id: str = "p1") -> None:
    async with sessions() as session, session.begin():
        session.add(Project(id=project_id, title="Title", governance=Governance.CASD))


async def test_a_project_with_members_and_history_round_trips(session_factory: Sessions) -> None:
    paris = timezone(timedelta(hours=2))
    switched = datetime(2025, 6, 1, 14, 0, 0, 250, tzinfo=paris)
    async with session_factory() as session, session.begin():
        session.add(Project(id="p1", title="Été 2025", governance=Governance.CASD))
        session.add(Member(project_id="p1", username="alice", role=MemberRole.LEAD))
        session.add(
            GovernanceChange(
                project_id="p1",
                from_owner=Governance.CASD,
                to_owner=Governance.INFRACALC,
                actor="staff1",
                reason="approved by the board",
                at=switched,
            )
        )
    async with session_factory() as session:
        project = await session.get_one(Project, "p1")
        member = await session.get_one(Member, ("p1", "alice"))
        change = (await session.scalars(select(GovernanceChange))).one()
    assert (project.title, project.governance) == ("Été 2025", Governance.CASD)
    assert project.created_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - project.created_at) < timedelta(minutes=1)
    assert member.role is MemberRole.LEAD
    assert change.at == switched
    assert change.at.tzinfo is UTC
    assert change.at.hour == 12
    assert change.id == 1


async def test_naive_datetimes_are_refused(session_factory: Sessions) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with session_factory() as session, session.begin():
            session.add(Project(id="p1", title="t", governance=Governance.CASD, created_at=datetime(2025, 1, 1)))


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO projects (id, title, governance, created_at) VALUES ('p2', 't', 'NOBODY', CURRENT_TIMESTAMP)",
        "INSERT INTO members (project_id, username, role, added_at) VALUES ('p1', 'bob', 'owner', CURRENT_TIMESTAMP)",
        "INSERT INTO members (project_id, username, role, added_at) VALUES ('nope', 'bob', 'lead', CURRENT_TIMESTAMP)",
        "INSERT INTO governance_changes (project_id, from_owner, to_owner, actor, reason, at) "
        "VALUES ('p1', 'CASD', 'ELSEWHERE', 'staff', 'because', CURRENT_TIMESTAMP)",
        "INSERT INTO audit_events (seq, at, actor, action, details, prev_hash, hash) "
        "VALUES (0, CURRENT_TIMESTAMP, 'a', 'b', '{}', 'x', 'y')",
        "INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, 'x')",
    ],
    ids=["governance", "role", "foreign-key", "to-owner", "seq-from-1", "single-head"],
)
async def test_constraints_refuse_bad_rows(session_factory: Sessions, statement: str) -> None:
    await add_project(session_factory)
    with pytest.raises(IntegrityError):
        async with session_factory() as session, session.begin():
            await session.execute(text(statement))


async def test_deleting_a_project_deletes_its_members_and_history(session_factory: Sessions) -> None:
    await add_project(session_factory)
    async with session_factory() as session, session.begin():
        session.add(Member(project_id="p1", username="alice", role=MemberRole.MEMBER))
        session.add(
            GovernanceChange(project_id="p1", from_owner="CASD", to_owner="INFRACALC", actor="s", reason="r" * 10)
        )
    async with session_factory() as session, session.begin():
        await session.execute(text("DELETE FROM projects WHERE id = 'p1'"))
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 0
        assert await session.scalar(select(func.count()).select_from(GovernanceChange)) == 0
