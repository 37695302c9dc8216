"""An import cut by a fault leaves nothing behind: the S3 server killed mid-import, the service killed mid-import.

Each test streams a 64 MiB file in 8 MiB chunks, kills a server after 24 MiB went out, and checks what the person
saw, what the store and the database hold once things recover, and what the audit log says. The service runs
with a grace period of 4 s, so that its recovery sweep (every 2 s) acts within the test's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService, start_live_service
from tests.fixtures.servers import OpaServer
from tests.fixtures.service import People
from tests.integration.faults.conftest import PrivateS3
from tests.integration.faults.support import (
    SlowUpload,
    audit_events,
    audit_intact,
    bucket_contents,
    eventually,
    rows,
    start_upload,
)

pytestmark = pytest.mark.integration

GRACE = {"INFRACALC_UPLOAD_GRACE_SECONDS": "4"}


def project_with_member(service: LiveService, people: People) -> None:
    staff = people.headers("staff")
    created = requests.post(f"{service.api}/projects", json={"id": "cohort", "title": "C"}, headers=staff, timeout=30)
    assert created.status_code == 201, created.text
    added = requests.put(
        f"{service.api}/projects/cohort/members/{people.username('researcher')}",
        json={"role": "member"},
        headers=staff,
        timeout=30,
    )
    assert added.status_code == 200, added.text


@pytest.fixture
def service_on_private_s3(
    opa: OpaServer, keycloak: KeycloakServer, private_s3: PrivateS3, tmp_path: Path
) -> Iterator[LiveService]:
    service = start_live_service(opa.url, keycloak, None, tmp_path, extra_env={**GRACE, **_s3_env(private_s3)})
    try:
        yield service
    finally:
        service.stop()


def _s3_env(s3: PrivateS3) -> dict[str, str]:
    return {
        "INFRACALC_S3_ENDPOINT_URL": s3.settings.endpoint_url,
        "INFRACALC_S3_ACCESS_KEY": s3.settings.access_key,
        "INFRACALC_S3_SECRET_KEY": s3.settings.secret_key,
        "INFRACALC_S3_BUCKET": "fault-imports",
    }


def upload_under_way(service: LiveService, s3: PrivateS3, people: People) -> SlowUpload:
    """A member's 64 MiB import, 24 MiB of it sent and its multipart upload begun in the store."""
    project_with_member(service, people)
    upload = start_upload(service, people.headers("researcher"), "cohort", "big.bin", first_chunks=3, total_chunks=8)
    eventually(lambda: bool(bucket_contents(s3.settings, "fault-imports")[1]), 30, "the multipart upload")
    return upload


def test_s3_killed_mid_import_answers_503_and_leaves_nothing_once_it_is_back(
    service_on_private_s3: LiveService, private_s3: PrivateS3, people: People
) -> None:
    service = service_on_private_s3
    upload = upload_under_way(service, private_s3, people)

    private_s3.server.kill()
    upload.resume()

    # What the person sees: a 503 saying what to do, with no internal address or upload id, and a request id.
    assert upload.answer is not None, upload.failure
    assert upload.answer.status_code == 503, upload.answer.text
    body = upload.answer.json()
    assert body["message"].startswith("the file could not be stored: the object store could not be reached")
    for internal in ("127.0.0.1", private_s3.settings.endpoint_url, "uploadId", "Errno"):
        assert internal not in upload.answer.text
    request_id = upload.answer.headers["X-Request-ID"]
    lines = [line for line in service.log().splitlines() if f"[request {request_id}]" in line]
    assert any(private_s3.settings.endpoint_url in line for line in lines), lines  # the details, for the operator
    # Recorded at once: the refusal; the import's progress stays on record until the store can be cleaned.
    staff = people.headers("staff")
    (refusal,) = audit_events(service, staff, "import.refuse")
    assert refusal["details"]["reason"] == "storage"
    assert rows(service, "SELECT refused FROM import_uploads") == [(1,)]

    private_s3.server.start()  # same port, same data: the parts sent before the kill are still there

    eventually(lambda: bucket_contents(private_s3.settings, "fault-imports") == ([], []), 30, "the sweep")
    eventually(lambda: rows(service, "SELECT id FROM import_uploads") == [], 10, "the row")
    assert rows(service, "SELECT id FROM imports") == []
    assert len(audit_events(service, staff, "import.refuse")) == 1  # the refusal, said once
    audit_intact(service, staff)


def test_service_killed_mid_import_is_swept_after_restart_and_audited_once(
    service_on_private_s3: LiveService, private_s3: PrivateS3, people: People
) -> None:
    service = service_on_private_s3
    upload = upload_under_way(service, private_s3, people)

    service.kill()
    upload.resume()

    # What the person sees: the connection cut, no answer.
    assert upload.answer is None
    assert isinstance(upload.failure, requests.ConnectionError)
    assert bucket_contents(private_s3.settings, "fault-imports")[1] != []  # the crash left the upload...
    assert len(rows(service, "SELECT id FROM import_uploads")) == 1  # ... and the import's progress

    service.start()

    eventually(lambda: bucket_contents(private_s3.settings, "fault-imports") == ([], []), 30, "the sweep")
    eventually(lambda: rows(service, "SELECT id FROM import_uploads") == [], 10, "the row")
    assert rows(service, "SELECT id FROM imports") == []
    staff = people.headers("staff")
    (refusal,) = audit_events(service, staff, "import.refuse")
    assert refusal["actor"] == "system:recovery"
    assert refusal["details"]["reason"] == "interrupted"
    assert refusal["details"]["name"] == "big.bin"
    assert refusal["details"]["uploaded_by"] == people.username("researcher")
    audit_intact(service, staff)
