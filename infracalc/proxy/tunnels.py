"""The open connections, by bubble and by project: the per-bubble cap, and what revocation must re-decide."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from infracalc.proxy.relay import Counters
from infracalc.proxy.wire import Destination, RequestKind

_ids = itertools.count(1)


class Carrier(Protocol):
    """What carries an open connection's bytes: a relay (tunnel, plain HTTP) or an inspected session."""

    counters: Counters

    def cut(self, reason: str) -> None:
        """End the connection now, keeping ``reason``."""


@dataclass(eq=False, slots=True)
class Tunnel:
    """One open connection of a bubble: a CONNECT tunnel or a plain-HTTP exchange.

    Attributes:
        bubble_id: Whose.
        project: The bubble's project (from the policy's answer).
        kind: Tunnel or plain HTTP.
        destination: Where, as asked.
        payload: The policy input that allowed it, asked again when the project's data changes.
        rule_id: The rule that allowed it.
        expires_at_ns: When that rule expires.
        relay: Moves its bytes (a relay, or an inspected session); cutting it closes the connection.
    """

    bubble_id: str
    project: str
    kind: RequestKind
    destination: Destination
    payload: dict[str, Any] = field(repr=False)
    rule_id: str | None
    expires_at_ns: int | None
    relay: Carrier | None = field(default=None, repr=False)
    #: Re-decides the tunnel when its rule expires (see :mod:`infracalc.proxy.revisions`).
    expiry_timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    #: Set when the tunnel was cut before its relay started.
    cut_reason: str | None = None
    opened_at: float = field(default_factory=time.monotonic)
    id: int = field(default_factory=lambda: next(_ids))

    def cut(self, reason: str) -> None:
        """Close the connection now (or as soon as its relay starts), keeping ``reason``."""
        if self.cut_reason is None:
            self.cut_reason = reason
        if self.relay is not None:
            self.relay.cut(reason)

    def end(self) -> None:
        """Stop the expiry timer (the connection is over)."""
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None


class TunnelLimitReached(Exception):
    """The bubble already holds as many open connections as allowed."""


class TunnelRegistry:
    """Who holds which connection; counts every authenticated connection against its bubble's cap."""

    def __init__(self, max_per_bubble: int) -> None:
        self.max_per_bubble = max_per_bubble
        self._by_bubble: dict[str, set[Tunnel]] = {}

    def __len__(self) -> int:
        return sum(len(tunnels) for tunnels in self._by_bubble.values())

    def add(self, tunnel: Tunnel) -> None:
        """Count ``tunnel`` against its bubble.

        Raises:
            TunnelLimitReached: the bubble is at its cap; nothing was added.
        """
        held = self._by_bubble.setdefault(tunnel.bubble_id, set())
        if len(held) >= self.max_per_bubble:
            if not held:
                del self._by_bubble[tunnel.bubble_id]
            raise TunnelLimitReached(f"bubble {tunnel.bubble_id} already has {len(held)} open connections (the limit)")
        held.add(tunnel)

    def remove(self, tunnel: Tunnel) -> None:
        """Forget ``tunnel`` (it ended); removing twice is harmless."""
        held = self._by_bubble.get(tunnel.bubble_id)
        if held is None:
            return
        held.discard(tunnel)
        if not held:
            del self._by_bubble[tunnel.bubble_id]

    def of_projects(self, projects: Iterable[str]) -> list[Tunnel]:
        """The open connections of bubbles of ``projects``."""
        wanted = set(projects)
        return [tunnel for held in self._by_bubble.values() for tunnel in held if tunnel.project in wanted]

    def all(self) -> list[Tunnel]:
        """Every open connection."""
        return [tunnel for held in self._by_bubble.values() for tunnel in held]

    def count(self, bubble_id: str) -> int:
        """Open connections of one bubble."""
        return len(self._by_bubble.get(bubble_id, ()))
