"""The decision log: lines kept, then written in order, each with the time of its decision."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from infracalc.proxy.decision_log import DecisionLog

LOGGER = "infracalc.egress.test"


async def test_lines_are_written_after_the_interval_in_order_with_their_own_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    log = DecisionLog(logging.getLogger(LOGGER), interval=0.2)
    before = time.time()
    log.add("allow bubble=%s: %s", "b1", "rule r1 allows it")
    await asyncio.sleep(0.05)
    log.add("deny bubble=%s: %s", "b2", "no rule allows it")
    assert caplog.records == []  # not yet: nothing is written on the connection's path
    await asyncio.sleep(0.3)
    assert [record.getMessage() for record in caplog.records] == [
        "allow bubble=b1: rule r1 allows it",
        "deny bubble=b2: no rule allows it",
    ]
    first, second = caplog.records
    assert before <= first.created < second.created <= before + 0.15  # when decided, not when written
    assert first.msecs == pytest.approx((first.created % 1) * 1000, abs=1)
    assert all(record.levelno == logging.INFO and record.name == LOGGER for record in caplog.records)


async def test_a_full_buffer_is_written_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    log = DecisionLog(logging.getLogger(LOGGER), interval=60, max_pending=3)
    for number in range(3):
        log.add("line %d", number)
    assert [record.getMessage() for record in caplog.records] == ["line 0", "line 1", "line 2"]


async def test_flush_writes_what_is_kept_and_nothing_twice(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    log = DecisionLog(logging.getLogger(LOGGER), interval=0.05)
    log.add("last line")
    log.flush()
    await asyncio.sleep(0.1)  # the cancelled timer writes nothing more
    assert [record.getMessage() for record in caplog.records] == ["last line"]


async def test_nothing_is_kept_when_info_is_not_logged() -> None:
    written: list[str] = []

    class Remember(logging.Handler):  # no level of its own: only the logger's level can hold a line back
        def emit(self, record: logging.LogRecord) -> None:
            written.append(record.getMessage())

    logger = logging.getLogger(f"{LOGGER}.quiet")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logger.addHandler(Remember())
    log = DecisionLog(logger, interval=0.01)
    log.add("quiet")
    log.flush()
    assert written == []
    logger.setLevel(logging.INFO)  # the same log writes once INFO is on
    log.add("heard")
    log.flush()
    assert written == ["heard"]
