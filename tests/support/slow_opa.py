"""A loopback relay in front of the real OPA that holds data writes back, so that tests can see what waits for them.

Questions (``POST``, ``GET``) pass at once. Each data write (``PUT``, ``PATCH``, ``DELETE``) is
announced (:attr:`SlowOpa.write_arrived`), held while :attr:`SlowOpa.gate` is closed, sent on to
OPA, whose answer goes back unchanged, and recorded with OPA's status. OPA decides and stores
everything: the relay only makes a write slow enough that an answer sent before OPA took it, or an
older push landing after a newer one, cannot go unnoticed.

The relay runs on an event loop of its own, in a thread: Litestar's test client may hold the test's
loop while the app starts (and the app's start writes to OPA), so the gate and the signal are
``threading.Event`` objects; :meth:`SlowOpa.wait_for_write` waits for a write without blocking a loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from infracalc.stack.ports import free_port

WRITES = frozenset({"PUT", "PATCH", "DELETE"})


@dataclass
class SlowOpa:
    """The relay's URL, what it saw, and whether it lets writes through."""

    url: str = ""
    #: Writes pass while it is set (it is, at first); a test clears it to hold them, sets it to let them go.
    gate: threading.Event = field(default_factory=threading.Event)
    #: Every write relayed: method, path (under ``/v1/data/``), and OPA's status.
    writes: list[tuple[str, str, int]] = field(default_factory=list)
    #: Set when a write arrives (cleared by the test before the write it waits for).
    write_arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def wait_for_write(self, timeout: float = 30) -> None:
        """Wait until a write reached the relay since :attr:`write_arrived` was last cleared."""
        if not await asyncio.to_thread(self.write_arrived.wait, timeout):
            raise TimeoutError(f"no write reached OPA's relay within {timeout} s")


async def _serve(relay: SlowOpa, target: str, port: int, started: threading.Event, stop: asyncio.Event) -> None:
    upstream = aiohttp.ClientSession(base_url=target)

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        if request.method in WRITES:
            relay.write_arrived.set()
            await asyncio.to_thread(relay.gate.wait)
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with upstream.request(request.method, request.path_qs, data=body or None, headers=headers) as answer:
            payload = await answer.read()
            if request.method in WRITES:
                relay.writes.append((request.method, request.path.removeprefix("/v1/data/"), answer.status))
            return web.Response(status=answer.status, body=payload, content_type=answer.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        started.set()
        await stop.wait()
    finally:
        await runner.cleanup()
        await upstream.close()


@contextmanager
def slow_opa(target: str) -> Iterator[SlowOpa]:
    """A relay to the OPA at ``target``, on a free loopback port, for the ``with`` block."""
    port = free_port()
    relay = SlowOpa(url=f"http://127.0.0.1:{port}")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(_serve(relay, target, port, started, stop),), daemon=True
    )
    thread.start()
    try:
        if not started.wait(30):
            raise RuntimeError("OPA's relay did not start")
        yield relay
    finally:
        relay.gate.set()  # nothing stays held
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
