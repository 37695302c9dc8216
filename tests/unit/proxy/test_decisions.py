"""Reading OPA's answer and caching it: anything malformed or unavailable is a refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from infracalc.policy import PolicyUnavailable
from infracalc.proxy.decisions import DecisionSource, EgressDecision

EXPIRY = 2_000_000_000_000_000_000
ALLOW: dict[str, object] = {
    "allow": True,
    "authenticated": True,
    "reason": "rule r1 allows",
    "rule_id": "r1",
    "project": "weather",
    "expires_at_ns": EXPIRY,
}


def test_an_allowing_answer_is_read_whole() -> None:
    decision = EgressDecision.from_result(ALLOW)
    # An answer without a mode is a tunnel's (what the policy meant before inspection).
    assert decision == EgressDecision(True, True, "rule r1 allows", "r1", "weather", EXPIRY, "allowed", "tunnel")
    inspected = {**ALLOW, "mode": "inspect", "max_response_bytes": 1000, "username": "alice", "status": None}
    inspected["daily_upload_bytes"] = 5000
    assert EgressDecision.from_result(inspected) == EgressDecision(
        True, True, "rule r1 allows", "r1", "weather", EXPIRY, "allowed", "inspect", None, 1000, "alice", 5000
    )


@pytest.mark.parametrize(
    ("status", "kept"), [(413, 413), (429, 429), (403, 403), (200, 403), ("413", 403), (None, 403)]
)
def test_a_refusal_keeps_the_status_the_policy_asks_for_among_403_413_429(status: object, kept: int) -> None:
    decision = EgressDecision.from_result({**ALLOW, "allow": False, "reason": "too big", "status": status})
    assert (decision.allow, decision.status, decision.label) == (False, kept, "policy_denied")


@pytest.mark.parametrize(
    ("result", "label", "authenticated"),
    [
        (None, "policy_malformed", True),
        ([], "policy_malformed", True),
        ({**ALLOW, "allow": "yes"}, "policy_malformed", True),
        ({**ALLOW, "reason": None}, "policy_malformed", True),
        ({**ALLOW, "authenticated": None}, "policy_malformed", True),
        ({**ALLOW, "project": None}, "policy_malformed", True),
        ({**ALLOW, "rule_id": None}, "policy_malformed", True),
        ({**ALLOW, "expires_at_ns": 1.5}, "policy_malformed", True),
        ({**ALLOW, "expires_at_ns": True}, "policy_malformed", True),
        ({**ALLOW, "mode": "sideways"}, "policy_malformed", True),
        ({**ALLOW, "mode": None}, "policy_malformed", True),
        ({**ALLOW, "max_response_bytes": "lots"}, "policy_malformed", True),
        ({**ALLOW, "max_response_bytes": True}, "policy_malformed", True),
        ({**ALLOW, "daily_upload_bytes": 1.5}, "policy_malformed", True),
        ({**ALLOW, "allow": False, "reason": "no rule"}, "policy_denied", True),
        ({**ALLOW, "allow": False, "authenticated": False, "project": None}, "unauthenticated", False),
        ({**ALLOW, "allow": False, "authenticated": False, "label": "wrong_source"}, "wrong_source", False),
        ({**ALLOW, "allow": False, "authenticated": False, "label": "not_member"}, "not_member", False),
        ({**ALLOW, "allow": False, "authenticated": False, "label": "no_address"}, "no_address", False),
        # Any other label is not a metric label of its own.
        ({**ALLOW, "allow": False, "authenticated": False, "label": "x" * 50}, "unauthenticated", False),
        ({**ALLOW, "allow": False, "authenticated": False, "label": ["wrong_source"]}, "unauthenticated", False),
    ],
)
def test_anything_but_a_complete_allow_is_a_refusal(result: object, label: str, authenticated: bool) -> None:
    decision = EgressDecision.from_result(result)
    assert not decision.allow
    assert (decision.label, decision.authenticated) == (label, authenticated)


class Policy:
    """Counts questions; answers from a list (an exception is raised)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def query(self, package: str, rule: str, payload: dict[str, Any]) -> object:
        assert (package, rule) == ("infracalc.egress", "connection")
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


PAYLOAD = {
    "bubble": {"id": "b1", "token_sha256": "d"},
    "host": "a.example",
    "port": 443,
    "scheme": "connect",
    "source_ip": "10.233.0.2",
}


async def test_a_decision_is_reused_for_at_most_the_cache_time_and_forgotten_on_change() -> None:
    now = [100.0]
    policy = Policy(ALLOW, ALLOW, ALLOW, ALLOW)
    source = DecisionSource(policy, cache_seconds=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    await source.decide(PAYLOAD)
    now[0] += 0.4
    await source.decide(PAYLOAD)
    assert policy.asked == 1
    now[0] += 0.7
    await source.decide(PAYLOAD)
    assert policy.asked == 2
    source.forget({"weather"})
    await source.decide(PAYLOAD)
    assert policy.asked == 3
    await source.decide(PAYLOAD, fresh=True)
    assert policy.asked == 4


async def test_a_decision_reused_after_half_its_time_is_asked_again_in_the_background() -> None:
    now = [100.0]
    denied = {**ALLOW, "allow": False, "reason": "revoked"}
    policy = Policy(ALLOW, denied, ALLOW, denied)
    source = DecisionSource(policy, cache_seconds=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    await source.decide(PAYLOAD)
    now[0] += 0.6
    assert (await source.decide(PAYLOAD)).allow  # the cached one, at once
    assert (await source.decide(PAYLOAD)).allow  # one refresh at a time
    await asyncio.sleep(0)  # the refresh runs
    assert policy.asked == 2
    now[0] += 0.6  # the first answer would have expired; the second, asked at 100.6, has not
    assert not (await source.decide(PAYLOAD)).allow
    await asyncio.sleep(0)
    assert policy.asked == 3
    # A refresh whose answer arrives after the project's data changed is not kept.
    now[0] += 0.6
    assert (await source.decide(PAYLOAD)).allow
    source.forget({"weather"})
    await asyncio.sleep(0)
    assert policy.asked == 4
    assert source._cache == {}


async def test_a_decision_is_never_reused_for_another_source_address() -> None:
    policy = Policy(ALLOW, ALLOW)
    source = DecisionSource(policy, cache_seconds=1.0)  # type: ignore[arg-type]
    await source.decide(PAYLOAD)
    await source.decide({**PAYLOAD, "source_ip": "127.0.0.1"})
    assert policy.asked == 2


async def test_opa_unavailable_is_a_refusal_that_is_not_cached() -> None:
    policy = Policy(PolicyUnavailable("down"), ALLOW)
    source = DecisionSource(policy, cache_seconds=1.0)  # type: ignore[arg-type]
    refused = await source.decide(PAYLOAD)
    assert (refused.allow, refused.label) == (False, "policy_unavailable")
    assert (await source.decide(PAYLOAD)).allow


REQUEST = {**PAYLOAD, "scheme": "https", "method": "GET", "path": "/v1/x", "body_bytes": 0, "request_bytes": 100}


async def test_a_requests_decision_is_reused_while_its_rule_budget_still_fits_the_count_of_the_moment() -> None:
    now = [100.0]
    budgeted = {**ALLOW, "mode": "inspect", "daily_upload_bytes": 1000}
    spent = {**ALLOW, "allow": False, "reason": "rule r1's budget is spent", "status": 429}
    policy = Policy(budgeted, spent, budgeted)
    source = DecisionSource(policy, cache_seconds=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert (await source.decide({**REQUEST, "sent_today": {}})).allow
    # The count grew, but the request still fits: the decision holds, OPA is not asked.
    assert (await source.decide({**REQUEST, "sent_today": {"r1": 900, "r2": 5000}})).allow
    assert policy.asked == 1
    # One byte more would be over the budget: OPA is asked, and refuses; the refusal is kept.
    refused = await source.decide({**REQUEST, "sent_today": {"r1": 901}})
    assert (refused.allow, refused.status, policy.asked) == (False, 429, 2)
    assert not (await source.decide({**REQUEST, "sent_today": {"r1": 950}})).allow
    assert policy.asked == 2
    # A rule without a budget, a tunnel: reused whatever the count, for the cache time only.
    now[0] += 1.0
    unbudgeted = DecisionSource(Policy(ALLOW), cache_seconds=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert (await unbudgeted.decide({**REQUEST, "sent_today": {}})).allow
    assert (await unbudgeted.decide({**REQUEST, "sent_today": {"r1": 10**12}})).allow
    assert (await source.decide({**REQUEST, "sent_today": {"r1": 0}})).allow  # expired: asked again
    assert policy.asked == 3
