"""Migrations: the revisions build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import infracalc.audit.models  # noqa: F401 - registers the audit tables on Base.metadata
from infracalc.audit import GENESIS_HASH, AuditHead
from infracalc.db import SEARCH_STRUCTURES, Base, alembic_config, is_modelled, upgrade

pytestmark = pytest.mark.integration

TABLES = {
    "alembic_version",
    "audit_checkpoints",
    "audit_events",
    "audit_head",
    "bubbles",
    "egress_rules",
    "ended_sessions",
    "export_reviews",
    "export_versions",
    "exports",
    "enrollments",
    "governance_changes",
    "import_uploads",
    "imports",
    "members",
    "projects",
    "risk_decisions",
    "risk_models",
    "risk_routing",
    "session_events",
    "sessions",
    "user_networks",
    "web_sessions",
}


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": is_modelled})
    return list(compare_metadata(context, Base.metadata))


def downgrade_to_base(connection: Connection) -> None:
    downgrade_to(connection, "base")


def downgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_upgrade_creates_every_table_as_the_models_describe(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert tables - SEARCH_STRUCTURES == TABLES
        if connection.dialect.name == "sqlite":
            assert "session_events_fts" in tables, "the full-text table of session search"
        else:
            indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("session_events"))
            assert "ix_session_events_search" in {index["name"] for index in indexes}
        assert await connection.run_sync(differences) == []
        version = (await connection.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar_one()
    # The head: 0005, imports 0006, exports 0007, session search 0008, enrollments 0009, web sessions 0010,
    # import uploads 0011, ended sessions 0012, risk models 0013, web form state 0014, bubble addresses 0015,
    # egress inspection 0016.
    assert version == "0016"


async def test_the_audit_head_starts_at_genesis(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        head = (await session.scalars(select(AuditHead))).all()
    assert [(row.id, row.seq, row.hash) for row in head] == [(1, 0, GENESIS_HASH)]


async def test_upgrade_is_idempotent_and_reversible(database_url: str, engine: AsyncEngine) -> None:
    await upgrade(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to_base)
    async with engine.connect() as connection:
        assert await connection.run_sync(lambda sync: set(inspect(sync).get_table_names())) == {"alembic_version"}
    await upgrade(database_url)
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_concurrent_upgrades_take_turns(database_url: str, engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to_base)
    await engine.dispose()
    # Two service instances starting together: one migrates, the other then finds nothing to do.
    await asyncio.gather(upgrade(database_url), upgrade(database_url))
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
        assert (await connection.exec_driver_sql("SELECT count(*) FROM audit_head")).scalar_one() == 1


async def test_rules_approved_before_inspection_keep_working(database_url: str, engine: AsyncEngine) -> None:
    """A rule without restrictions stays a tunnel; a restricted one becomes an inspect rule; all get the caps."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: downgrade_to(sync, "0015"))
        await connection.exec_driver_sql(
            "INSERT INTO projects (id, title, governance, created_at) VALUES ('p', 'P', 'INFRACALC', '2026-01-01')"
        )
        for rule, methods, prefixes in (("open", "[]", "[]"), ("paths", "[]", '["/v1/"]'), ("get", '["GET"]', "[]")):
            await connection.execute(
                text(
                    "INSERT INTO egress_rules (id, project_id, host, wildcard, ports, methods, path_prefixes, "
                    "justification, expires_at, status, requested_by, requested_at) VALUES (:rule, 'p', "
                    "'api.example.org', false, '[443]', :methods, :prefixes, 'why', '2027-01-01', 'approved', "
                    "'lead', '2026-01-01')"
                ),
                {"rule": rule, "methods": methods, "prefixes": prefixes},
            )
    await upgrade(database_url)
    async with engine.connect() as connection:
        rows = (
            await connection.exec_driver_sql(
                "SELECT id, mode, max_request_bytes, daily_upload_bytes, max_response_bytes "
                "FROM egress_rules ORDER BY id"
            )
        ).all()
        assert await connection.run_sync(differences) == []
    caps = (1024 * 1024, 16 * 1024 * 1024, 256 * 1024 * 1024)
    assert [tuple(row) for row in rows] == [
        ("get", "inspect", *caps),
        ("open", "tunnel", *caps),
        ("paths", "inspect", *caps),
    ]
