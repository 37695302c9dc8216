"""The demo project ``infracalc up`` asks for: created once, audited, in OPA, never recreated over changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, func, select

from infracalc.audit import AuditEvent
from infracalc.config import SettingError
from infracalc.db import Governance, Member, MemberRole, Project, create_engine, session_factory
from infracalc.service.app import create_app
from infracalc.service.demo import DEMO_PROJECT, SYSTEM_ACTOR
from infracalc.service.settings import ServiceSettings, parse_demo_members
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer, S3Server
from tests.fixtures.service import service_env

pytestmark = pytest.mark.integration


async def start_and_stop(settings: ServiceSettings) -> None:
    async with AsyncTestClient(create_app(settings)) as client:
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text


async def test_the_demo_project_is_created_once_with_its_members(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, s3: S3Server, tmp_path: Path
) -> None:
    env = service_env(database_url, opa.url, keycloak, tmp_path, s3)
    settings = ServiceSettings.from_env({**env, "INFRACALC_DEMO_MEMBERS": "bruno:lead, alice:member"})

    await start_and_stop(settings)

    engine = create_engine(settings.database)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            project = await session.get(Project, DEMO_PROJECT)
            assert project is not None
            assert project.governance is Governance.INFRACALC
            members = {(m.username, m.role) for m in (await session.scalars(select(Member))).all()}
            assert members == {("bruno", MemberRole.LEAD), ("alice", MemberRole.MEMBER)}
            events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
            assert [(e.actor, e.action) for e in events if e.action != "audit.checkpoint"] == [
                (SYSTEM_ACTOR, "project.create"),
                (SYSTEM_ACTOR, "member.add"),
                (SYSTEM_ACTOR, "member.add"),
            ]
        opa_members = requests.get(f"{opa.url}/v1/data/store/infracalc/members/{DEMO_PROJECT}", timeout=5).json()[
            "result"
        ]
        assert opa_members == {"bruno": {"role": "lead"}, "alice": {"role": "member"}}

        # People change the project; a restart must not undo it.
        async with sessions() as session, session.begin():
            await session.execute(delete(Member).where(Member.username == "alice"))
        await start_and_stop(settings)
        async with sessions() as session:
            members_after = {m.username for m in (await session.scalars(select(Member))).all()}
            audit_after = await session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "audit.checkpoint")
            )
        assert members_after == {"bruno"}
        assert audit_after == 3  # the three events of the first start, nothing more
    finally:
        await engine.dispose()


async def test_without_demo_members_no_project_is_created(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, s3: S3Server, tmp_path: Path
) -> None:
    settings = ServiceSettings.from_env(service_env(database_url, opa.url, keycloak, tmp_path, s3))

    await start_and_stop(settings)

    engine = create_engine(settings.database)
    try:
        async with session_factory(engine)() as session:
            assert await session.scalar(select(func.count()).select_from(Project)) == 0
    finally:
        await engine.dispose()


@pytest.mark.parametrize("text", ["bruno", "bruno:owner", ":lead", "alice:member,:member"])
def test_malformed_demo_members_are_refused(text: str) -> None:
    with pytest.raises(SettingError, match="is not username:lead or username:member"):
        parse_demo_members(text)
