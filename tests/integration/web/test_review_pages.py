"""The review queues over HTTP: staff read and decide exports and imports, members download what was released.

The app runs in-process on SQLite then PostgreSQL with the real OPA, Keycloak people and versitygw
(``service``); a bubble submits exports and a researcher uploads imports through the API, staff act
through the pages (a session opened directly, as in ``test_console_pages.py``). Every refusal is
checked to change nothing: rows, the audit log, OPA's copy, S3 objects and uploads
(``service.snapshot()``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import requests

from infracalc.db import Governance
from infracalc.db.base import utc_now
from infracalc.web.sessions import SESSION_COOKIE, Login, open_session
from tests.fixtures.service import CAST, People, ServiceUnderTest
from tests.integration.service.test_exports import (
    SECOND_STAFF,
    audit_actions,
    bubble,
    high_risk_csv,
    medium_risk_csv,
    project,
    second_staff,
    submit,
)
from tests.integration.web.test_console_pages import csrf, database

pytestmark = pytest.mark.integration

SLUG = "weather"
OCTETS = {"Content-Type": "application/octet-stream"}


async def sign_in(service: ServiceUnderTest, people: People, who: str) -> None:
    """Open a session for ``who`` (the cast, or the second member of staff) and give its cookie to the client."""
    login = Login(
        username=people.username(who),
        subject=who,
        roles=frozenset(CAST.get(who, ("casd-staff",))),
        acr="mfa",
        auth_time=utc_now(),
        keycloak_sid=None,
    )
    async with database(service) as db:
        service.client.cookies.set(SESSION_COOKIE, await open_session(db, login))


async def submitted(service: ServiceUnderTest, people: People, content: bytes, who: str = "researcher") -> str:
    """An export of ``content`` submitted from a bubble of ``who``; its id."""
    answer = await submit(service, await bubble(service, people, SLUG, who), SLUG, content)
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "in_review", answer.json()
    return str(answer.json()["id"])


async def vote_page(
    service: ServiceUnderTest,
    export_id: str,
    verdict: str,
    comment: str,
    *,
    state: str = "in_review",
    version: int = 1,
    follow: bool = True,
) -> Any:
    """A vote through the export page's form (the state and version the page showed), and the page it leads to."""
    return await service.client.post(
        f"/staff/exports/{export_id}/reviews",
        data={
            "_csrf_token": await csrf(service),
            "verdict": verdict,
            "comment": comment,
            "state": state,
            "version": str(version),
        },
        follow_redirects=follow,
    )


async def imported(service: ServiceUnderTest, people: People, name: str, content: bytes) -> str:
    """A researcher's upload into the CASD project (held for review); its id."""
    answer = await service.client.post(
        f"/api/v1/projects/{SLUG}/imports",
        params={"name": name},
        content=content,
        headers={**people.headers("researcher"), **OCTETS},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "in_review"
    return str(answer.json()["id"])


def text_of(html: str) -> str:
    """The page's text without tags, whitespace folded (to read sentences split by markup)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_researcher_opening_the_queues_gets_the_policys_reason(
    service: ServiceUnderTest, people: People
) -> None:
    await project(service, people, SLUG, Governance.CASD, "researcher")
    export_id = await submitted(service, people, medium_risk_csv())
    import_id = await imported(service, people, "survey.csv", b"a,b\n1,2\n")
    await sign_in(service, people, "researcher")
    token = await csrf(service)
    before = await service.snapshot()
    queue = await service.client.get("/staff/exports")
    assert queue.status_code == 403
    assert "seul le personnel du CASD peut lister les exports en attente de relecture" in queue.text
    detail = await service.client.get(f"/staff/exports/{export_id}")
    assert detail.status_code == 403
    assert "seul le personnel du CASD peut lister les exports en attente de relecture" in detail.text
    imports = await service.client.get("/staff/imports")
    assert imports.status_code == 403
    assert "seul le personnel du CASD peut voir les imports en attente de relecture" in imports.text
    assert (await service.client.get(f"/staff/imports/{import_id}")).status_code == 403
    vote = await vote_page(service, export_id, "approve", "fine")
    assert vote.status_code == 403
    decide = await service.client.post(
        f"/staff/imports/{import_id}/decision",
        data={
            "_csrf_token": token,
            "decision": "approve",
            "sensitivity": "standard",
            "comment": "ok",
            "state": "in_review",
        },
    )
    assert decide.status_code == 403
    assert (
        await service.client.get(f"/staff/exports/{export_id}/versions/1/file", follow_redirects=False)
    ).status_code == 403
    assert (await service.client.get(f"/staff/imports/{import_id}/file")).status_code == 403
    assert await service.snapshot() == before


async def test_two_reviewers_release_a_high_risk_export_and_a_member_downloads_it(  # noqa: PLR0915 - one story
    service: ServiceUnderTest, people: People
) -> None:
    second_staff(people)
    await project(service, people, SLUG, Governance.CASD, "researcher")
    content = high_risk_csv()
    export_id = await submitted(service, people, content)

    await sign_in(service, people, "staff")
    queue = await service.client.get("/staff/exports")
    assert queue.status_code == 200
    section = queue.text[queue.text.index(f'id="export-{export_id}"') :]
    words = text_of(section)
    assert people.username("researcher") in words
    assert "CASD" in words
    assert "2 of 2 approval(s) missing" in text_of((await service.client.get("/staff/exports?lang=en")).text)
    # The checks' reasons, in the queue and, finding by finding, on the export's page.
    found = (await service.client.get(f"/api/v1/exports/{export_id}", headers=people.headers("staff"))).json()
    assert found["reasons"]
    for reason in found["reasons"]:
        assert reason in html.unescape(queue.text)
    detail = await service.client.get(f"/staff/exports/{export_id}?lang=en")
    for finding in found["versions"][0]["report"]["findings"]:
        assert finding["reason"] in html.unescape(detail.text)
    assert 'id="review-form"' in detail.text

    # The reviewer reads the file before voting: an audited link to the very bytes submitted.
    link = await service.client.get(f"/staff/exports/{export_id}/versions/1/file", follow_redirects=False)
    assert link.status_code == 303
    assert requests.get(link.headers["location"], timeout=30).content == content
    assert [a for a, _ in await audit_actions(service)].count("export.inspect") == 1

    first = await vote_page(service, export_id, "approve", "", follow=False)  # approving needs no comment
    assert first.status_code == 303
    assert first.headers["location"] == f"/staff/exports/{export_id}?done=voted"
    after_one = await service.client.get(f"/staff/exports/{export_id}?lang=en")
    words = text_of(after_one.text)
    assert f"Approved by {people.username('staff')}: needs a second reviewer." in words
    assert "You have voted on this version already." in words
    assert 'id="review-form"' not in after_one.text
    # The same reviewer cannot count twice: the domain refuses, the page says so, nothing changes.
    before = await service.snapshot()
    again = await vote_page(service, export_id, "approve", "")
    assert again.status_code == 200  # back to the export, which says so
    assert 'id="notice"' in again.text
    assert await service.snapshot() == before

    # The researcher sees it waiting, with no download yet.
    await sign_in(service, people, "researcher")
    page = await service.client.get(f"/projects/{SLUG}?lang=en")
    assert 'id="download-' not in page.text
    refused = await service.client.get(f"/projects/{SLUG}/exports/{export_id}/download", follow_redirects=False)
    assert refused.status_code == 409

    await sign_in(service, people, SECOND_STAFF)
    second = await vote_page(service, export_id, "approve", "Counts checked against the protocol", follow=False)
    assert second.status_code == 303
    assert f'id="export-{export_id}"' not in (await service.client.get("/staff/exports")).text

    await sign_in(service, people, "researcher")
    page = await service.client.get(f"/projects/{SLUG}?lang=en")
    row = text_of(page.text[page.text.index(f'id="export-{export_id}"') :].split("</tr>", 1)[0])
    assert "released" in row
    assert "Counts checked against the protocol" in row
    assert "approved without comment" in row
    assert f'id="download-{export_id}"' in page.text
    download = await service.client.get(f"/projects/{SLUG}/exports/{export_id}/download", follow_redirects=False)
    assert download.status_code == 303
    assert requests.get(download.headers["location"], timeout=30).content == content
    assert [a for a, _ in await audit_actions(service)].count("export.download") == 1


async def test_a_refusal_without_comment_is_shown_next_to_the_field_and_changes_nothing(
    service: ServiceUnderTest, people: People
) -> None:
    await project(service, people, SLUG, Governance.CASD, "researcher")
    export_id = await submitted(service, people, medium_risk_csv())
    await sign_in(service, people, "staff")
    before = await service.snapshot()
    for verdict in ("reject", "changes"):
        answer = await vote_page(service, export_id, verdict, "   ")
        assert answer.status_code == 422
        assert 'id="comment-error"' in answer.text
        assert f'id="verdict-{verdict}" name="verdict" value="{verdict}" checked' in answer.text
    no_verdict = await vote_page(service, export_id, "", "typed words")
    assert no_verdict.status_code == 422
    assert 'id="verdict-error"' in no_verdict.text
    assert ">typed words</textarea>" in no_verdict.text
    too_long = await vote_page(service, export_id, "reject", "x" * 4001)
    assert too_long.status_code == 422
    assert 'id="comment-error"' in too_long.text
    assert await service.snapshot() == before


async def test_an_export_decided_meanwhile_says_so_and_changes_nothing(
    service: ServiceUnderTest, people: People
) -> None:
    second_staff(people)
    await project(service, people, SLUG, Governance.CASD, "researcher")
    export_id = await submitted(service, people, medium_risk_csv())
    await sign_in(service, people, "staff")
    page = await service.client.get(f"/staff/exports/{export_id}")
    assert 'name="state" value="in_review"' in page.text
    # Another reviewer rejects it first, through the API.
    other = await service.client.post(
        f"/api/v1/exports/{export_id}/reviews",
        json={"verdict": "reject", "comment": "Cells below the threshold"},
        headers=people.headers(SECOND_STAFF),
    )
    assert other.status_code == 200, other.text
    before = await service.snapshot()
    answer = await vote_page(service, export_id, "approve", "fine")
    assert answer.status_code == 200  # back to the export, which says so
    assert 'id="notice"' in answer.text
    assert 'id="review-form"' not in answer.text
    assert await service.snapshot() == before


async def test_the_requester_cannot_review_their_own_export(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, SLUG, Governance.CASD, "staff")
    export_id = await submitted(service, people, medium_risk_csv(), who="staff")
    await sign_in(service, people, "staff")
    page = await service.client.get(f"/staff/exports/{export_id}")
    assert f'id="own-{export_id}"' in page.text
    assert 'id="review-form"' not in page.text
    before = await service.snapshot()
    answer = await vote_page(service, export_id, "approve", "mine")
    assert answer.status_code == 422  # back to the form, the policy's reason next to the vote
    assert 'id="verdict-error"' in answer.text
    assert "Le demandeur d&#39;un export ne peut pas le relire" in answer.text  # the policy's reason, in French
    assert await service.snapshot() == before


async def test_staff_read_and_decide_an_import_and_refusals_change_nothing(
    service: ServiceUnderTest, people: People
) -> None:
    await project(service, people, SLUG, Governance.CASD, "researcher")
    content = b"station,temp\nparis,12\n"
    import_id = await imported(service, people, "stations.csv", content)
    await sign_in(service, people, "staff")
    queue = await service.client.get("/staff/imports?lang=en")
    assert queue.status_code == 200
    row = text_of(queue.text[queue.text.index(f'id="import-{import_id}"') :].split("</tr>", 1)[0])
    assert "stations.csv" in row
    assert "under CASD governance every import is reviewed by CASD staff" in row
    detail = await service.client.get(f"/staff/imports/{import_id}")
    assert 'id="decision-form"' in detail.text

    token = await csrf(service)
    path = f"/staff/imports/{import_id}/decision"
    before = await service.snapshot()
    no_reason = await service.client.post(
        path, data={"_csrf_token": token, "decision": "reject", "comment": " ", "state": "in_review"}
    )
    assert no_reason.status_code == 422
    assert 'id="comment-error"' in no_reason.text
    assert 'id="decision-reject" name="decision" value="reject" checked' in no_reason.text
    no_sensitivity = await service.client.post(
        path, data={"_csrf_token": token, "decision": "approve", "comment": "Public stations", "state": "in_review"}
    )
    assert no_sensitivity.status_code == 422
    assert 'id="sensitivity-error"' in no_sensitivity.text
    assert ">Public stations</textarea>" in no_sensitivity.text
    assert await service.snapshot() == before

    # The reviewer reads the file in review (audited), then releases it.
    read = await service.client.get(f"/staff/imports/{import_id}/file")
    assert read.status_code == 200
    assert read.content == content
    assert "attachment" in read.headers["content-disposition"]
    released = await service.client.post(
        path,
        data={
            "_csrf_token": token,
            "decision": "approve",
            "sensitivity": "standard",
            "comment": "Public stations",
            "state": "in_review",
        },
        follow_redirects=False,
    )
    assert released.status_code == 303
    assert released.headers["location"] == "/staff/imports?done=import_approved&subject=stations.csv"
    assert f'id="import-{import_id}"' not in (await service.client.get("/staff/imports")).text

    # A second decision from the stale page says it was decided, and changes nothing.
    before = await service.snapshot()
    stale = await service.client.post(
        path, data={"_csrf_token": token, "decision": "reject", "comment": "No", "state": "in_review"}
    )
    assert stale.status_code == 200  # back to the import, which says so
    assert 'id="notice"' in stale.text
    assert 'id="decision-form"' not in stale.text
    assert await service.snapshot() == before

    await sign_in(service, people, "researcher")
    page = await service.client.get(f"/projects/{SLUG}?lang=en")
    row = text_of(page.text[page.text.index(f'id="import-{import_id}"') :].split("</tr>", 1)[0])
    assert "released" in row
    assert "Public stations" in row
