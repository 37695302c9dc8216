"""Session search on both databases: by user, project, time range and the words of the events, paged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.casd.session_search import (
    InvalidSearch,
    SessionQuery,
    fts5_query,
    search_sessions,
    snippet,
)
from infracalc.casd.sessions import NewEvent, append_events, close_session, indexed_text, open_session
from infracalc.db import Governance, Project, alembic_config, upgrade

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CELL = "import pandas as pd\ndf = pd.read_csv('cohort.csv')\ndf.groupby(\"region\").mean()  # NEAR the end"


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


async def make_session(
    sessions: Sessions,
    session_id: str,
    *,
    project: str = "cohort",
    username: str = "rita",
    opened: float = 0,
    closed: float | None = None,
    events: list[NewEvent] | None = None,
) -> None:
    async with sessions() as db, db.begin():
        if await db.get(Project, project) is None:
            db.add(Project(id=project, title=project.title(), governance=Governance.INFRACALC))
            await db.flush()
        await open_session(
            db,
            session_id=session_id,
            project_id=project,
            username=username,
            governance="INFRACALC",
            clock=lambda: hours(opened),
        )
        await append_events(db, session_id, events or [])
        if closed is not None:
            await close_session(db, session_id, clock=lambda: hours(closed))


def cell(at: float, source: str) -> NewEvent:
    first = source.splitlines()[0]
    return NewEvent(hours(at), "bubble", "code.cell", first, {"source": source, "execution_count": 1, "success": True})


async def ids(sessions: Sessions, **criteria: Any) -> list[str]:
    async with sessions() as db:
        page = await search_sessions(db, SessionQuery(**criteria))
    return [found.session.id for found in page.sessions]


@pytest.fixture
async def cast(session_factory: Sessions) -> Sessions:
    """Four sessions: rita on cohort (two), sam on cohort, rita on census; various times and events."""
    await make_session(session_factory, "s1", opened=0, closed=2, events=[cell(1, CELL)])
    await make_session(
        session_factory,
        "s2",
        opened=3,
        closed=5,
        events=[
            NewEvent(
                hours(4),
                "proxy",
                "egress.connection.allow",
                "allowed CONNECT api.insee.fr:443",
                {"host": "api.insee.fr", "port": 443},
            ),
        ],
    )
    await make_session(session_factory, "s3", username="sam", opened=6, events=[cell(7, "print('hello world')")])
    await make_session(session_factory, "s4", project="census", opened=8, closed=9, events=[cell(8.5, CELL)])
    return session_factory


async def test_criteria_select_sessions_newest_first(cast: Sessions) -> None:
    assert await ids(cast) == ["s4", "s3", "s2", "s1"]
    assert await ids(cast, username="rita") == ["s4", "s2", "s1"]
    assert await ids(cast, project="cohort") == ["s3", "s2", "s1"]
    assert await ids(cast, username="rita", project="cohort") == ["s2", "s1"]
    assert await ids(cast, username="nobody") == []


async def test_a_time_range_selects_the_sessions_overlapping_it(cast: Sessions) -> None:
    assert await ids(cast, since=hours(1.5), until=hours(3.5)) == ["s2", "s1"]
    assert await ids(cast, since=hours(2.5), until=hours(2.9)) == [], "between two sessions"
    assert await ids(cast, since=hours(100)) == ["s3"], "an open session overlaps every later time"
    assert await ids(cast, until=hours(0.5)) == ["s1"]
    assert await ids(cast, since=hours(2), until=hours(2)) == ["s1"], "closed exactly then"


async def test_full_text_finds_the_sessions_holding_every_word_in_one_event(cast: Sessions) -> None:
    assert await ids(cast, text="read_csv") == ["s4", "s1"]
    assert await ids(cast, text="READ csv") == ["s4", "s1"], "case does not matter"
    assert await ids(cast, text="pd.read_csv", project="cohort") == ["s1"]
    assert await ids(cast, text="api.insee.fr") == ["s2"], "the proxy's host, in the summary and details"
    assert await ids(cast, text="443") == ["s2"], "numbers in details are words too"
    assert await ids(cast, text="hello world") == ["s3"]
    assert await ids(cast, text="hello pandas") == [], "every word, in one event"
    assert await ids(cast, text="hell") == [], "whole words"
    assert await ids(cast, text="session opened rita", username="rita") == ["s4", "s2", "s1"]


async def test_matches_count_the_events_and_a_snippet_shows_the_first_word(session_factory: Sessions) -> None:
    await make_session(
        session_factory,
        "s1",
        events=[
            cell(1, "x = 1\n" * 30 + "df = pd.read_csv('a.csv')"),
            cell(2, "pd.read_csv('b.csv')"),
            cell(3, "y = 2"),
        ],
    )
    async with session_factory() as db:
        page = await search_sessions(db, SessionQuery(text="read_csv"))
    (found,) = page.sessions
    assert found.matching_events == 2
    assert found.snippet == "pd.read_csv('b.csv')", "from the newest matching event"
    long_one = snippet("x = 1", {"source": "x = 1\n" * 30 + "df = pd.read_csv('a.csv')"}, ["read", "csv"])
    assert long_one.startswith("…")
    assert "pd.read_csv('a.csv')" in long_one
    assert "\\n" in long_one, "on one line"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"region"', ["s4", "s1"]),
        ('"unbalanced', []),
        ("NEAR", ["s4", "s1"]),
        ("NEAR(pandas region)", ["s4", "s1"]),
        ("pandas -region", ["s4", "s1"]),
        ("pandas OR hello", []),
        ("NOT hello", []),
        ("pan*", []),
        ("source:pandas", []),
        ("^pandas", ["s4", "s1"]),
        ("pandas AND (mean)", []),  # "and" is a word like any other
        ("'; DROP TABLE sessions; --", []),
        ("hello\\ world\x00", ["s3"]),
    ],
)
async def test_operators_typed_by_a_person_are_words_or_nothing(
    cast: Sessions, query: str, expected: list[str]
) -> None:
    assert await ids(cast, text=query) == expected
    assert await ids(cast) == ["s4", "s3", "s2", "s1"], "nothing dropped"


def test_fts5_queries_are_quoted_strings() -> None:
    assert fts5_query(["near", "a"]) == '"near" "a"'
    assert fts5_query(['x"y']) == '"x""y"'


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        ({"text": '*** "" -'}, "q"),
        ({"text": "word " * 101}, "q"),
        ({"text": " ".join(f"w{i}" for i in range(40))}, "q"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"since": hours(2), "until": hours(1)}, "from"),
        ({"since": datetime(2026, 1, 5, 9, 0)}, "from"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4IiwxXQ"}, "cursor"),  # ["x",1]
        ({"cursor": "WyIyMDI2LTAxLTA1VDA5OjAwOjAwKzAwOjAwIiwgImFcdTAwMDBiIl0"}, "cursor"),  # a NUL in the id
        ({"username": "ri\x00ta"}, "user"),
        ({"project": "co\nhort"}, "project"),
    ],
)
async def test_unusable_criteria_are_refused_by_name(cast: Sessions, criteria: dict[str, Any], field: str) -> None:
    async with cast() as db:
        with pytest.raises(InvalidSearch) as refused:
            await search_sessions(db, SessionQuery(**criteria))
    assert refused.value.field == field


async def test_pages_follow_each_other_without_gaps_or_repeats(session_factory: Sessions) -> None:
    for n in range(7):
        # Two sessions opened at the same time: the id breaks the tie.
        await make_session(session_factory, f"p{n}", opened=n // 2, events=[cell(n, f"step = {n}  # analysis")])
    for text_query in (None, "analysis"):
        seen: list[str] = []
        cursor = None
        while True:
            async with session_factory() as db:
                page = await search_sessions(db, SessionQuery(text=text_query, limit=3, cursor=cursor))
            seen.extend(found.session.id for found in page.sessions)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == ["p6", "p5", "p4", "p3", "p2", "p1", "p0"], text_query


async def test_deleted_events_leave_the_index(engine: AsyncEngine, cast: Sessions) -> None:
    async with cast() as db, db.begin():
        await db.execute(delete(Project).where(Project.id == "census"))  # cascades to s4 and its events
    assert await ids(cast, text="read_csv") == ["s1"]
    if engine.dialect.name == "sqlite":
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO session_events_fts(session_events_fts, rank) VALUES ('integrity-check', 1)"
            )


def downgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_the_migration_indexes_the_events_already_recorded(database_url: str, engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to, "0005")
        await connection.execute(
            text("INSERT INTO projects (id, title, governance, created_at) VALUES ('cohort', 'Cohort', 'CASD', :t)"),
            {"t": T0.replace(tzinfo=None)},
        )
        await connection.execute(
            text(
                "INSERT INTO sessions (id, project_id, username, governance, opened_at) "
                "VALUES ('old', 'cohort', 'rita', 'CASD', :t)"
            ),
            {"t": T0.replace(tzinfo=None)},
        )
        await connection.execute(
            text(
                "INSERT INTO session_events (session_id, at, source, kind, summary, details) "
                "VALUES ('old', :t, 'proxy', 'egress.connection.deny', 'refused CONNECT evil.example:443', :d)"
            ),
            {"t": T0.replace(tzinfo=None), "d": '{"reason": "no approved rule", "nested": [{"k": "Unusual"}]}'},
        )
    await upgrade(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    assert await ids(sessions, text="evil example") == ["old"]
    assert await ids(sessions, text="unusual rule") == ["old"]
    async with engine.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT search_text FROM session_events")).scalar_one()
    assert stored == indexed_text(
        "refused CONNECT evil.example:443", {"reason": "no approved rule", "nested": [{"k": "Unusual"}]}
    )
