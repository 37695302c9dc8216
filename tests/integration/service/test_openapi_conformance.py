"""The OpenAPI document is true: a property-based run (schemathesis) against the running service finds no 5xx
and no answer the document does not describe, for each kind of caller.

Bounded to a few minutes on two cores: a handful of examples per operation and phase, no shrinking, one worker,
a fixed seed (a failure is reproducible with the command the output prints). The run writes (projects,
requests, reviews...) into the service's own throwaway database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People

pytestmark = pytest.mark.integration

#: What a run checks: the service never fails, and says only what the document says it may.
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
#: Examples per operation and phase, by caller: staff reach every route, the others are refused most of them.
EXAMPLES = {"staff": 5, "member": 3, "bubble": 3, "proxy": 3}


def schemathesis(service: LiveService, token: str, examples: int, report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{service.url}/schema/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(examples),
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--seed",
            "16",
            "--no-shrink",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=report.parent,  # where it keeps its own state (.schemathesis/): not the checkout
    )


@pytest.mark.timeout(1200)  # about 4 minutes on two idle cores; room for a machine shared with other work
def test_the_document_describes_every_answer_for_every_caller(
    live_service: LiveService, people: People, tmp_path: Path
) -> None:
    staff = people.headers("staff")
    created = requests.post(
        f"{live_service.api}/projects", json={"id": "demo", "title": "Demo"}, headers=staff, timeout=30
    )
    assert created.status_code == 201, created.text
    researcher = people.username("researcher")
    added = requests.put(
        f"{live_service.api}/projects/demo/members/{researcher}", json={"role": "member"}, headers=staff, timeout=30
    )
    assert added.status_code == 200, added.text
    bubble = requests.post(
        f"{live_service.api}/bubbles",
        json={"project": "demo", "username": researcher, "address": None},
        headers=people.hub_headers(),
        timeout=30,
    )
    assert bubble.status_code == 201, bubble.text
    tokens = {
        "staff": lambda: people.token("staff"),
        "member": lambda: people.token("researcher"),
        "bubble": lambda: str(bubble.json()["token"]),
        "proxy": lambda: live_service.proxy_secret,
    }
    failures = []
    for who, token in tokens.items():
        run = schemathesis(live_service, token(), EXAMPLES[who], tmp_path / who)
        if run.returncode != 0:
            failures.append(f"--- as {who} (exit {run.returncode}):\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}")
    assert not failures, "\n".join(failures)
