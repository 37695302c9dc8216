"""CASD staff's oversight pages over HTTP: the audit log and its verification, session search, invitations.

The app runs in-process on SQLite then PostgreSQL with the real OPA and Keycloak; a session is
opened directly (as in :mod:`tests.integration.web.test_console_pages`). Every refusal is checked
to change nothing: rows, the audit log, OPA's copy, and for invitations the enrollments and Keycloak.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import text

from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People, ServiceUnderTest
from tests.integration.service.test_egress_events import start_bubble
from tests.integration.service.test_enrollments import PROJECT, everything, keycloak_user, make_project, new_email
from tests.integration.web.test_console_pages import csrf, database, sign_in
from tests.support.mailbox import Mailbox

pytestmark = pytest.mark.integration


def event_seqs(html: str) -> list[int]:
    """The sequence numbers of the audit events a page shows, in its order."""
    return [int(seq) for seq in re.findall(r'<li id="event-(\d+)" class="event">', html)]


def link(html: str, link_id: str) -> str:
    """The ``href`` of the link ``link_id`` (entities unescaped)."""
    found = re.search(rf'id="{link_id}" href="([^"]+)"', html)
    assert found is not None, f"no link {link_id}"
    return found.group(1).replace("&amp;", "&")


async def some_events(service: ServiceUnderTest, people: People) -> None:
    """A project with two members: three audit events (project.create, then two member changes)."""
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": "survey", "title": "Survey", "governance": "INFRACALC"}, headers=staff
    )
    assert created.status_code == 201, created.text
    for who, role in (("lead", "lead"), ("researcher", "member")):
        added = await service.client.put(
            f"/api/v1/projects/survey/members/{people.username(who)}", json={"role": role}, headers=staff
        )
        assert added.status_code in {200, 201}, added.text


async def test_staff_read_the_audit_log_newest_first_filtered_and_paged(
    service: ServiceUnderTest, people: People
) -> None:
    await some_events(service, people)
    api = (await service.client.get("/api/v1/audit", headers=people.headers("staff"))).json()["events"]
    seqs = sorted(e["seq"] for e in api)
    await sign_in(service, people, "staff")

    page = await service.client.get("/staff/audit?lang=en")
    assert page.status_code == 200
    assert event_seqs(page.text) == seqs[::-1]
    assert 'id="older"' not in page.text
    assert 'id="newer"' not in page.text
    assert 'id="verification-none"' in page.text

    # Two per page: the newest two, then "older", then "newer" back.
    first = await service.client.get("/staff/audit?limit=2")
    assert event_seqs(first.text) == seqs[::-1][:2]
    assert 'id="newer"' not in first.text
    older = await service.client.get(link(first.text, "older"))
    assert event_seqs(older.text) == seqs[::-1][2:4]
    newer = await service.client.get(link(older.text, "newer"))
    assert event_seqs(newer.text) == seqs[::-1][:2]

    # Filters combine; the typed values stay in the form.
    member = people.username("researcher")
    filtered = await service.client.get(
        f"/staff/audit?action=member.add&project=survey&actor={people.username('staff')}"
    )
    assert filtered.status_code == 200
    shown = [e for e in api if e["action"] == "member.add" and e["project_id"] == "survey"]
    assert len(event_seqs(filtered.text)) == len(shown) == 2
    assert member in filtered.text
    assert 'value="member.add"' in filtered.text
    nothing = await service.client.get("/staff/audit?since=2999-01-01T00:00")
    assert 'id="no-events"' in nothing.text


async def test_a_bad_filter_is_shown_next_to_its_field_with_what_was_typed(
    service: ServiceUnderTest, people: People
) -> None:
    await some_events(service, people)
    await sign_in(service, people, "staff")
    before = await service.snapshot()
    answer = await service.client.get("/staff/audit?lang=en&since=yesterday&actor=bob")
    assert answer.status_code == 422
    assert 'id="since-error"' in answer.text
    assert "“yesterday” is not a date and time" in answer.text
    assert 'value="yesterday"' in answer.text
    assert 'value="bob"' in answer.text
    inverted = await service.client.get("/staff/audit?lang=en&since=2026-02-01T00:00&until=2026-01-01T00:00")
    assert inverted.status_code == 422
    assert 'id="until-error"' in inverted.text
    assert 'value="2026-02-01T00:00"' in inverted.text

    words = await service.client.get("/staff/sessions?lang=en&q=%2A%2A%2A&user=ada")
    assert words.status_code == 422
    assert 'id="q-error"' in words.text
    assert "give at least one word" in words.text
    assert 'value="ada"' in words.text
    times = await service.client.get("/staff/sessions?from=soon")
    assert times.status_code == 422
    assert 'id="from-error"' in times.text
    cursor = await service.client.get("/staff/sessions?cursor=not-ours")
    assert cursor.status_code == 422
    assert 'id="notice"' in cursor.text
    assert await service.snapshot() == before


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        # The pages are in French: the policy's "only CASD staff may read the audit log" and so on.
        ("GET", "/staff/audit", "seul le personnel du CASD peut lire le journal d'audit"),
        ("GET", "/staff/audit?since=yesterday", "seul le personnel du CASD peut lire le journal d'audit"),
        ("POST", "/staff/audit/verify", "seul le personnel du CASD peut vérifier le journal d'audit"),
        ("GET", "/staff/sessions?q=pandas", "seul le personnel du CASD peut rechercher des sessions"),
        ("GET", "/staff/sessions/whatever", "seul le personnel du CASD peut lire les sessions"),
        ("GET", "/staff/enrollments", "seul le personnel du CASD peut lister les invitations"),
    ],
)
async def test_a_researcher_gets_the_policys_reason_and_changes_nothing(
    service: ServiceUnderTest, people: People, method: str, path: str, reason: str
) -> None:
    await some_events(service, people)
    await sign_in(service, people, "researcher")
    token = await csrf(service)
    before = await service.snapshot()
    if method == "GET":
        answer = await service.client.get(path)
    else:
        answer = await service.client.post(path, data={"_csrf_token": token})
    assert answer.status_code == 403
    assert f'id="message" class="error" role="alert">{escape(reason)}</p>' in answer.text
    assert 'href="/staff/audit"' not in answer.text  # no staff links in the navigation bar
    assert await service.snapshot() == before


async def test_a_tampered_audit_row_makes_the_page_show_the_fault(service: ServiceUnderTest, people: People) -> None:
    await some_events(service, people)
    await sign_in(service, people, "staff")
    token = await csrf(service)
    intact = await service.client.post("/staff/audit/verify?lang=en", data={"_csrf_token": token})
    assert intact.status_code == 200
    assert re.search(r"Log intact: \d+ events and \d+ checkpoints verified\.", intact.text)
    assert 'id="last-checkpoint"' in intact.text
    csrfless = await service.client.post("/staff/audit/verify")
    assert csrfless.status_code == 403

    async with database(service) as db, db.sessions() as session, session.begin():
        await session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    broken = await service.client.post("/staff/audit/verify?lang=en", data={"_csrf_token": token})
    assert broken.status_code == 200
    assert "Log NOT intact: event modified, at sequence number 2." in broken.text
    assert "event 2 was modified: its contents no longer match its hash" in broken.text
    french = await service.client.post("/staff/audit/verify?lang=fr", data={"_csrf_token": token})
    assert "Journal ALTÉRÉ : événement modifié, au numéro 2." in french.text


async def test_staff_search_sessions_and_read_a_timeline(service: ServiceUnderTest, people: People) -> None:
    bubble_id = await start_bubble(service, people)
    reported = await service.client.post(
        f"/api/v1/sessions/{bubble_id}/events",
        json={"kind": "hub.spawn", "summary": "started the bubble with pandas", "details": {"image": "<scipy>"}},
        headers=people.hub_headers(),
    )
    assert reported.status_code == 201, reported.text
    await sign_in(service, people, "staff")
    before = await service.snapshot()

    everything_page = await service.client.get("/staff/sessions?lang=en")
    assert everything_page.status_code == 200
    assert f'id="session-{bubble_id}"' in everything_page.text
    found = await service.client.get(f"/staff/sessions?lang=en&q=pandas&user={people.username('researcher')}")
    assert f'id="session-{bubble_id}"' in found.text
    assert "1 event(s)" in found.text
    assert "started the bubble with pandas" in found.text
    other = await service.client.get("/staff/sessions?project=nowhere")
    assert 'id="no-sessions"' in other.text

    timeline = await service.client.get(f"/staff/sessions/{bubble_id}?lang=en")
    assert timeline.status_code == 200
    kinds = re.findall(r'<strong class="kind">([^<]+)</strong>', timeline.text)
    api = (await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=people.headers("staff"))).json()
    assert kinds == [e["kind"] for e in api["events"]]
    assert kinds[-1] == "hub.spawn"
    # Details as labelled values, escaped.
    assert "<dt>image</dt><dd>&lt;scipy&gt;</dd>" in timeline.text
    unknown = await service.client.get("/staff/sessions/0123456789abcdef0123456789abcdef")
    assert unknown.status_code == 404
    assert 'id="message"' in unknown.text
    assert await service.snapshot() == before


async def invite_form(service: ServiceUnderTest, **values: str) -> Any:
    token = await csrf(service)
    form = {"first_name": "Ada", "last_name": "Lovelace", "project": PROJECT, "role": "member", **values}
    return await service.client.post("/staff/enrollments?lang=en", data={"_csrf_token": token, **form})


async def test_staff_invite_resend_and_revoke_from_the_page(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer, mailbox: Mailbox
) -> None:
    service = enroll_service
    await make_project(service, people)
    await sign_in(service, people, "staff")
    page = await service.client.get("/staff/enrollments?lang=en")
    assert page.status_code == 200
    assert f'<option value="{PROJECT}">' in page.text
    email = new_email()

    # Bad values: the message next to the field, what was typed kept; nothing in the database, the log or Keycloak.
    before = await everything(service, keycloak, email)
    bad = await invite_form(service, email="not an address", expires_in_hours="48")
    assert bad.status_code == 422
    assert 'id="email-error"' in bad.text
    assert 'value="not an address"' in bad.text
    assert 'value="48"' in bad.text
    blank = await invite_form(service, email=email, first_name=" ", expires_in_hours="two days")
    assert blank.status_code == 422
    assert 'id="first_name-error"' in blank.text
    assert 'id="expires_in_hours-error"' in blank.text
    too_long = await invite_form(service, email=email, expires_in_hours="9999")
    assert 'id="expires_in_hours-error"' in too_long.text
    assert "1 to 336" in too_long.text
    taken = await invite_form(service, email=people.accounts["researcher"].email)
    assert taken.status_code == 409
    assert 'id="email-error"' in taken.text
    assert "already has an account" in taken.text
    assert await everything(service, keycloak, email) == before

    # A good invitation: the link shown once, and mailed.
    done = await invite_form(service, email=email, role="lead")
    assert done.status_code == 201, done.text
    assert 'id="outcome"' in done.text
    assert f"The link was e-mailed to {email}." in done.text
    shown = re.search(r'<code id="outcome-link">([^<]+)</code>', done.text)
    assert shown is not None
    assert shown.group(1) in mailbox.wait_for(email)[0].get_content()
    enrollment_id = re.findall(r'<tr id="enrollment-([0-9a-f]+)">', done.text)[0]
    assert keycloak_user(keycloak, email) is not None

    # Resend: a new link; revoke: the account goes; a second revoke is stale and changes nothing.
    token = await csrf(service)
    resent = await service.client.post(f"/staff/enrollments/{enrollment_id}/resend", data={"_csrf_token": token})
    assert resent.status_code == 200
    again = re.search(r'<code id="outcome-link">([^<]+)</code>', resent.text)
    assert again is not None
    assert again.group(1) != shown.group(1)
    revoked = await service.client.post(
        f"/staff/enrollments/{enrollment_id}/revoke?lang=en", data={"_csrf_token": token}, follow_redirects=True
    )
    assert revoked.status_code == 200
    assert f"Invitation {enrollment_id} is revoked" in revoked.text
    assert keycloak_user(keycloak, email) is None
    before = await everything(service, keycloak, email)
    for action in ("revoke", "resend"):
        stale = await service.client.post(
            f"/staff/enrollments/{enrollment_id}/{action}?lang=en", data={"_csrf_token": token}
        )
        assert stale.status_code == 409
        assert "This invitation changed meanwhile" in stale.text
        assert "already revoked" in stale.text or "cannot be sent again" in stale.text
    assert await everything(service, keycloak, email) == before


async def test_an_invited_email_with_an_account_gets_its_membership_offered(
    enroll_service: ServiceUnderTest, people: People
) -> None:
    service = enroll_service
    await make_project(service, people)
    await sign_in(service, people, "staff")
    taken = await invite_form(service, email=people.accounts["researcher"].email)
    assert taken.status_code == 409
    # That person needs a membership, not an invitation: the page offers it, and one click adds it.
    researcher = people.accounts["researcher"].username
    assert 'id="offer-form"' in taken.text
    assert f"add them to project {PROJECT} as project member" in taken.text
    added = await service.client.post(
        "/staff/enrollments/membership?lang=en",
        data={"_csrf_token": await csrf(service), "username": researcher, "project": PROJECT, "role": "member"},
    )
    assert added.status_code == 200, added.text
    assert f"{researcher} is now project member of project {PROJECT}" in added.text
    assert service.opa_data("members")[PROJECT][researcher] == {"role": "member"}
    audit = (await service.client.get("/api/v1/audit", headers=people.headers("staff"))).json()
    events = audit["events"] if isinstance(audit, dict) else audit
    assert any(e["action"] == "member.add" and e["details"]["username"] == researcher for e in events)


async def test_a_lead_cannot_invite_from_the_page(
    enroll_service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    service = enroll_service
    await make_project(service, people)
    await sign_in(service, people, "lead")
    email = new_email()
    before = await everything(service, keycloak, email)
    for values in ({"email": email}, {"email": "not an address"}):
        answer = await invite_form(service, **values)
        assert answer.status_code == 403
        assert "only CASD staff may" in answer.text
    assert await everything(service, keycloak, email) == before
