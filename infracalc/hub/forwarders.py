"""TCP forwarders on a bubble's gateway address: the hub, the service and the egress proxy, nothing else.

The local stack binds every server to 127.0.0.1, which a bubble's namespace cannot reach (its
loopback is its own). For each bubble the local spawner listens on the bubble's gateway address,
on the ports of the three servers a bubble needs, and relays each connection to the same port on
127.0.0.1. Any other port of the gateway address is closed, so a bubble reaches those three and
nothing else; the egress proxy then decides what goes further.

The egress proxy must know where a connection really comes from (a bubble's credentials work from
the bubble's own address only), which a relay to 127.0.0.1 would hide: a port listed in
``unix_targets`` is relayed instead to the proxy's forwarded socket, a Unix socket only the hub's
user may open, each connection starting with a PROXY line naming the address it came from
(:mod:`infracalc.proxy.forwarded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from infracalc.proxy import forwarded
from infracalc.proxy.relay import Relay

logger = logging.getLogger(__name__)

#: A forwarded connection that carries nothing for this long is closed (a day: kernels idle long).
IDLE_SECONDS = 86400.0


@dataclass
class Forwarders:
    """Listeners on ``address`` for each of ``ports``, each relaying to ``target_host`` on the same port."""

    address: str
    ports: tuple[int, ...]
    target_host: str = "127.0.0.1"
    #: Ports relayed to a Unix socket instead, each connection led by a PROXY line naming its source.
    unix_targets: Mapping[int, str] = field(default_factory=dict)
    _listeners: list[socket.socket] = field(default_factory=list, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    async def start(self) -> None:
        """Listen on every port (the gateway address must exist)."""
        for port in self.ports:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.address, port))
            listener.listen(128)
            listener.setblocking(False)
            self._listeners.append(listener)
            self._spawn(self._accept(listener, port))

    async def close(self) -> None:
        """Stop listening and cut every forwarded connection."""
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, listener: socket.socket, port: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(listener)
            except OSError:
                return
            client.setblocking(False)
            self._spawn(self._forward(client, port))

    async def _forward(self, client: socket.socket, port: int) -> None:
        loop = asyncio.get_running_loop()
        path = self.unix_targets.get(port)
        target: Any = (self.target_host, port) if path is None else path
        upstream = socket.socket(socket.AF_INET if path is None else socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(upstream, target), 10)
            if path is not None:
                await loop.sock_sendall(upstream, forwarded.header(client.getpeername(), (self.address, port)))
        except (OSError, TimeoutError) as error:
            logger.warning("forwarder %s:%d cannot reach %s: %s", self.address, port, target, error)
            client.close()
            upstream.close()
            return
        with contextlib.suppress(asyncio.CancelledError):
            await Relay(client, upstream, idle_timeout=IDLE_SECONDS).run()


def ports_of(urls: Iterable[str]) -> tuple[int, ...]:
    """The ports of ``http://host:port`` URLs (80 when absent), without repeats, in order."""
    found: list[int] = []
    for url in urls:
        port = urlsplit(url).port or 80
        if port not in found:
            found.append(port)
    return tuple(found)
