"""Ending a person's web console sessions when their account goes (offboarding, a withdrawn invitation).

The console keeps its sessions server-side (``web_sessions``) and asks nothing of Keycloak at each
page, so a session outlives the account it was opened with until it expires (8 hours at most):
the change that ends an account deletes them in its own transaction.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.db import WebSession


async def end_console_sessions(session: AsyncSession, username: str) -> int:
    """Delete every console session of ``username`` in the caller's transaction; how many there were."""
    ended = await session.execute(delete(WebSession).where(WebSession.username == username))
    return int(cast("CursorResult[Any]", ended).rowcount or 0)
