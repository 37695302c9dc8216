"""Refusals counted by actor, label and interval: one event per count, whatever the flood."""

from __future__ import annotations

from infracalc.proxy.events import EgressEvent, EventReporter
from infracalc.proxy.refusals import OTHERS, RefusalCounter


def counter(max_actors: int = 100) -> tuple[RefusalCounter, list[EgressEvent]]:
    reporter = EventReporter("http://127.0.0.1:9", "iep_" + "0" * 64, queue_size=10, grace_seconds=1)
    submitted: list[EgressEvent] = []
    reporter.submit = submitted.append  # type: ignore[method-assign]
    return RefusalCounter(reporter, interval=10, max_actors=max_actors), submitted


def test_one_event_per_actor_and_label_with_its_count() -> None:
    refusals, submitted = counter()
    for _ in range(1000):
        refusals.count("proxy_auth", 407, "malformed Basic credentials", source="10.0.0.2")
    refusals.count("proxy_auth", 407, "malformed Basic credentials", source="10.0.0.3")
    refusals.count("malformed_request", 400, "malformed request line", source="10.0.0.2")
    refusals.count("bubble_rate", 429, "too fast", source="10.0.0.2", bubble="0123456789abcdef", project="cohort")
    assert submitted == []  # nothing before the interval ends
    refusals.flush()
    summary = {(event.bubble, event.source, event.label, event.status, event.count) for event in submitted}
    assert summary == {
        (None, "10.0.0.2", "proxy_auth", 407, 1000),
        (None, "10.0.0.3", "proxy_auth", 407, 1),
        (None, "10.0.0.2", "malformed_request", 400, 1),
        ("0123456789abcdef", None, "bubble_rate", 429, 1),
    }
    first = next(event for event in submitted if event.count == 1000)
    assert (first.kind, first.allow, first.reason) == ("refusals", False, "malformed Basic credentials")
    assert first.until is not None
    assert first.at <= first.until
    refusals.flush()
    assert len(submitted) == 4  # a new interval starts empty


def test_the_actors_counted_apart_are_bounded() -> None:
    refusals, submitted = counter(max_actors=3)
    for host in range(10):
        refusals.count("proxy_auth", 407, "no credentials", source=f"10.0.0.{host}")
    refusals.flush()
    assert [(event.source, event.count) for event in submitted] == [
        ("10.0.0.0", 1),
        ("10.0.0.1", 1),
        ("10.0.0.2", 1),
        (OTHERS, 7),
    ]
