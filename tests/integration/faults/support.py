"""What the fault tests share: a slow upload a test can cut in the middle, and looks at what the service stored."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from infracalc.storage import S3Settings
from tests.fixtures.live_service import LiveService

#: The size of each chunk of a slow upload (one multipart part of the service).
CHUNK = 8 * 1024 * 1024


@dataclass
class SlowUpload:
    """An import streamed from a thread: ``first_chunks`` are sent, then it waits for :meth:`resume`."""

    url: str
    headers: dict[str, str]
    first_chunks: int
    total_chunks: int
    sent_enough: threading.Event = field(default_factory=threading.Event)
    _resume: threading.Event = field(default_factory=threading.Event)
    answer: requests.Response | None = None
    failure: BaseException | None = None
    _thread: threading.Thread | None = None

    def _chunks(self) -> Iterator[bytes]:
        for number in range(self.total_chunks):
            if number == self.first_chunks:
                self.sent_enough.set()
                self._resume.wait(60)
            yield bytes([number % 251]) * CHUNK

    def _run(self) -> None:
        try:
            self.answer = requests.post(
                self.url,
                data=self._chunks(),
                headers={**self.headers, "Content-Type": "application/octet-stream"},
                timeout=120,
            )
        except requests.RequestException as error:
            self.failure = error

    def start(self) -> None:
        """Begin sending; returns once ``first_chunks`` chunks were handed to the connection."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.sent_enough.wait(60), "the upload did not get going"

    def resume(self) -> None:
        """Send the rest; wait for the answer (or the failure)."""
        self._resume.set()
        assert self._thread is not None
        self._thread.join(120)


def start_upload(
    service: LiveService, headers: dict[str, str], project: str, name: str, *, first_chunks: int, total_chunks: int
) -> SlowUpload:
    upload = SlowUpload(f"{service.api}/projects/{project}/imports?name={name}", headers, first_chunks, total_chunks)
    upload.start()
    return upload


def s3_client(settings: S3Settings) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        region_name=settings.region,
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
    )


def bucket_contents(settings: S3Settings, bucket: str) -> tuple[list[str], list[str]]:
    """The keys of the objects, and of the incomplete uploads, in ``bucket``."""
    client = s3_client(settings)
    objects = [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = [item["Key"] for item in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return objects, uploads


def rows(service: LiveService, query: str) -> list[tuple[Any, ...]]:
    """Rows of the service's SQLite database."""
    path = Path(service.database_url.split("///", 1)[1])
    with sqlite3.connect(path) as connection:
        return list(connection.execute(query).fetchall())


def audit_events(service: LiveService, headers: dict[str, str], action: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{service.api}/audit", params={"action": action}, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def audit_intact(service: LiveService, headers: dict[str, str]) -> dict[str, Any]:
    answer = requests.get(f"{service.api}/audit/verify", headers=headers, timeout=120)
    assert answer.status_code == 200, answer.text
    verdict: dict[str, Any] = answer.json()
    assert verdict["ok"] is True, verdict
    return verdict


def eventually(check: Callable[[], bool], seconds: float, what: str) -> float:
    """Wait until ``check()`` holds; return how long it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds:g} s"
        time.sleep(0.1)
    return time.monotonic() - started
