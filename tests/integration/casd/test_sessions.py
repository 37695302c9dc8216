"""The session module on both databases: open, append, close, read back in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.casd.sessions import (
    NewEvent,
    SessionError,
    SessionExists,
    UnknownSession,
    append_events,
    close_session,
    open_session,
    timeline,
)
from infracalc.db import Governance, Project, SessionEvent

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def open_one(sessions: Sessions, session_id: str = "0123456789abcdef") -> None:
    async with sessions() as db, db.begin():
        db.add(Project(id="cohort", title="Cohort", governance=Governance.INFRACALC))
        await db.flush()
        await open_session(
            db, session_id=session_id, project_id="cohort", username="rita", governance="INFRACALC", clock=lambda: T0
        )


async def test_a_session_opens_gathers_events_in_time_order_and_closes(session_factory: Sessions) -> None:
    await open_one(session_factory)
    async with session_factory() as db, db.begin():
        added = await append_events(
            db,
            "0123456789abcdef",
            [
                NewEvent(at(2), "proxy", "egress.connection.close", "tunnel closed", {"bytes_up": 10}),
                NewEvent(
                    at(1), "proxy", "egress.connection.allow", "allowed CONNECT api.example.org:443", {"port": 443}
                ),
                NewEvent(at(1), "hub", "hub.note", "same time, added later"),
            ],
        )
        assert added == 3
        assert await append_events(db, "0123456789abcdef", []) == 0
    async with session_factory() as db, db.begin():
        closed = await close_session(db, "0123456789abcdef", clock=lambda: at(3))
        assert closed is not None
        again = await close_session(db, "0123456789abcdef", clock=lambda: at(4))
        assert again is not None
        assert again.closed_at == at(3)
    async with session_factory() as db:
        found = await timeline(db, "0123456789abcdef")
    assert found is not None
    record = found.session
    assert (record.project_id, record.username, record.governance) == ("cohort", "rita", Governance.INFRACALC)
    assert (record.opened_at, record.closed_at) == (T0, at(3))
    assert [(e.source, e.kind, e.at) for e in found.events] == [
        ("service", "session.open", T0),
        ("proxy", "egress.connection.allow", at(1)),
        ("hub", "hub.note", at(1)),
        ("proxy", "egress.connection.close", at(2)),
        ("service", "session.close", at(3)),
    ]
    assert found.events[0].details == {"username": "rita", "project": "cohort", "governance": "INFRACALC"}
    assert found.events[3].details == {"bytes_up": 10}


async def test_the_governance_recorded_is_the_one_at_opening(session_factory: Sessions) -> None:
    await open_one(session_factory)
    async with session_factory() as db, db.begin():
        project = await db.get_one(Project, "cohort")
        project.governance = Governance.CASD
    async with session_factory() as db:
        found = await timeline(db, "0123456789abcdef")
    assert found is not None
    assert found.session.governance is Governance.INFRACALC


async def test_opening_twice_and_unknown_sessions_are_errors(session_factory: Sessions) -> None:
    await open_one(session_factory)
    async with session_factory() as db, db.begin():
        with pytest.raises(SessionExists):
            await open_session(
                db, session_id="0123456789abcdef", project_id="cohort", username="rita", governance="CASD"
            )
        with pytest.raises(UnknownSession):
            await append_events(db, "ffffffffffffffff", [NewEvent(at(1), "proxy", "egress.connection.deny", "denied")])
        assert await close_session(db, "ffffffffffffffff") is None
        assert await timeline(db, "ffffffffffffffff") is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (NewEvent(T0, "", "egress.connection.deny", "x"), "source"),
        (NewEvent(T0, "p" * 33, "egress.connection.deny", "x"), "source"),
        (NewEvent(T0, "proxy", "k" * 65, "x"), "kind"),
        (NewEvent(datetime(2026, 1, 5), "proxy", "egress.connection.deny", "x"), "time zone"),
    ],
)
async def test_events_that_cannot_be_stored_are_refused_whole(
    session_factory: Sessions, event: NewEvent, message: str
) -> None:
    await open_one(session_factory)
    async with session_factory() as db, db.begin():
        good = NewEvent(at(1), "proxy", "egress.connection.allow", "fine")
        with pytest.raises(SessionError, match=message):
            await append_events(db, "0123456789abcdef", [good, event])
    async with session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(SessionEvent)) == 1  # the opening only


async def test_summaries_stay_on_one_line_and_any_text_is_stored(session_factory: Sessions) -> None:
    await open_one(session_factory)
    weird = "denied bubble a\x00b\nc\\d é ✓"
    async with session_factory() as db, db.begin():
        await append_events(
            db, "0123456789abcdef", [NewEvent(at(1), "proxy", "egress.connection.deny", weird, {"bubble": "a\x00b"})]
        )
    async with session_factory() as db:
        found = await timeline(db, "0123456789abcdef")
    assert found is not None
    assert found.events[-1].summary == "denied bubble a\\x00b\\nc\\\\d é ✓"
    assert found.events[-1].details == {"bubble": "a\x00b"}
