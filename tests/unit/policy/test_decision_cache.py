"""The policy client's decision cache: fresh answers only, forgotten on every data change."""

from __future__ import annotations

import pytest

from infracalc.config import SettingError
from infracalc.policy import Decision, OpaSettings, PolicyClient, PolicyUnavailable
from infracalc.policy.opa import MAX_CACHED_DECISIONS, DecisionCache
from infracalc.stack.ports import free_port

ALLOW = Decision(True, "allowed")
DENY = Decision(False, "denied")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_decision_is_reused_until_it_is_a_second_old() -> None:
    clock = Clock()
    cache = DecisionCache(1.0, clock)
    cache.put(b"q", ALLOW, cache.generation)

    clock.now += 0.999
    assert cache.get(b"q") == ALLOW
    clock.now += 0.002
    assert cache.get(b"q") is None


def test_forget_drops_everything_and_voids_answers_asked_before() -> None:
    cache = DecisionCache(1.0, Clock())
    cache.put(b"q", ALLOW, cache.generation)
    asked_under = cache.generation  # a question on its way to OPA while the data changes

    cache.forget()
    cache.put(b"late", ALLOW, asked_under)

    assert cache.get(b"q") is None
    assert cache.get(b"late") is None


def test_a_zero_lifetime_keeps_nothing() -> None:
    cache = DecisionCache(0.0, Clock())
    cache.put(b"q", DENY, cache.generation)
    assert cache.get(b"q") is None


def test_a_full_cache_starts_over() -> None:
    cache = DecisionCache(1.0, Clock())
    for number in range(MAX_CACHED_DECISIONS):
        cache.put(str(number).encode(), ALLOW, cache.generation)
    cache.put(b"one more", DENY, cache.generation)

    assert cache.get(b"0") is None
    assert cache.get(b"one more") == DENY


@pytest.mark.parametrize("value", ["-0.1", "1.5", "60"])
def test_a_cache_longer_than_a_second_is_refused(value: str) -> None:
    with pytest.raises(SettingError, match="between 0 and 1"):
        OpaSettings.from_env({"INFRACALC_OPA_DECISION_CACHE_SECONDS": value})


def test_the_cache_lasts_a_second_by_default() -> None:
    assert OpaSettings.from_env({}).decision_cache_seconds == 1.0
    assert OpaSettings.from_env({"INFRACALC_OPA_DECISION_CACHE_SECONDS": "0"}).decision_cache_seconds == 0.0


async def test_a_question_that_finds_opa_gone_empties_the_cache() -> None:
    async with PolicyClient(OpaSettings(url=f"http://127.0.0.1:{free_port()}")) as policy:  # nothing listens
        policy.cache.put(b"earlier question", ALLOW, policy.cache.generation)
        with pytest.raises(PolicyUnavailable):
            await policy.decide("infracalc.authz", {"action": "me.read"}, cached=True)
        assert policy.cache.get(b"earlier question") is None
