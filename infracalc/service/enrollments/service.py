"""Remote enrollment: CASD staff invite a person, who sets two factors and their networks from their own browser.

The life of an invitation (:class:`~infracalc.db.Enrollment`):

1. **invite** (staff): the Keycloak account is created, enabled but with no credential at all (so
   nobody can sign in with it), with the required actions ``UPDATE_PASSWORD`` and
   ``CONFIGURE_TOTP``; a single-use link token is minted (only its SHA-256 is stored) and the link
   mailed when SMTP is configured.
2. **confirm** (the invitee, from the link): they accept and register their networks (the rule of
   every registered network: IPv4 /16, IPv6 /48 at widest); the link is bound to their browser with
   a cookie (its secret's SHA-256 is stored), and Keycloak mails them an action-token link to its own
   required-action pages.
3. **complete** (the invitee, back from Keycloak in the same browser): once Keycloak says the
   account holds a password and a TOTP credential and no required action is left, the membership
   and the networks are written, the invitation is marked completed (its link dead) and every step
   audited, in one transaction; OPA gets the project's members and the person's networks.

Staff may list invitations, resend one (a new link; the old one dies) and revoke an unfinished one
(its Keycloak account is deleted). Every refusal raises before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.db import Enrollment, EnrollmentState, Member, MemberRole, UserNetwork, utc_now
from infracalc.identity.directory import AccountExists, AccountRefused
from infracalc.mail import MailError, send
from infracalc.policy.sync import network_order
from infracalc.service.context import ServiceContext, existing_project
from infracalc.service.enrollments.schemas import EnrollmentCreate, EnrollmentLink, EnrollmentOut
from infracalc.service.errors import Conflict, InvalidInput, NotFound, ServiceError
from infracalc.service.principals import Principal
from infracalc.service.users.console_sessions import end_console_sessions
from infracalc.service.users.networks import normalise_networks

logger = logging.getLogger(__name__)

#: The Keycloak client whose redirect URIs include the service's pages (``<web url>/*``).
WEB_CLIENT = "infracalc-web"
#: The longest life of Keycloak's action-token link (Keycloak's own default for admin-sent links).
ACTION_LINK_SECONDS = 12 * 3600
#: The cookie that binds a confirmed link to the browser that confirmed it.
BROWSER_COOKIE = "infracalc_enrollment"

_TOKEN_BYTES = 32
_STATES_PENDING = (EnrollmentState.INVITED, EnrollmentState.CONFIRMED)

RefusalReason = Literal["unknown", "expired", "completed", "revoked", "other_browser", "not_finished"]


class LinkRefused(ServiceError):
    """An enrollment link that cannot be used now; ``reason`` says why (pages translate it)."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = {"unknown": 404, "other_browser": 403, "not_finished": 409}.get(reason, 410)
        self.code = {404: "not_found", 403: "forbidden", 409: "conflict"}.get(self.status, "gone")


class ExistingAccount(Conflict):
    """The invited e-mail already has an account: the person needs a membership, not an invitation."""

    def __init__(self, email: str, username: str, project: str, role: MemberRole) -> None:
        super().__init__(
            f"{email} already has an account ({username!r}): add the membership instead with "
            f"PUT /api/v1/projects/{project}/members/{username}",
            field="email",
        )
        self.username, self.project, self.role = username, project, role


def digest(secret: str) -> str:
    """The SHA-256 (hex) under which a link token or a browser secret is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def link(context: ServiceContext, token: str) -> str:
    """The enrollment page of ``token``, as the invitee's browser reaches it."""
    return f"{context.settings.web_url}/enroll/{token}"


def _out(enrollment: Enrollment, now: datetime) -> EnrollmentOut:
    return EnrollmentOut(
        id=enrollment.id,
        email=enrollment.email,
        first_name=enrollment.first_name,
        last_name=enrollment.last_name,
        username=enrollment.username,
        project=enrollment.project_id,
        role=enrollment.role,
        state=enrollment.state,
        expired=enrollment.state in _STATES_PENDING and enrollment.expires_at <= now,
        invited_by=enrollment.invited_by,
        invited_at=enrollment.invited_at,
        expires_at=enrollment.expires_at,
        networks=list(enrollment.networks),
        confirmed_at=enrollment.confirmed_at,
        completed_at=enrollment.completed_at,
        revoked_by=enrollment.revoked_by,
        revoked_at=enrollment.revoked_at,
    )


def candidate_usernames(email: str) -> Iterator[str]:
    """Usernames to try for ``email``: its local part made safe (``ada.lovelace``), then numbered, then random."""
    local = email.rpartition("@")[0].lower()
    base = re.sub(r"[^a-z0-9._-]+", "-", local).strip("._-")[:40] or "user"
    if len(base) < 2:  # noqa: PLR2004 - the username pattern wants two characters at least
        base = f"{base}-user"
    yield base
    for number in range(2, 10):
        yield f"{base}{number}"
    while True:
        yield f"{base}-{secrets.token_hex(3)}"


# -- staff ---------------------------------------------------------------------------------------------


async def invite(context: ServiceContext, principal: Principal, request: EnrollmentCreate) -> EnrollmentLink:
    """Invite a person to a project (CASD staff with two factors); the answer holds the link, shown once.

    Raises:
        Forbidden: the caller may not invite.
        NotFound: the project does not exist.
        Conflict: an account has this e-mail (add the membership instead), or an invitation for it is pending.
        DirectoryUnavailable: Keycloak cannot be asked (503); nothing was created.
    """
    await context.authorize(principal, "enrollment.create", project=request.project)
    email = request.email.strip()
    async with context.read_sessions() as session:
        await existing_project(session, request.project)
        pending = await session.scalar(
            select(Enrollment.id).where(Enrollment.email == email.lower(), Enrollment.state.in_(_STATES_PENDING))
        )
    if pending is not None:
        raise Conflict(
            f"an invitation for {email} is pending ({pending}): resend it (POST /api/v1/enrollments/{pending}/resend)"
            " or revoke it first",
            field="email",
        )
    existing = await context.directory.username_of_email(email)
    if existing is not None:
        raise ExistingAccount(email, existing, request.project, request.role)
    username = await _free_username(context, request.username, email)
    try:
        user_id = await context.directory.create_invitee(username, email, request.first_name, request.last_name)
    except AccountExists as error:  # created meanwhile, by another invitation or in Keycloak itself
        raise Conflict(str(error), field="email") from None
    except AccountRefused as error:
        raise InvalidInput(str(error), field=error.field) from None
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    now = utc_now()
    try:
        async with context.sessions() as session, session.begin():
            project = await existing_project(session, request.project)
            enrollment = Enrollment(
                id=secrets.token_hex(16),
                token_sha256=digest(token),
                email=email.lower(),
                first_name=request.first_name,
                last_name=request.last_name,
                username=username,
                keycloak_id=user_id,
                project_id=project.id,
                role=request.role,
                state=EnrollmentState.INVITED,
                invited_by=principal.actor,
                invited_at=now,
                expires_at=now + timedelta(hours=request.expires_in_hours),
                networks=[],
            )
            session.add(enrollment)
            await session.flush()
            await context.record(
                session,
                actor=principal.actor,
                action="enrollment.invite",
                project_id=project.id,
                governance=project.governance,
                details={
                    "enrollment": enrollment.id,
                    "email": enrollment.email,
                    "username": username,
                    "role": request.role.value,
                    "expires_at": enrollment.expires_at.isoformat(),
                },
            )
            answer = _out(enrollment, now)
    except BaseException:
        # The account must not outlive an invitation that was never recorded.
        await context.directory.delete_account(user_id)
        raise
    return EnrollmentLink(answer, link(context, token), await _mail_invitation(context, answer, token))


async def _free_username(context: ServiceContext, wanted: str | None, email: str) -> str:
    async with context.read_sessions() as session:
        reserved = set(
            (await session.scalars(select(Enrollment.username).where(Enrollment.state.in_(_STATES_PENDING)))).all()
        )
    if wanted is not None:
        if wanted in reserved or await context.directory.exists(wanted):
            raise Conflict(f"the username {wanted!r} is taken", field="username")
        return wanted
    for candidate in candidate_usernames(email):
        if candidate not in reserved and not await context.directory.exists(candidate):
            return candidate
    raise AssertionError("unreachable: candidate_usernames never ends")  # pragma: no cover


async def _mail_invitation(context: ServiceContext, enrollment: EnrollmentOut, token: str) -> bool:
    mail = context.settings.mail
    if mail is None:
        return False
    message = EmailMessage()
    message["To"] = enrollment.email
    message["Subject"] = f"INFRACALC : invitation au projet {enrollment.project} / invitation to project"
    url = link(context, token)
    expires = enrollment.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    message.set_content(
        f"Bonjour {enrollment.first_name},\n\n"
        f"Le CASD vous invite à rejoindre le projet {enrollment.project} sur INFRACALC ({enrollment.role.value}).\n"
        f"Ouvrez ce lien avant le {expires} pour choisir votre mot de passe, votre second facteur (TOTP)\n"
        f"et les réseaux depuis lesquels vous vous connecterez :\n\n  {url}\n\n"
        "Ce lien ne sert qu'une fois. Si vous n'attendiez pas cette invitation, ignorez ce message.\n\n"
        "-- English --\n\n"
        f"Hello {enrollment.first_name},\n\n"
        f"CASD invites you to join project {enrollment.project} on INFRACALC ({enrollment.role.value}).\n"
        f"Open this link before {expires} to choose your password, your second factor (TOTP) and the\n"
        f"networks you will sign in from:\n\n  {url}\n\n"
        "The link works once. If you did not expect this invitation, ignore this message.\n"
    )
    try:
        await send(mail, message)
    except MailError as error:
        logger.warning("invitation %s not mailed: %s", enrollment.id, error)
        return False
    return True


async def list_enrollments(
    context: ServiceContext, principal: Principal, state: Literal["pending", "completed"] | None
) -> list[EnrollmentOut]:
    """Invitations, newest first: ``pending`` (invited or confirmed), ``completed``, or all (CASD staff)."""
    await context.authorize(principal, "enrollment.list")
    query = select(Enrollment).order_by(Enrollment.invited_at.desc(), Enrollment.id)
    if state == "pending":
        query = query.where(Enrollment.state.in_(_STATES_PENDING))
    elif state == "completed":
        query = query.where(Enrollment.state == EnrollmentState.COMPLETED)
    now = utc_now()
    async with context.read_sessions() as session:
        return [_out(enrollment, now) for enrollment in (await session.scalars(query)).all()]


async def resend(context: ServiceContext, principal: Principal, enrollment_id: str) -> EnrollmentLink:
    """A new link for an unfinished invitation, valid as long as the first one was (CASD staff); the old link dies.

    A confirmed invitation starts over: its browser binding and chosen networks are dropped.

    Raises:
        NotFound: no such invitation.
        Conflict: it is completed or revoked.
    """
    await context.authorize(principal, "enrollment.resend", enrollment=enrollment_id)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    now = utc_now()
    async with context.sessions() as session, session.begin():
        enrollment = await _for_update(session, enrollment_id)
        if enrollment.state not in _STATES_PENDING:
            raise Conflict(f"invitation {enrollment_id} is {enrollment.state.value}: it cannot be sent again")
        project = await existing_project(session, enrollment.project_id)
        enrollment.expires_at = now + (enrollment.expires_at - enrollment.invited_at)
        enrollment.invited_at = now
        enrollment.token_sha256 = digest(token)
        enrollment.state = EnrollmentState.INVITED
        enrollment.browser_sha256 = None
        enrollment.networks = []
        enrollment.confirmed_at = None
        await session.flush()
        await context.record(
            session,
            actor=principal.actor,
            action="enrollment.resend",
            project_id=project.id,
            governance=project.governance,
            details={"enrollment": enrollment.id, "expires_at": enrollment.expires_at.isoformat()},
        )
        answer = _out(enrollment, now)
    return EnrollmentLink(answer, link(context, token), await _mail_invitation(context, answer, token))


async def revoke(context: ServiceContext, principal: Principal, enrollment_id: str) -> EnrollmentOut:
    """Revoke an unfinished invitation and delete its half-created Keycloak account (CASD staff).

    Raises:
        NotFound: no such invitation.
        Conflict: it is completed (remove the membership instead) or already revoked.
        DirectoryUnavailable: Keycloak could not delete the account; nothing was changed.
    """
    await context.authorize(principal, "enrollment.revoke", enrollment=enrollment_id)
    async with context.read_sessions() as session:
        enrollment = await session.get(Enrollment, enrollment_id)
        if enrollment is None:
            raise NotFound(f"no invitation {enrollment_id!r}")
        _revocable(enrollment)
        keycloak_id = enrollment.keycloak_id
    # Keycloak first: if it fails, the invitation stays as it was.
    await context.directory.delete_account(keycloak_id)
    now = utc_now()
    async with context.sessions() as session, session.begin():
        enrollment = await _for_update(session, enrollment_id)
        _revocable(enrollment)
        project = await existing_project(session, enrollment.project_id)
        enrollment.state = EnrollmentState.REVOKED
        enrollment.revoked_by = principal.actor
        enrollment.revoked_at = now
        # The invitee may have set their credentials and signed in to the console before finishing: that
        # session ends with the account (Keycloak ended its own sessions when it deleted the account). No
        # membership, bubble or network exists before completion, so nothing else needs revoking.
        ended = await end_console_sessions(session, enrollment.username)
        await session.flush()
        await context.record(
            session,
            actor=principal.actor,
            action="enrollment.revoke",
            project_id=project.id,
            governance=project.governance,
            details={
                "enrollment": enrollment.id,
                "username": enrollment.username,
                "keycloak_account_deleted": True,
                "console_sessions_ended": ended,
            },
        )
        return _out(enrollment, now)


def _revocable(enrollment: Enrollment) -> None:
    if enrollment.state == EnrollmentState.COMPLETED:
        raise Conflict(
            f"invitation {enrollment.id} is completed: remove the membership "
            f"(DELETE /api/v1/projects/{enrollment.project_id}/members/{enrollment.username}) instead"
        )
    if enrollment.state == EnrollmentState.REVOKED:
        raise Conflict(f"invitation {enrollment.id} is already revoked")


async def _for_update(session: AsyncSession, enrollment_id: str) -> Enrollment:
    enrollment = await session.scalar(select(Enrollment).where(Enrollment.id == enrollment_id).with_for_update())
    if enrollment is None:
        raise NotFound(f"no invitation {enrollment_id!r}")
    return enrollment


# -- the invitee ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invitation:
    """What the invitee's pages show of an invitation."""

    id: str
    email: str
    first_name: str
    username: str
    project: str
    project_title: str
    role: str
    state: EnrollmentState
    expires_at: datetime
    networks: tuple[str, ...]


async def open_link(context: ServiceContext, token: str, browser_secret: str | None) -> Invitation:
    """The invitation of ``token``, if the link may be used now from this browser.

    Raises:
        LinkRefused: unknown, expired, completed or revoked link, or one confirmed in another browser.
    """
    async with context.read_sessions() as session:
        enrollment = await _usable(session, token, browser_secret)
        project = await existing_project(session, enrollment.project_id)
        return Invitation(
            id=enrollment.id,
            email=enrollment.email,
            first_name=enrollment.first_name,
            username=enrollment.username,
            project=project.id,
            project_title=project.title,
            role=enrollment.role.value,
            state=enrollment.state,
            expires_at=enrollment.expires_at,
            networks=tuple(enrollment.networks),
        )


async def _usable(session: AsyncSession, token: str, browser_secret: str | None, *, lock: bool = False) -> Enrollment:
    query = select(Enrollment).where(Enrollment.token_sha256 == digest(token))
    enrollment = await session.scalar(query.with_for_update() if lock else query)
    if enrollment is None:
        raise LinkRefused("unknown", "this enrollment link is unknown (a newer one may have replaced it)")
    if enrollment.state == EnrollmentState.COMPLETED:
        raise LinkRefused("completed", "this enrollment link was used already: sign in with your password and code")
    if enrollment.state == EnrollmentState.REVOKED:
        raise LinkRefused("revoked", "this invitation was withdrawn by CASD staff")
    if enrollment.expires_at <= utc_now():
        raise LinkRefused("expired", "this enrollment link has expired: ask CASD staff to send a new one")
    if enrollment.state == EnrollmentState.CONFIRMED and not _same_browser(enrollment, browser_secret):
        raise LinkRefused(
            "other_browser", "this enrollment link was confirmed in another browser: continue in that browser"
        )
    return enrollment


def _same_browser(enrollment: Enrollment, browser_secret: str | None) -> bool:
    if enrollment.browser_sha256 is None or not browser_secret:
        return False
    return hmac.compare_digest(enrollment.browser_sha256, digest(browser_secret))


def enrollment_networks(values: Sequence[str]) -> list[str]:
    """The networks an invitee registers, in normal form: 1 to 20, by the rule of every registered network.

    Raises:
        InvalidInput: none given, or one is refused (``field`` names it, the message says why).
    """
    if not values:
        raise InvalidInput("networks: register at least one network you will sign in from", field="networks")
    return normalise_networks(values)


async def confirm(
    context: ServiceContext, token: str, browser_secret: str | None, networks: Sequence[str]
) -> tuple[Invitation, str]:
    """The invitee accepts and registers ``networks``; then :func:`send_keycloak_link` has Keycloak mail its link.

    Returns the invitation and the browser secret to set as :data:`BROWSER_COOKIE` (a new one at
    the first confirmation; the same one when this browser confirms again, to change the networks or
    get Keycloak's e-mail again).

    Raises:
        LinkRefused: the link cannot be used (see :func:`open_link`).
        InvalidInput: a network is refused; nothing was changed.
    """
    chosen = enrollment_networks(networks)
    async with context.sessions() as session, session.begin():
        enrollment = await _usable(session, token, browser_secret, lock=True)
        project = await existing_project(session, enrollment.project_id)
        # A confirmed link was checked to be this browser's: it keeps its secret.
        if enrollment.state == EnrollmentState.INVITED or browser_secret is None:
            browser_secret = secrets.token_urlsafe(_TOKEN_BYTES)
            enrollment.browser_sha256 = digest(browser_secret)
        enrollment.state = EnrollmentState.CONFIRMED
        enrollment.networks = chosen
        enrollment.confirmed_at = utc_now()
        await session.flush()
        await context.record(
            session,
            actor=enrollment.username,
            action="enrollment.confirm",
            project_id=project.id,
            governance=project.governance,
            details={"enrollment": enrollment.id, "networks": chosen},
        )
    return await open_link(context, token, browser_secret), browser_secret


async def send_keycloak_link(context: ServiceContext, token: str, browser_secret: str) -> None:
    """Make Keycloak mail the confirmed invitee its action link, valid while the invitation is (12 hours at most).

    Raises:
        LinkRefused: the link cannot be used from this browser (see :func:`open_link`), or was not confirmed.
        ActionMailFailed: Keycloak did not send its e-mail; confirming again from this browser retries.
    """
    async with context.read_sessions() as session:
        enrollment = await _usable(session, token, browser_secret)
        if enrollment.state != EnrollmentState.CONFIRMED:
            raise LinkRefused("not_finished", "confirm the invitation first")
        keycloak_id, expires_at = enrollment.keycloak_id, enrollment.expires_at
    lifespan = max(60, min(ACTION_LINK_SECONDS, int((expires_at - utc_now()).total_seconds())))
    await context.directory.send_required_actions(
        keycloak_id, WEB_CLIENT, f"{link(context, token)}/done", lifespan=lifespan
    )


async def complete(context: ServiceContext, token: str, browser_secret: str | None) -> Invitation:
    """Finish: if Keycloak holds the person's password and TOTP, write the membership and networks, kill the link.

    The membership, the networks and the invitation's completion are written in one transaction
    with their audit events (``enrollment.complete``, ``member.add``, ``user.networks.set``); OPA
    holds the new members and networks before this returns.

    Raises:
        LinkRefused: the link cannot be used from this browser, was not confirmed, or Keycloak's
            required actions are not done yet (``not_finished``).
        DirectoryUnavailable: Keycloak cannot be asked; nothing was changed.
    """
    async with context.read_sessions() as session:
        enrollment = await _usable(session, token, browser_secret)
        if enrollment.state != EnrollmentState.CONFIRMED:
            raise LinkRefused("not_finished", "confirm the invitation first")
        keycloak_id = enrollment.keycloak_id
    account = await context.directory.account_state(keycloak_id)
    if account is not None and not account.enabled:
        # Offboarded meanwhile (a disabled account): its invitation is withdrawn, whatever the credentials say.
        raise LinkRefused("revoked", "this invitation was withdrawn by CASD staff")
    if account is None or not account.two_factors_set:
        raise LinkRefused(
            "not_finished",
            "Keycloak does not hold your password and TOTP authenticator yet: follow the link of its e-mail",
        )
    await context.directory.mark_email_verified(keycloak_id)
    now = utc_now()
    async with context.sessions() as session, session.begin():
        enrollment = await _usable(session, token, browser_secret, lock=True)
        if enrollment.state != EnrollmentState.CONFIRMED:  # pragma: no cover - raced with a resend
            raise LinkRefused("not_finished", "confirm the invitation first")
        project = await existing_project(session, enrollment.project_id)
        username = enrollment.username
        member = await session.get(Member, (project.id, username))
        if member is None:
            session.add(Member(project_id=project.id, username=username, role=enrollment.role))
        rows = (
            await session.scalars(select(UserNetwork).where(UserNetwork.username == username).with_for_update())
        ).all()
        before = sorted((row.cidr for row in rows), key=network_order)
        added = [cidr for cidr in enrollment.networks if cidr not in before]
        session.add_all(UserNetwork(username=username, cidr=cidr, added_by=username) for cidr in added)
        enrollment.state = EnrollmentState.COMPLETED
        enrollment.completed_at = now
        await session.flush()
        audit = {"project_id": project.id, "governance": project.governance}
        await context.record(
            session,
            actor=username,
            action="enrollment.complete",
            details={"enrollment": enrollment.id, "username": username, "keycloak_checked": ["password", "otp"]},
            **audit,
        )
        if member is None:
            await context.record(
                session,
                actor=username,
                action="member.add",
                details={"username": username, "role": enrollment.role.value, "previous_role": None},
                **audit,
            )
        if added:
            await context.record(
                session,
                actor=username,
                action="user.networks.set",
                details={
                    "username": username,
                    "before": before,
                    "after": sorted({*before, *added}, key=network_order),
                },
            )
        invitation = Invitation(
            id=enrollment.id,
            email=enrollment.email,
            first_name=enrollment.first_name,
            username=username,
            project=project.id,
            project_title=project.title,
            role=enrollment.role.value,
            state=enrollment.state,
            expires_at=enrollment.expires_at,
            networks=tuple(enrollment.networks),
        )
    await context.policy_data.push_project(invitation.project)
    await context.policy_data.push_user(invitation.username)
    return invitation
