"""Error answers for browsers: an HTML page in the person's language, where the API answers JSON.

The service's exception handlers (:data:`infracalc.service.errors.EXCEPTION_HANDLERS`) answer JSON,
which is right for the API (``/api/v1``) and for its health and schema routes, and wrong for a person
who typed a wrong address or followed a stale link: :func:`error_pages` wraps each handler so that a
request for any other path from a browser (``Accept: text/html``) gets a page saying what happened
and where to go, with the same status; everything else gets the JSON answer as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.types import ExceptionHandlersMap

from infracalc.web.i18n import translator
from infracalc.web.pages import language, render

AnyRequest = Request[Any, Any, Any]

#: Paths whose answers are for programs whatever they accept: the API, health checks, the OpenAPI schema.
MACHINE_PREFIXES: Final = ("/api/", "/health", "/ready", "/schema")
#: The message of each status a browser may meet (``error.<key>`` in the catalogue).
_STATUS_KEYS: Final = {
    400: "bad_request",
    401: "signed_out",
    403: "forbidden",
    404: "not_found",
    405: "method",
    409: "conflict",
    413: "too_large",
    415: "bad_request",
    422: "bad_request",
    503: "unavailable",
}


def wants_page(request: AnyRequest) -> bool:
    """Whether the request is a browser's for a page: not a machine path, and HTML accepted."""
    path = request.url.path
    if path == "/api" or path.startswith(MACHINE_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: AnyRequest, error: Exception, status: int) -> Response[Any]:
    """The page a browser gets for ``error`` (answered ``status``): what happened, in its language, and a way back."""
    key = _STATUS_KEYS.get(status, "internal")
    if isinstance(error, PermissionDeniedException) and "CSRF" in str(error.detail):
        key = "csrf"
    elif isinstance(error, NotAuthorizedException):
        key = "signed_out"
    t = translator(language(request))
    return render(
        request,
        "message.html",
        {"heading": t(f"error.{key}.title"), "text": t(f"error.{key}.text"), "kind": "error", "home_link": True},
        status_code=status,
        # A refused post's address shows no page: the switch leads home.
        page=None if request.method in {"GET", "HEAD"} else "/",
    )


Handler = Callable[[AnyRequest, Any], Response[Any]]


def _for_browsers(handler: Handler) -> Handler:
    def handle(request: AnyRequest, error: Any) -> Response[Any]:
        # The API's handler decides the status (and logs an unexpected error), whoever asked.
        answer = handler(request, error)
        return error_page(request, error, answer.status_code or 500) if wants_page(request) else answer

    return handle


def error_pages(handlers: ExceptionHandlersMap) -> ExceptionHandlersMap:
    """``handlers``, each answering a browser's page request with an HTML page instead of JSON."""
    return {kind: _for_browsers(handler) for kind, handler in handlers.items()}


__all__ = ["MACHINE_PREFIXES", "error_page", "error_pages", "wants_page"]
