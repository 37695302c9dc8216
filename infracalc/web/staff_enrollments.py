"""CASD staff's enrollment page: invitations with their state, the invitation form, resend and revoke.

The page acts as the signed-in :class:`~infracalc.service.principals.Person` through the
enrollments domain (:mod:`infracalc.service.enrollments.service`), the same functions as
``/api/v1/enrollments``: OPA decides (``enrollment.*``), Keycloak and the database change together
or not at all, and every change is audited. The link of an invitation or a resend is shown once,
on the page that answers the form, with whether it was mailed. A bad value comes back next to its
field with what was typed kept; an invitation used or revoked meanwhile says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from infracalc.db import MemberRole
from infracalc.identity.directory import DirectoryUnavailable
from infracalc.service.context import Context, ServiceContext
from infracalc.service.enrollments import service as enrollments
from infracalc.service.enrollments.schemas import (
    DEFAULT_EXPIRY_HOURS,
    MAX_EXPIRY_HOURS,
    EnrollmentCreate,
    EnrollmentLink,
)
from infracalc.service.errors import Conflict, InvalidInput, NotFound
from infracalc.service.principals import Person
from infracalc.service.projects import service as projects
from infracalc.service.projects.schemas import MemberPut
from infracalc.web.console import STAFF_ROLE, ConsolePages
from infracalc.web.fields import field_errors
from infracalc.web.form_state import said
from infracalc.web.i18n import translator
from infracalc.web.pages import PAGE_HEADERS, language, reason, render
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]

#: The fields of the invitation form, as the API names them.
INVITE_FIELDS: Final = ("email", "first_name", "last_name", "project", "role", "expires_in_hours", "username")
#: The fields the form cannot leave blank.
REQUIRED_FIELDS: Final = ("email", "first_name", "last_name", "project")
#: An invitation id in a URL (ids are 32 hex characters).
_ENROLLMENT_ID: Final = re.compile(r"^[0-9a-f]{1,64}$")


def invitation_body(typed: dict[str, str]) -> dict[str, Any]:
    """What the API would receive for the form's values: blanks left out (the defaults apply), the hours a number.

    Raises:
        ValueError: the hours are not a whole number.
    """
    body: dict[str, Any] = {name: typed[name].strip() for name in INVITE_FIELDS if typed[name].strip()}
    if "expires_in_hours" in body:
        body["expires_in_hours"] = int(body["expires_in_hours"])
    return body


@dataclass(frozen=True, slots=True)
class MemberOffer:
    """What the page offers when the invited e-mail already has an account: that account's membership."""

    email: str
    username: str
    project: str
    role: MemberRole


def _checked_id(enrollment_id: str) -> str:
    if not _ENROLLMENT_ID.match(enrollment_id):
        raise NotFound(f"no invitation {enrollment_id[:64]!r}")
    return enrollment_id


class StaffEnrollmentPages(Controller):
    """Invitations of people to projects, for CASD staff (OPA decides: ``enrollment.*``)."""

    path = "/staff/enrollments"
    include_in_schema = False
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = dict(ConsolePages.exception_handlers)  # noqa: RUF012 - Litestar's controller attribute

    @get("/", name="staff-enrollments")
    async def list_page(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Invitations, newest first, with their state; the form to invite someone."""
        revoked = str(request.query_params.get("revoked", ""))
        t = translator(language(request))
        notice = t("invite.revoked", id=revoked) if _ENROLLMENT_ID.match(revoked) else None
        return await self._page(request, context, person, notice=notice)

    async def _page(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        *,
        typed: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        outcome: EnrollmentLink | None = None,
        notice: str | None = None,
        offer: MemberOffer | None = None,
        status_code: int = 200,
    ) -> Template:
        invitations = await enrollments.list_enrollments(context, person, None)
        choices = await projects.visible_projects(context, person)
        return render(
            request,
            "console/staff_enrollments.html",
            {
                "person": person,
                "staff": STAFF_ROLE in person.roles,
                "invitations": invitations,
                "projects": choices,
                "roles": [role.value for role in MemberRole],
                "typed": typed or {"role": MemberRole.MEMBER.value, "expires_in_hours": str(DEFAULT_EXPIRY_HOURS)},
                "errors": errors or {},
                "outcome": outcome,
                "notice": notice,
                "offer": offer,
                "max_hours": MAX_EXPIRY_HOURS,
            },
            status_code=status_code,
            page="/staff/enrollments",
        )

    @post("/", name="staff-enrollments-invite")
    async def invite(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Invite a person; the page shows the link (once) and whether it was mailed, or what to correct."""
        form = await request.form()
        typed = {name: str(form.get(name, "")) for name in INVITE_FIELDS}
        lang = language(request)
        t = translator(lang)
        errors = {name: t("invite.required") for name in REQUIRED_FIELDS if not typed[name].strip()}
        invitation = None
        try:
            body = invitation_body(typed)
        except ValueError:
            errors["expires_in_hours"] = t("invite.bad_expires_in_hours", max=MAX_EXPIRY_HOURS)
            body = invitation_body({**typed, "expires_in_hours": ""})
        # Every refused field at once, each with what it takes (the API stops at the first).
        sentences = {name: said(f"invite.bad_{name}", max=str(MAX_EXPIRY_HOURS)) for name in INVITE_FIELDS}
        for name, message in field_errors(EnrollmentCreate, body, sentences).items():
            errors.setdefault(name, message.text(lang))
        errors = {name: errors[name] for name in INVITE_FIELDS if name in errors}
        if not errors:
            invitation = msgspec.convert(body, EnrollmentCreate)
        if invitation is None:
            # A refused inviter learns the policy's reason, not which field was wrong.
            await context.authorize(person, "enrollment.list")
            return await self._page(request, context, person, typed=typed, errors=errors, status_code=422)
        try:
            outcome = await enrollments.invite(context, person, invitation)
        except enrollments.ExistingAccount as error:
            # Issue 8: offer the membership instead of an invitation.
            return await self._page(
                request,
                context,
                person,
                typed=typed,
                errors={"email": reason(request, error)},
                offer=MemberOffer(invitation.email, error.username, error.project, error.role),
                status_code=409,
            )
        except (Conflict, InvalidInput) as error:
            return await self._page(
                request,
                context,
                person,
                typed=typed,
                errors={error.field or "email": reason(request, error)},
                status_code=409,
            )
        except NotFound as error:
            return await self._page(
                request, context, person, typed=typed, errors={"project": reason(request, error)}, status_code=404
            )
        except DirectoryUnavailable:
            return await self._page(
                request, context, person, typed=typed, notice=t("invite.directory_down"), status_code=503
            )
        return await self._page(request, context, person, outcome=outcome, status_code=201)

    @post("/membership", name="staff-enrollments-membership")
    async def add_member(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """The offer made when an invited e-mail already has an account: add that account to the project."""
        form = await request.form()
        username, project = str(form.get("username", "")), str(form.get("project", ""))
        t = translator(language(request))
        try:
            role = MemberRole(str(form.get("role", "")))
            member = await projects.put_member(context, person, project, username, MemberPut(role))
        except ValueError:
            return await self._page(request, context, person, notice=t("invite.bad_role"), status_code=422)
        except NotFound as error:
            return await self._page(request, context, person, notice=reason(request, error), status_code=404)
        notice = t(
            "invite.member_added", username=member.username, role=t(f"role.{member.role.value}"), project=project
        )
        return await self._page(request, context, person, notice=notice)

    @post("/{enrollment_id:str}/resend", name="staff-enrollments-resend")
    async def resend(
        self, request: AnyRequest, context: Context, person: SignedIn, enrollment_id: FromPath[str]
    ) -> Template:
        """A new link for an unfinished invitation (the old one dies), shown once; a finished one says so."""
        t = translator(language(request))
        try:
            outcome = await enrollments.resend(context, person, _checked_id(enrollment_id))
        except (Conflict, NotFound) as error:
            return await self._page(
                request, context, person, notice=t("invite.stale", detail=reason(request, error)), status_code=409
            )
        return await self._page(request, context, person, outcome=outcome)

    @post("/{enrollment_id:str}/revoke", name="staff-enrollments-revoke")
    async def revoke(
        self, request: AnyRequest, context: Context, person: SignedIn, enrollment_id: FromPath[str]
    ) -> Template | Response[Any]:
        """Revoke an unfinished invitation (its Keycloak account is deleted); a finished one says so."""
        t = translator(language(request))
        try:
            await enrollments.revoke(context, person, _checked_id(enrollment_id))
        except (Conflict, NotFound) as error:
            return await self._page(
                request, context, person, notice=t("invite.stale", detail=reason(request, error)), status_code=409
            )
        except DirectoryUnavailable:
            return await self._page(request, context, person, notice=t("invite.directory_down"), status_code=503)
        return Redirect(f"/staff/enrollments?revoked={enrollment_id}", headers=PAGE_HEADERS)
