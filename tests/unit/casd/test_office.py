"""Office documents: real OOXML and ODF packages accepted; plain archives, macros, bombs, nesting refused."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infracalc.casd import office as office_module
from infracalc.casd.office import (
    MAX_ENTRIES,
    PackageRefused,
    check_office_document,
    check_package,
    identify_package,
    office_format_for_name,
)
from tests.support import office

LIMIT = 128 * 1024 * 1024


def accept(content: bytes, name: str, limit: int = LIMIT) -> str:
    return check_office_document(io.BytesIO(content), name=name, max_expanded_bytes=limit).name


def refusal(content: bytes, name: str, limit: int = LIMIT) -> PackageRefused:
    with pytest.raises(PackageRefused) as raised:
        check_office_document(io.BytesIO(content), name=name, max_expanded_bytes=limit)
    return raised.value


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (office.xlsx(), "counts.xlsx"),
        (office.xlsx(), "COUNTS.XLSX"),
        (office.ooxml("docx"), "protocol.docx"),
        (office.ooxml("pptx"), "slides.pptx"),
        (office.odf("ods"), "counts.ods"),
        (office.odf("odt"), "protocol.odt"),
        (office.odf("odp"), "slides.odp"),
        # Pictures are not archives: a workbook may hold them.
        (office.add_parts(office.xlsx(), {"xl/media/image1.png": b"\x89PNG\r\n\x1a\n" + bytes(100)}), "chart.xlsx"),
    ],
)
def test_real_office_documents_are_accepted(content: bytes, name: str) -> None:
    assert accept(content, name) == name.rsplit(".", 1)[1].lower()


def test_a_renamed_plain_zip_and_a_jar_stay_archives() -> None:
    plain = refusal(office.write_zip({"data.csv": b"a,b\n1,2\n"}), "data.xlsx")
    assert plain.reason == "archive"
    assert str(plain) == "named .xlsx, but the content is a ZIP archive, not an Excel workbook (xlsx)"
    jar = refusal(office.jar(), "report.docx")
    assert (jar.reason, str(jar)) == (
        "archive",
        "named .docx, but the content is a ZIP archive, not a Word document (docx)",
    )
    assert identify_package(io.BytesIO(office.jar())).kind == "zip"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        # Content types but no relationships naming the main part: not a package.
        (office.write_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>"}), "no _rels/.rels"),
        # ODF's mimetype must be the first entry.
        (office.write_zip({"content.xml": b"<c/>", "mimetype": office.ODF_TYPES["ods"].encode()}), "a ZIP archive"),
        # An EPUB is built like ODF but is not an office document.
        (office.odf("ods", mimetype="application/epub+zip"), "'application/epub+zip', not an OpenDocument file"),
    ],
)
def test_zips_that_only_look_like_office_documents_are_archives(content: bytes, why: str) -> None:
    refused = refusal(content, "data.ods" if b"mimetype" in content else "data.xlsx")
    assert refused.reason == "archive"
    assert why in str(refused)


@pytest.mark.parametrize(
    ("content", "name", "part"),
    [
        (office.ooxml("xlsm"), "book.xlsx", "xl/workbook.xml"),  # declared macro-enabled
        (office.add_parts(office.xlsx(), {"xl/vbaProject.bin": office.OLE2}), "book.xlsx", "xl/vbaProject.bin"),
        (
            office.add_parts(office.ooxml("docx"), {"word/vbaProject.bin": office.OLE2}),
            "doc.docx",
            "word/vbaProject.bin",
        ),
        (
            office.ooxml(
                "xlsx",
                {"xl/macrosheets/sheet1.xml": b"<xm:macrosheet/>"},
                overrides={"/xl/macrosheets/sheet1.xml": "application/vnd.ms-excel.macrosheet+xml"},
            ),
            "book.xlsx",
            "xl/macrosheets/sheet1.xml",
        ),
        (office.odf("ods", {"Basic/Standard/Module1.xml": b"<script/>"}), "book.ods", "Basic/Standard/Module1.xml"),
        (office.odf("odt", {"Scripts/python/run.py": b"import os"}), "doc.odt", "Scripts/python/run.py"),
    ],
)
def test_documents_with_macros_are_refused_naming_the_macros(content: bytes, name: str, part: str) -> None:
    refused = refusal(content, name)
    assert refused.reason == "macros"
    assert str(refused).startswith("documents with macros are not accepted: the content is ")
    assert part in str(refused)
    assert "save it without macros" in str(refused)


def test_the_output_checks_name_a_workbook_with_macros_xlsm() -> None:
    content = office.add_parts(office.xlsx(), {"xl/vbaProject.bin": office.OLE2})
    assert identify_package(io.BytesIO(content)).kind == "xlsm"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (
            office.xlsx(),
            "report.docx",
            "the name says .docx (a Word document (docx)) but the content is an Excel workbook (xlsx): "
            "the extension must agree with the content",
        ),
        (
            office.odf("ods"),
            "counts.xlsx",
            "the name says .xlsx (an Excel workbook (xlsx)) but the content is an OpenDocument spreadsheet (ods): "
            "the extension must agree with the content",
        ),
        (office.ooxml("pptx"), "slides.odp", "but the content is a PowerPoint presentation (pptx)"),
    ],
)
def test_the_extension_must_agree_with_the_content(content: bytes, name: str, message: str) -> None:
    refused = refusal(content, name)
    assert refused.reason == "mismatch"
    assert message in str(refused)


def _opened_entries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    original = zipfile.ZipFile.open

    def spy(self: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return opened


def test_a_zip_bomb_is_refused_from_its_declared_sizes_without_inflating_it(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = office.declared_bomb()  # 200 MiB of zeros in a file of about 200 KB
    assert len(bomb) < 1024 * 1024
    opened = _opened_entries(monkeypatch)
    refused = refusal(bomb, "bomb.xlsx")
    assert refused.reason == "too_large"
    assert "expands to 209,7" in str(refused)
    assert "zip bomb" in str(refused)
    assert "xl/media/padding.bin" not in opened  # never inflated: only the descriptor parts were read


def test_a_zip_bomb_with_lying_headers_is_refused_while_reading_in_bounded_memory() -> None:
    bomb = office.lying_bomb()  # says 1,000 bytes, holds 64 MiB of zeros
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        assert archive.getinfo("xl/media/image1.png").file_size == 1000
    tracemalloc.start()
    try:
        refused = refusal(bomb, "bomb.xlsx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.reason == "unreadable"
    assert "entry xl/media/image1.png cannot be read: Bad CRC-32" in str(refused)
    assert peak < 8 * 1024 * 1024


def test_entries_are_counted_against_the_limit_too() -> None:
    content = office.add_parts(office.xlsx(), {"xl/media/image1.png": bytes(2 * 1024 * 1024)})
    refused = refusal(content, "chart.xlsx", limit=1024 * 1024)
    assert (refused.reason, "more than 1,048,576" in str(refused)) == ("too_large", True)
    assert accept(content, "chart.xlsx", limit=4 * 1024 * 1024) == "xlsx"


@pytest.mark.parametrize(
    ("part", "data", "what"),
    [
        ("word/embeddings/Microsoft_Excel_Worksheet.xlsx", office.xlsx(), "a ZIP archive"),
        ("word/media/data.bin", b"\x1f\x8b\x08\x00" + bytes(100), "gzip-compressed data"),
        ("word/media/data.7z", b"7z\xbc\xaf\x27\x1c" + bytes(100), "a 7-Zip archive"),
    ],
)
def test_an_archive_inside_a_document_is_refused(part: str, data: bytes, what: str) -> None:
    refused = refusal(office.add_parts(office.ooxml("docx"), {part: data}), "protocol.docx")
    assert refused.reason == "nested"
    assert str(refused).startswith(f"entry {part} is itself an archive ({what})")


def _patched_end_record(content: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(content)
    struct.pack_into(fmt, data, data.rfind(b"PK\x05\x06") + offset, value)
    return bytes(data)


def _flip_central_flag(content: bytes, name: str, flag: int) -> bytes:
    data = bytearray(content)
    at = data.rfind(b"PK\x01\x02", 0, data.rfind(name.encode()))
    (flags,) = struct.unpack_from("<H", data, at + 8)
    struct.pack_into("<H", data, at + 8, flags | flag)
    return bytes(data)


def _local_size_lie(content: bytes, name: str) -> bytes:
    data = bytearray(content)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = archive.getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, info.file_size + 1)
    return bytes(data)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (office.xlsx()[:-100], "the file starts like a ZIP archive but it cannot be read: no end-of-archive record"),
        (office.xlsx() + b"#!/bin/sh\nrm -rf ~\n", "bytes follow the end of the archive"),
        (b"prefix" + office.xlsx(), "the central directory is not where the end record says"),
        (_patched_end_record(office.xlsx(), 10, "<H", 0xFFFF), "ZIP64 archives are not accepted"),
        (_local_size_lie(office.xlsx(), "xl/workbook.xml"), "its local header and the directory disagree"),
        (_flip_central_flag(office.xlsx(), "xl/workbook.xml", 0x1), "entry 'xl/workbook.xml' is encrypted"),
        (office.add_parts(office.xlsx(), {"xl/../../evil.xml": b"<x/>"}), "is not a plain relative name"),
        (office.add_parts(office.xlsx(), {"XL/WORKBOOK.XML": b"<x/>"}), "appears twice"),
        (
            office.ooxml("xlsx", doctype="<!DOCTYPE t [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]>"),
            "[Content_Types].xml declares a document type or entities, which packages never do",
        ),
    ],
)
def test_broken_or_ambiguous_containers_are_refused(content: bytes, message: str) -> None:
    refused = refusal(content, "book.xlsx")
    assert refused.reason == "unreadable"
    assert message in str(refused)


def test_too_many_entries_are_refused_from_the_end_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office_module, "MAX_ENTRIES", 20)
    content = office.add_parts(office.xlsx(), {f"xl/media/image{n}.png": b"\x89PNG" for n in range(20)})
    opened = _opened_entries(monkeypatch)
    refused = refusal(content, "book.xlsx")
    assert (refused.reason, opened) == ("too_large", [])
    assert "entries, more than 20" in str(refused)
    assert MAX_ENTRIES == 10_000


def test_check_package_serves_the_output_checks_with_their_limit(tmp_path: Path) -> None:
    path = tmp_path / "w.xlsx"
    path.write_bytes(office.xlsx())
    assert check_package(path, max_expanded_bytes=LIMIT).kind == "xlsx"
    with pytest.raises(PackageRefused, match="expands to"):
        check_package(path, max_expanded_bytes=100)


def test_office_extensions() -> None:
    assert [office_format_for_name(name) is not None for name in ("a.xlsx", "a.ODT", "a.zip", "a.xlsm", "xlsx")] == [
        True,
        True,
        False,
        False,
        False,
    ]
