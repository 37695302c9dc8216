"""Request ids: every answer carries ``X-Request-ID``, and every log line written while serving it carries the same id.

An error answer says what the caller can act on and nothing of the service's insides (no internal address,
no upload id, no errno); the details go to the log, on a line that names the request. A person who reports
"request 3f9c... failed" thus points the operator at the lines that explain it.

:class:`RequestIdentity` wraps the application's ASGI handler, outside Litestar's routing and exception
handling, so that an unknown route, a refused method or an unexpected exception carries an id too. It writes
one line per answer (``infracalc.requests``): method, route (its template, so that a secret in a path, an
enrollment link's token, is never logged), status, duration and who called. The id is the service's own
(random, 16 hex digits): an ``X-Request-ID`` sent by the caller is not trusted, only logged beside it when
it is printable and short.

:class:`RequestIdFilter` adds the current id (``-`` outside a request) to every log record as ``request_id``.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from contextvars import ContextVar
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

#: The header carrying the id, in answers.
HEADER: Final = "X-Request-ID"
#: The id of the request being served (``-`` outside a request).
current_request_id: ContextVar[str] = ContextVar("infracalc_request_id", default="-")

_UPSTREAM_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PATH_SHOWN = 120
_HTTP_SERVER_ERROR = 500

logger = logging.getLogger("infracalc.requests")


def new_request_id() -> str:
    """A fresh request id: 16 random hex digits."""
    return secrets.token_hex(8)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (for the log format), never refusing one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.request_id`` to the id of the request being served."""
        record.request_id = current_request_id.get()
        return True


class RequestIdentity:
    """ASGI wrapper giving each HTTP request an id: in the context, in the answer's headers, in its log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``scope`` with an id of its own."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        status = 0
        header = (HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _log_answer(scope, status, time.perf_counter() - started)
            current_request_id.reset(token)


def _log_answer(scope: Scope, status: int, seconds: float) -> None:
    """One line per answer (a request that got none, the client gone, says status 0)."""
    template = scope.get("path_template")
    route = template if isinstance(template, str) else repr(scope.get("path", ""))[:_PATH_SHOWN] + " (no route)"
    user: Any = scope.get("user")
    caller = getattr(user, "actor", None) or "-"
    upstream = ""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            upstream = f" upstream id {text}" if _UPSTREAM_ID.fullmatch(text) else " upstream id (unprintable)"
    level = logging.WARNING if status >= _HTTP_SERVER_ERROR or status == 0 else logging.INFO
    logger.log(
        level,
        "%s %s -> %s in %.1f ms by %s%s",
        scope.get("method", "?"),
        route,
        status or "no answer",
        seconds * 1000,
        caller,
        upstream,
    )


__all__ = ["HEADER", "RequestIdFilter", "RequestIdentity", "current_request_id", "new_request_id"]
