"""CASD staff's offboarding page: a person leaves, after a confirmation saying what stops.

The page acts as the signed-in :class:`~infracalc.service.principals.Person` through the users
domain (:mod:`infracalc.service.users.offboarding`), the same functions as
``POST /api/v1/users/{username}/offboard``: OPA decides (``user.offboard``: staff, never
themselves), Keycloak is changed first and the rest in one audited transaction. The form (a
username and a reason) first shows what would change, read without writing anything: the
account, the memberships removed, the bubbles whose servers stop and tunnels close, the invitations
withdrawn. Confirming does it and shows what was done. A bad value comes back next to its field with
what was typed kept; a refusal is the policy's reason.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.response import Template

from infracalc.identity.directory import DirectoryUnavailable
from infracalc.service.context import Context, ServiceContext
from infracalc.service.errors import InvalidInput, NotFound
from infracalc.service.principals import Person
from infracalc.service.users import offboarding
from infracalc.service.users.schemas import OffboardIn, OffboardOut
from infracalc.web.console import STAFF_ROLE, ConsolePages
from infracalc.web.i18n import translator
from infracalc.web.pages import language, reason, render
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]

#: The fields of the form.
FIELDS: Final = ("username", "reason")
#: The longest username the form passes on (Keycloak's; the API's path parameter takes as many).
MAX_USERNAME: Final = 128


class StaffOffboardingPages(Controller):
    """Offboarding people, for CASD staff (OPA decides: ``user.offboard``)."""

    path = "/staff/offboarding"
    include_in_schema = False
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = dict(ConsolePages.exception_handlers)  # noqa: RUF012 - Litestar's controller attribute

    @get("/", name="staff-offboarding")
    async def form(self, request: AnyRequest, person: SignedIn) -> Template:
        """The form: whom, and why (``?username=`` fills the first field)."""
        username = str(request.query_params.get("username", ""))[:MAX_USERNAME]
        return self._page(request, person, {"username": username, "reason": ""})

    @post("/", name="staff-offboarding-submit")
    async def submit(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Without ``confirm`` (for the person previewed): what would change. With it: offboard, say what was done."""
        form = await request.form()
        typed = {name: str(form.get(name, "")).strip() for name in FIELDS}
        errors = self._checked(request, typed)
        if errors:
            # A refused caller learns the policy's reason, not which field was wrong.
            await allowed_to_offboard(context, person, typed["username"])
            return self._page(request, person, typed, errors=errors, status_code=422)
        try:
            # A confirmation holds for the person it previewed: another name typed meanwhile is previewed first.
            if form.get("confirm") != "yes" or form.get("previewed") != typed["username"]:
                preview = await offboarding.preview(context, person, typed["username"])
                return self._page(request, person, typed, preview=preview)
            done = await offboarding.offboard(context, person, typed["username"], OffboardIn(typed["reason"]))
        except NotFound as error:
            return self._page(request, person, typed, errors={"username": reason(request, error)}, status_code=404)
        except InvalidInput as error:
            field = error.field if error.field in FIELDS else "reason"
            return self._page(request, person, typed, errors={field: reason(request, error)}, status_code=422)
        except DirectoryUnavailable:
            t = translator(language(request))
            return self._page(request, person, typed, notice=t("offboard.directory_down"), status_code=503)
        return self._page(request, person, {"username": "", "reason": ""}, done=done)

    @staticmethod
    def _checked(request: AnyRequest, typed: dict[str, str]) -> dict[str, str]:
        """The fields' errors before anything is asked: a username, and a reason long enough."""
        t = translator(language(request))
        errors: dict[str, str] = {}
        if not typed["username"] or len(typed["username"]) > MAX_USERNAME:
            errors["username"] = t("offboard.username_required")
        if len(typed["reason"]) < offboarding.MIN_REASON:
            errors["reason"] = t("offboard.reason_short", count=offboarding.MIN_REASON)
        return errors

    def _page(
        self,
        request: AnyRequest,
        person: Person,
        typed: dict[str, str],
        *,
        errors: dict[str, str] | None = None,
        preview: offboarding.OffboardingPreview | None = None,
        done: OffboardOut | None = None,
        notice: str | None = None,
        status_code: int = 200,
    ) -> Template:
        return render(
            request,
            "console/staff_offboarding.html",
            {
                "person": person,
                "staff": STAFF_ROLE in person.roles,
                "typed": typed,
                "errors": errors or {},
                "preview": preview,
                "done": done,
                "notice": notice,
                "min_reason": offboarding.MIN_REASON,
            },
            status_code=status_code,
            page="/staff/offboarding",
        )


async def allowed_to_offboard(context: ServiceContext, person: Person, username: str) -> None:
    """Raise the policy's refusal when ``person`` may not offboard ``username`` (blank: anyone); nothing else asked."""
    await context.authorize(person, "user.offboard", username=username)
