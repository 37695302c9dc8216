"""The console's review queues: CASD staff decide on exports and imports; members download released exports.

Like :mod:`.console`, every page acts as the signed-in :class:`~infracalc.service.principals.Person`
through the domain functions of the API (:mod:`infracalc.service.exports.service`,
:mod:`infracalc.service.imports.service`): OPA decides every read and vote (a researcher opening a
queue gets the policy's reason), the CASD modules enforce the review rules (two distinct reviewers
for a high risk, never one's own export), and every vote, read and download is audited there.

A form with a bad value comes back with the message next to the field and what was typed kept;
a file decided meanwhile (its state or version is no longer the one the page showed, or the
domain answers 409) shows an "already decided" message and changes nothing. Files are read through
audited links only: a presigned URL for exports (``inspect`` for reviewers, ``download`` for
members once released), the import's bytes streamed through ``read_content``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from infracalc.casd.exports import MAX_COMMENT
from infracalc.db import ExportState, ImportState, ReviewVerdict, Sensitivity
from infracalc.service.context import Context, ServiceContext
from infracalc.service.errors import Conflict, Forbidden, InvalidInput, NotFound
from infracalc.service.exports import service as exports
from infracalc.service.exports.schemas import ReviewIn
from infracalc.service.imports import service as imports
from infracalc.service.imports.schemas import ImportApproval, ImportRejection
from infracalc.service.principals import Person
from infracalc.web.console import ConsolePages, shown
from infracalc.web.fields import field_errors
from infracalc.web.form_state import FormState, Said, because, done, said, send_back, sent_back
from infracalc.web.i18n import translator
from infracalc.web.pages import PAGE_HEADERS, language, reason, render
from infracalc.web.review_views import APPROVED_WITHOUT_COMMENT, findings, review_status, size_text
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]
#: The verdicts the export form offers, as the domain names them.
_EXPORT_VERDICTS = tuple(verdict.value for verdict in ReviewVerdict)
#: The decisions the import form offers.
_IMPORT_DECISIONS = ("approve", "reject")
#: What a review's comment takes, said when it is refused.
_COMMENT_SENTENCE = {"comment": said("reviews.comment_rule", limit=str(MAX_COMMENT))}
_IMPORT_COMMENT_SENTENCE = {"comment": said("reviews.import_comment_rule")}


def _form_text(form: Any, name: str) -> str:
    return str(form.get(name, ""))


def _vote(typed: dict[str, str]) -> tuple[ReviewIn | None, dict[str, Said]]:
    """The vote the export form asks for, or every message to show next to its fields."""
    comment = typed["comment"].strip()
    errors: dict[str, Said] = {}
    if typed["verdict"] not in _EXPORT_VERDICTS:
        errors["verdict"] = said("reviews.verdict_required")
    elif not comment and typed["verdict"] != ReviewVerdict.APPROVE:
        errors["comment"] = said("reviews.comment_required")
    body = {"verdict": typed["verdict"], "comment": comment or APPROVED_WITHOUT_COMMENT}
    errors = {**field_errors(ReviewIn, {"comment": body["comment"]}, _COMMENT_SENTENCE), **errors}
    if errors:
        return None, errors
    return msgspec.convert(body, ReviewIn), {}


class ReviewPages(Controller):
    """Review queues for CASD staff, and the download of released exports for members; OPA decides each."""

    path = "/"
    include_in_schema = False
    # The console's: the signed-in person, and its pages for a refusal, a login to make, OPA gone.
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = dict(ConsolePages.exception_handlers)  # noqa: RUF012 - Litestar's controller attribute

    # -- exports -------------------------------------------------------------------------------

    @get("/staff/exports", name="staff-exports")
    async def export_queue(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Exports awaiting a review, with the checks' reasons and the votes against the two-reviewer rule."""
        waiting = await exports.queue(context, person, None, None)
        details = await exports.read_many(context, person, waiting)
        return render(
            request,
            "console/review_exports.html",
            {
                "person": person,
                "staff": True,
                "exports": details,
                "status": {export.id: review_status(export, person.username) for export in details},
            },
        )

    @get("/staff/exports/{export_id:str}", name="staff-export")
    async def export_detail(
        self, request: AnyRequest, context: Context, person: SignedIn, export_id: FromPath[str]
    ) -> Template:
        """One export: each version and its checks' report, the votes, a way to read the files, the vote form."""
        return await self._export(request, context, person, export_id)

    async def _export(self, request: AnyRequest, context: ServiceContext, person: Person, export_id: str) -> Template:
        # A reviewer's page: the policy's reason for anyone who may not see the queue.
        await context.authorize(person, "export.queue")
        export = await exports.read(context, person, export_id)
        state = await sent_back(request, context)
        typed, errors = shown(request, state, "vote")
        notice = None if state is None else state.notice_text(language(request))
        return render(
            request,
            "console/review_export.html",
            {
                "person": person,
                "staff": True,
                "export": export,
                "status": review_status(export, person.username),
                "findings": {version.version: findings(version.report) for version in export.versions},
                "size_text": size_text,
                "verdicts": [v for v in _EXPORT_VERDICTS if export.state == ExportState.IN_REVIEW or v != "changes"],
                "typed": typed or {"verdict": "", "comment": ""},
                "errors": errors,
                "notice": notice,
            },
            status_code=422 if errors else 200,
        )

    @post("/staff/exports/{export_id:str}/reviews", name="staff-export-review")
    async def review_export(
        self, request: AnyRequest, context: Context, person: SignedIn, export_id: FromPath[str]
    ) -> Response[Any]:
        """A vote on the version the page showed; the comment is required unless approving."""
        form = await request.form()
        typed = {"verdict": _form_text(form, "verdict"), "comment": _form_text(form, "comment")}
        page = f"/staff/exports/{export_id}"
        vote, errors = _vote(typed)
        if vote is None:
            return await send_back(request, context, page, FormState("vote", typed, errors))
        current = await exports.read(context, person, export_id)
        shown_state = (_form_text(form, "state"), _form_text(form, "version"))
        if (current.state.value, str(current.current_version)) != shown_state:
            notice = said("reviews.already_decided", detail=Said(key=f"reviews.export_state.{current.state.value}"))
            return await send_back(request, context, page, FormState("vote", notice=notice), anchor="notice")
        try:
            await exports.review(context, person, export_id, vote)
        except InvalidInput as error:
            return await send_back(
                request, context, page, FormState("vote", typed, {error.field or "comment": because(error)})
            )
        except Forbidden as error:
            return await send_back(request, context, page, FormState("vote", typed, {"verdict": because(error)}))
        except Conflict as error:
            notice = said("reviews.already_decided", detail=because(error))
            return await send_back(request, context, page, FormState("vote", notice=notice), anchor="notice")
        return done(request, page, "voted")

    @get("/staff/exports/{export_id:str}/versions/{version:int}/file", name="staff-export-file")
    async def inspect_export(
        self, request: AnyRequest, context: Context, person: SignedIn, export_id: FromPath[str], version: FromPath[int]
    ) -> Response[Any]:
        """The version's file, through the audited reviewer's link (``export.inspect``)."""
        link = await exports.inspect(context, person, export_id, version)
        return Redirect(link.url, status_code=303, headers=PAGE_HEADERS)

    @get("/projects/{project_id:str}/exports/{export_id:str}/download", name="export-download")
    async def download_export(
        self,
        request: AnyRequest,
        context: Context,
        person: SignedIn,
        project_id: FromPath[str],
        export_id: FromPath[str],
    ) -> Template | Response[Any]:
        """A released export, through the audited download link (members of its project)."""
        export = await exports.read(context, person, export_id)
        if export.project != project_id:
            raise NotFound(f"project {project_id!r} has no export {export_id!r}")
        try:
            link = await exports.download(context, person, export_id)
        except Conflict as error:
            t = translator(language(request))
            return render(
                request,
                "message.html",
                {
                    "heading": t("reviews.not_released"),
                    "text": reason(request, error),
                    "kind": "error",
                    "person": person,
                },
                status_code=409,
            )
        return Redirect(link.url, status_code=303, headers=PAGE_HEADERS)

    # -- imports -------------------------------------------------------------------------------

    @get("/staff/imports", name="staff-imports")
    async def import_queue(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Imports awaiting a review, oldest first, with why each was held (type, name, size)."""
        waiting = await imports.queue(context, person, ImportState.IN_REVIEW)
        return render(
            request,
            "console/review_imports.html",
            {"person": person, "staff": True, "imports": waiting, "size_text": size_text},
        )

    @get("/staff/imports/{import_id:str}", name="staff-import")
    async def import_detail(
        self, request: AnyRequest, context: Context, person: SignedIn, import_id: FromPath[str]
    ) -> Template:
        """One import: what the checks saw, a way to read it, and the decision form."""
        return await self._import(request, context, person, import_id)

    async def _import(self, request: AnyRequest, context: ServiceContext, person: Person, import_id: str) -> Template:
        row = await imports.read(context, person, import_id)
        state = await sent_back(request, context)
        typed, errors = shown(request, state, "decision")
        notice = None if state is None else state.notice_text(language(request))
        return render(
            request,
            "console/review_import.html",
            {
                "person": person,
                "staff": True,
                "item": row,
                "size_text": size_text,
                "decisions": _IMPORT_DECISIONS,
                "sensitivities": [s.value for s in Sensitivity],
                "typed": typed or {"decision": "", "sensitivity": "", "comment": ""},
                "errors": errors,
                "notice": notice,
            },
            status_code=422 if errors else 200,
        )

    @post("/staff/imports/{import_id:str}/decision", name="staff-import-decide")
    async def decide_import(
        self, request: AnyRequest, context: Context, person: SignedIn, import_id: FromPath[str]
    ) -> Response[Any]:
        """Approve (with a sensitivity) or reject, with a reason; an import decided meanwhile says so."""
        form = await request.form()
        typed = {name: _form_text(form, name) for name in ("decision", "sensitivity", "comment")}
        page = f"/staff/imports/{import_id}"
        comment = typed["comment"].strip()
        errors: dict[str, Said] = {}
        if typed["decision"] not in _IMPORT_DECISIONS:
            errors["decision"] = said("reviews.decision_required")
        if typed["decision"] == "approve" and typed["sensitivity"] not in {s.value for s in Sensitivity}:
            errors["sensitivity"] = said("reviews.sensitivity_required")
        if not comment:
            errors["comment"] = said("reviews.reason_required")
        else:
            errors.update(field_errors(ImportRejection, {"comment": comment}, _IMPORT_COMMENT_SENTENCE))
        if errors:
            return await send_back(request, context, page, FormState("decision", typed, errors))
        current = await imports.read(context, person, import_id)
        if current.state != ImportState.IN_REVIEW or _form_text(form, "state") != ImportState.IN_REVIEW.value:
            notice = said("reviews.already_decided", detail=Said(key=f"reviews.import_state.{current.state.value}"))
            return await send_back(request, context, page, FormState("decision", notice=notice), anchor="notice")
        try:
            if typed["decision"] == "approve":
                approval = msgspec.convert({"sensitivity": typed["sensitivity"], "comment": comment}, ImportApproval)
                await imports.approve(context, person, import_id, approval)
            else:
                await imports.reject(context, person, import_id, msgspec.convert({"comment": comment}, ImportRejection))
        except Conflict as error:
            notice = said("reviews.already_decided", detail=because(error))
            return await send_back(request, context, page, FormState("decision", notice=notice), anchor="notice")
        return done(
            request,
            "/staff/imports",
            f"import_{'approved' if typed['decision'] == 'approve' else 'rejected'}",
            current.name,
        )

    @get("/staff/imports/{import_id:str}/file", name="staff-import-file")
    async def read_import(
        self, request: AnyRequest, context: Context, person: SignedIn, import_id: FromPath[str]
    ) -> Stream:
        """The import's bytes, for the reviewer to read before deciding (audited ``import.read``)."""
        row = await imports.read(context, person, import_id)
        content = await imports.read_content(context, person, row.project, import_id)
        return Stream(
            content.chunks,
            media_type="application/octet-stream",
            headers={
                **PAGE_HEADERS,
                "Content-Length": str(content.row.size),
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(content.row.name, safe='')}",
            },
        )


__all__ = ["ReviewPages"]
