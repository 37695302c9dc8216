"""The proxy's limits: token buckets for rates, counts for connections not authenticated yet."""

from __future__ import annotations

import pytest

from infracalc.proxy.limits import BucketsByKey, CountsByKey, TokenBucket, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == pytest.approx(0.1)  # one token comes every 0.1 s
    clock.now += 0.05
    assert bucket.take() == pytest.approx(0.05)  # nothing taken by a refusal
    clock.now += 0.05
    assert bucket.take() == 0
    clock.now += 60
    assert bucket.full()
    assert [bucket.take() for _ in range(4)][-1] > 0  # refilled to the burst, no more


def test_buckets_by_key_are_separate_and_full_ones_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    buckets = BucketsByKey(rate=1, burst=1, clock=clock)
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0
    monkeypatch.setattr(BucketsByKey, "SWEEP_AT", 2)
    clock.now += 5  # both full again
    assert buckets.take("c") == 0
    assert len(buckets) == 1


def test_counts_by_key() -> None:
    counts = CountsByKey()
    assert [counts.add("10.0.0.2"), counts.add("10.0.0.2"), counts.add("10.0.0.3")] == [1, 2, 1]
    counts.remove("10.0.0.2")
    counts.remove("10.0.0.9")
    assert (counts.total, len(counts)) == (2, 2)
    counts.remove("10.0.0.2")
    counts.remove("10.0.0.3")
    assert (counts.total, len(counts)) == (0, 0)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(0.01), retry_after(1.0), retry_after(1.2)] == ["1", "1", "2"]
