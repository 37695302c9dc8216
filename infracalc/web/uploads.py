"""Imports from the console: a member sends a file from the project page, streamed to the imports domain.

The page's script (``static/upload.js``) sends the file as the raw body of one ``POST
/projects/{id}/imports?name=<file name>`` (``Content-Type: application/octet-stream``), with the
CSRF token in the ``X-CSRFToken`` header and the session cookie, and shows the upload's progress
from the browser's own upload events. This route hands the request's body stream, chunk by chunk,
to :func:`infracalc.service.imports.service.upload`, the function behind the API's route: the
same checks, the same OPA decision, the same audit events, and nothing of the file is held in
memory here (the body limit is lifted for this route only; the domain's cap applies as bytes
arrive).

A browser's script reads the answer as JSON: the import's id and state and the page to show next
(the project page with a success message), or the refusal in the page's language.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, post
from litestar.params import FromPath, FromQuery

from infracalc.policy import PolicyUnavailable
from infracalc.service.context import Context
from infracalc.service.errors import InvalidInput, ServiceError
from infracalc.service.imports import service as imports
from infracalc.web.console import ConsolePages
from infracalc.web.i18n import translator
from infracalc.web.pages import PAGE_HEADERS, language
from infracalc.web.reasons import translate_reason
from infracalc.web.sessions import LoginRequired, SignedIn

AnyRequest = Request[Any, Any, Any]

#: The checks of :mod:`infracalc.casd.imports` that have a sentence of their own in the catalogue.
REFUSAL_KINDS: Final = frozenset(
    {
        "file_name",
        "too_large",
        "empty",
        "archive",
        "macros",
        "type_mismatch",
        "office_document",
        "interrupted",
        "storage",
        "media_type",
    }
)


def refusal_text(error: ServiceError, lang: str) -> str:
    """Why an upload was refused, in ``lang``: the message when the catalogue words it, else its check's sentence.

    A message the catalogue does not know (the technical detail of a broken office document) is
    shown after the check's sentence, as the detail it is, rather than lost.
    """
    message = str(error)
    translated = translate_reason(message, lang)
    if translated != message or lang == "en":
        return translated
    t = translator(lang)
    kind = error.kind if error.kind in REFUSAL_KINDS else "other"
    return t("upload.detailed", sentence=t(f"upload.refused.{kind}"), detail=message)


def _answer(request: AnyRequest, status: int, message: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        {"status": status, "message": message, **extra},
        status_code=status,
        headers=PAGE_HEADERS,
        media_type="application/json",
    )


def _login_required(request: AnyRequest, _: LoginRequired) -> Response[dict[str, Any]]:
    # A script cannot follow a redirect to Keycloak: it says so, and the page offers to sign in again.
    return _answer(request, 401, translator(language(request))("upload.signed_out"))


def _refused(request: AnyRequest, error: ServiceError) -> Response[dict[str, Any]]:
    return _answer(request, error.status, refusal_text(error, language(request)), kind=error.kind)


def _unavailable(request: AnyRequest, _: PolicyUnavailable) -> Response[dict[str, Any]]:
    return _answer(request, 503, translator(language(request))("unavailable.policy"))


class UploadPages(Controller):
    """The console's end of an import: the body of the request is the file."""

    path = "/projects/{project_id:str}/imports"
    include_in_schema = False
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = {  # noqa: RUF012 - Litestar's controller attribute
        LoginRequired: _login_required,
        ServiceError: _refused,
        PolicyUnavailable: _unavailable,
    }

    @post("/", name="import-upload", request_max_body_size=None, status_code=201)
    async def upload(
        self,
        request: AnyRequest,
        context: Context,
        person: SignedIn,
        project_id: FromPath[str],
        name: FromQuery[str] = "",
    ) -> Response[dict[str, Any]]:
        """Stream the body into the project's quarantine; answer the import and where to go next, or why not."""
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        length = request.headers.get("content-length")
        if length is not None and not length.isdigit():
            raise InvalidInput("Content-Length is not a number")
        created = await imports.upload(
            context,
            person,
            project_id,
            name=name,
            media_type=media_type,
            content_length=None if length is None else int(length),
            chunks=request.stream(),
        )
        done = urlencode({"done": f"imported_{created.state.value}", "subject": created.name})
        return _answer(
            request,
            201,
            translator(language(request))(f"done.imported_{created.state.value}", subject=created.name),
            id=created.id,
            state=created.state.value,
            location=f"/projects/{project_id}?{done}#import-{created.id}",
        )


__all__ = ["REFUSAL_KINDS", "UploadPages", "refusal_text"]
