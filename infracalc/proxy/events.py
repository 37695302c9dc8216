"""What the proxy tells the service: every decision and every tunnel's end, in batches, off the relay's path.

The relay never waits for the service. Events go into a bounded queue; one task posts them in
batches to ``POST /api/v1/egress/events``, which appends them to the audit log and to the bubble's
session. Nothing goes unrecorded on purpose: when the queue is full, or when events have waited
longer than the grace period (the service is down), :meth:`EventReporter.accepting` turns false
and the proxy refuses new connections until the backlog is delivered (fail closed).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import logging
import time
from datetime import UTC, datetime

import aiohttp
import msgspec

logger = logging.getLogger(__name__)

#: Events sent in one request at most.
BATCH = 500
#: Longest path and reason reported, in characters: the service refuses longer texts, and a
#: refused batch would stop the proxy (nothing goes unrecorded), so the proxy never sends one.
MAX_PATH, MAX_REASON = 4096, 2048


def recorded_path(path: str) -> str:
    """A request's path as it is recorded: the query replaced by its SHA-256 (a query may carry data).

    ``/v1/items?id=7`` is recorded as ``/v1/items?sha256=<hex of "id=7">``; the query itself is never
    logged, audited or kept in a session.
    """
    bare, question, query = path.partition("?")
    if not question:
        return path
    return f"{bare}?sha256={hashlib.sha256(query.encode('utf-8', 'surrogateescape')).hexdigest()}"


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


class EgressEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One event of a bubble's egress (or of a client not taken for a bubble), as the service records it.

    ``kind`` is ``decision`` (the policy was asked: ``allow``, ``reason``, ``rule_id``; ``address``
    once dialled; ``mode`` for a CONNECT allowed; for a request inside an inspected CONNECT, scheme
    ``https``, its ``status`` and ``bytes_up``/``bytes_down``, reported once it is over),
    ``tunnel_closed`` (``bytes_up``, ``bytes_down``, ``seconds``, ``reason`` says
    why), ``refusal`` (refused before the policy, the bubble's credentials being valid: ``label``,
    ``status``) or ``refusals`` (``count`` refusals of one actor and label from ``at`` to
    ``until``: see :mod:`infracalc.proxy.refusals`).
    """

    kind: str
    at: str
    bubble: str | None = None
    source: str | None = None
    project: str | None = None
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    method: str | None = None
    path: str | None = None
    allow: bool
    reason: str
    label: str | None = None
    status: int | None = None
    rule_id: str | None = None
    address: str | None = None
    mode: str | None = None
    bytes_up: int | None = None
    bytes_down: int | None = None
    seconds: float | None = None
    count: int | None = None
    until: str | None = None


class EventBatch(msgspec.Struct, kw_only=True):
    """The body of ``POST /api/v1/egress/events``."""

    events: list[EgressEvent]


def now_text() -> str:
    """The current time as the service stores it (UTC, ISO 8601, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class EventReporter:
    """Queues events and delivers them to the service in the background. Start with :meth:`run`."""

    def __init__(self, service_url: str, secret: str, *, queue_size: int, grace_seconds: float) -> None:
        self.url = f"{service_url}/api/v1/egress/events"
        self._headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        self.queue_size = queue_size
        self.grace_seconds = grace_seconds
        self._pending: collections.deque[tuple[float, EgressEvent]] = collections.deque()
        self._wake = asyncio.Event()
        self.delivered = 0
        self.failures = 0
        self._batch = BATCH

    @property
    def pending(self) -> int:
        """Events not yet delivered."""
        return len(self._pending)

    def accepting(self) -> bool:
        """Whether new connections may be decided: the queue has room and nothing waited too long."""
        if len(self._pending) >= self.queue_size:
            return False
        return not self._pending or time.monotonic() - self._pending[0][0] <= self.grace_seconds

    def submit(self, event: EgressEvent) -> None:
        """Queue ``event`` (never blocks; see :meth:`accepting` for what happens when the service is away)."""
        self._pending.append((time.monotonic(), event))
        if len(self._pending) >= BATCH:
            self._wake.set()

    async def run(self, interval: float = 0.2) -> None:
        """Forever: deliver what is queued every ``interval`` seconds (sooner when a batch is full). Cancel to stop."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            backoff = interval
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._wake.wait()
                self._wake.clear()
                backoff = interval if await self._deliver(http) else min(backoff * 2, 2.0)

    async def flush(self, http: aiohttp.ClientSession | None = None) -> bool:
        """Deliver everything queued now; ``True`` when the queue is empty afterwards."""
        if http is None:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as own:
                return await self._deliver(own)
        return await self._deliver(http)

    async def _deliver(self, http: aiohttp.ClientSession) -> bool:
        while self._pending:
            batch = [event for _, event in itertools.islice(self._pending, self._batch)]
            body = msgspec.json.encode(EventBatch(events=batch))
            try:
                async with http.post(self.url, data=body, headers=self._headers) as answer:
                    status = answer.status
                    detail = "" if status < 300 else (await answer.text())[:300]  # noqa: PLR2004
            except (aiohttp.ClientError, TimeoutError) as error:
                self.failures += 1
                logger.warning("egress events not delivered (%d pending): %r", len(self._pending), error)
                return False
            if status == 413 and self._batch > 1:  # noqa: PLR2004 - too large: send smaller batches
                self._batch = max(1, self._batch // 2)
                continue
            if status >= 300:  # noqa: PLR2004
                self.failures += 1
                logger.warning("the service refused egress events (%d): %s", status, detail)
                return False
            for _ in batch:
                self._pending.popleft()
            self.delivered += len(batch)
        return True
