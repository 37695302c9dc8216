"""Offboarding a person: Keycloak account disabled and signed out, every membership removed, every bubble revoked."""

from __future__ import annotations

import secrets
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from infracalc.db import create_engine, session_factory, utc_now
from infracalc.identity import DemoAccount
from infracalc.web.sessions import SESSION_COOKIE, Login, open_session
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration

REASON = "left CASD at the end of the contract"


def leaver(keycloak: KeycloakServer) -> tuple[DemoAccount, dict[str, Any]]:
    """A fresh account (the shared cast must stay enabled), signed in once: its Keycloak session and tokens."""
    account = keycloak.add_account("leaver")
    login = keycloak.browser("jupyterhub").login(account.username, account.password, account.totp().now())
    return account, {"access": login.tokens.access_token, "refresh": login.tokens.refresh_token}


def keycloak_user(keycloak: KeycloakServer, username: str) -> dict[str, Any]:
    answer = keycloak.admin("GET", f"/users/{keycloak.user_id(username)}")
    answer.raise_for_status()
    user: dict[str, Any] = answer.json()
    return user


async def console_session(service: ServiceUnderTest, username: str) -> str:
    """A web console session of ``username``, opened as the login callback does; its cookie."""
    engine = create_engine(service.settings.database)
    try:
        login = Login(username, username, frozenset(), "mfa", utc_now(), None)
        return await open_session(SimpleNamespace(sessions=session_factory(engine)), login)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def signed_in(service: ServiceUnderTest, cookie: str) -> bool:
    """Whether the console's home page opens with this session cookie (else it sends to the login)."""
    service.client.cookies.set(SESSION_COOKIE, cookie)
    try:
        return (await service.client.get("/", follow_redirects=False)).status_code == 200
    finally:
        service.client.cookies.delete(SESSION_COOKIE)


async def invitation(service: ServiceUnderTest, people: People, slug: str) -> dict[str, Any]:
    """A new project ``slug`` and an invitation of a new person to it (the link comes back: no mail relay here)."""
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": slug, "title": slug, "governance": "INFRACALC"}, headers=staff
    )
    assert created.status_code == 201
    invited = await service.client.post(
        "/api/v1/enrollments",
        json={
            "email": f"invitee.{secrets.token_hex(3)}@example.org",
            "first_name": "I",
            "last_name": "N",
            "project": slug,
        },
        headers=staff,
    )
    assert invited.status_code == 201, invited.text
    answer: dict[str, Any] = invited.json()
    return answer


async def member_with_bubble(service: ServiceUnderTest, people: People, slug: str, username: str, role: str) -> str:
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": slug, "title": slug, "governance": "INFRACALC"}, headers=staff
    )
    assert created.status_code == 201, created.text
    added = await service.client.put(f"/api/v1/projects/{slug}/members/{username}", json={"role": role}, headers=staff)
    assert added.status_code == 200, added.text
    bubble = await service.client.post(
        "/api/v1/bubbles", json={"project": slug, "username": username, "address": None}, headers=people.hub_headers()
    )
    assert bubble.status_code == 201, bubble.text
    token: str = bubble.json()["token"]
    return token


async def test_staff_offboard_a_person_and_nothing_of_theirs_keeps_working(
    service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    account, tokens = leaver(keycloak)
    username, staff = account.username, people.headers("staff")
    lead_token = await member_with_bubble(service, people, "alpha", username, "lead")
    member_token = await member_with_bubble(service, people, "beta", username, "member")
    assert keycloak_user(keycloak, username)["enabled"] is True
    cookie = await console_session(service, username)
    assert await signed_in(service, cookie)

    answer = await service.client.post(f"/api/v1/users/{username}/offboard", json={"reason": REASON}, headers=staff)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert outcome["console_sessions_ended"] == 1
    assert not await signed_in(service, cookie)
    assert outcome["account_disabled"] is True
    assert outcome["already_offboarded"] is False
    assert outcome["memberships_removed"] == [
        {"project": "alpha", "role": "lead"},
        {"project": "beta", "role": "member"},
    ]
    assert len(outcome["bubbles_revoked"]) == 2

    # Keycloak: disabled, no session left, the refresh token is dead.
    assert keycloak_user(keycloak, username)["enabled"] is False
    sessions = keycloak.admin("GET", f"/users/{keycloak.user_id(username)}/sessions")
    assert sessions.json() == []
    refreshed = requests.post(
        keycloak.token_url,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh"], "client_id": "jupyterhub"},
        auth=("jupyterhub", keycloak.config.jupyterhub_client_secret),
        timeout=30,
    )
    assert refreshed.status_code == 400, refreshed.text
    # The service and OPA: no membership, no bubble, before the answer.
    for slug in ("alpha", "beta"):
        assert username not in service.opa_data("members")[slug]
    assert not set(outcome["bubbles_revoked"]) & set(service.opa_data("bubbles") or {})
    for token in (lead_token, member_token):
        refused = await service.client.get("/api/v1/projects/alpha", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
    projects = await service.client.get(f"/api/v1/users/{username}/projects", headers=staff)
    assert projects.json() == []
    assert outcome["invitations_withdrawn"] == []
    events = (await service.client.get("/api/v1/audit?action=user.offboard", headers=staff)).json()["events"]
    (offboarded,) = events
    assert offboarded["details"] | {"bubbles": None} == {
        "username": username,
        "reason": REASON,
        "account_was_enabled": True,
        "memberships": [{"project": "alpha", "role": "lead"}, {"project": "beta", "role": "member"}],
        "bubbles": None,
        "invitations": [],
        "console_sessions_ended": 1,
    }
    why = f"{username} was offboarded by {people.username('staff')}: {REASON}"
    removals = (await service.client.get("/api/v1/audit?action=member.remove", headers=staff)).json()["events"]
    assert [(event["project_id"], event["details"]["reason"]) for event in removals] == [("alpha", why), ("beta", why)]
    revocations = (await service.client.get("/api/v1/audit?action=bubble.revoke", headers=staff)).json()["events"]
    assert sorted(event["details"]["bubble"] for event in revocations) == sorted(outcome["bubbles_revoked"])
    for bubble_id in outcome["bubbles_revoked"]:
        session = (await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=staff)).json()
        assert session["events"][-1]["summary"] == f"session closed: {why}"

    # Again: nothing left to change, nothing recorded.
    before = await service.snapshot()
    again = await service.client.post(f"/api/v1/users/{username}/offboard", json={"reason": REASON}, headers=staff)
    assert again.status_code == 200
    assert again.json()["already_offboarded"] is True
    assert again.json()["memberships_removed"] == []
    assert await service.snapshot() == before
    assert (await service.client.get("/api/v1/audit/verify", headers=staff)).json()["ok"] is True


async def test_offboarding_withdraws_the_persons_unfinished_invitations(
    service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    staff = people.headers("staff")
    invited = await invitation(service, people, "gamma")
    username, enrollment = invited["enrollment"]["username"], invited["enrollment"]["id"]
    answer = await service.client.post(f"/api/v1/users/{username}/offboard", json={"reason": REASON}, headers=staff)
    assert answer.status_code == 200, answer.text
    assert answer.json()["invitations_withdrawn"] == [enrollment]
    pending = (await service.client.get("/api/v1/enrollments?state=pending", headers=staff)).json()
    assert enrollment not in [item["id"] for item in pending]
    assert keycloak_user(keycloak, username)["enabled"] is False  # kept, disabled, for the record


@pytest.mark.parametrize(
    ("who", "target", "body", "status", "message"),
    [
        ("lead", "leaver", {"reason": REASON}, 403, "only CASD staff may offboard people"),
        ("researcher", "self", {"reason": REASON}, 403, "only CASD staff may offboard people"),
        ("staff", "staff", {"reason": REASON}, 403, "CASD staff may not offboard themselves"),
        ("staff", "leaver", {"reason": "   short  "}, 422, "give a reason of at least 10 characters"),
        ("staff", "leaver", {}, 422, "data: Object missing required field `reason`"),
        ("staff", "nobody", {"reason": REASON}, 404, "no user 'nobody-at-all' in the realm"),
    ],
)
async def test_a_refused_offboarding_changes_nothing(
    service: ServiceUnderTest,
    people: People,
    keycloak: KeycloakServer,
    who: str,
    target: str,
    body: dict[str, Any],
    status: int,
    message: str | None,
) -> None:
    account, _ = leaver(keycloak)
    await member_with_bubble(service, people, "alpha", account.username, "member")
    username = {
        "leaver": account.username,
        "self": people.username("researcher"),
        "staff": people.username("staff"),
        "nobody": "nobody-at-all",
    }[target]
    before = await service.snapshot()
    answer = await service.client.post(f"/api/v1/users/{username}/offboard", json=body, headers=people.headers(who))
    assert answer.status_code == status, answer.text
    if message is not None:
        assert answer.json()["message"] == message
    assert await service.snapshot() == before
    assert keycloak_user(keycloak, account.username)["enabled"] is True
    for name in (people.username("researcher"), people.username("staff")):
        assert keycloak_user(keycloak, name)["enabled"] is True


async def test_withdrawing_an_unfinished_invitation_ends_everything_the_invitee_could_hold(
    service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    # Before completion an invitee has an account and maybe a console session, but no membership, bubble or network.
    staff = people.headers("staff")
    invited = await invitation(service, people, "delta")
    enrollment = invited["enrollment"]
    username, link = enrollment["username"], invited["link"]
    cookie = await console_session(service, username)
    assert await signed_in(service, cookie)
    members_before = service.opa_data("members")

    revoked = await service.client.delete(f"/api/v1/enrollments/{enrollment['id']}", headers=staff)
    assert revoked.status_code == 200, revoked.text
    assert not await signed_in(service, cookie)
    assert keycloak.admin("GET", "/users", params={"username": username, "exact": "true"}).json() == []
    assert (await service.client.get(urlsplit(link).path)).status_code == 410
    assert service.opa_data("members") == members_before
    no_bubble = await service.client.post(
        "/api/v1/bubbles",
        json={"project": "delta", "username": username, "address": None},
        headers=people.hub_headers(),
    )
    assert no_bubble.status_code == 403
    (event,) = (await service.client.get("/api/v1/audit?action=enrollment.revoke", headers=staff)).json()["events"]
    assert event["details"] == {
        "enrollment": enrollment["id"],
        "username": username,
        "keycloak_account_deleted": True,
        "console_sessions_ended": 1,
    }
