"""Office documents through the import route: real packages stored and tagged, everything else refused cleanly.

Against the real S3 server (versitygw), OPA, Keycloak, and SQLite then PostgreSQL. Each refusal is
checked against the state before it: rows, audit events, S3 objects and multipart uploads in
progress, of which only one ``import.refuse`` audit event may be new.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from infracalc.db import Governance
from infracalc.identity import proxy_secret
from infracalc.service.app import create_app
from infracalc.service.settings import ServiceSettings
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer, S3Server
from tests.fixtures.service import People, ServiceUnderTest, service_env
from tests.integration.service.test_imports import audit, make_project, refused_cleanly, upload
from tests.support import office

pytestmark = pytest.mark.integration

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HINT = "office documents are accepted under their own extension: .docx, .odp, .ods, .odt, .pptx, .xlsx"


@pytest.mark.parametrize(
    ("name", "content", "kind", "media_type"),
    [
        ("cohort.xlsx", office.xlsx(rows=200), "xlsx", XLSX_MEDIA_TYPE),
        ("protocol.docx", office.ooxml("docx"), "docx", DOCX_MEDIA_TYPE),
        ("cohort.ods", office.odf("ods"), "ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ],
)
async def test_an_office_document_is_stored_tagged_and_reviewed(
    service: ServiceUnderTest, people: People, name: str, content: bytes, kind: str, media_type: str
) -> None:
    await make_project(service, people, "cohort", "INFRACALC")

    imported = await upload(service, people, "cohort", name, content)

    assert (imported["detected_type"], imported["content_type"]) == (kind, media_type)
    assert (imported["state"], imported["sensitivity"]) == ("in_review", None)
    assert f"not a code file (.{kind})" in imported["routing"]
    assert (imported["size"], imported["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())
    key = f"projects/cohort/imports/{imported['id']}/{name}"
    assert await service.objects.keys("") == [key]
    assert await service.objects.pending_uploads() == []
    assert await service.objects.governance_of(key) == Governance.INFRACALC
    [created] = await audit(service, people, "import.create")
    assert created["details"]["detected_type"] == kind

    read = await service.client.get(
        f"/api/v1/projects/cohort/imports/{imported['id']}/content", headers=people.headers("staff")
    )
    assert (read.status_code, read.content) == (200, content)
    assert read.headers["content-type"].startswith(media_type)
    assert "attachment" in read.headers["content-disposition"]


def _large_docx_with_a_nested_archive() -> bytes:
    """A 20 MiB document (several multipart parts reach S3 before its end) holding a ZIP at its very end."""
    picture = b"\x89PNG\r\n\x1a\n" + os.urandom(20 * 1024 * 1024)
    return office.add_parts(
        office.ooxml("docx"), {"word/media/image1.png": picture, "word/embeddings/data.zip": office.jar()}
    )


REFUSALS = {
    "a renamed plain zip": (
        "data.xlsx",
        office.write_zip({"data.csv": b"a,b\n1,2\n"}),
        415,
        "archive",
        "archives are not accepted: upload the files themselves (named .xlsx, but the content is a ZIP archive, "
        f"not an Excel workbook (xlsx); {HINT})",
    ),
    "a jar": (
        "tool.jar",
        office.jar(),
        415,
        "archive",
        f"archives are not accepted: upload the files themselves (the content is a ZIP archive; {HINT})",
    ),
    "a workbook with a VBA project": (
        "book.xlsx",
        office.add_parts(office.xlsx(), {"xl/vbaProject.bin": office.OLE2}),
        415,
        "macros",
        "documents with macros are not accepted: the content is an Excel workbook (xlsx) holding macros "
        "(xl/vbaProject.bin); save it without macros, as .xlsx",
    ),
    "a macro-enabled name": (
        "book.xlsm",
        office.ooxml("xlsm"),
        415,
        "macros",
        "documents with macros (.xlsm) are not accepted: save it without macros (.xlsx, .docx, .pptx)",
    ),
    "an ODF document with Basic macros": (
        "book.ods",
        office.odf("ods", {"Basic/Standard/Module1.xml": b"<script/>"}),
        415,
        "macros",
        "documents with macros are not accepted: the content is an OpenDocument spreadsheet (ods) holding macros "
        "(Basic/Standard/Module1.xml); save it without macros, as .ods",
    ),
    "a zip bomb with lying headers": (
        "bomb.xlsx",
        office.lying_bomb(),
        422,
        "office_document",
        "the file starts like a ZIP archive but it cannot be read: entry xl/media/image1.png cannot be read: "
        "Bad CRC-32 for file 'xl/media/image1.png'",
    ),
    "a zip bomb by its declared sizes": (
        "bomb.xlsx",
        office.declared_bomb(),
        422,
        "office_document",
        "the document expands to 209,",  # the rest: checked below
    ),
    "an archive inside": (
        "protocol.docx",
        _large_docx_with_a_nested_archive(),
        422,
        "office_document",
        "entry word/embeddings/data.zip is itself an archive (a ZIP archive): documents holding archives or "
        "embedded documents are not accepted",
    ),
    "another office type than the name": (
        "cohort.ods",
        office.xlsx(),
        415,
        "type_mismatch",
        "the name says .ods (an OpenDocument spreadsheet (ods)) but the content is an Excel workbook (xlsx): "
        "the extension must agree with the content",
    ),
    "a password-protected workbook": (
        "cohort.xlsx",
        office.OLE2,
        415,
        "type_mismatch",
        "the name says .xlsx (an Excel workbook (xlsx)) but the content is a Microsoft compound document "
        "(xls, doc, msi) (a password-protected or legacy Office file: remove the password): "
        "the extension must agree with the content",
    ),
    "text named as a workbook": (
        "cohort.xlsx",
        b"id;age\n1;34\n",
        415,
        "type_mismatch",
        "the name says .xlsx (an Excel workbook (xlsx)) but the content is UTF-8 text: "
        "the extension must agree with the content",
    ),
}


@pytest.mark.parametrize(("name", "content", "status", "reason", "message"), REFUSALS.values(), ids=REFUSALS.keys())
async def test_unsafe_or_unknown_zip_files_are_refused_and_leave_nothing(
    service: ServiceUnderTest, people: People, name: str, content: bytes, status: int, reason: str, message: str
) -> None:
    await make_project(service, people, "cohort", "INFRACALC")
    await upload(service, people, "cohort", "kept.xlsx", office.xlsx())  # something there already, that must stay
    before = await service.snapshot()

    answer = await upload(service, people, "cohort", name, content, expect=status)

    if message.endswith(","):  # a long figure
        assert answer["message"].startswith(message)
        assert "zip bomb" in answer["message"]
        message = answer["message"]
    assert answer["message"] == message
    await refused_cleanly(service, people, before, reason, message)


@pytest.fixture
async def office_capped_service(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, s3: S3Server, tmp_path: Path
) -> AsyncIterator[ServiceUnderTest]:
    """The service with office documents capped at 1 MiB (the output checks' expansion limit)."""
    env = service_env(database_url, opa.url, keycloak, tmp_path, s3, proxy_secret_sha256=proxy_secret.digest("x"))
    settings = ServiceSettings.from_env({**env, "INFRACALC_OFFICE_MAX_EXPANDED_BYTES": str(1024 * 1024)})
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        yield ServiceUnderTest(app, client, settings, opa)


async def test_an_office_document_over_its_limit_is_refused_while_it_streams(
    office_capped_service: ServiceUnderTest, people: People
) -> None:
    service = office_capped_service
    await make_project(service, people, "cohort", "INFRACALC")
    big = office.add_parts(office.xlsx(), {"xl/media/image1.png": b"\x89PNG\r\n\x1a\n" + os.urandom(2 * 1024 * 1024)})
    message = (
        "an office document may be at most 1048576 bytes "
        "(INFRACALC_OFFICE_MAX_EXPANDED_BYTES, also what its parts may expand to)"
    )
    before = await service.snapshot()
    answer = await upload(service, people, "cohort", "chart.xlsx", big, expect=413)
    assert answer["message"] == message
    await refused_cleanly(service, people, before, "too_large", message)
    # The same bytes under a name that is not an office document's are what they are: an archive.
    plain = await upload(service, people, "cohort", "chart.bin", big, expect=415)
    assert plain["message"].startswith("archives are not accepted")
