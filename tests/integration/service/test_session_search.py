"""Session search and executed code through the API: bubbles add their cells, CASD staff find them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.service import People, ServiceUnderTest
from tests.integration.service.test_egress_events import start_bubble

pytestmark = pytest.mark.integration

SEARCH = "/api/v1/sessions"


def code_url(session_id: str) -> str:
    return f"/api/v1/sessions/{session_id}/code"


def now() -> str:
    return datetime.now(UTC).isoformat()


def cell(source: str, **more: Any) -> dict[str, Any]:
    return {"at": now(), "source": source, "success": True, "execution_count": 1, **more}


async def second_bubble(service: ServiceUnderTest, people: People) -> tuple[str, dict[str, str]]:
    """Another bubble of the researcher on ``cohort``: its id and its Authorization header."""
    answer = await service.client.post(
        "/api/v1/bubbles",
        json={"project": "cohort", "username": people.username("researcher"), "address": None},
        headers=people.hub_headers(),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"], {"Authorization": f"Bearer {answer.json()['token']}"}


async def search(service: ServiceUnderTest, people: People, **params: Any) -> dict[str, Any]:
    answer = await service.client.get(SEARCH, params=params, headers=people.headers("staff"))
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


async def test_a_bubble_records_its_cells_and_staff_find_them(service: ServiceUnderTest, people: People) -> None:
    await start_bubble(service, people)
    bubble_id, bubble = await second_bubble(service, people)
    audit_before = (await service.snapshot())["counts"]["AuditEvent"]
    cells = [
        cell("\n  import pandas as pd\ndf = pd.read_csv('cohort.csv')"),
        cell("1 / 0", success=False, error="ZeroDivisionError", execution_count=2, duration_seconds=0.01),
        cell("x" * 10 + "\x00 NUL", truncated=True, source_bytes=200_000),
    ]
    answer = await service.client.post(code_url(bubble_id), json={"cells": cells}, headers=bubble)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"recorded": 3}
    assert (await service.snapshot())["counts"]["AuditEvent"] == audit_before, "code is not audited"

    timeline = (await service.client.get(f"{SEARCH}/{bubble_id}", headers=people.headers("staff"))).json()
    code = [e for e in timeline["events"] if e["kind"] == "code.cell"]
    assert [(e["source"], e["summary"]) for e in code] == [
        ("bubble", "import pandas as pd"),
        ("bubble", "1 / 0"),
        ("bubble", "xxxxxxxxxx\\x00 NUL"),
    ]
    assert code[0]["details"] == {
        "source": "\n  import pandas as pd\ndf = pd.read_csv('cohort.csv')",
        "execution_count": 1,
        "success": True,
    }
    assert code[1]["details"]["error"] == "ZeroDivisionError"
    assert code[2]["details"]["truncated"] is True
    assert code[2]["details"]["source_bytes"] == 200_000

    page = await search(service, people, q="pd.read_csv")
    assert [(s["id"], s["matching_events"], s["snippet"]) for s in page["sessions"]] == [
        (bubble_id, 1, "\\n  import pandas as pd\\ndf = pd.read_csv('cohort.csv')")
    ]
    assert page["next_cursor"] is None
    assert [s["id"] for s in (await search(service, people, q="ZeroDivisionError"))["sessions"]] == [bubble_id]


async def test_staff_search_by_user_project_and_time(service: ServiceUnderTest, people: People) -> None:
    first = await start_bubble(service, people)
    second, _ = await second_bubble(service, people)
    everyone = await search(service, people)
    assert [s["id"] for s in everyone["sessions"]] == [second, first], "newest first"
    assert [s["matching_events"] for s in everyone["sessions"]] == [None, None]
    mine = await search(service, people, user=people.username("researcher"), project="cohort", limit=1)
    assert [s["id"] for s in mine["sessions"]] == [second]
    rest = await search(service, people, user=people.username("researcher"), limit=1, cursor=mine["next_cursor"])
    assert [s["id"] for s in rest["sessions"]] == [first]
    assert rest["next_cursor"] is None
    assert (await search(service, people, user=people.username("lead")))["sessions"] == []
    assert (await search(service, people, project="elsewhere"))["sessions"] == []
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert len((await search(service, people, **{"from": earlier, "to": later}))["sessions"]) == 2
    assert (await search(service, people, to=earlier))["sessions"] == []


@pytest.mark.parametrize("query", ['"', "*", "NEAR", "-", 'a" OR "b', "NEAR(x y, 2)", "col:x", "(", "x'--"])
async def test_query_syntax_typed_by_a_person_never_breaks_the_search(
    service: ServiceUnderTest, people: People, query: str
) -> None:
    await start_bubble(service, people)
    answer = await service.client.get(SEARCH, params={"q": query}, headers=people.headers("staff"))
    if any(character.isalnum() for character in query):
        assert answer.status_code == 200, answer.text
        assert answer.json()["sessions"] == []
    else:
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "q"
        assert answer.json()["message"] == "q: give at least one word (letters or digits) to search for"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2026-01-02T00:00:00"}, "from"),
        ({"user": "a\x00b"}, "user"),
    ],
)
async def test_bad_search_parameters_are_named(
    service: ServiceUnderTest, people: People, params: dict[str, str], field: str
) -> None:
    answer = await service.client.get(SEARCH, params=params, headers=people.headers("staff"))
    assert answer.status_code in {400, 422}, answer.text
    assert field in answer.json()["message"]


async def test_only_casd_staff_search_sessions(service: ServiceUnderTest, people: People) -> None:
    await start_bubble(service, people)
    _, bubble = await second_bubble(service, people)
    callers = {
        "researcher": (people.headers("researcher"), "only CASD staff may search sessions"),
        "lead": (people.headers("lead"), "only CASD staff may search sessions"),
        "bubble": (bubble, "bubbles may only read their own project"),
        "proxy": (service.proxy_headers(), "the egress proxy may only record egress events"),
    }
    for who, (headers, reason) in callers.items():
        answer = await service.client.get(SEARCH, params={"q": "session"}, headers=headers)
        assert answer.status_code == 403, (who, answer.text)
        assert answer.json()["message"] == reason
    assert (await service.client.get(SEARCH, headers=people.hub_headers())).status_code == 403


async def test_a_bubble_records_no_code_into_another_session(service: ServiceUnderTest, people: People) -> None:
    first = await start_bubble(service, people)
    _, bubble = await second_bubble(service, people)
    before = await service.snapshot()
    answer = await service.client.post(code_url(first), json={"cells": [cell("forged = True")]}, headers=bubble)
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"] == "a bubble may record code into its own session only"
    # Refused before the body is read: a malformed one is refused the same way.
    malformed = await service.client.post(code_url(first), json={"cells": 1}, headers=bubble)
    assert malformed.status_code == 403
    assert await service.snapshot() == before


async def test_only_bubbles_record_code(service: ServiceUnderTest, people: People) -> None:
    bubble_id = await start_bubble(service, people)
    callers = {
        "staff": (people.headers("staff"), "only a bubble may record the code run in it"),
        "researcher": (people.headers("researcher"), "only a bubble may record the code run in it"),
        "proxy": (service.proxy_headers(), "the egress proxy may only record egress events"),
    }
    before = await service.snapshot()
    for who, (headers, reason) in callers.items():
        answer = await service.client.post(code_url(bubble_id), json={"cells": [cell("x = 1")]}, headers=headers)
        assert answer.status_code == 403, (who, answer.text)
        assert answer.json()["message"] == reason
    hub = await service.client.post(code_url(bubble_id), json={"cells": [cell("x = 1")]}, headers=people.hub_headers())
    assert hub.status_code == 403
    assert await service.snapshot() == before


#: Bad batches, made when the test runs (cells are dated then).
BAD_BATCHES: dict[str, tuple[Callable[[], list[dict[str, Any]]], int, str | None]] = {
    "empty": (lambda: [], 400, "cells"),
    "too many cells": (lambda: [cell("x = 1")] * 51, 400, "cells"),
    "a source over 64 KiB": (lambda: [cell("x = 1"), cell("é" * 40_000)], 422, "cells[1].source"),
    "a naive time": (lambda: [cell("x = 1", at="2026-01-01T00:00:00")], 422, "cells[0].at"),
    "in the future": (
        lambda: [cell("x = 1", at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())],
        422,
        "cells[0].at",
    ),
    "before the session": (lambda: [cell("x = 1", at="2020-01-01T00:00:00Z")], 422, "cells[0].at"),
    "an unknown field": (lambda: [cell("x = 1", output="secret")], 400, None),
    "a negative count": (lambda: [cell("x = 1", execution_count=-1)], 400, None),
}


@pytest.mark.parametrize("bad", BAD_BATCHES)
async def test_a_bad_batch_is_refused_whole(service: ServiceUnderTest, people: People, bad: str) -> None:
    make, status, field = BAD_BATCHES[bad]
    await start_bubble(service, people)
    bubble_id, bubble = await second_bubble(service, people)
    cells = make()
    before = await service.snapshot()
    answer = await service.client.post(code_url(bubble_id), json={"cells": cells}, headers=bubble)
    assert answer.status_code in {status, 422 if status == 400 else status}, answer.text
    if field is not None:
        assert answer.json()["field"] == field
    assert await service.snapshot() == before


async def test_a_stopped_bubble_records_no_more_code(service: ServiceUnderTest, people: People) -> None:
    await start_bubble(service, people)
    bubble_id, bubble = await second_bubble(service, people)
    stopped = await service.client.delete(f"/api/v1/bubbles/{bubble_id}", headers=people.hub_headers())
    assert stopped.status_code == 204
    before = await service.snapshot()
    answer = await service.client.post(code_url(bubble_id), json={"cells": [cell("late = 1")]}, headers=bubble)
    assert answer.status_code == 401, answer.text
    assert await service.snapshot() == before
