"""Imports through the service: quarantine, routing by governance, review, reads by members and bubbles, refusals.

Against the real S3 server (versitygw), OPA, Keycloak, and SQLite then PostgreSQL. Every refusal is
checked against the state before it: rows, audit events, S3 objects and in-progress multipart
uploads, of which only one ``import.refuse`` audit event may be new.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import secrets
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from litestar.testing import AsyncTestClient

from infracalc.casd.objects import ObjectStoreError
from infracalc.db import Governance
from infracalc.identity import proxy_secret
from infracalc.service.app import create_app
from infracalc.service.settings import ServiceSettings
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer, S3Server
from tests.fixtures.service import People, ServiceUnderTest, service_env

pytestmark = pytest.mark.integration

OCTETS = {"Content-Type": "application/octet-stream"}
CODE = b"import pandas as pd\n\nprint(pd.read_csv('cohort.csv').describe())\n"
DATA = b"id;age;town\n1;34;Lyon\n2;51;Lille\n"


async def make_project(service: ServiceUnderTest, people: People, slug: str, governance: str) -> None:
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": slug, "title": slug, "governance": governance}, headers=staff
    )
    assert created.status_code == 201, created.text
    for who, role in (("lead", "lead"), ("researcher", "member")):
        added = await service.client.put(
            f"/api/v1/projects/{slug}/members/{people.username(who)}", json={"role": role}, headers=staff
        )
        assert added.status_code == 200, added.text


async def upload(
    service: ServiceUnderTest,
    people: People,
    slug: str,
    name: str,
    content: bytes,
    who: str = "researcher",
    expect: int = 201,
) -> dict[str, Any]:
    answer = await service.client.post(
        f"/api/v1/projects/{slug}/imports",
        params={"name": name},
        content=content,
        headers={**people.headers(who), **OCTETS},
    )
    assert answer.status_code == expect, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def audit(service: ServiceUnderTest, people: People, action: str) -> list[dict[str, Any]]:
    answer = await service.client.get("/api/v1/audit", params={"action": action}, headers=people.headers("staff"))
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def register_bubble(service: ServiceUnderTest, people: People, slug: str) -> tuple[str, dict[str, str]]:
    created = await service.client.post(
        "/api/v1/bubbles",
        json={"project": slug, "username": people.username("researcher"), "address": None},
        headers=people.hub_headers(),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


async def timeline_kinds(service: ServiceUnderTest, people: People, session_id: str) -> list[str]:
    answer = await service.client.get(f"/api/v1/sessions/{session_id}", headers=people.headers("staff"))
    assert answer.status_code == 200, answer.text
    return [event["kind"] for event in answer.json()["events"]]


async def test_a_small_code_file_is_released_at_once_under_infracalc(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    bubble_id, _ = await register_bubble(service, people, "cohort")

    imported = await upload(service, people, "cohort", "analysis.py", CODE)

    digest = hashlib.sha256(CODE).hexdigest()
    assert (imported["state"], imported["sensitivity"], imported["detected_type"]) == ("released", "standard", "text")
    assert (imported["size"], imported["sha256"], imported["part_sha256"]) == (len(CODE), digest, [digest])
    assert (imported["governance"], imported["uploaded_by"]) == ("INFRACALC", people.username("researcher"))
    key = f"projects/cohort/imports/{imported['id']}/analysis.py"
    assert await service.objects.keys("") == [key]
    assert await service.objects.governance_of(key) == Governance.INFRACALC

    content = await service.client.get(
        f"/api/v1/projects/cohort/imports/{imported['id']}/content", headers=people.headers("lead")
    )
    assert content.status_code == 200, content.text
    assert content.content == CODE
    assert content.headers["content-type"].startswith("text/plain")
    assert content.headers["x-content-type-options"] == "nosniff"
    assert "attachment" in content.headers["content-disposition"]

    [created] = await audit(service, people, "import.create")
    assert (created["details"]["import"], created["details"]["sha256"], created["governance"]) == (
        imported["id"],
        digest,
        "INFRACALC",
    )
    [released] = await audit(service, people, "import.release")
    assert (released["details"]["by"], released["details"]["sessions"]) == ("routing", 1)
    assert "import.release" in await timeline_kinds(service, people, bubble_id)


def binary(size: int) -> bytes:
    """``size`` bytes of a binary file: a fixed head (no archive's signature, by chance), then random bytes."""
    head = b"INFRACALC test data\x00"
    return head + secrets.token_bytes(size - len(head))


async def test_the_recorded_digests_are_those_of_the_file_around_part_boundaries(
    service: ServiceUnderTest, people: People
) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    part = service.objects.part_size
    for size in (part - 1, part, part + 1, 2 * part + 1):
        content = binary(size)

        imported = await upload(service, people, "cohort", f"data-{size}.bin", content)

        digests = [hashlib.sha256(content[start : start + part]).hexdigest() for start in range(0, size, part)]
        assert (imported["size"], imported["sha256"]) == (size, hashlib.sha256(content).hexdigest())
        assert imported["part_sha256"] == digests
        created = (await audit(service, people, "import.create"))[-1]
        assert (created["details"]["sha256"], created["details"]["part_sha256"]) == (imported["sha256"], digests)
        key = f"projects/cohort/imports/{imported['id']}/data-{size}.bin"
        assert b"".join([chunk async for chunk in service.objects.read(key)]) == content


async def test_a_part_refused_by_s3_while_others_are_on_their_way_leaves_nothing(
    service: ServiceUnderTest, people: People
) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    await upload(service, people, "cohort", "kept.py", CODE)
    before = await service.snapshot()
    sent: list[int] = []

    def corrupt_part_2(request: Any, **_: Any) -> None:
        # Its checksum no longer matches its bytes: the S3 server refuses the part.
        number = int(parse_qs(urlsplit(request.url).query)["partNumber"][0])
        sent.append(number)
        if number == 2:
            del request.headers["x-amz-checksum-sha256"]
            request.headers["x-amz-checksum-sha256"] = base64.b64encode(hashlib.sha256(b"other").digest()).decode()

    events = service.objects.part_client.meta.events
    events.register("before-sign.s3.UploadPart", corrupt_part_2)
    try:
        answer = await upload(
            service, people, "cohort", "data.bin", binary(4 * service.objects.part_size + 1), expect=503
        )
    finally:
        events.unregister("before-sign.s3.UploadPart", corrupt_part_2)

    assert len(sent) > 2  # later parts were on their way when part 2 was refused
    message = "the file could not be stored: the object store refused upload_part (BadDigest)"
    assert answer["message"] == message
    await refused_cleanly(service, people, before, "storage", message)


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("cohort.csv", DATA, "not a code file (.csv)"),
        ("big.py", b"x = 1\n" * (300 * 1024 // 6), "larger than 256 KiB"),
        ("disguised.py", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "not text"),
        ("report.pdf", b"%PDF-1.7\n" + b"x" * 100, "not a code file (.pdf)"),
    ],
)
async def test_other_files_wait_for_review_under_infracalc(
    service: ServiceUnderTest, people: People, name: str, content: bytes, why: str
) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    imported = await upload(service, people, "cohort", name, content)
    assert (imported["state"], imported["sensitivity"]) == ("in_review", None)
    assert why in imported["routing"]
    assert await audit(service, people, "import.release") == []


async def test_under_casd_everything_is_reviewed(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "secure", "CASD")
    imported = await upload(service, people, "secure", "analysis.py", CODE, who="lead")
    assert (imported["state"], imported["governance"]) == ("in_review", "CASD")
    assert "under CASD governance every import is reviewed" in imported["routing"]
    key = f"projects/secure/imports/{imported['id']}/analysis.py"
    assert await service.objects.governance_of(key) == Governance.CASD


async def test_staff_review_then_members_read(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    bubble_id, _ = await register_bubble(service, people, "cohort")
    imported = await upload(service, people, "cohort", "cohort.csv", DATA)
    content_url = f"/api/v1/projects/cohort/imports/{imported['id']}/content"

    before = await service.client.get(content_url, headers=people.headers("researcher"))
    assert before.status_code == 409
    assert "in review: it is not released yet" in before.json()["message"]
    # The reviewer reads the file to review it.
    reviewed = await service.client.get(content_url, headers=people.headers("staff"))
    assert (reviewed.status_code, reviewed.content) == (200, DATA)

    queue = await service.client.get("/api/v1/imports", headers=people.headers("staff"))
    assert [row["id"] for row in queue.json()] == [imported["id"]]
    refused = await service.client.get("/api/v1/imports", headers=people.headers("lead"))
    assert refused.status_code == 403
    lead_review = await service.client.post(
        f"/api/v1/imports/{imported['id']}/approve",
        json={"sensitivity": "standard", "comment": "fine"},
        headers=people.headers("lead"),
    )
    assert lead_review.status_code == 403
    assert lead_review.json()["message"] == "only CASD staff may approve or reject imports"

    approved = await service.client.post(
        f"/api/v1/imports/{imported['id']}/approve",
        json={"sensitivity": "standard", "comment": "aggregated, no identifiers"},
        headers=people.headers("staff"),
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["sensitivity"], approved.json()["reviewed_by"]) == (
        "released",
        "standard",
        people.username("staff"),
    )
    released_queue = await service.client.get(
        "/api/v1/imports", params={"state": "released"}, headers=people.headers("staff")
    )
    assert [row["id"] for row in released_queue.json()] == [imported["id"]]
    assert (await service.client.get("/api/v1/imports", headers=people.headers("staff"))).json() == []
    after = await service.client.get(content_url, headers=people.headers("researcher"))
    assert (after.status_code, after.content) == (200, DATA)
    again = await service.client.post(
        f"/api/v1/imports/{imported['id']}/reject", json={"comment": "too late"}, headers=people.headers("staff")
    )
    assert again.status_code == 409
    assert "already released" in again.json()["message"]

    assert [e["details"]["import"] for e in await audit(service, people, "import.approve")] == [imported["id"]]
    [released] = await audit(service, people, "import.release")
    assert (released["details"]["by"], released["details"]["sessions"]) == ("review", 1)
    assert "import.release" in await timeline_kinds(service, people, bubble_id)
    listed = await service.client.get("/api/v1/projects/cohort/imports", headers=people.headers("researcher"))
    assert [row["state"] for row in listed.json()] == ["released"]
    outsider = await service.client.get("/api/v1/projects/cohort/imports", headers=people.headers("outsider"))
    assert outsider.status_code == 403


async def test_rejection_deletes_the_object(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "cohort", "CASD")
    imported = await upload(service, people, "cohort", "cohort.csv", DATA)
    key = f"projects/cohort/imports/{imported['id']}/cohort.csv"
    assert await service.objects.exists(key)

    rejected = await service.client.post(
        f"/api/v1/imports/{imported['id']}/reject",
        json={"comment": "direct identifiers in column 3"},
        headers=people.headers("staff"),
    )
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["state"], rejected.json()["review_comment"]) == (
        "rejected",
        "direct identifiers in column 3",
    )
    assert not await service.objects.exists(key)
    assert await service.objects.keys("") == []
    content = await service.client.get(
        f"/api/v1/projects/cohort/imports/{imported['id']}/content", headers=people.headers("staff")
    )
    assert content.status_code == 409
    assert "rejected" in content.json()["message"]
    approve = await service.client.post(
        f"/api/v1/imports/{imported['id']}/approve",
        json={"sensitivity": "standard", "comment": "changed my mind"},
        headers=people.headers("staff"),
    )
    assert approve.status_code == 409
    assert [e["details"]["comment"] for e in await audit(service, people, "import.reject")] == [
        "direct identifiers in column 3"
    ]
    missing = await service.client.post(
        "/api/v1/imports/nope/reject", json={"comment": "x"}, headers=people.headers("staff")
    )
    assert missing.status_code == 404


async def test_a_bubble_reads_released_files_of_its_own_project_only(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    await make_project(service, people, "weather", "INFRACALC")
    bubble_id, bubble = await register_bubble(service, people, "cohort")
    released = await upload(service, people, "cohort", "analysis.py", CODE)
    held = await upload(service, people, "cohort", "cohort.csv", DATA)
    elsewhere = await upload(service, people, "weather", "model.py", CODE)

    read = await service.client.get(f"/api/v1/projects/cohort/imports/{released['id']}/content", headers=bubble)
    assert (read.status_code, read.content) == (200, CODE)
    assert read.headers["x-infracalc-sha256"] == hashlib.sha256(CODE).hexdigest()
    kinds = await timeline_kinds(service, people, bubble_id)
    assert "import.read" in kinds
    [event] = await audit(service, people, "import.read")
    assert (event["actor"], event["details"]["import"]) == (f"bubble:{bubble_id}", released["id"])

    unreleased = await service.client.get(f"/api/v1/projects/cohort/imports/{held['id']}/content", headers=bubble)
    assert unreleased.status_code == 409
    other = await service.client.get(f"/api/v1/projects/weather/imports/{elsewhere['id']}/content", headers=bubble)
    assert other.status_code == 403
    assert other.json()["message"] == "bubbles may only read their own project"
    # Another project's import asked for under the bubble's own project is not found.
    crossed = await service.client.get(f"/api/v1/projects/cohort/imports/{elsewhere['id']}/content", headers=bubble)
    assert crossed.status_code == 404
    uploaded = await service.client.post(
        "/api/v1/projects/cohort/imports", params={"name": "x.py"}, content=CODE, headers={**bubble, **OCTETS}
    )
    assert uploaded.status_code == 403
    outsider = await service.client.get(
        f"/api/v1/projects/cohort/imports/{released['id']}/content", headers=people.headers("outsider")
    )
    assert outsider.status_code == 403


def zip_bomb() -> bytes:
    """A 60 KB zip that expands to 64 MiB of zeros (called data.csv, to show that names do not matter)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("zeros.csv", bytes(64 * 1024 * 1024))
    return buffer.getvalue()


def without_audit(snapshot: dict[str, Any]) -> dict[str, Any]:
    counts = {name: count for name, count in snapshot["counts"].items() if name != "AuditEvent"}
    return {**{k: v for k, v in snapshot.items() if k not in {"counts", "audit_head"}}, "counts": counts}


async def refused_cleanly(
    service: ServiceUnderTest, people: People, before: dict[str, Any], reason: str, message: str
) -> None:
    """Nothing changed but one new ``import.refuse`` event, with ``reason``."""
    after = await service.snapshot()
    assert without_audit(after) == without_audit(before)
    assert after["counts"]["AuditEvent"] == before["counts"]["AuditEvent"] + 1
    events = await audit(service, people, "import.refuse")
    assert (events[-1]["details"]["reason"], events[-1]["details"]["message"]) == (reason, message)


@pytest.mark.parametrize(
    ("name", "content", "status", "reason", "message"),
    [
        ("empty.csv", b"", 422, "empty", "the file is empty"),
        (
            "../etc/passwd",
            DATA,
            422,
            "file_name",
            "the file name '../etc/passwd' holds a path separator (/ or \\): give the file's name only",
        ),
        ("a\nb.csv", DATA, 422, "file_name", "the file name 'a\\nb.csv' holds a control character (U+000A)"),
        (
            "x" * 252 + ".csv",
            DATA,
            422,
            "file_name",
            "the file name is 256 bytes long in UTF-8; at most 255 are accepted",
        ),
        (
            "data.csv",
            zip_bomb(),
            415,
            "archive",
            "archives are not accepted: upload the files themselves (the content is a ZIP archive; office documents "
            "are accepted under their own extension: .docx, .odp, .ods, .odt, .pptx, .xlsx)",
        ),
        (
            "notes.txt",
            b"\x1f\x8b\x08\x00" + bytes(100),
            415,
            "archive",
            "archives are not accepted: upload the files themselves (the content is gzip-compressed data)",
        ),
    ],
)
async def test_bad_files_are_refused_and_leave_nothing(
    service: ServiceUnderTest, people: People, name: str, content: bytes, status: int, reason: str, message: str
) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    await upload(service, people, "cohort", "kept.py", CODE)  # something there already, that must stay
    before = await service.snapshot()
    answer = await upload(service, people, "cohort", name, content, expect=status)
    assert answer["message"] == message
    await refused_cleanly(service, people, before, reason, message)


async def test_a_declared_type_other_than_octet_stream_is_refused(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    before = await service.snapshot()
    answer = await service.client.post(
        "/api/v1/projects/cohort/imports",
        params={"name": "data.csv"},
        files={"file": ("data.csv", DATA)},
        headers=people.headers("researcher"),
    )
    assert answer.status_code == 415
    message = (
        "send the file's bytes as application/octet-stream, not multipart/form-data (no form, no JSON: the body is "
        "the file)"
    )
    assert answer.json()["message"] == message
    await refused_cleanly(service, people, before, "media_type", message)


@pytest.fixture
async def capped_service(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, s3: S3Server, tmp_path: Path
) -> AsyncIterator[ServiceUnderTest]:
    """The service with imports capped at 1 MiB."""
    env = service_env(database_url, opa.url, keycloak, tmp_path, s3, proxy_secret_sha256=proxy_secret.digest("x"))
    settings = ServiceSettings.from_env({**env, "INFRACALC_IMPORT_MAX_BYTES": str(1024 * 1024)})
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        yield ServiceUnderTest(app, client, settings, opa)


async def test_files_over_the_cap_are_refused(capped_service: ServiceUnderTest, people: People) -> None:
    service = capped_service
    await make_project(service, people, "cohort", "INFRACALC")
    message = "the file is larger than the limit of 1048576 bytes"
    big = bytes(1024 * 1024 + 1)

    before = await service.snapshot()
    declared = await upload(service, people, "cohort", "big.bin", big, expect=413)
    assert declared["message"] == message
    await refused_cleanly(service, people, before, "too_large", message)

    # A body of undeclared length over the cap: see test_imports_live.py (the test client buffers bodies).
    exact = await upload(service, people, "cohort", "exact.bin", bytes(1024 * 1024))
    assert (exact["size"], exact["state"]) == (1024 * 1024, "in_review")


async def approve(service: ServiceUnderTest, people: People, import_id: str, sensitivity: str) -> None:
    approved = await service.client.post(
        f"/api/v1/imports/{import_id}/approve",
        json={"sensitivity": sensitivity, "comment": "reviewed"},
        headers=people.headers("staff"),
    )
    assert approved.status_code == 200, approved.text


async def switch(service: ServiceUnderTest, people: People, slug: str, owner: str, expect: int = 200) -> Any:
    answer = await service.client.put(
        f"/api/v1/projects/{slug}/governance",
        json={"owner": owner, "reason": "the project's needs changed"},
        headers=people.headers("staff"),
    )
    assert answer.status_code == expect, answer.text
    return answer.json()


async def test_sensitive_data_keeps_the_project_under_casd(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "cohort", "CASD")
    imported = await upload(service, people, "cohort", "cohort.csv", DATA)
    assert service.opa_data("projects")["cohort"]["sensitive_data"] is False
    await approve(service, people, imported["id"], "sensitive")
    assert service.opa_data("projects")["cohort"]["sensitive_data"] is True

    refused = await switch(service, people, "cohort", "INFRACALC", expect=403)
    assert refused["message"] == "project holds data classed sensitive; it must stay under CASD governance"
    key = f"projects/cohort/imports/{imported['id']}/cohort.csv"
    assert await service.objects.governance_of(key) == Governance.CASD

    # A full resync (an OPA restart) rebuilds the same flag from the database.
    requests.delete(f"{service.opa.url}/v1/data/store/infracalc/projects", timeout=5).raise_for_status()
    policy_data = service.app.state.context.policy_data
    policy_data.generation = None  # what the watch sees when OPA lost its data
    deadline = time.monotonic() + 10
    while policy_data.generation is None:
        assert time.monotonic() < deadline, "the service did not resync"
        await asyncio.sleep(0.2)
    assert service.opa_data("projects")["cohort"]["sensitive_data"] is True


async def test_a_switch_retags_every_object_and_row(service: ServiceUnderTest, people: People) -> None:
    await make_project(service, people, "cohort", "CASD")
    first = await upload(service, people, "cohort", "a.csv", DATA)
    second = await upload(service, people, "cohort", "b.py", CODE)
    await approve(service, people, first["id"], "standard")
    keys = await service.objects.keys("projects/cohort/")
    assert len(keys) == 2

    await switch(service, people, "cohort", "INFRACALC")

    assert [await service.objects.governance_of(key) for key in keys] == [Governance.INFRACALC] * 2
    listed = await service.client.get("/api/v1/projects/cohort/imports", headers=people.headers("researcher"))
    assert {row["id"]: row["governance"] for row in listed.json()} == {
        first["id"]: "INFRACALC",
        second["id"]: "INFRACALC",
    }
    [retag] = await audit(service, people, "governance.retag")
    assert (retag["details"]["complete"], retag["details"]["changed"], retag["details"]["unchanged"]) == (True, 2, 0)


async def test_an_interrupted_retag_is_finished_by_staff(
    service: ServiceUnderTest, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    for name in ("a.csv", "b.csv", "c.csv"):
        await upload(service, people, "cohort", name, DATA)
    keys = await service.objects.keys("projects/cohort/")
    store = service.objects
    set_governance = store.set_governance
    # The object store fails on the second object, as a flaky server would.
    failing = sorted(keys)[1]

    async def flaky(key: str, governance: Any) -> bool:
        if key == failing:
            raise ObjectStoreError("the object store refused put_object_tagging (InternalError)")
        return await set_governance(key, governance)

    monkeypatch.setattr(store, "set_governance", flaky)
    switched = await switch(service, people, "cohort", "CASD")
    assert switched["governance"] == "CASD"  # the switch stands
    tags = {key: await store.governance_of(key) for key in keys}
    assert sorted(tags.values()) == sorted([Governance.CASD, Governance.INFRACALC, Governance.INFRACALC])
    [incomplete] = await audit(service, people, "governance.retag")
    assert incomplete["details"]["complete"] is False
    assert "InternalError" in incomplete["details"]["error"]

    monkeypatch.setattr(store, "set_governance", set_governance)
    lead = await service.client.post("/api/v1/projects/cohort/governance/retag", headers=people.headers("lead"))
    assert lead.status_code == 403
    finished = await service.client.post("/api/v1/projects/cohort/governance/retag", headers=people.headers("staff"))
    assert finished.status_code == 200, finished.text
    assert finished.json() == {"project": "cohort", "governance": "CASD", "changed": 2, "unchanged": 1}
    assert [await store.governance_of(key) for key in keys] == [Governance.CASD] * 3
    events = await audit(service, people, "governance.retag")
    assert [event["details"]["complete"] for event in events] == [False, True]
    again = await service.client.post("/api/v1/projects/cohort/governance/retag", headers=people.headers("staff"))
    assert again.json() == {"project": "cohort", "governance": "CASD", "changed": 0, "unchanged": 3}
