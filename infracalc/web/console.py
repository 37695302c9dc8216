"""The console's pages: a signed-in person's projects, networks, allowlists, and CASD staff's decisions.

Every page acts as the :class:`~infracalc.service.principals.Person` of the session
(:mod:`.sessions`) through the same domain functions as the API (``infracalc.service.*.service``),
so OPA decides every read and change exactly as for the API, and every change is audited the same
way. A refusal is a page with the policy's reason; a form with a bad value comes back with the
message next to the field and what was typed kept; a request decided meanwhile says so.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_200_OK

from infracalc.db import Governance
from infracalc.policy import PolicyUnavailable
from infracalc.service.context import Context, ServiceContext
from infracalc.service.egress_rules import service as egress
from infracalc.service.egress_rules.schemas import EgressCheckOut, EgressDecision, EgressRequestCreate
from infracalc.service.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from infracalc.service.principals import Person
from infracalc.service.projects import service as projects
from infracalc.service.projects.schemas import GovernanceSwitch, MemberPut, ProjectCreate
from infracalc.service.users import service as users
from infracalc.service.users.schemas import NetworksPut
from infracalc.web.i18n import translator
from infracalc.web.pages import PAGE_HEADERS, language, message, reason, render
from infracalc.web.review_views import project_files
from infracalc.web.sessions import LoginRequired, SignedIn, login_url, provide_person

AnyRequest = Request[Any, Any, Any]
#: The field a msgspec validation error names (``... - at `$.ports[0]```).
_AT_FIELD = re.compile(r"at `\$\.([a-z_]+)")
STAFF_ROLE = "casd-staff"
#: What the request form of the project page starts with.
_REQUEST_DEFAULTS = {"ports": "443", "mode": "inspect", "expires_in_days": "90"}


def _login_redirect(request: AnyRequest, error: LoginRequired) -> Response[Any]:
    return Redirect(login_url(error.next_path), headers=PAGE_HEADERS)


def _refusal(request: AnyRequest, error: ServiceError) -> Template:
    """A page saying why the domain refused (the policy's reason, or what was not found)."""
    t = translator(language(request))
    key = {403: "refusal.forbidden", 404: "refusal.not_found", 409: "refusal.conflict"}.get(
        error.status, "refusal.other"
    )
    return render(
        request,
        "message.html",
        {"heading": t(key), "text": reason(request, error), "kind": "error", **_nav(request)},
        status_code=error.status,
    )


def _unavailable(request: AnyRequest, error: PolicyUnavailable) -> Template:
    return message(request, "unavailable.title", "unavailable.policy", status_code=503)


def _nav(request: AnyRequest) -> dict[str, Any]:
    """The values the navigation bar shows (the signed-in person), when a page has them."""
    person = request.scope.get("state", {}).get("person")
    return {"person": person} if person is not None else {}


def _validation_errors(request: AnyRequest, error: msgspec.ValidationError, default: str) -> dict[str, str]:
    """The message of a schema's refusal, next to the field it names (``default`` when it names none)."""
    text = str(error)
    found = _AT_FIELD.search(text)
    field = found.group(1) if found else default
    return {field: reason(request, text.split(" - at ", 1)[0])}


def _is_staff(person: Person) -> bool:
    return STAFF_ROLE in person.roles


async def _person(request: AnyRequest) -> Person:
    person = await provide_person(request)
    request.scope.setdefault("state", {})["person"] = person
    return person


class ConsolePages(Controller):
    """The console, for a signed-in person; what each can do there is OPA's decision."""

    path = "/"
    include_in_schema = False
    dependencies = {"person": Provide(_person)}  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = {  # noqa: RUF012 - Litestar's controller attribute
        LoginRequired: _login_redirect,
        ServiceError: _refusal,
        PolicyUnavailable: _unavailable,
    }

    # -- everyone ------------------------------------------------------------------------------

    @get("/", name="home")
    async def home(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """My projects (with a link to my bubble in the hub) and my registered networks."""
        return await self._home(request, context, person)

    async def _home(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        *,
        typed: str = "",
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        mine = await users.projects(context, person, person.username)
        try:
            networks: list[str] | None = (await users.networks(context, person, person.username)).networks
        except NotFound:
            networks = []
        hub = context.settings.hub_url
        return render(
            request,
            "console/home.html",
            {
                "person": person,
                "staff": _is_staff(person),
                "projects": mine,
                "hub_links": {p.id: f"{hub}/hub/spawn/{person.username}/{p.id}" for p in mine} if hub else {},
                "networks": networks,
                "typed": typed,
                "errors": errors or {},
            },
            status_code=status_code,
        )

    @post("/networks", name="networks-add")
    async def add_network(self, request: AnyRequest, context: Context, person: SignedIn) -> Template | Response[Any]:
        """Add a network (a recent login is needed: the policy's reason shows otherwise)."""
        form = await request.form()
        typed = str(form.get("network", "")).strip()
        t = translator(language(request))
        if not typed:
            return await self._home(
                request, context, person, errors={"network": t("networks.required")}, status_code=422
            )
        current = (await users.networks(context, person, person.username)).networks
        return await self._set_networks(request, context, person, [*current, typed], typed)

    @post("/networks/remove", name="networks-remove")
    async def remove_network(self, request: AnyRequest, context: Context, person: SignedIn) -> Template | Response[Any]:
        """Remove one of my networks."""
        form = await request.form()
        gone = str(form.get("network", ""))
        current = (await users.networks(context, person, person.username)).networks
        return await self._set_networks(request, context, person, [n for n in current if n != gone], "")

    async def _set_networks(
        self, request: AnyRequest, context: ServiceContext, person: Person, wanted: list[str], typed: str
    ) -> Template | Response[Any]:
        try:
            await users.set_networks(
                context, person, person.username, msgspec.convert({"networks": wanted}, NetworksPut)
            )
        except (InvalidInput, msgspec.ValidationError) as error:
            text = reason(request, str(error).split(": ", 1)[-1].split(" - at ", 1)[0])
            return await self._home(request, context, person, typed=typed, errors={"network": text}, status_code=422)
        except Forbidden as error:
            return await self._home(
                request, context, person, typed=typed, errors={"network": reason(request, error)}, status_code=403
            )
        return Redirect("/", headers=PAGE_HEADERS)

    # -- a project -----------------------------------------------------------------------------

    @get("/projects/{project_id:str}", name="project")
    async def project(
        self,
        request: AnyRequest,
        context: Context,
        person: SignedIn,
        project_id: FromPath[str],
        url: FromQuery[str | None] = None,
    ) -> Template:
        """Members, governance, rules in force; for leads the request form and their requests; the URL check."""
        checked = None
        errors: dict[str, str] = {}
        if url is not None:
            try:
                checked = await egress.check(context, person, project_id, url)
            except InvalidInput as error:
                errors["url"] = reason(request, error)
        return await self._project(request, context, person, project_id, checked=checked, url=url or "", errors=errors)

    async def _project(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        project_id: str,
        *,
        checked: EgressCheckOut | None = None,
        url: str = "",
        errors: dict[str, str] | None = None,
        typed: dict[str, str] | None = None,
        notice: str | None = None,
        status_code: int = 200,
    ) -> Template:
        project = await projects.read_project(context, person, project_id)
        rules = await egress.active_rules(context, person, project_id)
        lead = _is_staff(person) or any(
            m.username == person.username and m.role.value == "lead" for m in project.members
        )
        requests = await egress.list_requests(context, person, project_id) if lead else []
        return render(
            request,
            "console/project.html",
            {
                "person": person,
                "staff": _is_staff(person),
                "project": project,
                "rules": rules,
                "lead": lead,
                "requests": requests,
                "checked": checked,
                "url": url,
                "errors": errors or {},
                "typed": typed or dict(_REQUEST_DEFAULTS),
                # Under INFRACALC_EGRESS_TUNNEL_RULES=forbid the form offers inspect rules only.
                "tunnels_allowed": context.settings.egress_tunnels_allowed,
                "notice": notice,
                "project_files": await project_files(context, person, project_id),
            },
            status_code=status_code if not errors else 422,
        )

    @post("/projects/{project_id:str}/egress-requests", name="egress-request")
    async def request_rule(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Template | Response[Any]:
        """Ask for an external API (a lead of the project); bad values come back next to their field."""
        form = await request.form()
        typed = {
            name: str(form.get(name, ""))
            for name in ("host", "justification", "ports", "mode", "methods", "path_prefixes", "expires_in_days")
        }
        t = translator(language(request))
        errors: dict[str, str] = {}
        ports: list[Any] = []
        for part in re.split(r"[\s,]+", typed["ports"].strip()):
            if part:
                if not part.isdigit():
                    errors["ports"] = t("egress.ports_invalid", value=part)
                    break
                ports.append(int(part))
        days = typed["expires_in_days"].strip()
        if not days.isdigit():
            errors["expires_in_days"] = t("egress.days_invalid")
        if not errors:
            body = {
                "host": typed["host"].strip(),
                "justification": typed["justification"].strip(),
                "ports": ports,
                "mode": typed["mode"].strip() or "inspect",
                "methods": [m.upper() for m in re.split(r"[\s,]+", typed["methods"].strip()) if m],
                "path_prefixes": [p for p in re.split(r"\s+", typed["path_prefixes"].strip()) if p],
                "expires_in_days": int(days),
            }
            try:
                await egress.request_rule(context, person, project_id, msgspec.convert(body, EgressRequestCreate))
            except msgspec.ValidationError as error:
                errors = _validation_errors(request, error, "host")
            except InvalidInput as error:
                errors = {error.field or "host": reason(request, error)}
        if errors:
            return await self._project(request, context, person, project_id, errors=errors, typed=typed)
        return Redirect(f"/projects/{project_id}?done=requested", headers=PAGE_HEADERS)

    @post("/projects/{project_id:str}/egress-rules/{rule_id:str}/revoke", name="egress-revoke")
    async def revoke(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str], rule_id: FromPath[str]
    ) -> Template | Response[Any]:
        """Revoke a rule in force (a lead of the project, or CASD staff)."""
        try:
            await egress.revoke(context, person, project_id, rule_id)
        except Conflict as error:
            return await self._project(
                request, context, person, project_id, notice=reason(request, error), status_code=409
            )
        return Redirect(f"/projects/{project_id}", headers=PAGE_HEADERS)

    @post("/projects/{project_id:str}/members", name="members-put")
    async def put_member(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Template | Response[Any]:
        """Add a member or change a member's role (a lead of the project, or CASD staff)."""
        form = await request.form()
        typed = {
            "member_username": str(form.get("member_username", "")).strip(),
            "member_role": str(form.get("role", "")),
        }
        t = translator(language(request))
        errors: dict[str, str] = {}
        if not typed["member_username"]:
            errors["member_username"] = t("members.username_required")
        try:
            body = msgspec.convert({"role": typed["member_role"]}, MemberPut)
        except msgspec.ValidationError:
            errors["member_role"] = t("members.bad_role")
        if not errors:
            try:
                await projects.put_member(context, person, project_id, typed["member_username"], body)
            except NotFound as error:
                if error.field != "username":  # no such project: the refusal page
                    raise
                errors["member_username"] = reason(request, error)
        if errors:
            return await self._project(
                request, context, person, project_id, errors=errors, typed={**_REQUEST_DEFAULTS, **typed}
            )
        return Redirect(f"/projects/{project_id}", headers=PAGE_HEADERS)

    @post("/projects/{project_id:str}/members/{username:str}/remove", name="members-remove")
    async def remove_member(
        self,
        request: AnyRequest,
        context: Context,
        person: SignedIn,
        project_id: FromPath[str],
        username: FromPath[str],
    ) -> Template | Response[Any]:
        """Remove a member (a lead of the project, or CASD staff); one already gone says so."""
        try:
            await projects.remove_member(context, person, project_id, username)
        except NotFound as error:
            if error.field != "username":  # no such project: the refusal page
                raise
            return await self._project(
                request, context, person, project_id, notice=reason(request, error), status_code=409
            )
        return Redirect(f"/projects/{project_id}", headers=PAGE_HEADERS)

    # -- CASD staff ----------------------------------------------------------------------------

    @get("/staff/egress-requests", name="staff-egress")
    async def pending(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Requests waiting for a decision, in every project."""
        return await self._pending(request, context, person)

    async def _pending(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        *,
        notice: str | None = None,
        errors: dict[str, dict[str, str]] | None = None,
        status_code: int = 200,
    ) -> Template:
        waiting = await egress.pending_requests(context, person)
        return render(
            request,
            "console/staff_egress.html",
            {"person": person, "staff": True, "waiting": waiting, "notice": notice, "errors": errors or {}},
            status_code=status_code,
        )

    @post("/staff/egress-requests/{rule_id:str}/{verdict:str}", name="staff-egress-decide")
    async def decide(
        self, request: AnyRequest, context: Context, person: SignedIn, rule_id: FromPath[str], verdict: FromPath[str]
    ) -> Template | Response[Any]:
        """Approve or deny with a comment; a request decided meanwhile says so."""
        if verdict not in {"approve", "deny"}:
            raise NotFound(f"no decision {verdict!r}")
        form = await request.form()
        comment = str(form.get("comment", "")).strip()
        t = translator(language(request))
        try:
            decision = msgspec.convert({"comment": comment}, EgressDecision)
        except msgspec.ValidationError:
            return await self._pending(
                request, context, person, errors={rule_id: {"comment": t("staff.comment_required")}}, status_code=422
            )
        try:
            await egress.decide(context, person, rule_id, decision, approve=verdict == "approve")
        except (Conflict, NotFound) as error:
            return await self._pending(
                request,
                context,
                person,
                notice=t("staff.already_decided", detail=reason(request, error)),
                status_code=409,
            )
        return Redirect("/staff/egress-requests", headers=PAGE_HEADERS)

    @get("/staff/projects", name="staff-projects")
    async def staff_projects(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Every project with its governance, and the way to switch it (CASD staff)."""
        if not _is_staff(person):
            raise Forbidden(translator(language(request))("staff.only"))
        return await self._staff_projects(request, context, person)

    async def _staff_projects(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        *,
        typed: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
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
                "errors": errors or {},
            },
            status_code=status_code,
        )

    @post("/staff/projects", name="staff-projects-create")
    async def create_project(self, request: AnyRequest, context: Context, person: SignedIn) -> Template | Response[Any]:
        """Create a project (CASD staff): its id, title and governance; bad values come back next to their field."""
        if not _is_staff(person):
            raise Forbidden(translator(language(request))("staff.only"))
        form = await request.form()
        typed = {name: str(form.get(name, "")).strip() for name in ("id", "title", "governance")}
        try:
            created = await projects.create_project(context, person, msgspec.convert(typed, ProjectCreate))
        except msgspec.ValidationError as error:
            errors = _validation_errors(request, error, "id")
        except Conflict as error:
            errors = {"id": reason(request, error)}
        else:
            return Redirect(f"/projects/{created.id}", headers=PAGE_HEADERS)
        return await self._staff_projects(request, context, person, typed=typed, errors=errors, status_code=422)

    @get("/projects/{project_id:str}/governance", name="governance")
    async def governance(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Template:
        """The switch form (CASD staff): the new owner and a reason."""
        project = await projects.read_project(context, person, project_id)
        other = Governance.INFRACALC if project.governance == Governance.CASD else Governance.CASD
        return self._governance(request, person, project, {"owner": other.value, "reason": ""})

    def _governance(
        self,
        request: AnyRequest,
        person: Person,
        project: Any,
        typed: dict[str, str],
        *,
        errors: dict[str, str] | None = None,
        consequences: projects.SwitchConsequences | None = None,
        status_code: int = 200,
    ) -> Template:
        return render(
            request,
            "console/governance.html",
            {
                "person": person,
                "staff": _is_staff(person),
                "project": project,
                "typed": typed,
                "owners": [g.value for g in Governance],
                "errors": errors or {},
                "consequences": consequences,
            },
            status_code=422 if errors and status_code == HTTP_200_OK else status_code,
        )

    @post("/projects/{project_id:str}/governance", name="governance-switch")
    async def switch(
        self, request: AnyRequest, context: Context, person: SignedIn, project_id: FromPath[str]
    ) -> Template | Response[Any]:
        """First post: the consequences to confirm; second post (``confirm=yes``): the switch."""
        form = await request.form()
        typed = {"owner": str(form.get("owner", "")), "reason": str(form.get("reason", ""))}
        project = await projects.read_project(context, person, project_id)
        try:
            switch = msgspec.convert({"owner": typed["owner"], "reason": typed["reason"].strip()}, GovernanceSwitch)
        except msgspec.ValidationError as error:
            return self._governance(
                request, person, project, typed, errors=_validation_errors(request, error, "reason")
            )
        if form.get("confirm") != "yes":
            consequences = await projects.switch_consequences(context, person, project_id, switch.owner)
            return self._governance(request, person, project, typed, consequences=consequences)
        try:
            await projects.switch_governance(context, person, project_id, switch)
        except Forbidden as error:
            return self._governance(
                request, person, project, typed, errors={"owner": reason(request, error)}, status_code=403
            )
        return Redirect(f"/projects/{project_id}", headers=PAGE_HEADERS)
