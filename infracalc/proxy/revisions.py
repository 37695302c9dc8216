"""Revocation reaching open connections: re-deciding a project's tunnels when its data changes or a rule expires.

The service writes ``data.store.infracalc.revisions[<slug>]`` last whenever it pushes a project's data
(its governance, members, rules) or one of its bubbles (registered, revoked). The watcher reads that
small document every ``poll_seconds`` (0.2 s by default) and, for each project whose revision
changed, drops its cached decisions and asks the policy again, without the cache, about each of
its open connections: those now refused are cut. A revoked rule, a revoked bubble and a switch to
CASD governance therefore close the matching tunnels within a poll interval plus one decision.

A rule's expiry changes no data: each connection allowed by a rule is re-decided when that rule
expires (:meth:`RevisionWatcher.schedule_expiry`).

While OPA does not answer, or holds no revisions (just restarted, before the service's resync),
nothing is re-decided and open connections stay as they are; new connections are refused by the
policy meanwhile. Once the revisions are back, every project counts as changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from infracalc.policy import PolicyClient, PolicyUnavailable
from infracalc.policy.store import REVISIONS
from infracalc.proxy.decisions import DecisionSource
from infracalc.proxy.tunnels import Tunnel, TunnelRegistry

logger = logging.getLogger(__name__)

#: Told about every connection cut, with the refusal's reason.
OnCut = Callable[[Tunnel, str], None]


class RevisionWatcher:
    """Watches OPA's revisions and re-decides the open connections of changed projects."""

    def __init__(
        self,
        policy: PolicyClient,
        decisions: DecisionSource,
        tunnels: TunnelRegistry,
        *,
        on_cut: OnCut,
        poll_seconds: float,
    ) -> None:
        self.policy = policy
        self.decisions = decisions
        self.tunnels = tunnels
        self.on_cut = on_cut
        self.poll_seconds = poll_seconds
        self._seen: dict[str, object] | None = None
        self._retry: set[str] = set()
        self._expiring: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Forever: poll, and re-decide what changed. Cancel to stop."""
        while True:
            await self.poll_once()
            await asyncio.sleep(self.poll_seconds)

    async def poll_once(self) -> set[str]:
        """Read the revisions once and re-decide the connections of changed projects; returns those projects."""
        try:
            current = await self.policy.get_data(REVISIONS)
        except PolicyUnavailable as error:
            logger.debug("revisions not read: %s", error)
            return set()
        if not isinstance(current, dict) or not current:
            return set()  # OPA holds no data yet: keep the last revisions seen, decide nothing
        previous = self._seen
        self._seen = current
        if previous is None:
            changed = set(current)  # first look: re-decide whatever is open (after a proxy restart, nothing)
        else:
            changed = {slug for slug in current.keys() | previous.keys() if current.get(slug) != previous.get(slug)}
        changed |= self._retry
        self._retry = set()
        if changed:
            self.decisions.forget(changed)
            await self.recheck(self.tunnels.of_projects(changed))
        return changed

    async def recheck(self, tunnels: Iterable[Tunnel]) -> None:
        """Ask the policy again, without the cache, about each connection; cut those now refused."""
        tunnels = list(tunnels)
        if not tunnels:
            return
        started = time.perf_counter()
        decisions = await asyncio.gather(*(self.decisions.decide(tunnel.payload, fresh=True) for tunnel in tunnels))
        cut = 0
        for tunnel, decision in zip(tunnels, decisions, strict=True):
            if decision.allow:
                if (decision.rule_id, decision.expires_at_ns) != (tunnel.rule_id, tunnel.expires_at_ns):
                    tunnel.rule_id, tunnel.expires_at_ns = decision.rule_id, decision.expires_at_ns
                    self.schedule_expiry(tunnel)  # now allowed by another rule: watch its expiry
                continue
            if decision.label == "policy_unavailable":
                self._retry.add(tunnel.project)
                continue
            cut += 1
            self.on_cut(tunnel, decision.reason)
        logger.info(
            "re-decided %d open connections in %.1f ms: %d cut",
            len(tunnels),
            (time.perf_counter() - started) * 1000,
            cut,
        )

    def schedule_expiry(self, tunnel: Tunnel) -> None:
        """Re-decide ``tunnel`` just after its rule expires (replacing any earlier timer of it).

        The timer is kept on the tunnel; cancel it when the tunnel ends.
        """
        if tunnel.expiry_timer is not None:
            tunnel.expiry_timer.cancel()
            tunnel.expiry_timer = None
        if tunnel.expires_at_ns is None:
            return
        delay = max(0.0, (tunnel.expires_at_ns - time.time_ns()) / 1e9) + 0.001
        loop = asyncio.get_running_loop()

        def expire() -> None:
            task = loop.create_task(self.recheck([tunnel]))
            self._expiring.add(task)
            task.add_done_callback(self._expiring.discard)

        tunnel.expiry_timer = loop.call_later(delay, expire)
