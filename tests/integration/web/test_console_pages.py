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
from urllib.parse import parse_qs, urlsplit

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
        f"/staff/egress-requests/{rule}/deny", data={"_csrf_token": token, "comment": "no"}, follow_redirects=False
    )
    assert answer.status_code == 303  # back to the queue, which says so
    page = await service.client.get(answer.headers["location"])
    assert 'id="notice"' in page.text
    assert "la demande d'accès à api.example.org est déjà approuvée" in html.unescape(page.text)  # by host
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
    assert 'id="rules-stopping"' in preview.text
    assert "api.example.org" in preview.text
    assert await service.snapshot() == before
    done = await service.client.post(
        path, data={"_csrf_token": token, "owner": "CASD", "reason": reason, "confirm": "yes"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/projects/{PROJECT}?done=switched&subject=CASD"
    project = await service.client.get(f"/api/v1/projects/{PROJECT}", headers=people.headers("staff"))
    assert project.json()["governance"] == "CASD"
    # Back to INFRACALC: the same confirmation, listing the rules that apply again.
    before = await service.snapshot()
    back = await service.client.post(
        f"{path}?lang=en", data={"_csrf_token": token, "owner": "INFRACALC", "reason": "The health data left again"}
    )
    assert 'id="rules-resuming"' in back.text
    assert "1 external access rule(s) apply again: api.example.org." in back.text
    assert 'id="confirm-switch"' in back.text
    assert await service.snapshot() == before


async def test_changing_networks_needs_a_recent_login_and_says_so(service: ServiceUnderTest, people: People) -> None:
    await sign_in(service, people, "researcher", login_age=timedelta(hours=1))
    token = await csrf(service)
    before = await service.snapshot()
    # Said when the page opens: no form to fill in vain.
    home = await service.client.get("/?lang=en")
    assert 'id="networks-refused"' in home.text
    assert "change your registered networks within 5 minutes of signing in" in home.text
    assert 'id="network-form"' not in home.text
    # A post from a page opened earlier is refused all the same, and changes nothing.
    answer = await service.client.post("/networks", data={"_csrf_token": token, "network": "203.0.113.0/24"})
    assert 'id="networks-refused"' in answer.text
    assert await service.snapshot() == before

    await sign_in(service, people, "researcher")
    token = await csrf(service)
    home = await service.client.get("/?lang=en")
    assert "IPv4 /16 and IPv6 /48 at widest" in home.text  # the one rule, as the API applies it
    bad = await service.client.post("/networks?lang=en", data={"_csrf_token": token, "network": "not-a-network"})
    assert bad.status_code == 422
    assert 'value="not-a-network"' in bad.text
    wide = await service.client.post("/networks?lang=en", data={"_csrf_token": token, "network": "10.0.0.0/8"})
    assert wide.status_code == 422
    assert "is too wide: IPv4 networks may be /16 at widest" in html.unescape(wide.text)
    assert await service.snapshot() == before
    added = await service.client.post("/networks", data={"_csrf_token": token, "network": "203.0.113.0/24"})
    assert added.status_code == 200  # redirected home
    assert "203.0.113.0/24" in added.text
    assert 'id="done"' in added.text


async def test_a_refusal_shows_the_policys_reason_in_the_pages_language(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "researcher", login_age=timedelta(hours=1))
    researcher = people.username("researcher")
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
    # When the page opens: the networks need a recent login.
    networks = await service.client.get("/")
    assert 'id="networks-refused"' in networks.text
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
    assert added.status_code == 303, added.text
    assert added.headers["location"] == f"/projects/{PROJECT}?done=member_member&subject={researcher}#members-heading"
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

    # Removing asks first, on a page of its own, and changes nothing until confirmed.
    confirm = await service.client.get(f"{members}/{researcher}/remove?lang=en")
    assert confirm.status_code == 200
    assert f"Remove {researcher} from the project?" in html.unescape(confirm.text)
    assert 'id="confirm-remove"' in confirm.text
    assert await service.snapshot() == before
    removed = await service.client.post(
        f"{members}/{researcher}/remove", data={"_csrf_token": token}, follow_redirects=False
    )
    assert removed.status_code == 303
    assert researcher not in service.opa_data("members")[PROJECT]
    # Removed meanwhile (this page was stale): said, and nothing changes.
    before = await service.snapshot()
    again = await service.client.post(f"{members}/{researcher}/remove?lang=en", data={"_csrf_token": token})
    assert 'id="notice"' in again.text
    assert f"is not a member of project '{PROJECT}'" in html.unescape(again.text)
    assert await service.snapshot() == before
    gone = await service.client.get(f"{members}/{researcher}/remove?lang=en")
    assert gone.status_code == 404

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
    # A sentence a person can act on, not the pattern the API checks with.
    assert "3 to 64 characters: lowercase letters, digits and single hyphens" in bad.text
    assert "regex" not in bad.text
    assert "^[a-z]" not in html.unescape(bad.text)
    # Every refused field at once.
    worse = await service.client.post(
        "/staff/projects?lang=en", data={"_csrf_token": token, "id": "-", "title": "", "governance": "NOBODY"}
    )
    for field in ("id", "title", "governance"):
        assert f'id="{field}-error"' in worse.text
    assert "To correct (3):" in worse.text
    assert await service.snapshot() == before

    created = await service.client.post(
        "/staff/projects",
        data={"_csrf_token": token, "id": "births", "title": "Births", "governance": "INFRACALC"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/projects/births?done=created&subject=births"
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


async def test_an_inspect_rule_restricts_methods_and_paths_over_https_and_every_page_shows_its_terms(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "lead")
    token = await csrf(service)
    form = {
        "_csrf_token": token,
        "host": "data.example.org",
        "ports": "443",
        "mode": "tunnel",
        "methods": "get",
        "path_prefixes": "/v1/",
        "expires_in_days": "30",
        "justification": "Open data of the survey's region",
    }
    before = await service.snapshot()
    # A tunnel is opaque: restricting its methods is refused at the field, with the sentence why.
    refused = await service.client.post(f"/projects/{PROJECT}/egress-requests?lang=en", data=form)
    assert refused.status_code == 422
    assert 'id="methods-error"' in refused.text
    assert "the proxy never sees a method or a path, so it cannot restrict methods" in html.unescape(refused.text)
    assert await service.snapshot() == before
    # An inspect rule takes them: they bind HTTPS too, and every page shows the rule's terms.
    accepted = await service.client.post(
        f"/projects/{PROJECT}/egress-requests?lang=en", data={**form, "mode": "inspect"}
    )
    assert accepted.status_code == 200, accepted.text
    assert "Your request for data.example.org is sent" in accepted.text
    [rule] = (
        await service.client.get(f"/api/v1/projects/{PROJECT}/egress-requests", headers=people.headers("lead"))
    ).json()
    assert (rule["mode"], rule["opaque"], rule["methods"], rule["path_prefixes"]) == (
        "inspect",
        False,
        ["GET"],
        ["/v1/"],
    )
    assert f'id="terms-{rule["id"]}"' in accepted.text
    await sign_in(service, people, "staff")
    queue = await service.client.get("/staff/egress-requests?lang=en")
    terms = html.unescape(queue.text.split(f'id="terms-{rule["id"]}"', 1)[1].split("</ul>", 1)[0])
    assert "inspected (each request decided)" in terms
    assert "HTTP methods : GET" in terms
    assert "Path prefixes : /v1/" in terms
    await approve(service, people, rule["id"])
    await sign_in(service, people, "lead")
    page = await service.client.get(f"/projects/{PROJECT}?lang=en&url=https://data.example.org/v1/x")
    assert f'id="rule-{rule["id"]}"' in page.text
    result = html.unescape(page.text.split('id="check-result"', 1)[1].split("</p>", 1)[0])
    assert "allow" in result.lower(), result
    outside = await service.client.get(f"/projects/{PROJECT}?lang=en&url=https://data.example.org/v2/x")
    result = html.unescape(outside.text.split('id="check-result"', 1)[1].split("</p>", 1)[0])
    assert "allows GET /v2/x on data.example.org:443" in result, result


async def test_every_refused_field_of_a_request_comes_back_at_once(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "lead")
    token = await csrf(service)
    before = await service.snapshot()
    answer = await service.client.post(
        f"/projects/{PROJECT}/egress-requests?lang=en",
        data={
            "_csrf_token": token,
            "host": "*",
            "ports": "0, 443",
            "mode": "opaque",
            "expires_in_days": "400",
            "justification": "too short",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("#error-summary")
    page = await service.client.get(answer.headers["location"])
    assert page.status_code == 422
    for field in ("host", "ports", "mode", "expires_in_days", "justification"):
        assert f'id="{field}-error"' in page.text, field
    assert "To correct (5):" in page.text
    assert "Give 1 to 32 port numbers, from 1 to 65535" in page.text
    assert 'value="0, 443"' in page.text
    # The language switch leads to the same page and form: the same messages, in French.
    switched = await service.client.get(answer.headers["location"].split("#")[0].replace("lang=en", "lang=fr"))
    assert "À corriger (5) :" in html.unescape(switched.text)
    assert "Indiquez une durée de 1 à 365 jours." in html.unescape(switched.text)
    assert 'value="0, 443"' in switched.text
    # The same page opened anew shows a new form.
    fresh = await service.client.get(f"/projects/{PROJECT}")
    assert 'id="error-summary"' not in fresh.text
    assert await service.snapshot() == before


async def test_the_language_switch_keeps_the_page_its_query_and_messages(
    service: ServiceUnderTest, people: People
) -> None:
    await sign_in(service, people, "staff")
    audit = await service.client.get("/staff/audit?action=project.create&project=survey")
    switch = urlsplit(html.unescape(audit.text.split('id="language-switch" href="', 1)[1].split('"', 1)[0]))
    assert switch.path == "/staff/audit"
    assert parse_qs(switch.query) == {"action": ["project.create"], "project": ["survey"], "lang": ["en"]}
    done = await service.client.get("/?done=network_added&subject=203.0.113.0/24&lang=en")
    assert "The network 203.0.113.0/24 is registered." in done.text
    unknown = await service.client.get("/?done=<script>&lang=en")
    assert 'id="done"' not in unknown.text


async def test_a_browser_gets_pages_for_errors_and_a_program_gets_json(
    service: ServiceUnderTest, people: People
) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    missing = await service.client.get("/no/such/page", headers=browser)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Page introuvable" in missing.text
    english = await service.client.get("/no/such/page?lang=en", headers=browser)
    assert "Page not found" in english.text
    assert (await service.client.get("/no/such/page")).json()["error"] == "not_found"
    api = await service.client.get("/api/v1/no-such-route", headers=browser)
    assert api.status_code == 404
    assert api.json()["error"] == "not_found"
    await sign_in(service, people, "lead")
    method = await service.client.get(f"/projects/{PROJECT}/egress-requests?lang=en", headers=browser)
    assert method.status_code == 405
    assert "This address sends a form; it shows no page." in method.text
    forged = await service.client.post("/networks?lang=en", data={"network": "203.0.113.0/24"}, headers=browser)
    assert forged.status_code == 403
    assert "Form expired" in forged.text
    assert 'href="/?lang=fr"' in forged.text  # the switch of a refused post leads home, not to the post


async def test_forms_that_would_be_refused_say_so_when_they_open(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    await sign_in(service, people, "lead")
    before = await service.snapshot()
    governance = await service.client.get(f"/projects/{PROJECT}/governance?lang=en")
    assert governance.status_code == 403
    assert "only CASD staff may switch a project's governance" in html.unescape(governance.text)
    assert 'id="governance-form"' not in governance.text
    staff_projects = await service.client.get("/staff/projects?lang=en")
    assert staff_projects.status_code == 403
    assert "only CASD staff may create projects" in staff_projects.text
    await sign_in(service, people, "researcher")
    remove = await service.client.get(f"/projects/{PROJECT}/members/{people.username('lead')}/remove?lang=en")
    assert remove.status_code in {403, 404}
    assert 'id="confirm-remove"' not in remove.text
    assert await service.snapshot() == before
