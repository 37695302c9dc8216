"""Every asynchronous proxy test runs twice: on asyncio's own event loop and on uvloop.

``infracalc egress-proxy`` runs on uvloop when it is installed (it comes with ``uvicorn[standard]``)
and on asyncio's loop otherwise; the two differ in how they watch sockets, which the relay and the
socket operations depend on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Both loops, for every asynchronous test of this directory."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
