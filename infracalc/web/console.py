"""The console's home page (my projects, my networks) and what every console page shares.

Every page acts as the :class:`~infracalc.service.principals.Person` of the session
(:mod:`.sessions`) through the same domain functions as the API (``infracalc.service.*.service``),
so OPA decides every read and change exactly as for the API, and every change is audited the same
way. A page asks the policy before it offers a form (:func:`refusal_of`), so that a refusal shows
when the page opens, not after a submit. Forms answer with a redirect (:mod:`.form_state`): to the
page with a success message, or back to the form with every refused field said at once.

The project pages are in :mod:`.project_pages`, CASD staff's decisions in :mod:`.staff_pages`.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.response import Redirect, Template

from infracalc.policy import PolicyUnavailable
from infracalc.service.context import Context, ServiceContext
from infracalc.service.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from infracalc.service.principals import Person
from infracalc.service.users import service as users
from infracalc.service.users.networks import normalise_networks
from infracalc.service.users.schemas import NetworksPut
from infracalc.web.form_state import FormState, Said, because, done, said, send_back, sent_back
from infracalc.web.i18n import translator
from infracalc.web.networks import network_rule, outside, proposed_network
from infracalc.web.pages import PAGE_HEADERS, language, message, reason, render
from infracalc.web.sessions import LoginRequired, SignedIn, login_url, provide_person

AnyRequest = Request[Any, Any, Any]
STAFF_ROLE: Final = "casd-staff"


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
        {"heading": t(key), "text": reason(request, error), "kind": "error", **nav(request)},
        status_code=error.status,
    )


def _unavailable(request: AnyRequest, error: PolicyUnavailable) -> Template:
    return message(request, "unavailable.title", "unavailable.policy", status_code=503)


def nav(request: AnyRequest) -> dict[str, Any]:
    """The values the navigation bar shows (the signed-in person), when a page has them."""
    person = request.scope.get("state", {}).get("person")
    return {"person": person, "staff": is_staff(person)} if person is not None else {}


def is_staff(person: Person) -> bool:
    """Whether ``person`` is CASD staff (what the navigation offers; OPA decides what they may do)."""
    return STAFF_ROLE in person.roles


async def refusal_of(
    request: AnyRequest, context: ServiceContext, person: Person, action: str, **resource: Any
) -> str | None:
    """The policy's reason, in the page's language, why ``person`` may not take ``action``; ``None`` when they may.

    A page asks before it offers a form, so that a refusal shows when the page opens, not after a submit.
    """
    try:
        await context.authorize(person, action, **resource)
    except Forbidden as error:
        return reason(request, error)
    return None


def shown(request: AnyRequest, state: FormState | None, form: str) -> tuple[dict[str, str], dict[str, str]]:
    """What ``form`` showed when it was sent back (what was typed, each field's message), else nothing."""
    if state is None or state.form != form:
        return {}, {}
    return dict(state.typed), state.error_texts(language(request))


async def _person(request: AnyRequest) -> Person:
    person = await provide_person(request)
    request.scope.setdefault("state", {})["person"] = person
    return person


def network_error(error: InvalidInput) -> Said:
    """A refused network's message without the API's ``networks[0]: `` prefix (the page shows it by the field)."""
    return because(str(error).split(": ", 1)[-1])


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

    @get("/", name="home")
    async def home(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """My projects (with a link to my bubble in the hub) and my registered networks."""
        lang = language(request)
        state = await sent_back(request, context)
        typed, errors = shown(request, state, "network")
        mine = await users.projects(context, person, person.username)
        try:
            networks = (await users.networks(context, person, person.username)).networks
        except NotFound:
            networks = []
        hub = context.settings.hub_url
        address = proposed_network(request, context)
        return render(
            request,
            "console/home.html",
            {
                "person": person,
                "staff": is_staff(person),
                "projects": mine,
                "hub_links": {p.id: f"{hub}/hub/spawn/{person.username}/{p.id}" for p in mine} if hub else {},
                "networks": networks,
                "network_rule": network_rule(lang),
                "address": address,
                "outside_now": outside(address, networks),
                "networks_refusal": await refusal_of(
                    request, context, person, "user.networks.set", username=person.username
                ),
                "typed": typed.get("network", ""),
                "errors": errors,
                "confirm_outside": state.extra if state is not None and state.extra.get("outside") else None,
            },
            status_code=422 if errors else 200,
        )

    @post("/networks", name="networks-add")
    async def add_network(self, request: AnyRequest, context: Context, person: SignedIn) -> Response[Any]:
        """Add a network (a recent login is needed: the policy's reason shows otherwise)."""
        form = await request.form()
        typed = str(form.get("network", "")).strip()
        if not typed:
            return await send_back(
                request, context, "/", FormState("network", errors={"network": said("networks.required")})
            )
        try:
            (added,) = normalise_networks([typed])
        except InvalidInput as error:
            return await send_back(
                request, context, "/", FormState("network", {"network": typed}, {"network": network_error(error)})
            )
        current = (await users.networks(context, person, person.username)).networks
        return await self._set_networks(
            request, context, person, [*current, added], typed, confirmed=form.get("outside") == "yes"
        )

    @post("/networks/remove", name="networks-remove")
    async def remove_network(self, request: AnyRequest, context: Context, person: SignedIn) -> Response[Any]:
        """Remove one of my networks."""
        form = await request.form()
        gone = str(form.get("network", ""))
        current = (await users.networks(context, person, person.username)).networks
        return await self._set_networks(
            request,
            context,
            person,
            [n for n in current if n != gone],
            gone,
            confirmed=form.get("outside") == "yes",
            removing=True,
        )

    async def _set_networks(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        wanted: list[str],
        subject: str,
        *,
        confirmed: bool,
        removing: bool = False,
    ) -> Response[Any]:
        action, what = ("/networks/remove", "network_removed") if removing else ("/networks", "network_added")
        address = proposed_network(request, context)
        if not confirmed and outside(address, wanted):
            # Saving a list that leaves out where the person is now: say so, and save only once confirmed.
            state = FormState(
                "network",
                {"network": "" if removing else subject},
                extra={"outside": address, "network": subject, "action": action},
            )
            return await send_back(request, context, "/", state, anchor="confirm-outside")
        try:
            await users.set_networks(context, person, person.username, NetworksPut(wanted))
        except InvalidInput as error:
            state = FormState("network", {"network": subject}, {"network": network_error(error)})
            return await send_back(request, context, "/", state)
        except (Forbidden, Conflict) as error:
            return await send_back(
                request, context, "/", FormState("network", {"network": subject}, {"network": because(error)})
            )
        return done(request, "/", what, subject)


__all__ = ["STAFF_ROLE", "ConsolePages", "is_staff", "nav", "refusal_of", "shown"]
