"""The proxy's limits on connections, besides each bubble's cap on open ones (:mod:`.tunnels`).

Like Smokescreen's, they keep one client from taking the proxy, and what the proxy feeds (OPA, the
service's audit log), away from everyone else:

- a global cap on connections open at once, authenticated or not (503 beyond, with ``Retry-After``);
- a rate of new connections overall, and one per bubble once authenticated: token buckets, which
  allow a burst and then a steady rate (429 beyond, with ``Retry-After``);
- a cap on the connections of one source address that have not authenticated yet (a slow or
  credential-less client holding sockets open; 429 beyond).

Each check costs a few arithmetic operations: they run on every new connection.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

_EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` kept; each new connection takes one."""

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def take(self) -> float:
        """Take a token: 0 when there was one, else the seconds until there is one (nothing taken)."""
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= 1 - _EPSILON:  # (rounding: a token due now is there)
            self._tokens = max(0.0, tokens - 1)
            return 0.0
        self._tokens = tokens
        return (1 - tokens) / self.rate

    def full(self) -> bool:
        """Whether the bucket has refilled completely (it can be forgotten: a new one is the same)."""
        return self._tokens + (self._clock() - self._stamp) * self.rate >= self.burst


class BucketsByKey:
    """One :class:`TokenBucket` per key (a bubble), made on first use; full ones are forgotten now and then."""

    #: Buckets kept before the full ones are swept out.
    SWEEP_AT = 10_000

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str) -> float:
        """:meth:`TokenBucket.take` on ``key``'s bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.SWEEP_AT:
                self._buckets = {name: kept for name, kept in self._buckets.items() if not kept.full()}
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, clock=self._clock)
        return bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value (whole seconds, at least 1) for a wait of ``seconds``."""
    return str(max(1, math.ceil(seconds)))


class CountsByKey:
    """How many connections of each key (a source address) are in some state (not authenticated yet)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self.total = 0

    def add(self, key: str) -> int:
        """Count one more for ``key``; returns its count now."""
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        self.total += 1
        return count

    def remove(self, key: str) -> None:
        """Count one less for ``key`` (removing a key not counted is harmless)."""
        count = self._counts.get(key)
        if count is None:
            return
        self.total -= 1
        if count <= 1:
            del self._counts[key]
        else:
            self._counts[key] = count - 1

    def __len__(self) -> int:
        return len(self._counts)
