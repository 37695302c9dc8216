"""Each rule's daily upload budget: the bytes a bubble's user has sent under it today (UTC), as this proxy counts.

A rule caps what one bubble sends to its host in a day (``daily_upload_bytes``): request heads and
bodies, plain HTTP and inspected HTTPS alike, since a path or a header carries data as well as a
body does. The policy decides, given what was sent today under each rule (``sent_today``); this
module keeps that count and charges each request the policy allowed before it goes upstream.

Counts are kept per project, user and rule: a bubble is one user's in one project, and a bubble
stopped and started again (a new bubble id) keeps its day's count. They live in this proxy
process only: a restart of the proxy starts the day again, and several proxies in front of the
same bubbles would each allow the whole budget (the README says so, and to route a project's
bubbles to one proxy until the counts are shared).
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds in a day: a day's count starts at 00:00 UTC.
DAY = 86_400

_Key = tuple[str, str]


class UploadBudgets:
    """Bytes sent today under each rule, per project and user; yesterday's counts are dropped as days turn."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._day = self._today()
        self._sent: dict[_Key, dict[str, int]] = {}

    def _today(self) -> int:
        return int(self.clock() // DAY)

    def _turn(self) -> None:
        """Forget the counts of a day that has ended."""
        today = self._today()
        if today != self._day:
            self._day = today
            self._sent.clear()

    def sent_today(self, project: str, username: str) -> dict[str, int]:
        """``{rule_id: bytes}`` sent today by ``username`` in ``project`` (a copy: the policy's input)."""
        self._turn()
        return dict(self._sent.get((project, username), {}))

    def charge(self, project: str, username: str, rule_id: str, sent: int) -> None:
        """Count ``sent`` bytes under ``rule_id`` for ``username`` in ``project`` today."""
        self._turn()
        rules = self._sent.setdefault((project, username), {})
        rules[rule_id] = rules.get(rule_id, 0) + sent

    def __len__(self) -> int:
        """How many (project, user) pairs have sent something today."""
        self._turn()
        return len(self._sent)
