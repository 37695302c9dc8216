"""The service's client of the hub's API: what each answer means, and a stop retried while the hub is away.

The stop itself is proven against a real hub in tests/integration/hub/test_hub_end_to_end.py; here a
small HTTP server plays the hub's answers that a real one gives only in failures (down, 500).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from infracalc.service.bubbles.hub import HubServers, HubUnavailable


class PlayedHub:
    """Answers each DELETE with the next status of ``statuses`` (the last one repeated)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.calls: list[tuple[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.path, request.headers.get("Authorization")))
        status = self.statuses[min(len(self.calls), len(self.statuses)) - 1]
        return web.Response(status=status, text="played")


@pytest.fixture
async def played() -> AsyncIterator[tuple[PlayedHub, str]]:
    hub = PlayedHub([204])
    app = web.Application()
    app.router.add_delete("/hub/api/users/{user}/servers/{server}", hub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield hub, f"http://127.0.0.1:{port}/hub/api"
    await runner.cleanup()


async def test_stopping_and_stopped_are_true_an_unknown_server_false_and_the_name_is_quoted(
    played: tuple[PlayedHub, str],
) -> None:
    hub, url = played
    client = HubServers(url, "s3cret")
    hub.statuses = [202, 204, 404]
    assert await client.stop("ada@lab", "cohort") is True
    assert await client.stop("ada", "cohort") is True
    assert await client.stop("ada", "cohort") is False
    assert hub.calls[0] == ("/hub/api/users/ada@lab/servers/cohort", "token s3cret")
    assert "s3cret" not in repr(client)


async def test_an_error_answer_or_no_hub_is_unavailable(played: tuple[PlayedHub, str]) -> None:
    hub, url = played
    hub.statuses = [403]
    with pytest.raises(HubUnavailable, match="the hub answered 403"):
        await HubServers(url, "wrong").stop("ada", "cohort")
    with pytest.raises(HubUnavailable, match="cannot be reached"):
        await HubServers("http://127.0.0.1:9/hub/api", "t", timeout=2).stop("ada", "cohort")


async def test_a_failed_stop_is_asked_again_in_the_background(
    played: tuple[PlayedHub, str], caplog: pytest.LogCaptureFixture
) -> None:
    hub, url = played
    hub.statuses = [503, 500, 204]
    client = HubServers(url, "t", retry_delays=(0.01, 0.01, 0.01))
    with caplog.at_level(logging.INFO, logger="infracalc.service.bubbles.hub"):
        await client.stop_all([("ada", "cohort")])  # never raises
        for _ in range(200):
            if len(hub.calls) == 3 and not client._retries:
                break
            await asyncio.sleep(0.01)
    assert len(hub.calls) == 3
    assert "hub stopping server cohort of ada" in caplog.text


async def test_giving_up_is_an_error_in_the_log_and_close_cancels_pending_retries(
    played: tuple[PlayedHub, str], caplog: pytest.LogCaptureFixture
) -> None:
    hub, url = played
    hub.statuses = [500]
    quick = HubServers(url, "t", retry_delays=(0.01,))
    with caplog.at_level(logging.INFO, logger="infracalc.service.bubbles.hub"):
        await quick.stop_all([("ada", "cohort")])
        for _ in range(200):
            if not quick._retries:
                break
            await asyncio.sleep(0.01)
    assert "gave up asking the hub to stop server cohort of ada" in caplog.text
    slow = HubServers(url, "t", retry_delays=(60.0,))
    await slow.stop_all([("bo", "weather")])
    assert slow._retries
    await slow.close()
    assert not slow._retries
