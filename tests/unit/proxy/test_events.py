"""What the proxy reports stays within what the service accepts, so that no batch is refused for its size."""

from __future__ import annotations

import time

import msgspec

from infracalc.proxy.events import MAX_PATH, EgressEvent, EventReporter, clip, now_text


def test_long_texts_are_clipped_and_marked() -> None:
    assert clip("short", 10) == "short"
    assert clip(None, 10) is None
    clipped = clip("x" * 5000, MAX_PATH)
    assert clipped is not None
    assert len(clipped) == MAX_PATH
    assert clipped.endswith("…")


def test_refusals_are_encoded_with_allow_false() -> None:
    event = EgressEvent(kind="decision", at=now_text(), bubble="b", scheme="connect", host="a.example", port=443,
                        allow=False, reason="no rule")  # fmt: skip
    assert msgspec.json.decode(msgspec.json.encode(event))["allow"] is False


def test_the_reporter_stops_accepting_when_events_wait_too_long_or_the_queue_is_full() -> None:
    reporter = EventReporter("http://127.0.0.1:9", "iep_" + "0" * 64, queue_size=2, grace_seconds=60)
    event = EgressEvent(kind="decision", at=now_text(), bubble="b", scheme="connect", host="a.example", port=443,
                        allow=True, reason="ok")  # fmt: skip
    assert reporter.accepting()
    reporter.submit(event)
    assert reporter.accepting()
    reporter.submit(event)
    assert not reporter.accepting()
    patient = EventReporter("http://127.0.0.1:9", "iep_" + "0" * 64, queue_size=100, grace_seconds=0.01)
    patient.submit(event)
    time.sleep(0.02)
    assert not patient.accepting()
