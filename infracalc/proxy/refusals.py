"""Refusals counted rather than reported one by one: a flood must not drown the audit log or the service.

A client without valid credentials (a malformed request, wrong credentials, a scan) and a bubble
refused by a limit (too many connections, too fast) can repeat themselves thousands of times a
second. Each such refusal is counted here under its actor (the client's source address, or the
bubble), its label and its status; every ``interval`` seconds each count becomes one ``refusals``
event (``count``, first and last time, the first refusal's reason), which goes to the audit log like
any other egress event (actor ``source:<address>`` or ``bubble:<id>``, action
``egress.connection.deny``). The number of actors counted apart in one interval is bounded: beyond
``max_actors``, refusals are counted under the source ``*`` (others), so the memory, the events
and the service's work stay bounded whatever the flood.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from infracalc.proxy.events import MAX_REASON, EgressEvent, EventReporter, clip
from infracalc.proxy.redaction import redact

#: Actors (sources or bubbles) counted apart in one interval; the rest count as source ``*``.
MAX_ACTORS = 10_000
#: The source under which refusals are counted once ``MAX_ACTORS`` actors are counted in an interval.
OTHERS = "*"

_Key = tuple[str | None, str | None, str]  # bubble, source, label


@dataclass(slots=True)
class _Count:
    first: float
    last: float
    count: int
    status: int
    reason: str
    project: str | None


def _text(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")


class RefusalCounter:
    """Counts refusals by actor, label and interval, and reports each count once per interval; see :meth:`run`."""

    def __init__(self, reporter: EventReporter, *, interval: float, max_actors: int = MAX_ACTORS) -> None:
        self.reporter = reporter
        self.interval = interval
        self.max_actors = max_actors
        self._counts: dict[_Key, _Count] = {}
        self._actors: set[tuple[str | None, str | None]] = set()

    def count(
        self,
        label: str,
        status: int,
        reason: str,
        *,
        source: str | None = None,
        bubble: str | None = None,
        project: str | None = None,
    ) -> None:
        """Count one refusal of ``bubble`` (valid credentials) or else of ``source``; never blocks."""
        if bubble is not None:
            source = None
        actor = (bubble, source)
        if actor not in self._actors:
            if len(self._actors) >= self.max_actors:
                actor, project = (None, OTHERS), None
            self._actors.add(actor)
        key = (*actor, label)
        now = time.time()
        counted = self._counts.get(key)
        if counted is None:
            self._counts[key] = _Count(now, now, 1, status, reason, project)
        else:
            counted.last = now
            counted.count += 1

    async def run(self) -> None:
        """Forever: report the counts every ``interval`` seconds. Cancel to stop (then call :meth:`flush`)."""
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        """Report every count now, one event each, and start a new interval."""
        counts, self._counts, self._actors = self._counts, {}, set()
        for (bubble, source, label), counted in counts.items():
            self.reporter.submit(
                EgressEvent(
                    kind="refusals",
                    at=_text(counted.first),
                    until=_text(counted.last),
                    bubble=bubble,
                    source=source,
                    project=counted.project,
                    allow=False,
                    label=label,
                    status=counted.status,
                    count=counted.count,
                    reason=clip(redact(counted.reason), MAX_REASON) or "",
                )
            )
