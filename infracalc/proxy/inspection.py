"""Inspected connections: a CONNECT allowed by an ``inspect`` rule, decided request by request.

The proxy answers the CONNECT itself and terminates the bubble's TLS with a certificate for the
host, minted by the platform's egress CA (:mod:`infracalc.proxy.authority`). Meanwhile it opens its
own TLS connection to the upstream (the address checked and dialled as for a tunnel), verified
against the system's trust store (and, in test mode only, one more CA file): a certificate that
does not verify is a 502 with the reason, never ignored. Then, for each HTTP/1.1 request the
bubble sends (:mod:`infracalc.proxy.inner`)::

    read and check the head                       → 400 / 408 / 411 / 431
    ask infracalc.egress (method, path, sizes,
      what was sent today under each rule)        → 403 / 413 (body over the cap) / 429 (budget spent)
    charge the request to the rule's budget
    send the head, then the body (the cap was checked on its announced length: the upstream sees
      nothing of a body over it), answering ``100 Continue`` itself
    relay the answer, following its framing       → 502 when it announces more than the rule's cap;
                                                     cut when it grows past it

A refused request ends the connection (its answer says ``Connection: close``): a body the policy
refused is never read into the next request. Upstream connections are kept alive between the
bubble's requests while both sides allow it, and dialled again (same checked address) otherwise.

Every request is reported once over (method, host, path with its query hashed, status, bytes
each way, never a body) through the ``report`` callback; cutting the connection (a revocation, a
switch to CASD) ends it at once, whatever it is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infracalc.proxy.answers import AnswerFraming
from infracalc.proxy.authority import EgressAuthority
from infracalc.proxy.budgets import UploadBudgets
from infracalc.proxy.credentials import BubbleCredentials
from infracalc.proxy.decisions import EgressDecision, policy_input
from infracalc.proxy.inner import RequestReader, h2_refusal, interpret_inner
from infracalc.proxy.relay import Counters
from infracalc.proxy.tls import TlsConnection
from infracalc.proxy.wire import Destination, ProxyError, ProxyRequest, RequestHead, origin_request, response

#: Bytes relayed per step of an answer (decrypted, then encrypted again).
STEP = 256 * 1024
#: Headers never sent upstream from inside an inspected connection (besides the hop-by-hop ones):
#: the proxy answers ``Expect: 100-continue`` itself, once the request is allowed.
DROPPED = frozenset({"expect"})
#: Times a request is asked about again when another request of the same user charged a budget
#: while the policy was deciding it (the answer would have been given on a stale count).
RECOUNTS = 3
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request of an inspected connection, as it is recorded (never its body, never its query).

    Attributes:
        method: The request method.
        path: The path as requested (the reporter hashes its query).
        allow: The policy allowed it.
        status: The status the bubble got: the upstream's, or the proxy's refusal.
        reason: The policy's reason, or why the proxy stopped it.
        label: A short stable name of the outcome, for metrics.
        rule_id: The allowing rule.
        bytes_up: Bytes sent upstream (head and body).
        bytes_down: Bytes of the answer relayed to the bubble.
    """

    method: str
    path: str
    allow: bool
    status: int | None
    reason: str
    label: str
    rule_id: str | None
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(frozen=True, slots=True)
class Inspector:
    """What every inspected connection of a proxy shares."""

    authority: EgressAuthority
    #: Verifies upstreams: the system's trust store (plus the test CA in test mode).
    upstream_context: ssl.SSLContext
    #: Asks the policy (``infracalc.egress.connection``), maybe from the cache.
    decide: Callable[[dict[str, Any]], Awaitable[EgressDecision]]
    budgets: UploadBudgets
    header_timeout: float
    idle_timeout: float
    max_header_bytes: int


def upstream_context(extra_ca: Path | None = None) -> ssl.SSLContext:
    """How the proxy verifies upstreams: the system's trust store, host names checked, HTTP/1.1.

    ``extra_ca``: one more CA file trusted besides (the tests' lab CA; the settings allow it in
    test mode only).
    """
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    if extra_ca is not None:
        context.load_verify_locations(cafile=str(extra_ca))
    return context


async def decide_within_budget(
    decide: Callable[[dict[str, Any]], Awaitable[EgressDecision]],
    budgets: UploadBudgets,
    credentials: BubbleCredentials,
    request: ProxyRequest,
    *,
    owner: tuple[str, str],
    sent: int,
    source: str,
) -> EgressDecision:
    """The policy's answer for a request that sends ``sent`` bytes, charged to its rule's budget when allowed.

    ``owner`` is the bubble's project and user; ``source`` the address the connection came from. If
    another request of theirs was charged while the policy decided (the answer read a stale count),
    the question is asked again.
    """
    for _ in range(RECOUNTS):
        sent_today = budgets.sent_today(*owner)
        decision = await decide(policy_input(credentials, request, source, request_bytes=sent, sent_today=sent_today))
        if decision.rule_id is None:
            return decision
        if budgets.sent_today(*owner) == sent_today:
            budgets.charge(*owner, decision.rule_id, sent)
            return decision
    return EgressDecision.refused(
        "the day's budget changed while the request was decided, again and again: try again", "budget_race"
    )


class _Stop(Exception):
    """End the connection after answering the bubble ``status`` with ``reason`` (when it can still be answered)."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class InspectedSession:
    """One inspected connection, from the ``200`` to its close. :meth:`cut` ends it at once."""

    def __init__(
        self,
        inspector: Inspector,
        client: socket.socket,
        upstream: socket.socket,
        *,
        destination: Destination,
        credentials: BubbleCredentials,
        source: str,
        project: str,
        username: str,
        received: bytes,
        redial: Callable[[], Awaitable[socket.socket]],
        report: Callable[[Exchange], None],
    ) -> None:
        self.inspector = inspector
        self.client = client
        self.destination = destination
        self.credentials = credentials
        self.source = source
        self.project = project
        self.username = username
        self.redial = redial
        self.report = report
        self.counters = Counters()
        self.requests = 0
        self._received = received
        self._first_upstream: socket.socket | None = upstream
        self._upstream: TlsConnection | None = None
        self._upstream_opening: asyncio.Task[TlsConnection] | None = None
        self._cut_reason = ""
        self._task: asyncio.Task[str] | None = None

    def cut(self, reason: str) -> None:
        """End the connection now (a revoked rule, a project moved to CASD), keeping ``reason``."""
        if not self._cut_reason:
            self._cut_reason = reason
            if self._task is not None:
                self._task.cancel()

    async def run(self) -> str:
        """Serve the connection until it ends; return why (``closed``, ``idle``, the cut's reason, a failure)."""
        if self._cut_reason:
            self._close_first()
            return self._cut_reason
        self._task = asyncio.get_running_loop().create_task(self._serve())
        try:
            return await self._task
        except asyncio.CancelledError:
            if self._cut_reason and not _cancelling():
                return self._cut_reason
            raise
        finally:
            self._task = None

    async def _serve(self) -> str:
        inspector = self.inspector
        client = TlsConnection(
            self.client,
            inspector.authority.context_for(self.destination.host),
            server_side=True,
            received=self._received,
        )
        # The upstream's handshake runs while the bubble's does and its first request arrives.
        self._upstream_opening = asyncio.get_running_loop().create_task(self._open_upstream())
        try:
            try:
                async with asyncio.timeout(inspector.header_timeout):
                    await client.handshake()
            except (ssl.SSLError, OSError, TimeoutError) as error:
                return f"the bubble's TLS handshake failed (does it trust the platform's egress CA?): {error}"
            return await self._requests(client, RequestReader(client, max_head=inspector.max_header_bytes))
        finally:
            await self._close_upstream()
            await client.close()

    async def _requests(self, client: TlsConnection, reader: RequestReader) -> str:
        """Serve the bubble's requests one after the other; return why the connection ended."""
        while True:
            head = await self._next_head(client, reader)
            if isinstance(head, str):
                return head
            self.requests += 1
            try:
                request = interpret_inner(head, self.destination)
            except ProxyError as error:
                refused = Exchange(head.method, head.target, False, error.status, error.reason, error.label, None)
                await self._refuse(client, refused)
                return error.label
            try:
                ended = await self._exchange(client, reader, request)
            except _Stop as stop:
                if stop.status is not None:
                    with contextlib.suppress(OSError, ssl.SSLError):
                        await client.send(response(stop.status, stop.reason))
                return "stopped"
            if ended is not None:
                return ended

    async def _next_head(self, client: TlsConnection, reader: RequestReader) -> RequestHead | str:
        """The next request's head, or why the connection ends (answered and recorded when it must be)."""
        inspector = self.inspector
        timeout = inspector.header_timeout if self.requests == 0 else inspector.idle_timeout
        try:
            async with asyncio.timeout(timeout):
                head = await reader.head()
        except TimeoutError:
            if self.requests == 0:
                error = ProxyError(408, "header_timeout", "no request arrived in time")
                await self._refuse(client, Exchange("", "", False, error.status, error.reason, error.label, None))
            return "idle"
        except ProxyError as error:
            await self._refuse(client, Exchange("", "", False, error.status, error.reason, error.label, None))
            return error.label
        if head is None:
            return "closed"
        if isinstance(head, bytes):
            await client.send(h2_refusal())
            self._record(Exchange("PRI", "*", False, None, "HTTP/2 refused: HTTP/1.1 only", "http2_refused", None))
            return "http2_refused"
        return head

    async def _exchange(self, client: TlsConnection, reader: RequestReader, request: ProxyRequest) -> str | None:
        """Decide, forward and answer one request; why the connection ends after it, ``None`` when it goes on."""
        close = _wants_close(request)
        head = origin_request(request, close=close, drop=DROPPED)
        sent = len(head) + request.content_length
        inspector = self.inspector
        decision = await decide_within_budget(
            inspector.decide,
            inspector.budgets,
            self.credentials,
            request,
            owner=(self.project, self.username),
            sent=sent,
            source=self.source,
        )
        if not decision.allow:
            refused = Exchange(
                request.method, request.path, False, decision.status or 403, decision.reason, decision.label, None
            )
            await self._refuse(client, refused)
            return decision.reason
        upstream = await self._upstream_for(request, decision)
        bytes_down, status = 0, None
        try:
            await upstream.send(head)
            if request.content_length:
                if any("100-continue" in value.lower() for value in request.head.values("Expect")):
                    await client.send(_CONTINUE)
                await self._body(reader, upstream, request.content_length)
            self.counters.upstream += sent
            bytes_down, status, reusable = await self._answer(client, upstream, request, decision)
        except _Stop as stop:
            await self._upstream_done(reusable=False)
            rule = decision.rule_id
            self._record(Exchange(request.method, request.path, True, stop.status, stop.reason, "stopped", rule, sent))
            raise
        except (ssl.SSLError, OSError) as error:
            await self._upstream_done(reusable=False)
            reason = f"the exchange with {self.destination} failed: {error}"
            self._record(Exchange(request.method, request.path, True, status, reason, "reset", decision.rule_id, sent))
            raise _Stop(None, reason) from None
        except asyncio.CancelledError:  # cut: the request is recorded all the same
            reason = self._cut_reason or "the proxy is stopping"
            self._record(Exchange(request.method, request.path, True, status, reason, "cut", decision.rule_id, sent))
            raise
        await self._upstream_done(reusable=reusable and not close)
        rule = decision.rule_id
        self._record(
            Exchange(request.method, request.path, True, status, decision.reason, "allowed", rule, sent, bytes_down)
        )
        return None if reusable and not close else "closed"

    async def _body(self, reader: RequestReader, upstream: TlsConnection, length: int) -> None:
        remaining = length
        while remaining:
            async with asyncio.timeout(self.inspector.idle_timeout):
                part = await reader.body_part(min(remaining, STEP))
            if not part:
                raise _Stop(None, "the bubble closed the connection inside a request body")
            await upstream.send(part)
            remaining -= len(part)

    async def _answer(
        self, client: TlsConnection, upstream: TlsConnection, request: ProxyRequest, decision: EgressDecision
    ) -> tuple[int, int | None, bool]:
        """Relay the answer; its bytes, its status, and whether the upstream connection may serve the next request."""
        framing = AnswerFraming(request.method)
        cap = decision.max_response_bytes
        buffer = bytearray(STEP)
        view = memoryview(buffer)
        relayed = 0
        while not framing.complete:
            async with asyncio.timeout(self.inspector.idle_timeout):
                count = await upstream.read_into(view)
            if count == 0:
                if framing.status is None:
                    raise _Stop(502, f"{self.destination} closed the connection without an answer")
                return relayed, framing.status, False  # delimited by the close, or cut short
            used = framing.feed(view[:count])
            if framing.over(cap):
                size = framing.declared_length if framing.declared_length is not None else framing.body_bytes
                reason = f"the answer of {size} bytes or more is over rule {decision.rule_id}'s cap of {cap} bytes"
                raise _Stop(502 if relayed == 0 else None, reason)
            await client.send(view[:used])
            relayed += used
            self.counters.downstream += used
            if used < count:  # bytes after the answer's end: no request asked for them
                return relayed, framing.status, False
        return relayed, framing.status, not framing.closes

    async def _refuse(self, client: TlsConnection, refused: Exchange) -> None:
        """Answer a refused request with its status and reason, and record it (the connection then ends)."""
        self._record(refused)
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(2):
                await client.send(response(refused.status or 400, refused.reason))

    def _record(self, exchange: Exchange) -> None:
        self.report(exchange)

    async def _open_upstream(self) -> TlsConnection:
        """TLS to the upstream over the connection dialled for the CONNECT (or a new one), verified.

        Raises:
            _Stop: 502 with the reason (a certificate that does not verify, a handshake that fails).
        """
        sock = self._first_upstream
        self._first_upstream = None
        if sock is None:
            sock = await self.redial()
        upstream = TlsConnection(
            sock, self.inspector.upstream_context, server_side=False, server_hostname=self.destination.host
        )
        try:
            async with asyncio.timeout(self.inspector.header_timeout):
                await upstream.handshake()
        except ssl.SSLCertVerificationError as error:
            await upstream.close()
            raise _Stop(502, f"the certificate of {self.destination} is not valid: {error.verify_message}") from None
        except (ssl.SSLError, OSError, TimeoutError) as error:
            await upstream.close()
            raise _Stop(502, f"TLS with {self.destination} failed: {error or type(error).__name__}") from None
        return upstream

    async def _upstream_for(self, request: ProxyRequest, decision: EgressDecision) -> TlsConnection:
        """The upstream connection for the next request, opened (again) when needed."""
        if self._upstream is not None:
            return self._upstream
        if self._upstream_opening is None:
            self._upstream_opening = asyncio.get_running_loop().create_task(self._open_upstream())
        opening, self._upstream_opening = self._upstream_opening, None
        try:
            self._upstream = await opening
        except _Stop as stop:
            self._record(
                Exchange(request.method, request.path, True, stop.status, stop.reason, "upstream_tls", decision.rule_id)
            )
            raise
        return self._upstream

    async def _upstream_done(self, *, reusable: bool) -> None:
        if not reusable and self._upstream is not None:
            upstream, self._upstream = self._upstream, None
            await upstream.close()

    async def _close_upstream(self) -> None:
        if self._upstream_opening is not None:
            self._upstream_opening.cancel()
            with contextlib.suppress(BaseException):
                opened = await self._upstream_opening
                await opened.close()
            self._upstream_opening = None
        if self._upstream is not None:
            await self._upstream.close()
            self._upstream = None
        self._close_first()

    def _close_first(self) -> None:
        if self._first_upstream is not None:
            with contextlib.suppress(OSError):
                self._first_upstream.close()
            self._first_upstream = None


def _wants_close(request: ProxyRequest) -> bool:
    """The bubble asked to close after this request (``Connection: close``, or HTTP/1.0 without keep-alive)."""
    tokens = {token.strip().lower() for value in request.head.values("Connection") for token in value.split(",")}
    return "close" in tokens or (request.head.version == "HTTP/1.0" and "keep-alive" not in tokens)


def _cancelling() -> bool:
    """Whether the current task is itself being cancelled (the proxy is stopping), not just its session."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
