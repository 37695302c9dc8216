"""CASD staff's decisions: pending external API requests, projects and their creation, governance switches.

Each page asks the policy when it opens, so that someone who may not decide is told so at once,
not after filling a form in. A request shows the approver everything the rule will allow: host,
ports, and, for a plain-HTTP-only rule, its methods and path prefixes with the warning that every
HTTPS call to the host will be refused. A governance switch, either way, shows its consequences
(the rules that stop or start applying again, the bubbles whose tunnels close) and waits for a
confirmation. Forms answer with a redirect (:mod:`.form_state`).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from infracalc.db import Governance
from infracalc.service.context import Context
from infracalc.service.egress_rules import service as egress
from infracalc.service.egress_rules.schemas import EgressDecision
from infracalc.service.errors import Conflict, Forbidden, NotFound
from infracalc.service.projects import service as projects
from infracalc.service.projects.schemas import GovernanceSwitch, ProjectCreate
from infracalc.web.console import ConsolePages, is_staff, shown
from infracalc.web.fields import field_errors
from infracalc.web.form_state import FormState, because, done, said, send_back, sent_back
from infracalc.web.pages import language, render
from infracalc.web.reasons import name_rules
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]

#: The project form's fields, and what each takes.
PROJECT_FIELDS: Final = ("id", "title", "governance")
PROJECT_SENTENCES: Final = {
    "id": said("projects.id_rule"),
    "title": said("projects.title_rule"),
    "governance": said("projects.governance_rule"),
}
#: The governance form's fields, and what each takes.
SWITCH_SENTENCES: Final = {"owner": said("governance.owner_rule"), "reason": said("governance.reason_rule")}


class StaffPages(Controller):
    """What CASD staff decide (OPA decides who is CASD staff: ``egress.decide``, ``project.create``...)."""

    path = "/"
    include_in_schema = False
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = dict(ConsolePages.exception_handlers)  # noqa: RUF012 - Litestar's controller attribute

    # -- external API requests -----------------------------------------------------------------

    @get("/staff/egress-requests", name="staff-egress")
    async def pending(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Requests waiting for a decision, in every project, each with all that its rule will allow."""
        state = await sent_back(request, context)
        waiting = await egress.pending_requests(context, person)
        lang = language(request)
        errors: dict[str, dict[str, str]] = {}
        typed: dict[str, dict[str, str]] = {}
        if state is not None and state.form.startswith("decide:"):
            rule_id = state.form.removeprefix("decide:")
            errors[rule_id] = state.error_texts(lang)
            typed[rule_id] = dict(state.typed)
        return render(
            request,
            "console/staff_egress.html",
            {
                "person": person,
                "staff": True,
                "waiting": waiting,
                "notice": None if state is None else state.notice_text(lang),
                "errors": errors,
                "typed": typed,
            },
            status_code=422 if any(errors.values()) else 200,
        )

    @post("/staff/egress-requests/{rule_id:str}/{verdict:str}", name="staff-egress-decide")
    async def decide(
        self, request: AnyRequest, context: Context, person: SignedIn, rule_id: FromPath[str], verdict: FromPath[str]
    ) -> Response[Any]:
        """Approve or deny with a comment; a request decided meanwhile says so."""
        if verdict not in {"approve", "deny"}:
            raise NotFound(f"no decision {verdict!r}")
        form = await request.form()
        comment = str(form.get("comment", "")).strip()
        page = "/staff/egress-requests"
        if not comment:
            state = FormState(f"decide:{rule_id}", {"comment": comment}, {"comment": said("staff.comment_required")})
            return await send_back(request, context, page, state, anchor=f"pending-{rule_id}")
        try:
            decided = await egress.decide(
                context,
                person,
                rule_id,
                msgspec.convert({"comment": comment}, EgressDecision),
                approve=verdict == "approve",
            )
        except msgspec.ValidationError:
            state = FormState(f"decide:{rule_id}", {"comment": comment}, {"comment": said("staff.comment_rule")})
            return await send_back(request, context, page, state, anchor=f"pending-{rule_id}")
        except (Conflict, NotFound) as error:
            hosts = await egress.rule_hosts(context, person, [rule_id])
            notice = said("staff.already_decided", detail=because(name_rules(str(error), hosts)))
            return await send_back(request, context, page, FormState("decide", notice=notice), anchor="notice")
        return done(request, page, "approved" if verdict == "approve" else "denied", decided.pattern)

    # -- projects ------------------------------------------------------------------------------

    @get("/staff/projects", name="staff-projects")
    async def staff_projects(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Every project with its governance, the way to switch it, and the form to create one (CASD staff)."""
        await context.authorize(person, "project.create")
        state = await sent_back(request, context)
        typed, errors = shown(request, state, "project")
        visible = await projects.visible_projects(context, person)
        return render(
            request,
            "console/staff_projects.html",
            {
                "person": person,
                "staff": True,
                "projects": visible,
                "owners": [owner.value for owner in Governance],
                "typed": typed or {"governance": Governance.CASD.value},
                "errors": errors,
            },
            status_code=422 if errors else 200,
        )

    @post("/staff/projects", name="staff-projects-create")
    async def create_project(self, request: AnyRequest, context: Context, person: SignedIn) -> Response[Any]:
        """Create a project (CASD staff): its id, title and governance; every refused field comes back at once."""
        await context.authorize(person, "project.create")
        form = await request.form()
        typed = {name: str(form.get(name, "")).strip() for name in PROJECT_FIELDS}
        errors = field_errors(ProjectCreate, typed, PROJECT_SENTENCES)
        if not errors:
            try:
                created = await projects.create_project(context, person, msgspec.convert(typed, ProjectCreate))
            except Conflict as error:
                errors = {"id": because(error)}
            else:
                return done(request, f"/projects/{created.id}", "created", created.id)
        return await send_back(request, context, "/staff/projects", FormState("project", typed, errors))

    # -- governance ----------------------------------------------------------------------------

    @get("/projects/{project_id:str}/governance", name="governance")
    async def governance(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Template:
        """The switch form (CASD staff: anyone else is told why not at once); then its consequences to confirm."""
        await context.authorize(person, "governance.switch", project=project_id)
        project = await projects.read_project(context, person, project_id)
        state = await sent_back(request, context)
        other = Governance.INFRACALC if project.governance == Governance.CASD else Governance.CASD
        typed, errors = shown(request, state, "governance")
        consequences = None
        if state is not None and state.form == "governance" and state.extra.get("preview") and not errors:
            consequences = await projects.switch_consequences(
                context, person, project_id, Governance(typed["owner"]), typed["reason"]
            )
        return render(
            request,
            "console/governance.html",
            {
                "person": person,
                "staff": is_staff(person),
                "project": project,
                "typed": typed or {"owner": other.value, "reason": ""},
                "owners": [g.value for g in Governance if g != project.governance],
                "errors": errors,
                "consequences": consequences,
            },
            status_code=422 if errors else 200,
        )

    @post("/projects/{project_id:str}/governance", name="governance-switch")
    async def switch(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Response[Any]:
        """First post: back to the form with the consequences to confirm; second post (``confirm=yes``): the switch."""
        form = await request.form()
        typed = {"owner": str(form.get("owner", "")), "reason": str(form.get("reason", "")).strip()}
        page = f"/projects/{project_id}/governance"
        errors = field_errors(GovernanceSwitch, typed, SWITCH_SENTENCES)
        if errors:
            return await send_back(request, context, page, FormState("governance", typed, errors))
        switch = msgspec.convert(typed, GovernanceSwitch)
        if form.get("confirm") != "yes":
            await context.authorize(person, "governance.switch", project=project_id)
            state = FormState("governance", typed, extra={"preview": True})
            return await send_back(request, context, page, state, anchor="consequences")
        try:
            await projects.switch_governance(context, person, project_id, switch)
        except Forbidden as error:
            return await send_back(request, context, page, FormState("governance", typed, {"owner": because(error)}))
        return done(request, f"/projects/{project_id}", "switched", switch.owner.value)


__all__ = ["StaffPages"]
