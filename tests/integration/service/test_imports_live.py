"""Imports against ``infracalc serve`` as a process: a client that disconnects half-way, the CLI, an office document.

In-process test clients buffer request bodies, so a real disconnect needs a real server and a
raw socket.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from infracalc.casd.objects import ObjectStore
from infracalc.identity import proxy_secret
from infracalc.import_client import upload_file
from infracalc.stack.ports import free_port
from infracalc.storage import make_s3_client
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService
from tests.fixtures.servers import OpaServer, S3Server
from tests.fixtures.service import People, service_env
from tests.support import office
from tests.support.processes import answers, start_server

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def make_project(live: LiveService, people: People, slug: str, governance: str) -> None:
    staff = people.headers("staff")
    created = requests.post(
        f"{live.api}/projects", json={"id": slug, "title": slug, "governance": governance}, headers=staff, timeout=30
    )
    assert created.status_code == 201, created.text
    added = requests.put(
        f"{live.api}/projects/{slug}/members/{people.username('researcher')}",
        json={"role": "member"},
        headers=staff,
        timeout=30,
    )
    assert added.status_code == 200, added.text


def audit(live: LiveService, people: People, prefix: str = "import.") -> list[dict[str, Any]]:
    answer = requests.get(f"{live.api}/audit", headers=people.headers("staff"), timeout=30)
    assert answer.status_code == 200, answer.text
    return [event for event in answer.json()["events"] if event["action"].startswith(prefix)]


def store_of(live: LiveService, s3: S3Server) -> ObjectStore:
    return ObjectStore(make_s3_client(s3.settings), live.env["INFRACALC_S3_BUCKET"])


async def test_a_client_that_disconnects_half_way_leaves_nothing_but_the_refusal(
    live_service: LiveService, people: People, s3: S3Server
) -> None:
    make_project(live_service, people, "cohort", "INFRACALC")
    store = store_of(live_service, s3)
    assert await store.keys("") == []
    assert await store.pending_uploads() == []
    assert audit(live_service, people) == []

    url = urlsplit(live_service.url)
    head = (
        "POST /api/v1/projects/cohort/imports?name=big.bin HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        f"Authorization: Bearer {people.token('researcher')}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {40 * MIB}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(head.encode())
        for _ in range(12):  # 12 of 40 MiB: more than one 8 MiB part has reached S3
            connection.sendall(bytes(MIB))
        # The multipart upload is under way on the S3 server before the client goes.
        deadline = time.monotonic() + 60
        while not await store.pending_uploads() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(await store.pending_uploads()) == 1

    deadline = time.monotonic() + 60
    while not audit(live_service, people) and time.monotonic() < deadline:
        time.sleep(0.2)
    [refusal] = audit(live_service, people)
    assert (refusal["action"], refusal["details"]["reason"]) == ("import.refuse", "interrupted")
    assert refusal["details"]["message"] == "the upload was interrupted before the end of the file; nothing was kept"
    assert await store.keys("") == []
    assert await store.pending_uploads() == []
    listed = requests.get(f"{live_service.api}/projects/cohort/imports", headers=people.headers("staff"), timeout=30)
    assert listed.json() == []


async def test_the_cli_streams_a_file_and_prints_its_id_and_state(
    live_service: LiveService, people: People, s3: S3Server, tmp_path: Path
) -> None:
    make_project(live_service, people, "cohort", "INFRACALC")
    token_file = tmp_path / "token"
    token_file.write_text(people.token("researcher"))
    data = tmp_path / "cohort.csv"
    content = b"id;age\n" + b"1;34\n" * (3 * MIB // 5)
    data.write_bytes(content)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "infracalc",
            "import",
            "cohort",
            str(data),
            "--api",
            live_service.api,
            "--token-file",
            str(token_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    import_id, state = done.stdout.split()
    assert state == "in_review"
    assert "importing cohort.csv" in done.stderr
    assert hashlib.sha256(content).hexdigest() in done.stderr
    listed = requests.get(f"{live_service.api}/projects/cohort/imports", headers=people.headers("staff"), timeout=30)
    assert [(row["id"], row["size"]) for row in listed.json()] == [(import_id, len(content))]
    assert await store_of(live_service, s3).keys("") == [f"projects/cohort/imports/{import_id}/cohort.csv"]

    script = tmp_path / "analysis.py"
    script.write_bytes(b"print('hello')\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "infracalc",
            "import",
            "cohort",
            str(script),
            "--api",
            live_service.api,
            "--token-file",
            str(token_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "released"

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "infracalc",
            "import",
            "cohort",
            str(empty),
            "--api",
            live_service.api,
            "--token-file",
            str(token_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert "error: the service refused the import (422): the file is empty" in done.stderr


@pytest.fixture
def capped_live_service(
    opa: OpaServer, keycloak: KeycloakServer, s3: S3Server, tmp_path: Path
) -> Iterator[LiveService]:
    """``infracalc serve`` as :func:`live_service` starts it, with imports capped at 1 MiB."""
    secret = proxy_secret.mint()
    home = tmp_path / "service-home"
    home.mkdir()
    database_url = f"sqlite+aiosqlite:///{home / 'infracalc.db'}"
    port = free_port()
    env = {
        **service_env(database_url, opa.url, keycloak, home, s3, proxy_secret_sha256=proxy_secret.digest(secret)),
        "INFRACALC_HOST": "127.0.0.1",
        "INFRACALC_SERVICE_PORT": str(port),
        "INFRACALC_IMPORT_MAX_BYTES": str(MIB),
    }
    url = f"http://127.0.0.1:{port}"
    process = start_server(
        [sys.executable, "-m", "infracalc", "serve"],
        env={**os.environ, **env},
        log_path=tmp_path / "service.log",
        ready=answers(f"{url}/ready"),
        what="the service",
    )
    running = LiveService(url, process, tmp_path / "service.log", database_url, env, secret)
    try:
        yield running
    finally:
        running.stop()


async def test_a_body_of_undeclared_length_over_the_cap_is_refused_part_way(
    capped_live_service: LiveService, people: People, s3: S3Server
) -> None:
    live = capped_live_service
    make_project(live, people, "cohort", "INFRACALC")
    store = store_of(live, s3)
    url = urlsplit(live.url)
    head = (
        "POST /api/v1/projects/cohort/imports?name=big.bin HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        f"Authorization: Bearer {people.token('researcher')}\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = bytes(256 * 1024)
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(head.encode())
        try:
            for _ in range(8):  # 2 MiB, chunked: no length announced
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the service may close once it has refused
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            received = connection.recv(65536)
            if not received:
                break
            answer += received
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:500]
    assert b"the file is larger than the limit of 1048576 bytes" in rest
    [refusal] = audit(live, people)
    assert (refusal["action"], refusal["details"]["reason"]) == ("import.refuse", "too_large")
    assert await store.keys("") == []
    assert await store.pending_uploads() == []


async def test_an_office_document_streamed_in_blocks_is_checked_whole_and_one_cut_short_leaves_nothing(
    live_service: LiveService, people: People, s3: S3Server, tmp_path: Path
) -> None:
    make_project(live_service, people, "cohort", "INFRACALC")
    store = store_of(live_service, s3)
    picture = b"\x89PNG\r\n\x1a\n" + os.urandom(12 * MIB)
    workbook = tmp_path / "cohort.xlsx"
    workbook.write_bytes(office.add_parts(office.xlsx(), {"xl/media/image1.png": picture}))

    imported = upload_file(live_service.api, people.token("researcher"), "cohort", workbook)
    assert (imported["detected_type"], imported["state"], imported["size"]) == (
        "xlsx",
        "in_review",
        workbook.stat().st_size,
    )
    key = f"projects/cohort/imports/{imported['id']}/cohort.xlsx"
    assert await store.keys("") == [key]

    url = urlsplit(live_service.url)
    head = (
        "POST /api/v1/projects/cohort/imports?name=again.xlsx HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        f"Authorization: Bearer {people.token('researcher')}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {workbook.stat().st_size}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(head.encode() + workbook.read_bytes()[: 10 * MIB])  # the client goes before the end
        deadline = time.monotonic() + 60
        while not await store.pending_uploads() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(await store.pending_uploads()) == 1

    deadline = time.monotonic() + 60
    while len(audit(live_service, people, "import.refuse")) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    [refusal] = audit(live_service, people, "import.refuse")
    assert refusal["details"]["reason"] == "interrupted"
    assert await store.keys("") == [key]
    assert await store.pending_uploads() == []
