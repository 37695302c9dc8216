"""The offboarding page over HTTP: a confirmation first, then everything stops; refusals change nothing.

The app runs in-process on SQLite then PostgreSQL with the real OPA and Keycloak (``service``); a
console session is opened directly, as the login callback does (the Chromium test signs in for real).
"""

from __future__ import annotations

import html

import pytest

from infracalc.identity import DemoAccount
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People, ServiceUnderTest
from tests.integration.service.test_offboarding import console_session, keycloak_user, member_with_bubble
from tests.integration.web.test_console_pages import csrf, sign_in

pytestmark = pytest.mark.integration

REASON = "end of the research contract"


async def leaver_with_bubble(service: ServiceUnderTest, people: People, keycloak: KeycloakServer) -> DemoAccount:
    account = keycloak.add_account("leaver")
    await member_with_bubble(service, people, "cohort", account.username, "member")
    return account


async def test_staff_see_what_stops_then_confirm_and_the_person_is_offboarded(
    service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    account = await leaver_with_bubble(service, people, keycloak)
    username = account.username
    await console_session(service, username)
    await sign_in(service, people, "staff")
    page = await service.client.get(f"/staff/offboarding?username={username}&lang=en")
    assert page.status_code == 200
    assert f'value="{username}"' in page.text

    token = await csrf(service)
    form = {"_csrf_token": token, "username": username, "reason": REASON}
    before = await service.snapshot()
    preview = await service.client.post("/staff/offboarding", data=form)
    assert preview.status_code == 200, preview.text
    text = html.unescape(preview.text)
    assert f"If you confirm that {username} leaves:" in text
    assert "they will be removed from the projects: cohort;" in text
    assert "open bubbles revoked (tunnels cut, servers stopped): 1;" in text
    assert 'name="confirm" value="yes"' in preview.text
    assert await service.snapshot() == before  # the preview writes nothing
    assert keycloak_user(keycloak, username)["enabled"] is True

    # A confirmation sent for another name than the one previewed only previews that one.
    other = await service.client.post(
        "/staff/offboarding",
        data={**form, "username": people.username("researcher"), "confirm": "yes", "previewed": username},
    )
    assert other.status_code == 200
    assert 'id="consequences"' in other.text
    assert await service.snapshot() == before
    done = await service.client.post("/staff/offboarding", data={**form, "confirm": "yes", "previewed": username})
    assert done.status_code == 200, done.text
    text = html.unescape(done.text)
    assert f"{username} is offboarded." in text
    assert "Removed from the projects: cohort." in text
    assert "Console sessions ended: 1." in text
    assert keycloak_user(keycloak, username)["enabled"] is False
    assert username not in service.opa_data("members")["cohort"]
    events = (await service.client.get("/api/v1/audit?action=user.offboard", headers=people.headers("staff"))).json()
    assert [event["details"]["reason"] for event in events["events"]] == [REASON]


@pytest.mark.parametrize(
    ("who", "typed", "status", "shown"),
    [
        ("lead", {"reason": REASON}, 403, "only CASD staff may offboard people"),
        ("staff", {"username": "self", "reason": REASON}, 403, "CASD staff may not offboard themselves"),
        ("staff", {"reason": "too short"}, 422, "Give a reason of at least 10 characters."),
        ("staff", {"username": "", "reason": REASON}, 422, "Give the person's username."),
        ("staff", {"username": "nobody-at-all", "reason": REASON}, 404, "no user 'nobody-at-all' in the realm"),
    ],
)
async def test_a_refused_offboarding_says_why_keeps_what_was_typed_and_changes_nothing(
    service: ServiceUnderTest,
    people: People,
    keycloak: KeycloakServer,
    who: str,
    typed: dict[str, str],
    status: int,
    shown: str,
) -> None:
    account = await leaver_with_bubble(service, people, keycloak)
    await sign_in(service, people, who)
    username = {"self": people.username("staff")}.get(
        typed.get("username", ""), typed.get("username", account.username)
    )
    token = await csrf(service)
    before = await service.snapshot()
    for confirm in ({}, {"confirm": "yes", "previewed": username}):
        answer = await service.client.post(
            "/staff/offboarding?lang=en",
            data={"_csrf_token": token, "username": username, "reason": typed["reason"], **confirm},
        )
        assert answer.status_code == status, answer.text
        assert shown in html.unescape(answer.text)
        if status == 422:
            assert f'value="{username}"' in answer.text  # what was typed is kept
    assert await service.snapshot() == before
    assert keycloak_user(keycloak, account.username)["enabled"] is True


async def test_the_form_needs_its_csrf_token(
    service: ServiceUnderTest, people: People, keycloak: KeycloakServer
) -> None:
    account = await leaver_with_bubble(service, people, keycloak)
    await sign_in(service, people, "staff")
    await csrf(service)
    before = await service.snapshot()
    forged = await service.client.post(
        "/staff/offboarding", data={"username": account.username, "reason": REASON, "confirm": "yes"}
    )
    assert forged.status_code == 403
    assert await service.snapshot() == before
    assert keycloak_user(keycloak, account.username)["enabled"] is True
