"""The invitee's pages: ``/enroll/{token}`` (confirm, networks), then Keycloak's required actions, then back.

``GET /enroll/{token}`` shows the invitation and the confirmation form, proposing the address the
request comes from (the socket peer, or ``X-Forwarded-For`` as far as ``INFRACALC_TRUSTED_PROXIES``
vouch for it). ``POST`` confirms: the link is bound to this browser by a cookie and Keycloak mails
its action link. Keycloak sends the browser back to ``/enroll/{token}/done`` after the last
action (a ``POST`` there is the "I am done" button), which completes the enrollment. Every
refusal is a page saying why, in the person's language.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Template

from infracalc.identity.directory import ActionMailFailed, DirectoryUnavailable
from infracalc.policy import PolicyUnavailable
from infracalc.service.context import Context, ServiceContext
from infracalc.service.enrollments import service
from infracalc.service.enrollments.service import BROWSER_COOKIE, Invitation, LinkRefused
from infracalc.service.errors import InvalidInput
from infracalc.web.i18n import translator
from infracalc.web.networks import network_rule, outside, proposed_network
from infracalc.web.pages import language, message, reason, render

AnyRequest = Request[Any, Any, Any]
Token = Parameter(str, description="the enrollment link's token", min_length=20, max_length=128)


def _refused(request: AnyRequest, refusal: LinkRefused) -> Template:
    return message(request, "refused.title", f"refused.{refusal.reason}", status_code=refusal.status)


def _unavailable(request: AnyRequest) -> Template:
    return message(request, "unavailable.title", "unavailable.text", status_code=503)


def _browser_cookie(request: AnyRequest, context: ServiceContext, value: str) -> Cookie:
    return Cookie(
        key=BROWSER_COOKIE,
        value=value,
        path="/enroll/",
        httponly=True,
        samesite="lax",
        secure=context.settings.web_url.startswith("https://"),
        max_age=14 * 24 * 3600,
    )


class EnrollPages(Controller):
    """The pages an invited person goes through."""

    path = "/enroll"
    include_in_schema = False

    @get("/{token:str}", name="enroll")
    async def show(self, request: AnyRequest, context: Context, token: str = Token) -> Template:
        """The invitation and the confirmation form; the "check your mailbox" page once this browser confirmed."""
        browser = request.cookies.get(BROWSER_COOKIE)
        try:
            invitation = await service.open_link(context, token, browser)
        except LinkRefused as refusal:
            return _refused(request, refusal)
        if invitation.state == "confirmed":
            return self._mailbox(request, token, invitation)
        address = proposed_network(request, context)
        return self._form(request, token, invitation, networks=address or "", address=address)

    @post("/{token:str}", name="enroll-confirm")
    async def confirm(self, request: AnyRequest, context: Context, token: str = Token) -> Template:
        """Confirm with the networks given; Keycloak then mails its link to set the password and TOTP."""
        browser = request.cookies.get(BROWSER_COOKIE)
        form = await request.form()
        text = str(form.get("networks", ""))
        accepted = form.get("accept") == "yes"
        networks = [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]
        try:
            invitation = await service.open_link(context, token, browser)
        except LinkRefused as refusal:
            return _refused(request, refusal)
        t = translator(language(request))
        errors: dict[str, str] = {}
        normal: list[str] = []
        try:
            normal = service.enrollment_networks(networks)
        except InvalidInput as error:
            # The page shows the message next to the field: the API's "networks[0]: " prefix says nothing more.
            errors["networks"] = reason(request, str(error).split(": ", 1)[-1])
        if not accepted:
            errors["accept"] = t("enroll.accept_required")
        address = proposed_network(request, context)
        # Where the invitee is now is not in the list: say so, and confirm only once they say it is right.
        warn = not errors and outside(address, normal) and form.get("outside") != "yes"
        if errors or warn:
            return self._form(
                request,
                token,
                invitation,
                networks=text,
                address=address,
                errors=errors,
                accepted=accepted,
                warn_outside=warn,
            )
        try:
            invitation, secret = await service.confirm(context, token, browser, networks)
        except LinkRefused as refusal:
            return _refused(request, refusal)
        # The cookie goes with every answer from here on: the link is now this browser's.
        cookie = _browser_cookie(request, context, secret)
        try:
            await service.send_keycloak_link(context, token, secret)
        except ActionMailFailed:
            failed = message(request, "unavailable.title", "unavailable.mail", status_code=503)
            failed.set_cookie(cookie)
            return failed
        except DirectoryUnavailable:
            failed = _unavailable(request)
            failed.set_cookie(cookie)
            return failed
        return self._mailbox(request, token, invitation, cookies=[cookie])

    @get("/{token:str}/done", name="enroll-done")
    async def done(self, request: AnyRequest, context: Context, token: str = Token) -> Template:
        """Where Keycloak sends the browser back after the last required action."""
        return await self._complete(request, context, token)

    @post("/{token:str}/done", name="enroll-finish")
    async def finish(self, request: AnyRequest, context: Context, token: str = Token) -> Template:
        """The "I am done in Keycloak" button."""
        return await self._complete(request, context, token)

    async def _complete(self, request: AnyRequest, context: ServiceContext, token: str) -> Template:
        try:
            invitation = await service.complete(context, token, request.cookies.get(BROWSER_COOKIE))
        except LinkRefused as refusal:
            return _refused(request, refusal)
        except (DirectoryUnavailable, PolicyUnavailable):
            return _unavailable(request)
        gone = Cookie(key=BROWSER_COOKIE, value="", path="/enroll/", max_age=0, httponly=True, samesite="lax")
        return render(request, "enroll/done.html", {"invitation": invitation}, cookies=[gone])

    @staticmethod
    def _form(
        request: AnyRequest,
        token: str,
        invitation: Invitation,
        *,
        networks: str,
        address: str | None,
        errors: dict[str, str] | None = None,
        accepted: bool = False,
        warn_outside: bool = False,
    ) -> Template:
        return render(
            request,
            "enroll/confirm.html",
            {
                "invitation": invitation,
                "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                "action": f"/enroll/{token}",
                "networks": networks,
                "address": address,
                "network_rule": network_rule(language(request)),
                "errors": errors or {},
                "accepted": accepted,
                "warn_outside": warn_outside,
            },
            status_code=422 if errors else 200,
        )

    @staticmethod
    def _mailbox(
        request: AnyRequest, token: str, invitation: Invitation, *, cookies: list[Cookie] | None = None
    ) -> Template:
        return render(
            request,
            "enroll/mailbox.html",
            {"invitation": invitation, "action": f"/enroll/{token}", "done_action": f"/enroll/{token}/done"},
            cookies=cookies or [],
        )
