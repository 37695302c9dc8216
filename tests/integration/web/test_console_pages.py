"""The console's pages over HTTP: sessions, form validation, refusals, stale decisions, CSRF.

The app runs in-process on SQLite then PostgreSQL with the real OPA and Keycloak (``service``).
The browser test signs in through Keycloak; here a session is opened directly (what the login
callback does once both tokens are verified), so that each refusal path can be tested quickly.
Every refusal is checked to change nothing: rows, the audit log, OPA's copy (``service.snapshot()``).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from infracalc.db import WebSession, create_engine, session_factory
from infracalc.db.base import utc_now
from infracalc.web.sessions import SESSION_COOKIE, Login, open_session
from tests.fixtures.service import CAST, People, ServiceUnderTest

pytestmark = pytest.mark.integration

PROJECT = "survey"


@contextlib.asynccontextmanager
async def database(service: ServiceUnderTest) -> AsyncIterator[Any]:
    """The service's database through an engine of the test's own event loop (the app runs in another one).

    Yields an object with ``sessions``, all that :func:`open_session` uses of a service context.
    """
    engine = create_engine(service.settings.database)
    try:
        yield SimpleNamespace(sessions=session_factory(engine))
    finally:
        await engine.dispose()


async def sign_in(service: ServiceUnderTest, people: People, who: str, *, login_age: timedelta | None = None) -> None:
    """Open a session for ``who`` (as the login callback does) and give its cookie to the test client."""
    now = utc_now()
    login = Login(
        username=people.username(who),
        subject=who,
        roles=frozenset(CAST[who]),
        acr="mfa",
        auth_time=now - (login_age or timedelta(0)),
        keycloak_sid=None,
    )
    async with database(service) as db:
        service.client.cookies.set(SESSION_COOKIE, await open_session(db, login))


async def csrf(service: ServiceUnderTest) -> str:
    """The CSRF token (the middleware's cookie, set by any page)."""
    if "infracalc_csrf" not in service.client.cookies:
        await service.client.get("/signed-out")
    return str(service.client.cookies["infracalc_csrf"])


async def setup_project(service: ServiceUnderTest, people: People) -> None:
    """The project (INFRACALC governance) with its lead, made through the API."""
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": PROJECT, "title": "Survey", "governance": "INFRACALC"}, headers=staff
    )
    assert created.status_code == 201, created.text
    added = await service.client.put(
        f"/api/v1/projects/{PROJECT}/members/{people.username('lead')}", json={"role": "lead"}, headers=staff
    )
    assert added.status_code in {200, 201}, added.text


async def request_rule(service: ServiceUnderTest, people: People, host: str) -> str:
    """A lead's request for ``host``, through the API; its id."""
    answer = await service.client.post(
        f"/api/v1/projects/{PROJECT}/egress-requests",
        json={"host": host, "justification": "Geocoding of survey addresses"},
        headers=people.headers("lead"),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def approve(service: ServiceUnderTest, people: People, rule_id: str) -> None:
    answer = await service.client.post(
        f"/api/v1/egress-requests/{rule_id}/approve", json={"comment": "ok"}, headers=people.headers("staff")
    )
    assert answer.status_code == 200, answer.text


async def test_a_page_without_a_session_sends_to_login_with_the_page_to_come_back_to(
    service: ServiceUnderTest,
) -> None:
    answer = await service.client.get(f"/projects/{PROJECT}?url=https://a.example/", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == f"/login?next=/projects/{PROJECT}%3Furl%3Dhttps%3A//a.example/"
    service.client.cookies.set(SESSION_COOKIE, "not-a-session")
    assert (await service.client.get("/", follow_redirects=False)).headers["location"] == "/login?next=/"


async def test_an_idle_session_ends_and_logout_deletes_the_session(service: ServiceUnderTest, people: People) -> None:
    await sign_in(service, people, "researcher")
    assert (await service.client.get("/")).status_code == 200
    async with database(service) as db, db.sessions() as session, session.begin():
        row = (await session.scalars(select(WebSession))).one()
        assert len(row.id_sha256) == 64
        assert service.client.cookies[SESSION_COOKIE] not in {row.id_sha256, row.username}
        row.last_seen_at = utc_now() - timedelta(minutes=31)
    assert (await service.client.get("/", follow_redirects=False)).status_code == 302
    async with database(service) as db, db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 0

    await sign_in(service, people, "researcher")
    token = await csrf(service)
    out = await service.client.post("/logout", data={"_csrf_token": token})
    assert out.status_code == 200
    async with database(service) as db, db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 0
    assert (await service.client.get("/", follow_redirects=False)).status_code == 302


async def test_a_bad_request_form_keeps_what_was_typed_and_writes_nothing(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "lead")
    token = await csrf(service)
    before = await service.snapshot()
    typed = {
        "host": "not a host!",
        "justification": "Geocoding of survey addresses",
        "ports": "443",
        "expires_in_days": "30",
    }
    answer = await service.client.post(f"/projects/{PROJECT}/egress-requests", data={"_csrf_token": token, **typed})
    assert answer.status_code == 422
    assert 'id="host-error"' in answer.text
    assert 'value="not a host!"' in answer.text
    bad_ports = {**typed, "host": "api.example.org", "ports": "443, https"}
    answer = await service.client.post(f"/projects/{PROJECT}/egress-requests", data={"_csrf_token": token, **bad_ports})
    assert answer.status_code == 422
    assert 'id="ports-error"' in answer.text
    assert 'value="443, https"' in answer.text
    short = {**typed, "host": "api.example.org", "justification": ""}
    answer = await service.client.post(f"/projects/{PROJECT}/egress-requests", data={"_csrf_token": token, **short})
    assert answer.status_code == 422
    assert 'id="justification-error"' in answer.text
    assert await service.snapshot() == before


async def test_a_form_post_without_the_csrf_token_is_refused_and_writes_nothing(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "lead")
    await csrf(service)
    before = await service.snapshot()
    form = {
        "host": "api.example.org",
        "justification": "Geocoding of survey addresses",
        "ports": "443",
        "expires_in_days": "30",
    }
    answer = await service.client.post(f"/projects/{PROJECT}/egress-requests", data=form)
    assert answer.status_code == 403
    assert await service.snapshot() == before


async def test_a_member_who_is_not_lead_is_refused_with_the_policys_reason(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "outsider")
    token = await csrf(service)
    before = await service.snapshot()
    form = {
        "host": "api.example.org",
        "justification": "Geocoding of survey addresses",
        "ports": "443",
        "expires_in_days": "30",
    }
    answer = await service.client.post(f"/projects/{PROJECT}/egress-requests", data={"_csrf_token": token, **form})
    assert answer.status_code in {403, 404}
    assert 'id="message"' in answer.text
    assert await service.snapshot() == before
    staff_page = await service.client.get("/staff/egress-requests")
    assert staff_page.status_code == 403


async def test_a_request_decided_meanwhile_says_so_and_changes_nothing(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    rule = await request_rule(service, people, "api.example.org")
    await sign_in(service, people, "staff")
    page = await service.client.get("/staff/egress-requests")
    assert f'id="pending-{rule}"' in page.text
    # Another member of staff decides first.
    await approve(service, people, rule)
    token = await csrf(service)
    before = await service.snapshot()
    answer = await service.client.post(
        f"/staff/egress-requests/{rule}/deny", data={"_csrf_token": token, "comment": "no"}
    )
    assert answer.status_code == 409
    assert 'id="notice"' in answer.text
    assert await service.snapshot() == before
    # A decision without a comment is refused next to the field.
    other = await request_rule(service, people, "b.example.org")
    before = await service.snapshot()
    answer = await service.client.post(
        f"/staff/egress-requests/{other}/approve", data={"_csrf_token": token, "comment": "  "}
    )
    assert answer.status_code == 422
    assert f'id="comment-{other}-error"' in answer.text
    assert await service.snapshot() == before


async def test_a_governance_switch_needs_a_reason_and_a_confirmation(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    rule = await request_rule(service, people, "api.example.org")
    await approve(service, people, rule)
    await sign_in(service, people, "staff")
    token = await csrf(service)
    before = await service.snapshot()
    path = f"/projects/{PROJECT}/governance"
    answer = await service.client.post(path, data={"_csrf_token": token, "owner": "CASD", "reason": "short"})
    assert answer.status_code == 422
    assert 'id="reason-error"' in answer.text
    assert ">short</textarea>" in answer.text
    reason = "Health data joins the project"
    preview = await service.client.post(path, data={"_csrf_token": token, "owner": "CASD", "reason": reason})
    assert preview.status_code == 200
    assert 'id="confirm-switch"' in preview.text
    assert "api.example.org" in preview.text
    assert await service.snapshot() == before
    done = await service.client.post(
        path, data={"_csrf_token": token, "owner": "CASD", "reason": reason, "confirm": "yes"}, follow_redirects=False
    )
    assert done.status_code == 302
    project = await service.client.get(f"/api/v1/projects/{PROJECT}", headers=people.headers("staff"))
    assert project.json()["governance"] == "CASD"


async def test_changing_networks_needs_a_recent_login_and_says_so(service: ServiceUnderTest, people: People) -> None:
    await sign_in(service, people, "researcher", login_age=timedelta(hours=1))
    token = await csrf(service)
    before = await service.snapshot()
    answer = await service.client.post("/networks", data={"_csrf_token": token, "network": "203.0.113.0/24"})
    assert answer.status_code == 403
    assert 'id="network-error"' in answer.text
    assert 'value="203.0.113.0/24"' in answer.text
    assert await service.snapshot() == before

    await sign_in(service, people, "researcher")
    token = await csrf(service)
    bad = await service.client.post("/networks", data={"_csrf_token": token, "network": "not-a-network"})
    assert bad.status_code == 422
    assert 'value="not-a-network"' in bad.text
    assert await service.snapshot() == before
    added = await service.client.post("/networks", data={"_csrf_token": token, "network": "203.0.113.0/24"})
    assert added.status_code == 200  # redirected home
    assert "203.0.113.0/24" in added.text


async def test_a_refusal_shows_the_policys_reason_in_the_pages_language(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "researcher", login_age=timedelta(hours=1))
    researcher = people.username("researcher")
    token = await csrf(service)
    before = await service.snapshot()
    # French by default: the policy's reason, a staff action's phrase and values put in.
    queue = await service.client.get("/staff/egress-requests")
    assert queue.status_code == 403
    assert "seul le personnel du CASD peut approuver ou refuser les demandes d'accès externe" in html.unescape(
        queue.text
    )
    assert "only CASD staff" not in html.unescape(queue.text)
    project = await service.client.get(f"/projects/{PROJECT}")
    assert project.status_code == 403
    assert f"{researcher} n'est pas membre du projet {PROJECT}" in html.unescape(project.text)
    # Next to a field: the networks need a recent login.
    networks = await service.client.post("/networks", data={"_csrf_token": token, "network": "203.0.113.0/24"})
    assert networks.status_code == 403
    assert 'id="network-error"' in networks.text
    assert "modifiez vos réseaux enregistrés dans les 5 minutes" in html.unescape(networks.text)
    # In English, the policy's own words.
    queue = await service.client.get("/staff/egress-requests?lang=en")
    assert queue.status_code == 403
    assert "only CASD staff may approve or deny egress requests" in html.unescape(queue.text)
    project = await service.client.get(f"/projects/{PROJECT}")
    assert f"{researcher} is not a member of project {PROJECT}" in html.unescape(project.text)
    assert await service.snapshot() == before
    # The egress policy's reason of the URL check, in French too.
    await sign_in(service, people, "lead")
    check = await service.client.get(f"/projects/{PROJECT}?lang=fr&url=https://api.example.org/")
    assert check.status_code == 200
    assert f"aucun accès approuvé du projet {PROJECT} n'autorise api.example.org:443" in html.unescape(check.text)


async def test_a_lead_manages_the_members_from_the_project_page(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "lead")
    token = await csrf(service)
    researcher = people.username("researcher")
    members = f"/projects/{PROJECT}/members"

    added = await service.client.post(
        members, data={"_csrf_token": token, "member_username": researcher, "role": "member"}, follow_redirects=False
    )
    assert added.status_code == 302, added.text
    page = await service.client.get(f"/projects/{PROJECT}?lang=en")
    assert f'<li id="member-{researcher}">{researcher} — project member' in page.text
    assert service.opa_data("members")[PROJECT][researcher] == {"role": "member"}

    # An unknown person, a role that does not exist: the message next to the field, what was typed kept.
    before = await service.snapshot()
    unknown = await service.client.post(
        f"{members}?lang=en", data={"_csrf_token": token, "member_username": "nobody-at-all", "role": "member"}
    )
    assert unknown.status_code == 422
    assert 'id="member_username-error"' in unknown.text
    assert 'value="nobody-at-all"' in unknown.text
    bad_role = await service.client.post(
        f"{members}?lang=en", data={"_csrf_token": token, "member_username": researcher, "role": "owner"}
    )
    assert bad_role.status_code == 422
    assert "Choose lead or member." in bad_role.text
    assert await service.snapshot() == before

    removed = await service.client.post(
        f"{members}/{researcher}/remove", data={"_csrf_token": token}, follow_redirects=False
    )
    assert removed.status_code == 302
    assert researcher not in service.opa_data("members")[PROJECT]
    # Removed meanwhile (this page was stale): said, and nothing changes.
    before = await service.snapshot()
    again = await service.client.post(f"{members}/{researcher}/remove?lang=en", data={"_csrf_token": token})
    assert again.status_code == 409
    assert f"is not a member of project '{PROJECT}'" in html.unescape(again.text)
    assert await service.snapshot() == before

    # A researcher cannot manage members: the policy's reason, nothing written.
    await sign_in(service, people, "researcher")
    before = await service.snapshot()
    refused = await service.client.post(
        members, data={"_csrf_token": await csrf(service), "member_username": researcher, "role": "lead"}
    )
    assert refused.status_code in {403, 404}
    assert 'id="message"' in refused.text
    assert await service.snapshot() == before


async def test_casd_staff_create_a_project_from_the_page(service: ServiceUnderTest, people: People) -> None:
    await sign_in(service, people, "staff")
    token = await csrf(service)
    before = await service.snapshot()
    bad = await service.client.post(
        "/staff/projects?lang=en",
        data={"_csrf_token": token, "id": "Not A Slug", "title": "Births", "governance": "CASD"},
    )
    assert bad.status_code == 422
    assert 'id="id-error"' in bad.text
    assert 'value="Not A Slug"' in bad.text
    assert 'value="Births"' in bad.text
    assert await service.snapshot() == before

    created = await service.client.post(
        "/staff/projects",
        data={"_csrf_token": token, "id": "births", "title": "Births", "governance": "INFRACALC"},
        follow_redirects=False,
    )
    assert created.status_code == 302, created.text
    assert created.headers["location"] == "/projects/births"
    page = await service.client.get("/projects/births?lang=en")
    assert page.status_code == 200
    assert "Births" in page.text
    listed = (await service.client.get("/api/v1/projects/births", headers=people.headers("staff"))).json()
    assert listed["governance"] == "INFRACALC"

    before = await service.snapshot()
    duplicate = await service.client.post(
        "/staff/projects?lang=en", data={"_csrf_token": token, "id": "births", "title": "Again", "governance": "CASD"}
    )
    assert duplicate.status_code == 422
    assert 'id="id-error"' in duplicate.text
    assert await service.snapshot() == before

    await sign_in(service, people, "researcher")
    refused = await service.client.post(
        "/staff/projects",
        data={"_csrf_token": await csrf(service), "id": "mine", "title": "Mine", "governance": "CASD"},
    )
    assert refused.status_code == 403
    assert await service.snapshot() == before
