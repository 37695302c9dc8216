"""What the OpenAPI document says of errors: each operation lists every error it can answer, in the project's shape.

Litestar documents a route's success and, for a route with parameters, a 400 in its own error shape
(``status_code``, ``detail``), which the service never sends. :func:`document_errors` replaces that with
what the service answers (:class:`ErrorBody`, the shape of :func:`~infracalc.service.errors.error_body`),
for every status an operation can answer:

- every ``/api/v1`` operation: 401 (no or a refused credential), 403 (the policy or a guard refused),
  503 (OPA, Keycloak's keys, the database or the object store cannot be reached);
- with parameters or a body: 400 (malformed: a body that is not JSON, a parameter that cannot be read)
  and 422 (well-formed but not acceptable: a field, a too deep or duplicated JSON key);
- with path parameters, or a body naming a resource (:data:`NAMED_IN_BODY`): 404 (no such project, import...);
- with a body: 413 (larger than the route takes) and 415 (another content type);
- those of :data:`CONFLICTS`: 409 (the request contradicts the current state);
- ``/ready``: 503 with its readiness body.

It runs on the routes of a built application, before the document is first generated (Litestar builds
it on the first request for it). A property-based run against the running service
(``tests/integration/service/test_openapi_conformance.py``) holds the document to it.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from infracalc.service.health import Readiness

#: The prefix of the API's routes (see :mod:`infracalc.service.app`).
_API: Final = "/api/v1"


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error answer: ``{"status": 422, "error": "invalid_request", "message": "...", "field": "id"}``."""

    #: The HTTP status, again.
    status: int
    #: A stable code: ``bad_request``, ``unauthenticated``, ``forbidden``, ``not_found``, ``conflict``, ``too_large``,
    #: ``unsupported_media_type``, ``invalid_request``, ``unavailable``...
    error: str
    #: What went wrong and what the caller can do, in words (never an internal address).
    message: str
    #: The input field at fault, when one is (absent otherwise).
    field: str | msgspec.UnsetType = msgspec.UNSET


#: What each error status means for the caller, as the document says it.
DESCRIPTIONS: Final = {
    400: "The request could not be read: a body that is not JSON, a parameter of the wrong form.",
    401: "No credential, or one that is refused (expired, forged, of another realm, without two factors).",
    403: "The policy (or the route's caller check) refuses this caller; the message is the reason.",
    404: "No such resource (or the caller may not know that it exists).",
    409: "The request contradicts the current state (decided meanwhile, exists already, closed).",
    413: "The body is larger than the route accepts.",
    415: "The body is not of the type the route takes.",
    422: "Well-formed but not acceptable: the field named is wrong, or the JSON is nested too deep or repeats a key.",
    503: "A service this route needs cannot be reached (OPA, Keycloak, the database, the object store); try again.",
}

#: Operations that answer 409, as ``(method, path template)``.
CONFLICTS: Final = frozenset(
    {
        ("POST", "/api/v1/projects"),
        ("POST", "/api/v1/egress-requests/{rule_id}/approve"),
        ("POST", "/api/v1/egress-requests/{rule_id}/deny"),
        ("DELETE", "/api/v1/projects/{project_id}/egress-rules/{rule_id}"),
        ("POST", "/api/v1/sessions/{session_id}/events"),
        ("POST", "/api/v1/sessions/{session_id}/code"),
        ("PUT", "/api/v1/users/{username}/networks"),
        ("POST", "/api/v1/enrollments"),
        ("POST", "/api/v1/enrollments/{enrollment_id}/resend"),
        ("DELETE", "/api/v1/enrollments/{enrollment_id}"),
        ("GET", "/api/v1/projects/{project_id}/imports/{import_id}/content"),
        ("POST", "/api/v1/imports/{import_id}/approve"),
        ("POST", "/api/v1/imports/{import_id}/reject"),
        ("POST", "/api/v1/exports/{export_id}/versions"),
        ("POST", "/api/v1/exports/{export_id}/reviews"),
        ("GET", "/api/v1/exports/{export_id}/download"),
    }
)

#: Operations whose body names a resource that may not exist (a project, a user), as ``(method, path template)``.
NAMED_IN_BODY: Final = frozenset(
    {
        ("POST", "/api/v1/enrollments"),
        ("POST", "/api/v1/bubbles"),
    }
)

_TYPED_PARAMETER: Final = re.compile(r"\{(\w+):\w+\}")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def error_statuses(method: str, path: str, handler: HTTPRouteHandler) -> list[int]:
    """The error statuses the operation ``method path`` (served by ``handler``) can answer."""
    if not path.startswith(_API):
        return []
    statuses = {401, 403, 503}
    takes_body = method in _BODY_METHODS and (
        "data" in handler.parsed_fn_signature.parameters or bool(handler.opt.get("raw_body"))
    )
    if "{" in path or handler.parsed_fn_signature.parameters.keys() - {"self", "request", "context"} or takes_body:
        statuses |= {400, 422}
    if "{" in path or (method, path) in NAMED_IN_BODY:
        statuses.add(404)
    if takes_body:
        statuses |= {413, 415}
    if (method, path) in CONFLICTS:
        statuses.add(409)
    return sorted(statuses)


def document_errors(app: Litestar) -> None:
    """Give every operation of ``app`` its error answers (see the module's notes), before the document is built."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            responses = dict(handler.responses or {})
            # As the document writes it: ``{rule_id}``, not Litestar's ``{rule_id:str}``.
            path = _TYPED_PARAMETER.sub(r"{\1}", route.path)
            for method in handler.http_methods:
                for status in error_statuses(method, path, handler):
                    responses[status] = ResponseSpec(
                        data_container=ErrorBody, description=DESCRIPTIONS[status], generate_examples=False
                    )
            if route.path == "/ready":
                responses[HTTPStatus.SERVICE_UNAVAILABLE] = ResponseSpec(
                    data_container=Readiness,
                    description="A dependency is down: ``down`` names it.",
                    generate_examples=False,
                )
            handler.responses = responses or None


__all__ = ["CONFLICTS", "DESCRIPTIONS", "NAMED_IN_BODY", "ErrorBody", "document_errors", "error_statuses"]
