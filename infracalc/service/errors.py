"""The service's errors and how each becomes a JSON answer.

Every error answer has the same shape, whatever raised it (a route, the router, a validator,
the policy engine)::

    {"status": 403, "error": "forbidden", "message": "only CASD staff may create projects"}

plus ``"field"`` when one input field is at fault. Unexpected exceptions answer 500 with a generic
message; their details go to the log, never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from infracalc.errors import InfracalcError
from infracalc.identity import JwksUnavailable, SecondFactorMissing, TokenError
from infracalc.identity.directory import DirectoryUnavailable
from infracalc.policy import PolicyUnavailable
from infracalc.service.request_ids import current_request_id

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ServiceError(InfracalcError):
    """An error the API reports as such: ``status`` and ``code`` say how, the message says what.

    ``kind`` names which check refused, when the domain has a name for it (an import's ``archive``,
    ``macros``...): pages word their refusal by it rather than by the English message.
    """

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


class NotFound(ServiceError):
    """The resource does not exist (or the caller may not know that it does)."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The policy refused; the message is the policy's reason."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The request contradicts the current state (an existing project id, for instance)."""

    status = 409
    code = "conflict"


class TooLarge(ServiceError):
    """The body is larger than the route accepts."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(ServiceError):
    """The body is not of a kind the route accepts (its declared type, or its content)."""

    status = 415
    code = "unsupported_media_type"


class BadRequest(ServiceError):
    """The request could not be read as sent (a body cut short, for instance)."""

    status = 400
    code = "bad_request"


class Unavailable(ServiceError):
    """A collaborator the route needs (the object store) is not configured or not answering."""

    status = 503
    code = "unavailable"


class InvalidInput(ServiceError):
    """A value is well-formed JSON of the right type but not acceptable; ``field`` names it."""

    status = 422
    code = "invalid_request"


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON body of every error answer."""
    body: dict[str, Any] = {"status": status, "error": _CODES.get(status, "error"), "message": message}
    if field is not None:
        body["field"] = field
    return body


def _service_error(_: Request[Any, Any, Any], error: ServiceError) -> Response[dict[str, Any]]:
    return Response(error_body(error.status, str(error), error.field), status_code=error.status)


def _token_error(_: Request[Any, Any, Any], error: TokenError) -> Response[dict[str, Any]]:
    challenge = 'Bearer realm="infracalc"'
    if isinstance(error, SecondFactorMissing):
        challenge += ', error="insufficient_user_authentication", acr_values="mfa"'
    else:
        challenge += ', error="invalid_token"'
    return Response(error_body(401, str(error)), status_code=401, headers={"WWW-Authenticate": challenge})


def _keys_unavailable(_: Request[Any, Any, Any], error: JwksUnavailable) -> Response[dict[str, Any]]:
    # Not the caller's fault, and not a reason to sign in again: the token cannot be checked now.
    logger.warning("a token could not be checked: %s", error.detail)
    return Response(error_body(503, str(error)), status_code=503, headers={"Retry-After": "10"})


def _policy_unavailable(_: Request[Any, Any, Any], error: PolicyUnavailable) -> Response[dict[str, Any]]:
    logger.warning("policy unavailable: %s", error)
    return Response(
        error_body(503, "the policy engine cannot be reached: nothing is allowed until it can"), status_code=503
    )


def _directory_unavailable(_: Request[Any, Any, Any], error: DirectoryUnavailable) -> Response[dict[str, Any]]:
    logger.warning("user directory unavailable: %s", error)
    return Response(error_body(503, "Keycloak's user directory cannot be reached; try again later"), status_code=503)


#: SQLSTATE classes of a database that is not there: connection exceptions, operator intervention (shutdown,
#: "the database system is starting up").
_UNAVAILABLE_SQLSTATES = ("08", "57")


def _database_error(request: Request[Any, Any, Any], error: DBAPIError) -> Response[dict[str, Any]]:
    """A database that is restarting or gone answers 503; any other database error is unexpected (500)."""
    sqlstate = str(getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None) or "")
    if (
        error.connection_invalidated
        or isinstance(error, OperationalError | InterfaceError)
        or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    ):
        return _database_unavailable(request, error)
    return _unexpected(request, error)


def _database_unavailable(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    # A database that restarts, or a connection cut: not a bug of the service, and nothing was committed.
    logger.warning("database unavailable: %s", error)
    return Response(
        error_body(503, "the database cannot be reached now; nothing was changed, try again"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _validation_error(_: Request[Any, Any, Any], error: ValidationException) -> Response[dict[str, Any]]:
    problems = error.extra if isinstance(error.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    field = first.get("key")
    detail = str(first.get("message") or error.detail)
    # A body that is not JSON at all is a bad request; JSON that breaks the schema is unprocessable.
    status = 400 if "malformed" in detail.lower() or ("JSON" in detail and field is None) else 422
    message = f"{field}: {detail}" if field else detail
    return Response(error_body(status, message, field), status_code=status)


def _http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    return Response(
        error_body(error.status_code, str(error.detail)), status_code=error.status_code, headers=error.headers
    )


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return Response(
        error_body(500, f"internal error; it was logged under request id {current_request_id.get()}"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ServiceError: _service_error,
    TokenError: _token_error,
    JwksUnavailable: _keys_unavailable,
    PolicyUnavailable: _policy_unavailable,
    DirectoryUnavailable: _directory_unavailable,
    DBAPIError: _database_error,
    DisconnectionError: _database_unavailable,
    SQLAlchemyTimeoutError: _database_unavailable,
    ConnectionError: _database_unavailable,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
