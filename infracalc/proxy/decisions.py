"""Asking OPA whether a bubble may open a connection, with a cache of at most one second.

One question per new connection, per plain-HTTP request and per request inside a CONNECT the proxy
inspects: ``infracalc.egress.connection`` authenticates the bubble from the digest of its token
(``data.store.infracalc.bubbles``) and decides with the project's rules, so the proxy needs neither the
database nor the service on the connection's path. Any failure to get a well-formed answer is a
refusal (fail closed). A request's question carries its sizes and what the bubble's user sent
today under each rule (:mod:`infracalc.proxy.budgets`), so that the policy decides the caps too.

A decision may be reused for the same bubble, token, source address and request for up to
``cache_seconds`` (one at most). What was sent today is not part of a request's entry: counts only grow within a day, so
a refusal stays one (but for a second after 00:00 UTC), and an allowed request's entry is reused
only while what its rule sent today plus this request still fits the rule's daily budget, which
the decision carries (the check the policy makes); otherwise OPA is asked, and may choose another
rule or refuse. When a project's data changes the watcher drops that project's entries at once, so
an approval or a revocation does not wait for the cache. A decision reused after half its time is
asked again in the background, so that a bubble's steady stream of connections never waits for
OPA when its entry expires (the answer replaces the entry unless the data changed meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infracalc.policy import PolicyClient, PolicyUnavailable
from infracalc.proxy.credentials import BubbleCredentials
from infracalc.proxy.wire import ProxyRequest, RequestKind

#: The policy package and rule the proxy asks.
PACKAGE, RULE = "infracalc.egress", "connection"
#: Entries kept at most; the cache is emptied beyond (a burst of distinct requests).
MAX_ENTRIES = 100_000
#: The share of ``cache_seconds`` after which a reused decision is asked again in the background.
REFRESH_AFTER = 0.5
#: Why the policy refused a valid token (its ``label``), counted apart: ``wrong_source`` may be a stolen
#: token. Any other label is counted as ``unauthenticated``, so that the metric's labels stay few.
CREDENTIAL_LABELS = frozenset({"not_member", "no_address", "wrong_source"})


@dataclass(frozen=True, slots=True)
class EgressDecision:
    """The policy's answer for one connection.

    Attributes:
        allow: The connection may be opened.
        authenticated: The bubble and its token are known and valid (``False``: answer 407).
        reason: Why, in words.
        rule_id: The allowing rule, when allowed.
        project: The bubble's project, when authenticated.
        expires_at_ns: When the allowing rule expires (nanoseconds since the epoch), when allowed.
        label: A short stable name of the outcome, for metrics (``allowed``, ``policy_denied``...).
        mode: How the allowing rule carries a CONNECT: ``tunnel`` or ``inspect`` (when allowed).
        status: The status to answer a refusal with (403, 413 for a body over the cap, 429 for a
            spent budget); ``None`` when allowed.
        max_response_bytes: The allowing rule's cap on an answer's body (``None``: none).
        username: The bubble's user, when authenticated (budgets are counted per user and project).
        daily_upload_bytes: The allowing rule's daily budget (``None``: none), so that a reused
            decision is checked against the current count.
    """

    allow: bool
    authenticated: bool
    reason: str
    rule_id: str | None = None
    project: str | None = None
    expires_at_ns: int | None = None
    label: str = "policy_denied"
    mode: str | None = None
    status: int | None = None
    max_response_bytes: int | None = None
    username: str | None = None
    daily_upload_bytes: int | None = None

    @classmethod
    def refused(cls, reason: str, label: str, *, authenticated: bool = True) -> EgressDecision:
        """A refusal the proxy makes itself (OPA unreachable, a malformed answer)."""
        return cls(False, authenticated, reason, label=label)

    @classmethod
    def from_result(cls, result: object) -> EgressDecision:  # noqa: PLR0911 - one return per case
        """Read OPA's answer; anything malformed is a refusal."""
        if not isinstance(result, dict):
            return cls.refused("the egress policy gave no decision: denied", "policy_malformed")
        allow, authenticated, reason = result.get("allow"), result.get("authenticated"), result.get("reason")
        project, rule_id, expiry = result.get("project"), result.get("rule_id"), result.get("expires_at_ns")
        if not isinstance(allow, bool) or not isinstance(authenticated, bool) or not isinstance(reason, str):
            return cls.refused("the egress policy gave a malformed decision: denied", "policy_malformed")
        if not authenticated:
            label = result.get("label")
            if not isinstance(label, str) or label not in CREDENTIAL_LABELS:
                label = "unauthenticated"
            return cls(False, False, reason, label=label)
        if not isinstance(project, str):
            return cls.refused("the egress policy named no project: denied", "policy_malformed")
        username = result.get("username")
        username = username if isinstance(username, str) else None
        if not allow:
            status = result.get("status")
            status = status if status in _REFUSAL_STATUSES else 403
            return cls(False, True, reason, project=project, label="policy_denied", status=status, username=username)
        if not isinstance(rule_id, str) or not _integer(expiry):
            return cls.refused("the egress policy allowed without a rule and expiry: denied", "policy_malformed")
        mode, cap, budget = (
            result.get("mode", "tunnel"),
            result.get("max_response_bytes"),
            result.get("daily_upload_bytes"),
        )
        if mode not in ("tunnel", "inspect") or not all(value is None or _integer(value) for value in (cap, budget)):
            return cls.refused("the egress policy allowed with a malformed mode or cap: denied", "policy_malformed")
        return cls(True, True, reason, rule_id, project, expiry, "allowed", mode, None, cap, username, budget)


#: The statuses a policy refusal may ask for; anything else is answered 403.
_REFUSAL_STATUSES = frozenset({403, 413, 429})


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def policy_input(
    credentials: BubbleCredentials,
    request: ProxyRequest,
    source_ip: str,
    *,
    request_bytes: int = 0,
    sent_today: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The input of ``infracalc.egress.connection`` for ``request``, which came from ``source_ip``.

    ``source_ip`` is written as :func:`infracalc.egress.source_address` writes it: the policy lets a
    bubble's credentials work from the bubble's registered address only.

    For a request (plain HTTP, or inside an inspected CONNECT): ``request_bytes`` is what it sends
    upstream (head and body), ``sent_today`` what the bubble's user sent today under each rule.
    """
    payload: dict[str, Any] = {
        "bubble": {"id": credentials.bubble_id, "token_sha256": credentials.token_sha256},
        "host": request.destination.host,
        "port": request.destination.port,
        "scheme": request.kind.value,
        "source_ip": source_ip,
    }
    if request.kind is not RequestKind.CONNECT:
        payload["method"] = request.method
        payload["path"] = request.path
        payload["body_bytes"] = request.content_length
        payload["request_bytes"] = request_bytes
        payload["sent_today"] = dict(sent_today or {})
    return payload


_Key = tuple[str, str, str, str, str, int, str, str, int, int]


def _key(payload: dict[str, Any]) -> _Key:
    """What a decision is reused for: all of the question but what was sent today (see :func:`_still_fits`)."""
    bubble = payload["bubble"]
    return (
        bubble["id"],
        bubble["token_sha256"],
        payload["source_ip"],
        payload["scheme"],
        payload["host"],
        payload["port"],
        payload.get("method", ""),
        payload.get("path", ""),
        payload.get("body_bytes", 0),
        payload.get("request_bytes", 0),
    )


def _still_fits(decision: EgressDecision, payload: dict[str, Any]) -> bool:
    """Whether an allowed request's decision holds for ``payload``'s count: its rule's budget not exceeded."""
    if not decision.allow or decision.daily_upload_bytes is None or decision.rule_id is None:
        return True
    sent = payload.get("sent_today", {}).get(decision.rule_id, 0)
    return bool(sent + payload.get("request_bytes", 0) <= decision.daily_upload_bytes)


class DecisionSource:
    """Decisions from OPA, each reused for at most ``cache_seconds``."""

    def __init__(
        self, policy: PolicyClient, *, cache_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[_Key, tuple[float, EgressDecision]] = {}
        self._refreshing: dict[_Key, asyncio.Task[None]] = {}
        self._generation = 0  # bumped by forget(): a refresh asked before it is not kept

    async def decide(self, payload: dict[str, Any], *, fresh: bool = False) -> EgressDecision:
        """The decision for ``payload`` (see :func:`policy_input`); ``fresh`` skips the cache."""
        key = _key(payload)
        now = self.clock()
        if not fresh and self.cache_seconds > 0:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < self.cache_seconds and _still_fits(cached[1], payload):
                if now - cached[0] >= self.cache_seconds * REFRESH_AFTER and key not in self._refreshing:
                    task = asyncio.get_running_loop().create_task(self._refresh(key, payload))
                    self._refreshing[key] = task
                return cached[1]
        try:
            decision = EgressDecision.from_result(await self.policy.query(PACKAGE, RULE, payload))
        except PolicyUnavailable:
            # Not cached: the next connection asks again.
            return EgressDecision.refused(
                "the egress policy cannot be asked (OPA unavailable): denied", "policy_unavailable"
            )
        if self.cache_seconds > 0:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now, decision)
        return decision

    async def _refresh(self, key: _Key, payload: dict[str, Any]) -> None:
        """Ask again about ``payload`` and keep the answer under ``key``, unless the data changed meanwhile."""
        asked_at, generation = self.clock(), self._generation
        try:
            decision = EgressDecision.from_result(await self.policy.query(PACKAGE, RULE, payload))
        except PolicyUnavailable:
            return  # the entry expires as usual; the next connection asks itself
        finally:
            self._refreshing.pop(key, None)
        if generation == self._generation and key in self._cache:
            self._cache[key] = (asked_at, decision)

    def forget(self, projects: Iterable[str]) -> None:
        """Drop the cached decisions of bubbles of ``projects`` (their data changed), and any unauthenticated ones."""
        changed = set(projects)
        self._generation += 1
        for key, (_, decision) in list(self._cache.items()):
            if decision.project is None or decision.project in changed:
                del self._cache[key]
