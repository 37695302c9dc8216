"""Remote enrollment against the real Keycloak, OPA and database: invitation, the invitee's pages, refusals.

The invitee's browser is two things here: a ``requests`` session on Keycloak's pages
(:mod:`tests.support.keycloak_actions`) and the in-process test client on the service's pages
(its cookie jar holds the browser-binding cookie). Keycloak's redirect back to
``<web url>/enroll/<token>/done`` is handed to the test client by path.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from infracalc.db import Enrollment, create_engine, session_factory
from infracalc.stack.ports import free_port
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People, ServiceUnderTest
from tests.integration.service.test_users import login_decision
from tests.support.keycloak_actions import Enrolled, RequiredActions, action_link
from tests.support.mailbox import Mailbox, text_of
from tests.support.oidc_browser import HtmlForm, _PageParser

pytestmark = pytest.mark.integration

PROJECT = "cohort"


def new_email(prefix: str = "ada") -> str:
    return f"{prefix}.{secrets.token_hex(3)}@example.org"


async def make_project(service: ServiceUnderTest, people: People, slug: str = PROJECT) -> None:
    answer = await service.client.post(
        "/api/v1/projects",
        json={"id": slug, "title": "Birth cohort", "governance": "CASD"},
        headers=people.headers("staff"),
    )
    assert answer.status_code == 201, answer.text


async def invite(service: ServiceUnderTest, people: People, email: str, **extra: Any) -> dict[str, Any]:
    body = {"email": email, "first_name": "Ada", "last_name": "Lovelace", "project": PROJECT, "role": "member"}
    answer = await service.client.post("/api/v1/enrollments", json={**body, **extra}, headers=people.headers("staff"))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def form_of(html: str, form_id: str) -> HtmlForm:
    parser = _PageParser()
    parser.feed(html)
    return parser.forms[form_id]


async def confirm(client: AsyncTestClient[Litestar], path: str, networks: str, *, accept: bool = True) -> Any:
    """Open the enrollment page and post its form, as a browser would (CSRF token included)."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    form = form_of(page.text, "enroll-form")
    data = {**form.inputs, "networks": networks}
    if accept:
        data["accept"] = "yes"
    return await client.post(path, data=data)


def keycloak_user(keycloak: KeycloakServer, email: str) -> dict[str, Any] | None:
    answer = keycloak.admin("GET", "/users", params={"email": email, "exact": "true"})
    answer.raise_for_status()
    users = answer.json()
    return users[0] if users else None


def login_code_after(enrolled: Enrolled) -> str:
    """A TOTP code of a later step than the one that configured the authenticator (codes are single-use)."""
    while int(time.time() // 30) <= enrolled.used_step:
        time.sleep(1)
    return enrolled.totp.now()


async def enrollments(service: ServiceUnderTest) -> list[Enrollment]:
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session:
            return list((await session.scalars(select(Enrollment))).all())
    finally:
        await engine.dispose()


async def consumed_link_is_refused(
    service: ServiceUnderTest,
    people: People,
    keycloak: KeycloakServer,
    email: str,
    path: str,
    enrollment: dict[str, Any],
) -> None:
    """Every use of a consumed link is refused and changes nothing; staff see it completed and cannot revoke it."""
    username = enrollment["username"]
    before = await everything(service, keycloak, email)
    again = await service.client.get(path)
    assert again.status_code == 410
    assert "Ce lien a déjà servi" in again.text
    csrf = service.client.cookies["infracalc_csrf"]
    reposted = await service.client.post(path, data={"_csrf_token": csrf, "networks": "192.0.2.0/24", "accept": "yes"})
    assert reposted.status_code == 410
    assert (await service.client.get(f"{path}/done")).status_code == 410
    assert await everything(service, keycloak, email) == before
    completed = (
        await service.client.get("/api/v1/enrollments?state=completed", headers=people.headers("staff"))
    ).json()
    assert [(e["username"], e["state"]) for e in completed] == [(username, "completed")]
    refused = await service.client.delete(f"/api/v1/enrollments/{enrollment['id']}", headers=people.headers("staff"))
    assert refused.status_code == 409
    assert "remove the membership" in refused.json()["message"]
    assert keycloak_user(keycloak, email) is not None


async def test_a_person_enrolls_remotely_and_signs_in_with_two_factors(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer, mailbox: Mailbox
) -> None:
    service = enroll_service
    await make_project(service, people)
    email = new_email()
    created = await invite(service, people, email)
    enrollment = created["enrollment"]
    assert enrollment["state"] == "invited"
    assert created["emailed"] is True
    username = enrollment["username"]
    # The account exists, enabled but without any credential, and with the two required actions.
    user = keycloak_user(keycloak, email)
    assert user is not None
    assert user["username"] == username
    assert sorted(user["requiredActions"]) == ["CONFIGURE_TOTP", "UPDATE_PASSWORD"]
    credentials = keycloak.admin("GET", f"/users/{user['id']}/credentials").json()
    assert credentials == []
    # The invitation mail carries the link; the database only its digest.
    (invitation_mail,) = mailbox.wait_for(email)
    assert created["link"] in text_of(invitation_mail)
    token = created["link"].rsplit("/", 1)[1]
    assert token not in repr([(e.token_sha256, e.browser_sha256) for e in await enrollments(service)])

    path = urlsplit(created["link"]).path
    page = await service.client.get(path)
    assert page.status_code == 200
    assert "Birth cohort" in page.text
    assert "membre du projet" in page.text
    confirmed = await confirm(service.client, path, "203.0.113.0/24\n2001:db8:5::/56")
    assert confirmed.status_code == 200, confirmed.text
    assert "infracalc_enrollment" in service.client.cookies

    # Keycloak mails its own link to its required actions.
    keycloak_mail = mailbox.wait_for(email, count=2)[1]
    browser = RequiredActions(service.settings.web_url)
    password = "Enrolled-" + secrets.token_urlsafe(12)
    enrolled = browser.run(action_link(text_of(keycloak_mail)), password)
    assert urlsplit(enrolled.back_to).path == f"{path}/done"
    assert enrolled.order == ("password", "totp")

    done = await service.client.get(urlsplit(enrolled.back_to).path)
    assert done.status_code == 200, done.text
    assert "Inscription terminée" in done.text

    # Membership and networks are in the database and OPA; the link is dead.
    project = (await service.client.get(f"/api/v1/projects/{PROJECT}", headers=people.headers("staff"))).json()
    assert {"username": username, "role": "member"}.items() <= next(
        m for m in project["members"] if m["username"] == username
    ).items()
    assert service.opa_data("members")[PROJECT][username] == {"role": "member"}
    assert service.opa_data("users")[username] == {"networks": ["203.0.113.0/24", "2001:db8:5::/56"]}
    await consumed_link_is_refused(service, people, keycloak, email, path, enrollment)
    audit = (await service.client.get("/api/v1/audit", headers=people.headers("staff"))).json()
    actions = [event["action"] for event in (audit["events"] if isinstance(audit, dict) else audit)]
    for action in ("enrollment.invite", "enrollment.confirm", "enrollment.complete", "member.add", "user.networks.set"):
        assert action in actions

    # The person signs in with password and TOTP: acr is mfa, and the login policy accepts their network.
    result = keycloak.browser("jupyterhub").login(username, password, login_code_after(enrolled))
    claims = jwt.decode(result.tokens.id_token, options={"verify_signature": False})
    assert claims["acr"] == "mfa"
    assert claims["preferred_username"] == username
    assert login_decision(service.opa, username, "203.0.113.9")["allow"] is True
    assert login_decision(service.opa, username, "198.51.100.1")["allow"] is False


# -- refusals: each leaves Keycloak, the database and OPA as they were -------------------------------


def keycloak_state(keycloak: KeycloakServer, email: str | None = None) -> dict[str, Any]:
    """The realm's user count and, for ``email``, the account's actions and credentials."""
    count = keycloak.admin("GET", "/users/count").json()
    state: dict[str, Any] = {"users": count}
    if email is not None:
        user = keycloak_user(keycloak, email)
        if user is not None:
            credentials = keycloak.admin("GET", f"/users/{user['id']}/credentials").json()
            user_state = (user["enabled"], sorted(user["requiredActions"]), sorted(c["type"] for c in credentials))
            state["user"] = user_state
        else:
            state["user"] = None
    return state


async def everything(service: ServiceUnderTest, keycloak: KeycloakServer, email: str | None = None) -> dict[str, Any]:
    """The database, the audit log, OPA (the service's snapshot), the enrollments, and Keycloak."""
    rows = sorted(
        (e.id, e.state.value, e.token_sha256, e.browser_sha256, tuple(e.networks), e.expires_at)
        for e in await enrollments(service)
    )
    return {**await service.snapshot(), "enrollments": rows, "keycloak": keycloak_state(keycloak, email)}


async def test_an_email_that_has_an_account_is_409_offering_the_membership(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    service = enroll_service
    await make_project(service, people)
    existing = people.accounts["researcher"]
    before = await everything(service, keycloak, existing.email)
    body = {"email": existing.email.upper(), "first_name": "R", "last_name": "S", "project": PROJECT}
    answer = await service.client.post("/api/v1/enrollments", json=body, headers=people.headers("staff"))
    assert answer.status_code == 409, answer.text
    assert answer.json()["field"] == "email"
    assert f"PUT /api/v1/projects/{PROJECT}/members/{existing.username}" in answer.json()["message"]
    assert await everything(service, keycloak, existing.email) == before


async def test_a_token_without_second_factor_cannot_invite(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    service = enroll_service
    await make_project(service, people)
    email = new_email()
    before = await everything(service, keycloak, email)
    body = {"email": email, "first_name": "A", "last_name": "B", "project": PROJECT}
    # A real token of the realm, but no password+TOTP login behind it (acr is not mfa).
    no_mfa = {"Authorization": f"Bearer {keycloak.service_account_token()}"}
    answer = await service.client.post("/api/v1/enrollments", json=body, headers=no_mfa)
    assert answer.status_code == 401, answer.text
    assert 'acr_values="mfa"' in answer.headers["www-authenticate"]
    # Two factors but not CASD staff: refused by the policy.
    answer = await service.client.post("/api/v1/enrollments", json=body, headers=people.headers("lead"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"] == "only CASD staff may invite people"
    assert await everything(service, keycloak, email) == before


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"project": "nowhere"}, 404, None),
        ({"expires_in_hours": 14 * 24 + 1}, 422, "expires_in_hours"),
        ({"email": "not an address"}, 422, "email"),
        # Keycloak refuses a non-ASCII local part, and a control character in a directory query.
        ({"email": "\u00fc\u0007j@example.org"}, 422, "email"),
        ({"email": "\u00e9lise@example.org"}, 422, "email"),
        ({"first_name": "Ada\u008b"}, 422, "first_name"),
        ({"last_name": "Lovelace\u007f"}, 422, "last_name"),
        ({"role": "owner"}, 422, "role"),
        ({"username": "Bad Name"}, 422, "username"),
    ],
)
async def test_a_bad_invitation_is_refused_and_creates_no_account(
    enroll_service: ServiceUnderTest,
    people: People,
    keycloak: KeycloakServer,
    change: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    service = enroll_service
    await make_project(service, people)
    email = new_email()
    before = await everything(service, keycloak, email)
    body = {"email": email, "first_name": "A", "last_name": "B", "project": PROJECT, **change}
    answer = await service.client.post("/api/v1/enrollments", json=body, headers=people.headers("staff"))
    assert answer.status_code == status, answer.text
    assert answer.json().get("field") == field
    assert await everything(service, keycloak, email) == before


async def test_unknown_and_expired_links_are_refused_pages(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer, mailbox: Mailbox
) -> None:
    service = enroll_service
    await make_project(service, people)
    unknown = await service.client.get("/enroll/" + secrets.token_urlsafe(32))
    assert unknown.status_code == 404
    assert "Ce lien d&#39;inscription est inconnu" in unknown.text

    email = new_email()
    created = await invite(service, people, email, expires_in_hours=1)
    path = urlsplit(created["link"]).path
    page = await service.client.get(path)
    form = form_of(page.text, "enroll-form")
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session, session.begin():
            enrollment = await session.get(Enrollment, created["enrollment"]["id"])
            assert enrollment is not None
            enrollment.expires_at = enrollment.invited_at - (enrollment.expires_at - enrollment.invited_at)
    finally:
        await engine.dispose()
    before = await everything(service, keycloak, email)
    expired = await service.client.get(path + "?lang=en")
    assert expired.status_code == 410
    assert "This enrollment link has expired" in expired.text
    posted = await service.client.post(path, data={**form.inputs, "networks": "203.0.113.0/24", "accept": "yes"})
    assert posted.status_code == 410
    done = await service.client.get(f"{path}/done")
    assert done.status_code == 410
    assert await everything(service, keycloak, email) == before
    assert len(mailbox.to(email)) == 1  # the invitation only: Keycloak was not asked to mail anything
    listed = await service.client.get("/api/v1/enrollments?state=pending", headers=people.headers("staff"))
    assert [(e["id"], e["expired"]) for e in listed.json()] == [(created["enrollment"]["id"], True)]


@pytest.mark.parametrize(
    ("networks", "why"),
    [
        # The page is in French: the domain's "is too wide: IPv4 networks may be /16 at widest" and so on.
        ("203.0.0.0/15", "est trop large : un réseau IPv4 est au plus un /16"),
        ("2001:db8::/47", "est trop large : un réseau IPv6 est au plus un /48"),
        ("not-a-network", "n'est pas un réseau au format CIDR"),
        ("203.0.113.7/24", "a des bits d'hôte non nuls (vouliez-vous dire 203.0.113.0/24 ?)"),
        ("", "enregistrez au moins un réseau"),
    ],
)
async def test_invalid_or_too_wide_networks_are_shown_next_to_the_field(
    enroll_service: ServiceUnderTest,
    people: People,
    keycloak: KeycloakServer,
    mailbox: Mailbox,
    networks: str,
    why: str,
) -> None:
    service = enroll_service
    await make_project(service, people)
    email = new_email()
    created = await invite(service, people, email)
    path = urlsplit(created["link"]).path
    before = await everything(service, keycloak, email)
    answer = await confirm(service.client, path, networks)
    assert answer.status_code == 422
    error = re.search(r'<p class="field-error" id="networks-error">([^<]*)</p>', answer.text)
    assert error is not None
    assert why in error.group(1).replace("&#39;", "'")
    assert f">{networks}</textarea>" in answer.text  # what the person typed is kept
    assert "infracalc_enrollment" not in service.client.cookies
    assert await everything(service, keycloak, email) == before
    assert len(mailbox.to(email)) == 1


async def test_a_form_post_without_the_csrf_token_is_refused(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    service = enroll_service
    await make_project(service, people)
    email = new_email()
    created = await invite(service, people, email)
    path = urlsplit(created["link"]).path
    await service.client.get(path)  # the CSRF cookie is set, but the post forgets the form's token
    before = await everything(service, keycloak, email)
    answer = await service.client.post(path, data={"networks": "203.0.113.0/24", "accept": "yes"})
    assert answer.status_code == 403
    assert await everything(service, keycloak, email) == before


async def test_the_link_is_bound_to_the_browser_that_confirmed_it(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer, mailbox: Mailbox
) -> None:
    service = enroll_service
    await make_project(service, people)
    email = new_email()
    created = await invite(service, people, email)
    path = urlsplit(created["link"]).path
    first = await confirm(service.client, path, "198.51.100.0/24")
    assert first.status_code == 200, first.text
    mailbox.wait_for(email, count=2)  # Keycloak's e-mail
    first_browser = dict(service.client.cookies)

    # Another browser: same link, no binding cookie.
    service.client.cookies.clear()
    before = await everything(service, keycloak, email)
    page = await service.client.get(path)
    assert page.status_code == 403
    assert "confirmée dans un autre navigateur" in page.text
    assert "confirmed in another browser" in (await service.client.get(path + "?lang=en")).text
    # With a valid CSRF token of its own (the cookie's value is the form's token), the post is refused all the same.
    csrf = service.client.cookies["infracalc_csrf"]
    posted = await service.client.post(path, data={"_csrf_token": csrf, "networks": "192.0.2.0/24", "accept": "yes"})
    assert posted.status_code == 403
    assert "confirmed in another browser" in posted.text  # in English now: ?lang=en is remembered
    done = await service.client.get(f"{path}/done")
    assert done.status_code == 403
    assert await everything(service, keycloak, email) == before
    assert len(mailbox.to(email)) == 2

    # The first browser still may: it sees the "check your mailbox" page; finishing too early is refused.
    service.client.cookies.clear()
    for name, value in first_browser.items():
        service.client.cookies.set(name, value)
    mailbox_page = await service.client.get(path)
    assert mailbox_page.status_code == 200
    assert "198.51.100.0/24" in mailbox_page.text
    finish = form_of(mailbox_page.text, "finish-form")
    early = await service.client.post(f"{path}/done", data=finish.inputs)
    assert early.status_code == 409
    assert "Keycloak n&#39;a pas encore" in early.text


async def test_staff_list_resend_and_revoke_invitations(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer, mailbox: Mailbox
) -> None:
    service = enroll_service
    await make_project(service, people)
    staff = people.headers("staff")
    email = new_email()
    created = await invite(service, people, email, username=f"ada-{secrets.token_hex(3)}")
    enrollment_id = created["enrollment"]["id"]
    old_path = urlsplit(created["link"]).path

    resent = await service.client.post(f"/api/v1/enrollments/{enrollment_id}/resend", headers=staff)
    assert resent.status_code == 201, resent.text
    assert resent.json()["link"] != created["link"]
    assert resent.json()["emailed"] is True
    assert len(mailbox.wait_for(email, count=2)) == 2
    assert (await service.client.get(old_path)).status_code == 404
    assert (await service.client.get(urlsplit(resent.json()["link"]).path)).status_code == 200

    pending = (await service.client.get("/api/v1/enrollments?state=pending", headers=staff)).json()
    assert [e["id"] for e in pending] == [enrollment_id]
    assert (await service.client.get("/api/v1/enrollments?state=completed", headers=staff)).json() == []
    assert "token" not in repr(pending)
    assert "link" not in pending[0]

    # Revoking deletes the half-created account and kills the link.
    assert keycloak_user(keycloak, email) is not None
    revoked = await service.client.delete(f"/api/v1/enrollments/{enrollment_id}", headers=staff)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    assert keycloak_user(keycloak, email) is None
    assert (await service.client.get(urlsplit(resent.json()["link"]).path)).status_code == 410
    before = await everything(service, keycloak, email)
    for again in (
        await service.client.delete(f"/api/v1/enrollments/{enrollment_id}", headers=staff),
        await service.client.post(f"/api/v1/enrollments/{enrollment_id}/resend", headers=staff),
    ):
        assert again.status_code == 409, again.text
    assert (await service.client.delete("/api/v1/enrollments/nope", headers=staff)).status_code == 404
    lead = await service.client.get("/api/v1/enrollments", headers=people.headers("lead"))
    assert lead.status_code == 403
    assert await everything(service, keycloak, email) == before


async def test_when_keycloak_cannot_mail_its_link_the_browser_keeps_the_invitation(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer, mailbox: Mailbox
) -> None:
    service = enroll_service
    await make_project(service, people)
    email = new_email()
    created = await invite(service, people, email)
    path = urlsplit(created["link"]).path
    working = keycloak.admin("GET", "").json()["smtpServer"]
    dead = {**working, "port": str(free_port())}
    assert keycloak.admin("PUT", "", json={"smtpServer": dead}).status_code == 204
    try:
        failed = await confirm(service.client, path, "203.0.113.0/24")
    finally:
        assert keycloak.admin("PUT", "", json={"smtpServer": working}).status_code == 204
    assert failed.status_code == 503
    assert "Keycloak n&#39;a pas pu envoyer son e-mail" in failed.text
    assert "infracalc_enrollment" in service.client.cookies  # the link stays this browser's
    # Back on the link, the same browser asks again.
    page = await service.client.get(path)
    assert page.status_code == 200
    again = form_of(page.text, "again-form")
    resent = await service.client.post(path, data=again.inputs)
    assert resent.status_code == 200, resent.text
    assert len(mailbox.wait_for(email, count=2)) == 2
