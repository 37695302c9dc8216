"""``infracalc export`` as a bubble runs it, against ``infracalc serve`` on a port (real streaming and disconnects)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from infracalc.casd.objects import ObjectStore
from infracalc.storage import make_s3_client
from tests.fixtures.live_service import LiveService
from tests.fixtures.servers import S3Server
from tests.fixtures.service import People

pytestmark = pytest.mark.integration

JUSTIFICATION = "Aggregated counts by region for table 2 of the paper."


def bubble_env(live_service: LiveService, people: People) -> dict[str, str]:
    """A project under INFRACALC governance with the researcher, and the environment the hub gives its bubble."""
    staff = people.headers("staff")
    created = requests.post(
        f"{live_service.api}/projects",
        json={"id": "weather", "title": "Weather", "governance": "INFRACALC"},
        headers=staff,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    added = requests.put(
        f"{live_service.api}/projects/weather/members/{people.username('researcher')}",
        json={"role": "member"},
        headers=staff,
        timeout=30,
    )
    assert added.status_code == 200, added.text
    registered = requests.post(
        f"{live_service.api}/bubbles",
        json={"project": "weather", "username": people.username("researcher"), "address": None},
        headers=people.hub_headers(),
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    return {
        "INFRACALC_API_URL": live_service.api,
        "INFRACALC_BUBBLE_TOKEN": registered.json()["token"],
        "INFRACALC_PROJECT": "weather",
    }


def run_export(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("INFRACALC_")}
    return subprocess.run(
        [sys.executable, "-m", "infracalc", "export", *arguments],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def large_table(path: Path) -> Path:
    """About 3 MB of counts that are all well above the threshold."""
    with path.open("w") as table:
        table.write("region,2020,2021,2022\n")
        for index in range(100_000):
            table.write(f"region-{index},{1000 + index % 97},{2000 + index % 89},{3000 + index % 83}\n")
    return path


def test_a_bubble_exports_a_file_with_a_progress_bar(live_service: LiveService, people: People, tmp_path: Path) -> None:
    env = bubble_env(live_service, people)
    table = large_table(tmp_path / "counts.csv")

    done = run_export(env, str(table), "--justification", JUSTIFICATION)
    assert done.returncode == 0, done.stderr
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith("export ")
    assert first_line.endswith("(version 1): released")
    # text mode reads the bar's carriage returns as line ends: one line per whole percent reached.
    bar = [line for line in done.stderr.splitlines() if line.endswith(" MB")]
    assert len(bar) > 2, "the bar moves as the file leaves"
    assert len(bar) <= 101
    assert bar[-1].startswith("[" + "#" * 30 + "] 100%")

    export_id = first_line.split()[1]
    link = requests.get(
        f"{live_service.api}/exports/{export_id}/download", headers=people.headers("researcher"), timeout=30
    )
    assert link.status_code == 200, link.text
    assert requests.get(link.json()["url"], timeout=60).content == table.read_bytes()


def test_refusals_are_one_clear_line(live_service: LiveService, people: People, tmp_path: Path) -> None:
    env = bubble_env(live_service, people)
    table = tmp_path / "t.csv"
    table.write_text("region,2020\nnorth,1200\n")

    short = run_export(env, str(table), "--justification", "too short")
    assert short.returncode == 1
    assert "error: the service refused the export (422)" in short.stderr
    assert "at least 20 characters" in short.stderr
    assert "Traceback" not in short.stderr

    outside = run_export({}, str(table), "--justification", JUSTIFICATION)
    assert outside.returncode == 1
    assert "INFRACALC_API_URL and INFRACALC_BUBBLE_TOKEN not set: not in an INFRACALC bubble" in outside.stderr
    no_project = run_export(
        {k: v for k, v in env.items() if k != "INFRACALC_PROJECT"}, str(table), "--justification", JUSTIFICATION
    )
    assert no_project.returncode == 1
    assert "INFRACALC_PROJECT not set" in no_project.stderr


def test_a_client_that_goes_away_half_way_leaves_nothing(
    live_service: LiveService, people: People, s3: S3Server, tmp_path: Path
) -> None:
    env = bubble_env(live_service, people)
    boundary = "half-way-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="justification"\r\n\r\n{JUSTIFICATION}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    ).encode()
    sent = head + b"region,1200\n" * 300_000  # about 3.6 MB of the 50 MB announced
    port = int(live_service.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            (
                "POST /api/v1/projects/weather/exports HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {env['INFRACALC_BUBBLE_TOKEN']}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + 50_000_000}\r\n\r\n"
            ).encode()
        )
        connection.sendall(sent)
    # The service goes on serving: a complete export afterwards is the only one there is.
    done = run_export(env, str(large_table(tmp_path / "counts.csv")), "--justification", JUSTIFICATION)
    assert done.returncode == 0, done.stderr
    export_id = done.stdout.split()[1]

    listed = requests.get(
        f"{live_service.api}/projects/weather/exports", headers=people.headers("researcher"), timeout=30
    )
    assert [item["id"] for item in listed.json()] == [export_id]
    store = ObjectStore(make_s3_client(s3.settings), live_service.env["INFRACALC_S3_BUCKET"])
    assert asyncio.run(store.keys("")) == [f"projects/weather/exports/{export_id}/v1/counts.csv"]
    assert asyncio.run(store.pending_uploads()) == []
    audit = requests.get(f"{live_service.api}/audit", headers=people.headers("staff"), timeout=30).json()["events"]
    assert {event["details"].get("export") for event in audit if event["action"].startswith("export.")} == {export_id}
