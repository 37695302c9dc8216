"""The egress proxy: the only way out of a bubble, and the place where its egress is decided.

For each connection from a bubble::

    read the request head (limits, timeout)   → 400 / 408 / 411 / 431
    read the bubble's credentials             → 407
    the service can record decisions?         → 503 (fail closed: nothing goes unrecorded)
    ask OPA infracalc.egress.connection       → 407 (unknown bubble) / 403 (with the reason)
    count it against the bubble's cap         → 429
    resolve once, check every address         → 403 (private, loopback, metadata...) / 502
    connect to the address checked            → 502 / 504 (10 s)
    relay (CONNECT: "200" then bytes; plain HTTP: the request in origin form, then the answer)

Every decision is logged (one line, written in bursts: :mod:`infracalc.proxy.decision_log`),
counted in the metrics and sent to the service for the audit log and the bubble's session; every
tunnel's end too, with its bytes and duration. Open
connections are re-decided when their project's data changes or their rule expires
(:mod:`infracalc.proxy.revisions`), and cut when refused.

Sockets are used directly (:mod:`infracalc.proxy.sockets`) rather than through asyncio streams,
so that the relay can hand both file descriptors to ``splice(2)``, and so that each connection
costs a few system calls rather than the event loop's general-purpose ``sock_*`` machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping
from ipaddress import ip_address
from typing import Any

from infracalc.egress import (
    AddressRefused,
    IPAddress,
    ResolutionFailed,
    Resolver,
    choose,
    resolve_once,
    source_address,
)
from infracalc.policy import PolicyClient
from infracalc.proxy import credentials as proxy_credentials
from infracalc.proxy import forwarded, sockets
from infracalc.proxy.decision_log import DecisionLog
from infracalc.proxy.decisions import DecisionSource, EgressDecision, policy_input
from infracalc.proxy.events import MAX_PATH, MAX_REASON, EgressEvent, EventReporter, clip, now_text
from infracalc.proxy.hosts_file import hosts_resolver
from infracalc.proxy.metrics import ProxyMetrics
from infracalc.proxy.relay import Relay
from infracalc.proxy.revisions import RevisionWatcher
from infracalc.proxy.settings import ProxySettings
from infracalc.proxy.tunnels import Tunnel, TunnelLimitReached, TunnelRegistry
from infracalc.proxy.wire import (
    CONNECTION_ESTABLISHED,
    ProxyError,
    ProxyRequest,
    RequestKind,
    interpret,
    origin_request,
    read_head,
    response,
)

logger = logging.getLogger("infracalc.egress")

#: Connections accepted at most per call of the listener's callback, before other work gets a turn.
ACCEPT_BATCH = 64
#: Seconds without accepting after a failed accept (out of file descriptors, say): others go on.
ACCEPT_PAUSE = 0.05


class _Refusal(Exception):
    """Stop handling a connection and answer ``status`` with ``reason``; ``label`` goes to the metrics."""

    def __init__(self, status: int, label: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.label = label
        self.reason = reason


class EgressProxy:
    """One proxy server. ``async with EgressProxy(...)`` starts it; :attr:`port` is where it listens."""

    def __init__(
        self,
        settings: ProxySettings,
        *,
        policy: PolicyClient,
        reporter: EventReporter,
        metrics: ProxyMetrics | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.reporter = reporter
        self.metrics = metrics or ProxyMetrics()
        if resolver is None and settings.test_hosts is not None:
            resolver = hosts_resolver(settings.test_hosts)
        self.resolver = resolver
        self.decisions = DecisionSource(policy, cache_seconds=settings.decision_cache_seconds)
        self.tunnels = TunnelRegistry(settings.max_tunnels_per_bubble)
        self.decision_log = DecisionLog(logger)
        self.watcher = RevisionWatcher(
            policy,
            self.decisions,
            self.tunnels,
            on_cut=self._cut,
            poll_seconds=settings.revision_poll_seconds,
        )
        self._listener: socket.socket | None = None
        #: Where the local hub's forwarders hand connections over (INFRACALC_EGRESS_FORWARDED_SOCKET), if set.
        self._forwarded: socket.socket | None = None
        self._accept_pauses: set[asyncio.TimerHandle] = set()
        self._background: list[asyncio.Task[Any]] = []
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port the proxy listens on (useful when configured with port 0)."""
        if self._listener is None:
            raise RuntimeError("the proxy is not started")
        return int(self._listener.getsockname()[1])

    async def __aenter__(self) -> EgressProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen, and start the accept loop, the revision watcher and the event reporter."""
        family, kind, proto, _, address = socket.getaddrinfo(
            self.settings.host, self.settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(1024)
        listener.setblocking(False)
        self._listener = listener
        if self.settings.forwarded_socket is not None:
            self._forwarded = forwarded.listen(self.settings.forwarded_socket)
        await self.watcher.poll_once()  # the baseline, so that the first change is seen as one
        asyncio.get_running_loop().add_reader(listener.fileno(), self._accept_ready)
        if self._forwarded is not None:
            asyncio.get_running_loop().add_reader(self._forwarded.fileno(), self._accept_forwarded)
        self._background = [
            asyncio.create_task(self.watcher.run(), name="egress-revisions"),
            asyncio.create_task(self.reporter.run(), name="egress-events"),
        ]
        logger.info("egress proxy listening on %s:%d", self.settings.host, self.port)

    async def close(self) -> None:
        """Stop accepting, cut every open connection, deliver the remaining events."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        for pause in self._accept_pauses:
            pause.cancel()
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
        if self._forwarded is not None:
            asyncio.get_running_loop().remove_reader(self._forwarded.fileno())
            self._forwarded.close()
        for tunnel in self.tunnels.all():
            tunnel.cut("the proxy is stopping")
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)
        with contextlib.suppress(Exception):
            await self.reporter.flush()
        self.decision_log.flush()

    def _accept_ready(self) -> None:
        """The listener's reader callback (registered once): accept waiting connections, ``ACCEPT_BATCH`` at most."""
        if self._listener is not None:
            self._accept(self._listener, self._accept_ready, forwarded=False)

    def _accept_forwarded(self) -> None:
        """The forwarded socket's reader callback: each connection names its source in a PROXY line first."""
        if self._forwarded is not None:
            self._accept(self._forwarded, self._accept_forwarded, forwarded=True)

    def _accept(self, listener: socket.socket, callback: Callable[[], None], *, forwarded: bool) -> None:
        """Accept ``ACCEPT_BATCH`` connections at most; on an error, stop listening for ``ACCEPT_PAUSE`` seconds."""
        loop = asyncio.get_running_loop()
        for _ in range(ACCEPT_BATCH):
            try:
                client, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # too many open files, for instance: pause, then keep serving
                logger.error("accept failed: %s", error)  # noqa: TRY400 - expected, no traceback needed
                fd = listener.fileno()
                loop.remove_reader(fd)
                # Two listeners may pause at once; the pauses that are over are forgotten.
                self._accept_pauses = {pause for pause in self._accept_pauses if pause.when() > loop.time()}
                self._accept_pauses.add(loop.call_later(ACCEPT_PAUSE, loop.add_reader, fd, callback))
                return
            client.setblocking(False)
            if not forwarded:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A forwarded connection's source is in its PROXY line; the socket's own peer is the forwarder.
            task = loop.create_task(self._serve(client, None if forwarded else peer[0]))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve(self, client: socket.socket, peer: str | None) -> None:
        """Handle one connection from a bubble, from its first byte to its close (``peer``: None when forwarded)."""
        try:
            await self._handle(client, peer)
        except _Refusal as refusal:
            await self._answer(client, refusal.status, refusal.reason)
        except Exception:
            logger.exception("unexpected error while handling a connection")
            await self._answer(client, 502, "the proxy failed to handle this request")
        finally:
            with contextlib.suppress(OSError):
                client.close()

    async def _answer(self, client: socket.socket, status: int, reason: str) -> None:
        headers = (proxy_credentials.CHALLENGE,) if status == 407 else ()  # noqa: PLR2004
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(2):
                await sockets.send_all(client, response(status, reason, headers=headers))

    async def _handle(self, client: socket.socket, peer: str | None) -> None:
        settings = self.settings
        try:
            if peer is None:
                source = await forwarded.read_source(client, timeout=settings.header_timeout)
            else:
                source = source_address(peer)
            head = await read_head(client, limit=settings.max_header_bytes, timeout=settings.header_timeout)
            request = interpret(head)
            credentials = proxy_credentials.from_head(head)
        except ProxyError as error:
            self.metrics.labelled(self.metrics.refusals, error.label).inc()
            logger.info("refused before any decision: %s (%s)", error.label, error.reason)
            raise _Refusal(error.status, error.label, error.reason) from None
        if not self.reporter.accepting():
            self.metrics.labelled(self.metrics.refusals, "events_undelivered").inc()
            logger.warning("refused: decisions cannot be delivered to the service (%d pending)", self.reporter.pending)
            raise _Refusal(503, "events_undelivered", "egress decisions cannot be recorded right now: denied")
        payload = policy_input(credentials, request, source)
        started = time.perf_counter()
        decision = await self.decisions.decide(payload)
        self.metrics.decision_seconds.observe(time.perf_counter() - started)
        if not decision.allow:
            self._decided(credentials.bubble_id, request, decision)
            raise _Refusal(407 if not decision.authenticated else 403, decision.label, decision.reason)
        assert decision.project is not None  # noqa: S101 - from_result guarantees it for an allow
        tunnel = Tunnel(
            bubble_id=credentials.bubble_id,
            project=decision.project,
            kind=request.kind,
            destination=request.destination,
            payload=payload,
            rule_id=decision.rule_id,
            expires_at_ns=decision.expires_at_ns,
        )
        try:
            self.tunnels.add(tunnel)
        except TunnelLimitReached as error:
            self._decided(credentials.bubble_id, request, decision, refused=("tunnel_limit", str(error)))
            raise _Refusal(429, "tunnel_limit", str(error)) from None
        try:
            await self._connect_and_relay(client, request, decision, tunnel)
        finally:
            self.tunnels.remove(tunnel)
            tunnel.end()
            self.metrics.open_tunnels.set(len(self.tunnels))

    async def _connect_and_relay(
        self, client: socket.socket, request: ProxyRequest, decision: EgressDecision, tunnel: Tunnel
    ) -> None:
        bubble_id = tunnel.bubble_id
        try:
            address = str(await self._address(request))
            upstream = await self._dial(address, request.destination.port)
        except _Refusal as refusal:
            self._decided(bubble_id, request, decision, refused=(refusal.label, refusal.reason))
            raise
        if tunnel.cut_reason is not None:  # revoked while dialling
            upstream.close()
            self._decided(bubble_id, request, decision, refused=("cut", tunnel.cut_reason))
            raise _Refusal(403, "cut", tunnel.cut_reason)
        self._decided(bubble_id, request, decision, address=address)
        self.metrics.open_tunnels.set(len(self.tunnels))
        head = request.head
        if request.kind is RequestKind.CONNECT:
            first, limit = head.rest, None
            try:
                await sockets.send_all(client, CONNECTION_ESTABLISHED)
            except OSError:
                upstream.close()
                return
        else:
            body = head.rest[: request.content_length]
            first, limit = origin_request(request) + body, request.content_length - len(body)
        relay = Relay(client, upstream, idle_timeout=self.settings.idle_timeout, upstream_limit=limit)
        tunnel.relay = relay
        if tunnel.cut_reason is not None:
            relay.cut(tunnel.cut_reason)
        self.watcher.schedule_expiry(tunnel)
        ended_by = await relay.run(first)
        self._closed(tunnel, relay, ended_by)

    async def _address(self, request: ProxyRequest) -> IPAddress:
        """The one address to dial for ``request``, checked (resolved once for a name)."""
        destination = request.destination
        policy = self.settings.addresses
        try:
            if destination.ip_literal:
                addresses: list[IPAddress] = [ip_address(destination.host)]
            else:
                addresses = await resolve_once(
                    destination.host,
                    destination.port,
                    resolver=self.resolver,
                    timeout=self.settings.dns_timeout,
                )
            return choose(addresses, policy)
        except AddressRefused as error:
            raise _Refusal(
                403, f"address_{error.verdict.address_class.value}", f"{destination.host}: {error}"
            ) from None
        except ResolutionFailed as error:
            raise _Refusal(502, "resolution_failed", str(error)) from None

    async def _dial(self, address: str, port: int) -> socket.socket:
        """A connection to ``address`` (checked, as text) and ``port``."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        upstream = socket.socket(family, socket.SOCK_STREAM)
        upstream.setblocking(False)
        try:
            await sockets.connect(upstream, (address, port), timeout=self.settings.connect_timeout)
        except TimeoutError:
            upstream.close()
            raise _Refusal(
                504,
                "connect_timeout",
                f"{address} port {port} did not answer within {self.settings.connect_timeout:g} s",
            ) from None
        except OSError as error:
            upstream.close()
            raise _Refusal(
                502, "connect_failed", f"cannot connect to {address} port {port}: {error.strerror}"
            ) from None
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return upstream

    def _cut(self, tunnel: Tunnel, reason: str) -> None:
        self.metrics.cut.inc()
        logger.info(
            "cut %s connection of bubble %s to %s: %s", tunnel.kind.value, tunnel.bubble_id, tunnel.destination, reason
        )
        tunnel.cut(reason)

    def _decided(
        self,
        bubble_id: str,
        request: ProxyRequest,
        decision: EgressDecision,
        *,
        address: str | None = None,
        refused: tuple[str, str] | None = None,
    ) -> None:
        """Log, count and report one decision (``refused``: label and reason of a refusal after the policy allowed)."""
        allow = decision.allow and refused is None
        label, reason = refused if refused is not None else (decision.label, decision.reason)
        self.metrics.labelled(self.metrics.decisions, "allow" if allow else "deny", label).inc()
        # The line is written with others a little later (see DecisionLog), so that the answer to
        # the bubble and the tunnel's first bytes need not wait for it; the audit event below is
        # queued at once, before any answer.
        self.decision_log.add(
            "%s bubble=%s project=%s %s %s%s rule=%s address=%s: %s",
            "allow" if allow else "deny",
            bubble_id,
            decision.project,
            request.method,
            request.destination,
            request.path,
            decision.rule_id,
            address,
            reason,
        )
        self.reporter.submit(
            EgressEvent(
                kind="decision",
                at=now_text(),
                bubble=bubble_id,
                project=decision.project,
                scheme=request.kind.value,
                host=request.destination.host,
                port=request.destination.port,
                method=clip(request.method, MAX_REASON) if request.kind is RequestKind.HTTP else None,
                path=clip(request.path, MAX_PATH) if request.kind is RequestKind.HTTP else None,
                allow=allow,
                reason=clip(reason, MAX_REASON) or "",
                rule_id=decision.rule_id if allow else None,
                address=address,
            )
        )
        self.metrics.events_pending.set(self.reporter.pending)

    def _closed(self, tunnel: Tunnel, relay: Relay, ended_by: str) -> None:
        seconds = time.monotonic() - tunnel.opened_at
        self.metrics.labelled(self.metrics.bytes, "upstream").inc(relay.counters.upstream)
        self.metrics.labelled(self.metrics.bytes, "downstream").inc(relay.counters.downstream)
        label = ended_by if ended_by in {"closed", "idle", "reset"} else "cut"
        self.metrics.labelled(self.metrics.tunnel_seconds, label).observe(seconds)
        self.reporter.submit(
            EgressEvent(
                kind="tunnel_closed",
                at=now_text(),
                bubble=tunnel.bubble_id,
                project=tunnel.project,
                scheme=tunnel.kind.value,
                host=tunnel.destination.host,
                port=tunnel.destination.port,
                allow=True,
                reason=clip(ended_by, MAX_REASON) or "",
                rule_id=tunnel.rule_id,
                bytes_up=relay.counters.upstream,
                bytes_down=relay.counters.downstream,
                seconds=round(seconds, 6),
            )
        )


def describe(settings: ProxySettings) -> Mapping[str, object]:
    """The settings worth a line in the log at start (never the secret)."""
    return {
        "listen": f"{settings.host}:{settings.port}",
        "metrics": f"{settings.metrics_host}:{settings.metrics_port}",
        "opa": settings.opa.url,
        "service": settings.service_url,
        "max_tunnels_per_bubble": settings.max_tunnels_per_bubble,
        "idle_timeout": settings.idle_timeout,
        "decision_cache_seconds": settings.decision_cache_seconds,
        "test_allow_ranges": [str(network) for network in settings.addresses.allow_ranges],
        "test_hosts": str(settings.test_hosts) if settings.test_hosts else None,
        "forwarded_socket": str(settings.forwarded_socket) if settings.forwarded_socket else None,
    }
