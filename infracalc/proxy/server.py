"""The egress proxy: the only way out of a bubble, and the place where its egress is decided.

For each connection from a bubble::

    read the request head (limits, timeout)   → 400 / 408 / 411 / 431
    read the bubble's credentials             → 407
    the service can record decisions?         → 503 (fail closed: nothing goes unrecorded)
    ask OPA infracalc.egress.connection       → 407 (unknown bubble) / 403 (with the reason)
    count it against the bubble's cap         → 429
    resolve once, check every address         → 403 (private, loopback, metadata...) / 502
    connect to the address checked            → 502 / 504 (10 s)
    relay (CONNECT through a tunnel rule: "200" then bytes; plain HTTP: the request in origin
      form, then the answer; CONNECT through an inspect rule: "200", then each request inside is
      decided and relayed by :mod:`infracalc.proxy.inspection`)

A plain-HTTP request, and each request inside an inspected CONNECT, is decided with its sizes and
the day's count of its rule's budget (:mod:`infracalc.proxy.budgets`): 413 for a body over the
rule's cap, 429 once the budget is spent; an answer over the rule's cap is not relayed (502).

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
from infracalc.proxy.answers import AnswerFraming
from infracalc.proxy.authority import AuthorityFiles, EgressAuthority
from infracalc.proxy.budgets import UploadBudgets
from infracalc.proxy.credentials import BubbleCredentials
from infracalc.proxy.decision_log import DecisionLog
from infracalc.proxy.decisions import DecisionSource, EgressDecision, policy_input
from infracalc.proxy.dns import dns_resolver
from infracalc.proxy.events import MAX_PATH, MAX_REASON, EgressEvent, EventReporter, clip, now_text, recorded_path
from infracalc.proxy.hosts_file import hosts_resolver
from infracalc.proxy.inspection import Exchange, InspectedSession, Inspector, decide_within_budget, upstream_context
from infracalc.proxy.limits import BucketsByKey, CountsByKey, TokenBucket, retry_after
from infracalc.proxy.metrics import ProxyMetrics
from infracalc.proxy.redaction import redact
from infracalc.proxy.refusals import RefusalCounter
from infracalc.proxy.relay import Relay
from infracalc.proxy.revisions import RevisionWatcher
from infracalc.proxy.settings import ProxySettings
from infracalc.proxy.tunnels import Carrier, Tunnel, TunnelLimitReached, TunnelRegistry
from infracalc.proxy.wire import (
    CONNECTION_ESTABLISHED,
    Destination,
    ProxyError,
    ProxyRequest,
    RequestHead,
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


#: What the policy is asked about when only the bubble's credentials matter (a reserved name, RFC 6761).
_IDENTITY_ONLY = ProxyRequest(
    RequestKind.CONNECT,
    Destination("invalid", 443),
    "CONNECT",
    "",
    RequestHead("CONNECT", "invalid:443", "HTTP/1.1", ()),
)
#: Decisions that say nothing of the credentials (the policy could not be asked, or answered badly).
_UNVERIFIED = frozenset({"policy_unavailable", "policy_malformed"})
#: The source counted for a forwarded connection refused before its PROXY line names one.
FORWARDER = "forwarder"


class _Refusal(Exception):
    """Stop handling a connection and answer ``status`` with ``reason``; ``label`` goes to the metrics."""

    def __init__(self, status: int, label: str, reason: str, *, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.label = label
        self.reason = reason
        self.retry_after = retry_after


class _Connection:
    """What the proxy keeps of a connection while it is handled: its source, and whether it authenticated."""

    __slots__ = ("authenticated", "source")

    def __init__(self, source: str | None) -> None:
        #: ``None`` until a forwarded connection's PROXY line is read (and counted under its source's limit).
        self.source = source
        self.authenticated = False


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
        if resolver is None and settings.resolver is not None:
            resolver = dns_resolver(*settings.resolver, timeout=settings.dns_timeout)
        self.resolver = resolver
        self.decisions = DecisionSource(policy, cache_seconds=settings.decision_cache_seconds)
        self.budgets = UploadBudgets()
        self.inspector: Inspector | None = None
        if settings.ca_dir is not None:
            self.inspector = Inspector(
                authority=EgressAuthority.load(AuthorityFiles.within(settings.ca_dir)),
                upstream_context=upstream_context(settings.test_upstream_ca),
                decide=self.decisions.decide,
                budgets=self.budgets,
                header_timeout=settings.header_timeout,
                idle_timeout=settings.idle_timeout,
                max_header_bytes=settings.max_header_bytes,
            )
        self.tunnels = TunnelRegistry(settings.max_tunnels_per_bubble)
        self.connection_rate = TokenBucket(settings.connection_rate, settings.connection_burst)
        self.bubble_rates = BucketsByKey(settings.bubble_connection_rate, settings.bubble_connection_burst)
        self.unauthenticated = CountsByKey()
        self._open = 0
        self.metrics.accepted.set_function(lambda: self._open)
        self.metrics.unauthenticated.set_function(lambda: self.unauthenticated.total)
        self.metrics.rate_buckets.set_function(lambda: len(self.bubble_rates))
        self.decision_log = DecisionLog(logger)
        self.refusals = RefusalCounter(reporter, interval=settings.refusal_audit_seconds)
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
            asyncio.create_task(self.refusals.run(), name="egress-refusals"),
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
        self.refusals.flush()
        with contextlib.suppress(Exception):
            await self.reporter.flush()
        self.decision_log.flush()
        if self.inspector is not None:
            self.inspector.authority.close()

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
            # A forwarded connection's source is in its PROXY line, read first in _handle (the socket's own
            # peer is the forwarder): only the global limits apply now, the per-source one once it is known.
            connection = _Connection(None if forwarded else source_address(str(peer[0])))
            refusal = self._admit(connection.source)
            if refusal is not None:
                self._refuse_at_once(client, connection.source or FORWARDER, refusal)
                continue
            if not forwarded:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(self._serve(client, connection))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    def _admit(self, source: str | None) -> _Refusal | None:
        """Count a new connection from ``source`` (``None``: not known yet) under the limits; the refusal if over."""
        settings = self.settings
        if self._open >= settings.max_connections:
            return _Refusal(
                503,
                "connection_limit",
                f"the proxy holds {self._open} connections, its limit: try again later",
                retry_after="1",
            )
        wait = self.connection_rate.take()
        if wait:
            return _Refusal(
                429,
                "connection_rate",
                f"more than {settings.connection_rate:g} new connections a second reach the proxy: try again later",
                retry_after=retry_after(wait),
            )
        if source is not None and (refusal := self._admit_source(source)) is not None:
            return refusal
        self._open += 1
        return None

    def _admit_source(self, source: str) -> _Refusal | None:
        """Count a connection that has not authenticated yet from ``source``; the refusal when over its limit."""
        limit = self.settings.max_unauthenticated_per_source
        if self.unauthenticated.add(source) > limit:
            self.unauthenticated.remove(source)
            return _Refusal(
                429,
                "unauthenticated_limit",
                f"{source} already holds {limit} connections that have not authenticated yet",
                retry_after="1",
            )
        return None

    def _refuse_at_once(self, client: socket.socket, source: str, refusal: _Refusal) -> None:
        """Answer a connection refused by a global limit without reading it (no task: it must cost little)."""
        self.metrics.labelled(self.metrics.refusals, refusal.label).inc()
        self.refusals.count(refusal.label, refusal.status, refusal.reason, source=source)
        with contextlib.suppress(OSError):
            client.send(
                response(refusal.status, refusal.reason, headers=(("Retry-After", refusal.retry_after or "1"),))
            )
            client.shutdown(socket.SHUT_WR)
        client.close()

    async def _serve(self, client: socket.socket, connection: _Connection) -> None:
        """Handle one connection from a bubble, from its first byte to its close."""
        try:
            await self._handle(client, connection)
        except _Refusal as refusal:
            await self._answer(client, refusal.status, refusal.reason, refusal.retry_after)
        except Exception:
            logger.exception("unexpected error while handling a connection")
            reason = "the proxy failed to handle this request"
            self.metrics.labelled(self.metrics.refusals, "internal_error").inc()
            self.refusals.count("internal_error", 502, reason, source=connection.source or FORWARDER)
            await self._answer(client, 502, reason)
        finally:
            with contextlib.suppress(OSError):
                client.close()
            self._open -= 1
            if not connection.authenticated and connection.source is not None:
                self.unauthenticated.remove(connection.source)

    async def _answer(self, client: socket.socket, status: int, reason: str, retry: str | None = None) -> None:
        headers: tuple[tuple[str, str], ...] = (proxy_credentials.CHALLENGE,) if status == 407 else ()  # noqa: PLR2004
        if retry is not None:
            headers = (*headers, ("Retry-After", retry))
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(2):
                await sockets.send_all(client, response(status, reason, headers=headers))

    async def _handle(self, client: socket.socket, connection: _Connection) -> None:
        settings, source = self.settings, connection.source or await self._forwarded_source(client, connection)
        try:
            head = await read_head(client, limit=settings.max_header_bytes, timeout=settings.header_timeout)
        except ProxyError as error:
            raise self._refused_early(error, source) from None
        try:
            credentials: BubbleCredentials | None = proxy_credentials.from_head(head)
        except ProxyError as error:
            credentials, unreadable = None, error
        try:
            request = interpret(head)
        except ProxyError as error:
            bubble = None if credentials is None else await self._authenticated(credentials, source)
            raise self._refused_early(error, source, bubble) from None
        if credentials is None:
            raise self._refused_early(unreadable, source)
        if not self.reporter.accepting():
            logger.warning("refused: decisions cannot be delivered to the service (%d pending)", self.reporter.pending)
            undelivered = ProxyError(503, "events_undelivered", "egress decisions cannot be recorded right now: denied")
            raise self._refused_early(undelivered, source, await self._authenticated(credentials, source), count=True)
        payload, decision = await self._allowed(credentials, request, connection, source)
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
            await self._connect_and_relay(client, request, decision, tunnel, credentials)
        finally:
            self.tunnels.remove(tunnel)
            tunnel.end()
            self.metrics.open_tunnels.set(len(self.tunnels))

    async def _allowed(
        self, credentials: BubbleCredentials, request: ProxyRequest, connection: _Connection, source: str
    ) -> tuple[dict[str, Any], EgressDecision]:
        """The policy input and decision that allow ``request`` (from ``source``), counted against the bubble's rate.

        Raises:
            _Refusal: 407 (credentials refused), 429 (too fast), the policy's status (403, 413, 429),
                or a mode this proxy cannot carry (:meth:`_check_mode`); each one audited.
        """
        started = time.perf_counter()
        if request.kind is RequestKind.HTTP:
            payload, decision = await self._decide_request(credentials, request, source)
        else:
            payload = policy_input(credentials, request, source)
            decision = await self.decisions.decide(payload)
        self.metrics.decision_seconds.observe(time.perf_counter() - started)
        if not decision.authenticated:
            self._unauthenticated(credentials.bubble_id, source, request, decision)
            raise _Refusal(407, decision.label, decision.reason)
        if decision.label not in _UNVERIFIED:
            connection.authenticated = True
            self.unauthenticated.remove(source)
            wait = self.bubble_rates.take(credentials.bubble_id)
            if wait:
                raise self._too_fast(credentials.bubble_id, decision, wait)
        if not decision.allow:
            self._decided(credentials.bubble_id, request, decision)
            raise _Refusal(decision.status or 403, decision.label, decision.reason)
        self._check_mode(credentials.bubble_id, request, decision)
        return payload, decision

    async def _decide_request(
        self, credentials: BubbleCredentials, request: ProxyRequest, source: str
    ) -> tuple[dict[str, Any], EgressDecision]:
        """A plain-HTTP request's decision, with its sizes and its user's counts (charged when allowed)."""
        sent = len(origin_request(request)) + request.content_length
        identity = await self.decisions.decide(policy_input(credentials, _IDENTITY_ONLY, source))
        if identity.project is None or identity.label in _UNVERIFIED:  # the policy says why, asked as usual
            payload = policy_input(credentials, request, source, request_bytes=sent)
            return payload, await self.decisions.decide(payload)
        owner = (identity.project, identity.username or credentials.bubble_id)
        decision = await decide_within_budget(
            self.decisions.decide, self.budgets, credentials, request, owner=owner, sent=sent, source=source
        )
        return policy_input(credentials, request, source, request_bytes=sent), decision

    def _check_mode(self, bubble_id: str, request: ProxyRequest, decision: EgressDecision) -> None:
        """Refuse a CONNECT the platform cannot carry as its rule says: a forbidden tunnel, inspection without a CA.

        Raises:
            _Refusal: 403 (tunnels forbidden) or 502 (no egress CA), audited as a decision.
        """
        if request.kind is not RequestKind.CONNECT:
            return
        refusal = None
        if decision.mode == "tunnel" and not self.settings.tunnels_allowed:
            refusal = _Refusal(
                403,
                "tunnel_forbidden",
                f"rule {decision.rule_id} is a tunnel (opaque) rule, which this platform forbids "
                "(INFRACALC_EGRESS_TUNNEL_RULES=forbid): ask for an inspect rule",
            )
        elif decision.mode == "inspect" and self.inspector is None:
            refusal = _Refusal(
                502,
                "no_egress_ca",
                f"rule {decision.rule_id} is an inspect rule, but this proxy has no egress CA "
                "(INFRACALC_EGRESS_CA_DIR): denied",
            )
        if refusal is not None:
            self._decided(bubble_id, request, decision, refused=(refusal.label, refusal.reason))
            raise refusal

    async def _connect_and_relay(
        self,
        client: socket.socket,
        request: ProxyRequest,
        decision: EgressDecision,
        tunnel: Tunnel,
        credentials: BubbleCredentials,
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
        if request.kind is RequestKind.CONNECT and decision.mode == "inspect":
            await self._inspect(
                client,
                upstream,
                address=address,
                request=request,
                decision=decision,
                tunnel=tunnel,
                credentials=credentials,
            )
            return
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
        answer = None if request.kind is RequestKind.CONNECT else AnswerFraming(request.method)
        relay = Relay(
            client,
            upstream,
            idle_timeout=self.settings.idle_timeout,
            upstream_limit=limit,
            answer=answer,
            answer_cap=decision.max_response_bytes,
        )
        tunnel.relay = relay
        if tunnel.cut_reason is not None:
            relay.cut(tunnel.cut_reason)
        self.watcher.schedule_expiry(tunnel)
        ended_by = await relay.run(first)
        self._closed(tunnel, relay, ended_by, status=None if answer is None else answer.status)

    async def _inspect(
        self,
        client: socket.socket,
        upstream: socket.socket,
        *,
        address: str,
        request: ProxyRequest,
        decision: EgressDecision,
        tunnel: Tunnel,
        credentials: BubbleCredentials,
    ) -> None:
        """Serve a CONNECT allowed by an inspect rule: each request inside is decided (:mod:`.inspection`)."""
        assert self.inspector is not None  # noqa: S101 - _check_mode refused the CONNECT otherwise
        port = request.destination.port

        async def redial() -> socket.socket:
            try:
                return await self._dial(address, port)
            except _Refusal as refusal:
                raise ConnectionError(refusal.reason) from None

        session = InspectedSession(
            self.inspector,
            client,
            upstream,
            destination=request.destination,
            credentials=credentials,
            source=str(tunnel.payload["source_ip"]),
            project=tunnel.project,
            username=decision.username or credentials.bubble_id,
            received=request.head.rest,
            redial=redial,
            report=lambda exchange: self._exchanged(tunnel, exchange),
        )
        try:
            await sockets.send_all(client, CONNECTION_ESTABLISHED)
        except OSError:
            upstream.close()
            return
        tunnel.relay = session
        if tunnel.cut_reason is not None:
            session.cut(tunnel.cut_reason)
        self.watcher.schedule_expiry(tunnel)
        ended_by = await session.run()
        self._closed(tunnel, session, ended_by)

    def _exchanged(self, tunnel: Tunnel, exchange: Exchange) -> None:
        """Log, count and report one request of an inspected connection (never its body or its query)."""
        verdict = "allow" if exchange.allow else "deny"
        path = recorded_path(exchange.path)
        self.metrics.labelled(self.metrics.decisions, verdict, exchange.label).inc()
        self.decision_log.add(
            "%s bubble=%s project=%s %s https://%s%s rule=%s status=%s up=%d down=%d: %s",
            verdict,
            tunnel.bubble_id,
            tunnel.project,
            exchange.method,
            tunnel.destination,
            path,
            exchange.rule_id,
            exchange.status,
            exchange.bytes_up,
            exchange.bytes_down,
            exchange.reason,
        )
        self.reporter.submit(
            EgressEvent(
                kind="decision",
                at=now_text(),
                bubble=tunnel.bubble_id,
                project=tunnel.project,
                scheme="https",
                host=redact(tunnel.destination.host),
                port=tunnel.destination.port,
                method=clip(redact(exchange.method), MAX_REASON) or None,
                path=clip(redact(path), MAX_PATH) or None,
                allow=exchange.allow,
                reason=clip(redact(exchange.reason), MAX_REASON) or "",
                label=None if exchange.allow else exchange.label,
                status=exchange.status,
                rule_id=exchange.rule_id,
                bytes_up=exchange.bytes_up,
                bytes_down=exchange.bytes_down,
            )
        )

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
            return choose(addresses, policy, destination.port)
        except AddressRefused as error:
            verdict = error.verdict
            label = "address_denied" if verdict.operator_denied else f"address_{verdict.address_class.value}"
            raise _Refusal(403, label, f"{destination.host}: {error}") from None
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

    async def _forwarded_source(self, client: socket.socket, connection: _Connection) -> str:
        """Read a forwarded connection's PROXY line, count it under its source's limit; the source (then its own).

        Raises:
            _Refusal: the line is missing or malformed (counted as the forwarder's), or the source
                already holds its share of connections that have not authenticated.
        """
        try:
            source = await forwarded.read_source(client, timeout=self.settings.header_timeout)
        except ProxyError as error:
            raise self._refused_early(error, FORWARDER) from None
        refusal = self._admit_source(source)
        if refusal is not None:
            self.metrics.labelled(self.metrics.refusals, refusal.label).inc()
            self.refusals.count(refusal.label, refusal.status, refusal.reason, source=source)
            raise refusal
        connection.source = source
        return source

    async def _authenticated(self, credentials: BubbleCredentials, source: str) -> tuple[str, str] | None:
        """The bubble and its project when ``credentials`` are valid from ``source`` (the policy says so), or ``None``.

        For a refusal made before the policy: the policy is asked about a placeholder destination,
        so that the bubble is authenticated exactly as for a connection.
        """
        decision = await self.decisions.decide(policy_input(credentials, _IDENTITY_ONLY, source))
        if not decision.authenticated or decision.project is None or decision.label in _UNVERIFIED:
            return None
        return credentials.bubble_id, decision.project

    def _refused_early(
        self, error: ProxyError, source: str, bubble: tuple[str, str] | None = None, *, count: bool = False
    ) -> _Refusal:
        """Count, log and audit a refusal made before the policy; the refusal to raise.

        With valid credentials (``bubble``: its id and project) it is reported as that bubble's, one
        event each unless ``count``; without, it is counted by source address (:mod:`.refusals`).
        """
        self.metrics.labelled(self.metrics.refusals, error.label).inc()
        logger.info("refused before any decision from %s: %s (%s)", source, error.label, error.reason)
        if bubble is None:
            self.refusals.count(error.label, error.status, error.reason, source=source)
        elif count or not self.reporter.accepting():
            self.refusals.count(error.label, error.status, error.reason, bubble=bubble[0], project=bubble[1])
        else:
            self.reporter.submit(
                EgressEvent(
                    kind="refusal",
                    at=now_text(),
                    bubble=bubble[0],
                    source=source,
                    project=bubble[1],
                    allow=False,
                    label=error.label,
                    status=error.status,
                    reason=clip(redact(error.reason), MAX_REASON) or "",
                )
            )
        return _Refusal(error.status, error.label, error.reason)

    def _too_fast(self, bubble_id: str, decision: EgressDecision, wait: float) -> _Refusal:
        """Count and audit (counted as the bubble) a connection over its bubble's rate; the refusal."""
        reason = (
            f"bubble {bubble_id} opens more than {self.settings.bubble_connection_rate:g} connections a second: "
            "try again later"
        )
        self.metrics.labelled(self.metrics.refusals, "bubble_rate").inc()
        self.refusals.count("bubble_rate", 429, reason, bubble=bubble_id, project=decision.project)
        return _Refusal(429, "bubble_rate", reason, retry_after=retry_after(wait))

    def _unauthenticated(self, bubble_id: str, source: str, request: ProxyRequest, decision: EgressDecision) -> None:
        """Count, log and audit (counted by source address) a connection whose credentials the policy refused."""
        self.metrics.labelled(self.metrics.decisions, "deny", decision.label).inc()
        self.decision_log.add(
            "deny bubble=%s source=%s %s %s: %s",
            bubble_id,
            source,
            request.method,
            request.destination,
            decision.reason,
        )
        self.refusals.count(decision.label, 407, decision.reason, source=source)

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
        mode = f" ({decision.mode})" if allow and request.kind is RequestKind.CONNECT and decision.mode else ""
        self.decision_log.add(
            "%s bubble=%s project=%s %s %s%s%s rule=%s address=%s: %s",
            "allow" if allow else "deny",
            bubble_id,
            decision.project,
            request.method,
            request.destination,
            recorded_path(request.path),
            mode,
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
                host=redact(request.destination.host),
                port=request.destination.port,
                method=clip(redact(request.method), MAX_REASON) if request.kind is RequestKind.HTTP else None,
                path=clip(redact(recorded_path(request.path)), MAX_PATH) if request.kind is RequestKind.HTTP else None,
                allow=allow,
                reason=clip(redact(reason), MAX_REASON) or "",
                rule_id=decision.rule_id if allow else None,
                address=address,
                mode=decision.mode if allow and request.kind is RequestKind.CONNECT else None,
            )
        )
        self.metrics.events_pending.set(self.reporter.pending)

    def _closed(self, tunnel: Tunnel, relay: Carrier, ended_by: str, *, status: int | None = None) -> None:
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
                host=redact(tunnel.destination.host),
                port=tunnel.destination.port,
                allow=True,
                reason=clip(redact(ended_by), MAX_REASON) or "",
                rule_id=tunnel.rule_id,
                status=status,
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
        "deny": [str(entry) for entry in settings.addresses.deny],
        "max_connections": settings.max_connections,
        "connection_rate": f"{settings.connection_rate:g}/s (burst {settings.connection_burst})",
        "bubble_connection_rate": f"{settings.bubble_connection_rate:g}/s (burst {settings.bubble_connection_burst})",
        "max_unauthenticated_per_source": settings.max_unauthenticated_per_source,
        "test_hosts": str(settings.test_hosts) if settings.test_hosts else None,
        "resolver": "system" if settings.resolver is None else "{}:{}".format(*settings.resolver),
        "forwarded_socket": str(settings.forwarded_socket) if settings.forwarded_socket else None,
        "egress_ca": str(settings.ca_dir) if settings.ca_dir else None,
        "tunnel_rules": "allow" if settings.tunnels_allowed else "forbid",
        "test_upstream_ca": str(settings.test_upstream_ca) if settings.test_upstream_ca else None,
    }
