"""A console session opened straight in a running service's database, as the login callback would.

The browser tests sign in through Keycloak where the login is what they test; tests of what a
page does with a session (an upload's stream, the layout of every page) open the session directly,
so that they do not wait for a fresh TOTP step per person.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import timedelta
from types import SimpleNamespace

from infracalc.db import DatabaseSettings, create_engine, session_factory
from infracalc.db.base import utc_now
from infracalc.web.sessions import Login, open_session
from tests.fixtures.service import CAST, People


async def open_console_session(
    database_url: str, people: People, who: str, *, login_age: timedelta = timedelta(0)
) -> str:
    """A live session of ``who`` (a key of :data:`CAST`) in the database at ``database_url``; its cookie value."""
    engine = create_engine(DatabaseSettings.from_url(database_url))
    try:
        login = Login(
            username=people.username(who),
            subject=who,
            roles=frozenset(CAST[who]),
            acr="mfa",
            auth_time=utc_now() - login_age,
            keycloak_sid=None,
        )
        return await open_session(SimpleNamespace(sessions=session_factory(engine)), login)
    finally:
        await engine.dispose()


def open_console_session_in_thread(
    database_url: str, people: People, who: str, *, login_age: timedelta = timedelta(0)
) -> str:
    """:func:`open_console_session` for a synchronous test whose thread runs an event loop already (Playwright's)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, open_console_session(database_url, people, who, login_age=login_age)).result()
