"""A project's page: members, governance, the rules in force, the URL check, requests, files and imports.

Members see the project; its leads (and CASD staff) also request external APIs, revoke rules and
manage members. Each form answers with a redirect (:mod:`.form_state`): a success message, or the
form again with every refused field said at once, focus on the summary. Removing a member asks for
a confirmation first, on a page of its own.

A rule's mode says what its methods, path prefixes and caps bind (:func:`~infracalc.service.egress_rules.modes.settle`):
an inspect rule binds them over HTTPS as over plain HTTP, a tunnel rule is opaque and may restrict neither. The
request form asks for the mode (tunnels only where the platform allows them), and the rules in force and the
requests show each rule's terms. The policy names rules by id; the page names them by host
(:func:`~infracalc.web.reasons.name_rules`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from infracalc.db import EgressMode
from infracalc.service.context import Context
from infracalc.service.egress_rules import service as egress
from infracalc.service.egress_rules.modes import settle
from infracalc.service.egress_rules.schemas import EgressCheckOut, EgressRequestCreate, EgressRuleOut
from infracalc.service.errors import Conflict, InvalidInput, NotFound
from infracalc.service.projects import service as projects
from infracalc.service.projects.schemas import MemberPut
from infracalc.web.console import ConsolePages, is_staff, refusal_of, shown
from infracalc.web.fields import field_errors
from infracalc.web.form_state import FormState, Said, because, done, said, send_back, sent_back
from infracalc.web.pages import language, reason, render
from infracalc.web.reasons import name_rules
from infracalc.web.review_views import project_files, size_text
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]

#: What the request form starts with.
REQUEST_DEFAULTS: Final = {"ports": "443", "mode": "inspect", "expires_in_days": "90"}
#: The request form's fields, in its order (the error summary follows it).
REQUEST_FIELDS: Final = (
    "host",
    "ports",
    "mode",
    "methods",
    "path_prefixes",
    "expires_in_days",
    "justification",
)
#: What each field of the request form takes, said when a value is refused.
REQUEST_SENTENCES: Final = {
    "ports": said("egress.ports_rule"),
    "methods": said("egress.methods_rule"),
    "path_prefixes": said("egress.paths_rule"),
    "expires_in_days": said("egress.days_rule"),
    "justification": said("egress.justification_rule"),
    "host": said("egress.host_rule"),
    "mode": said("egress.mode_rule"),
}


@dataclass(frozen=True, slots=True)
class UploadOffer:
    """What the project page says about importing a file: the way to, or why not."""

    refusal: str | None
    max_bytes: int
    limit: str


def _split(text: str, separators: str = r"[\s,]+") -> list[str]:
    return [part for part in re.split(separators, text.strip()) if part]


def request_body(typed: dict[str, str]) -> tuple[dict[str, Any], dict[str, Said]]:
    """The API body of what the request form holds, and the messages of the values that cannot even be read."""
    errors: dict[str, Said] = {}
    ports: list[Any] = []
    for part in _split(typed["ports"]):
        if not part.isdigit():
            errors["ports"] = said("egress.ports_invalid", value=part)
            break
        ports.append(int(part))
    days = typed["expires_in_days"].strip()
    if not days.isdigit():
        errors["expires_in_days"] = said("egress.days_rule")
    body = {
        "host": typed["host"].strip(),
        "ports": ports,
        "mode": typed["mode"].strip() or EgressMode.INSPECT.value,
        "methods": [method.upper() for method in _split(typed["methods"])],
        "path_prefixes": _split(typed["path_prefixes"], r"\s+"),
        "expires_in_days": int(days) if days.isdigit() else 0,
        "justification": typed["justification"].strip(),
    }
    return body, errors


def request_errors(body: dict[str, Any], unreadable: dict[str, Said], *, tunnels: bool) -> dict[str, Said]:
    """Every refused field of a request, in the form's order: its type's limits, the host, what its mode allows.

    ``tunnels``: whether the platform allows tunnel rules (``INFRACALC_EGRESS_TUNNEL_RULES``).
    """
    readable = {name: value for name, value in body.items() if name not in unreadable}
    errors = {**field_errors(EgressRequestCreate, readable, REQUEST_SENTENCES), **unreadable}
    if "host" not in errors:
        try:
            egress.host_pattern(body["host"])
        except InvalidInput as error:
            errors["host"] = because(error)
    if not {"mode", "methods", "path_prefixes"} & errors.keys():
        try:
            settle(EgressMode(body["mode"]), body["methods"], body["path_prefixes"], tunnels=tunnels)
        except InvalidInput as error:
            errors[error.field or "mode"] = because(error)
    return {name: errors[name] for name in REQUEST_FIELDS if name in errors}


class ProjectPages(Controller):
    """A project's page and its forms, for its members, leads and CASD staff (OPA decides each)."""

    path = "/projects/{project_id:str}"
    include_in_schema = False
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = dict(ConsolePages.exception_handlers)  # noqa: RUF012 - Litestar's controller attribute

    @get("/", name="project")
    async def project(
        self,
        request: AnyRequest,
        context: Context,
        person: SignedIn,
        project_id: FromPath[str],
        url: FromQuery[str | None] = None,
    ) -> Template:
        """Members, governance, rules in force; for leads the request form and their requests; the URL check."""
        state = await sent_back(request, context)
        project = await projects.read_project(context, person, project_id)
        rules = await egress.active_rules(context, person, project_id)
        requests = await egress.list_requests(context, person, project_id)
        named = {rule.id: rule.pattern for rule in requests}
        checked: EgressCheckOut | None = None
        url_error = None
        if url is not None:
            try:
                checked = await egress.check(context, person, project_id, url)
            except InvalidInput as error:
                url_error = reason(request, error)
        lead = is_staff(person) or any(
            m.username == person.username and m.role.value == "lead" for m in project.members
        )
        request_typed, request_errors_shown = shown(request, state, "request")
        member_typed, member_errors = shown(request, state, "member")
        lang = language(request)
        return render(
            request,
            "console/project.html",
            {
                "person": person,
                "staff": is_staff(person),
                "project": project,
                "rules": rules,
                "lead": lead,
                "requests": requests if lead else [],
                "checked": checked,
                "check_reason": None if checked is None else reason(request, name_rules(checked.reason, named)),
                "url": url or "",
                "url_error": url_error,
                "typed": request_typed or dict(REQUEST_DEFAULTS),
                "errors": request_errors_shown,
                # Under INFRACALC_EGRESS_TUNNEL_RULES=forbid the form offers inspect rules only.
                "tunnels_allowed": context.settings.egress_tunnels_allowed,
                "member_typed": member_typed,
                "member_errors": member_errors,
                "notice": None if state is None else state.notice_text(lang),
                "request_refusal": await refusal_of(request, context, person, "egress.request", project=project_id),
                "project_files": await project_files(context, person, project_id),
                "upload": UploadOffer(
                    refusal=await refusal_of(request, context, person, "import.create", project=project_id),
                    max_bytes=context.settings.import_max_bytes,
                    limit=size_text(context.settings.import_max_bytes),
                ),
            },
            status_code=422 if request_errors_shown or member_errors or url_error else 200,
        )

    @post("/egress-requests", name="egress-request")
    async def request_rule(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Response[Any]:
        """Ask for an external API (a lead of the project); every refused field comes back at once."""
        form = await request.form()
        typed = {name: str(form.get(name, "")) for name in REQUEST_FIELDS}
        page = f"/projects/{project_id}"
        body, unreadable = request_body(typed)
        errors = request_errors(body, unreadable, tunnels=context.settings.egress_tunnels_allowed)
        if not errors:
            try:
                await egress.request_rule(context, person, project_id, msgspec.convert(body, EgressRequestCreate))
            except InvalidInput as error:
                errors = {error.field or "host": because(error)}
        if errors:
            return await send_back(request, context, page, FormState("request", typed, errors))
        return done(request, page, "requested", body["host"], anchor="requests-heading")

    @post("/egress-rules/{rule_id:str}/revoke", name="egress-revoke")
    async def revoke(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str], rule_id: FromPath[str]
    ) -> Response[Any]:
        """Revoke a rule in force (a lead of the project, or CASD staff)."""
        page = f"/projects/{project_id}"
        rules = {rule.id: rule for rule in await egress.list_requests(context, person, project_id)}
        try:
            await egress.revoke(context, person, project_id, rule_id)
        except Conflict as error:
            named = because(name_rules(str(error), {rule.id: rule.pattern for rule in rules.values()}))
            return await send_back(request, context, page, FormState("rules", notice=named), anchor="notice")
        return done(request, page, "revoked", _pattern(rules.get(rule_id), rule_id), anchor="rules-heading")

    @post("/members", name="members-put")
    async def put_member(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Response[Any]:
        """Add a member or change a member's role (a lead of the project, or CASD staff)."""
        form = await request.form()
        typed = {
            "member_username": str(form.get("member_username", "")).strip(),
            "member_role": str(form.get("role", "")),
        }
        page = f"/projects/{project_id}"
        errors: dict[str, Said] = {}
        if not typed["member_username"]:
            errors["member_username"] = said("members.username_required")
        try:
            role = msgspec.convert({"role": typed["member_role"]}, MemberPut)
        except msgspec.ValidationError:
            errors["member_role"] = said("members.bad_role")
        if not errors:
            try:
                member = await projects.put_member(context, person, project_id, typed["member_username"], role)
            except NotFound as error:
                if error.field != "username":  # no such project: the refusal page
                    raise
                errors["member_username"] = because(error)
            else:
                return done(request, page, f"member_{member.role.value}", member.username, anchor="members-heading")
        return await send_back(request, context, page, FormState("member", typed, errors), anchor="member-form")

    @get("/members/{username:str}/remove", name="members-remove-confirm")
    async def confirm_removal(
        self,
        request: AnyRequest,
        context: Context,
        person: SignedIn,
        project_id: FromPath[str],
        username: FromPath[str],
    ) -> Template:
        """Ask before removing a member: who, from what, and what they lose."""
        await context.authorize(person, "member.delete", project=project_id)
        project = await projects.read_project(context, person, project_id)
        member = next((m for m in project.members if m.username == username), None)
        if member is None:
            raise NotFound(f"{username} is not a member of project {project_id}", field="username")
        return render(
            request,
            "console/member_remove.html",
            {"person": person, "staff": is_staff(person), "project": project, "member": member},
        )

    @post("/members/{username:str}/remove", name="members-remove")
    async def remove_member(
        self,
        request: AnyRequest,
        context: Context,
        person: SignedIn,
        project_id: FromPath[str],
        username: FromPath[str],
    ) -> Response[Any]:
        """Remove a member, once confirmed (a lead of the project, or CASD staff); one already gone says so."""
        page = f"/projects/{project_id}"
        try:
            await projects.remove_member(context, person, project_id, username)
        except NotFound as error:
            if error.field != "username":  # no such project: the refusal page
                raise
            return await send_back(request, context, page, FormState("members", notice=because(error)), anchor="notice")
        return done(request, page, "member_removed", username, anchor="members-heading")


def _pattern(rule: EgressRuleOut | None, rule_id: str) -> str:
    return rule.pattern if rule is not None else rule_id


__all__ = ["REQUEST_FIELDS", "ProjectPages", "UploadOffer", "request_body", "request_errors"]
