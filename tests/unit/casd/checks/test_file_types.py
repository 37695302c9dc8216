"""The type comes from the content; the name is a hint, and a mismatch is a finding."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from infracalc.casd.checks import ALLOWED_TYPES, Outcome
from tests.support import office

from .conftest import Check, checks, finding, write_workbook

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40)
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


def _zip(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.png", PNG, "png"),
        ("a.jpg", JPEG, "jpeg"),
        ("a.jpeg", JPEG, "jpeg"),
        ("a.pdf", PDF, "pdf"),
        ("a.csv", "region,count\nParis,120\nLyon,45\n", "csv"),
        ("a.csv", "region;count\nParis;120\nLyon;45\n", "csv"),
        ("a.tsv", "region\tcount\nParis\t120\nLyon\t45\n", "tsv"),
        ("a.txt", "Results are in the paper.\nNothing else.\n", "txt"),
        ("a.md", "# Results\n\nSee the table.\n", "md"),
        ("a.json", '{"mean": 12.5, "groups": [1, 2]}', "json"),
        ("a.html", "<!DOCTYPE html><html><body><p>hi</p></body></html>", "html"),
        ("a.svg", '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "svg"),
    ],
)
def test_each_allowed_type_is_recognised_from_its_content(
    check: Check, name: str, content: bytes | str, expected: str
) -> None:
    report = check(name, content)
    assert report.detected_type == expected
    assert finding(report, "file_type").outcome is Outcome.PASS
    assert "extension" not in checks(report)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"GIF89a" + bytes(20), "gif"),
        (b"\x7fELF\x02\x01\x01" + bytes(40), "elf"),
        (b"MZ\x90\x00" + bytes(40), "exe"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "gzip"),
        (b"PAR1" + bytes(20), "parquet"),
        (_zip({"data.csv": b"a,b\n1,2\n"}), "zip"),
        (_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}), "zip"),  # no main part
        (office.ooxml("docx"), "docx"),
        (office.odf("ods"), "ods"),
        (office.add_parts(office.ooxml("xlsx"), {"xl/vbaProject.bin": office.OLE2}), "xlsm"),
        (office.ooxml("xlsm"), "xlsm"),
        (b'<?xml version="1.0"?><data><row/></data>', "xml"),
    ],
)
def test_a_type_outside_the_allowlist_fails_and_says_what_is_allowed(check: Check, content: bytes, kind: str) -> None:
    report = check("output.dat", content)
    assert report.detected_type == kind
    refusal = finding(report, "file_type")
    assert refusal.outcome is Outcome.FAIL
    assert refusal.reason == f"type {kind} is not allowed for export; allowed: {', '.join(ALLOWED_TYPES)}"
    assert report.outcome is Outcome.FAIL
    assert report.risk_score == 1.0


def test_binary_content_of_unknown_kind_fails(check: Check) -> None:
    report = check("notes.txt", bytes(range(256)) * 4)
    assert report.detected_type == "unknown"
    assert finding(report, "file_type").outcome is Outcome.FAIL
    assert "unknown kind" in finding(report, "file_type").reason


def test_the_extension_does_not_decide_and_a_mismatch_asks_for_review(check: Check) -> None:
    report = check("figure.jpg", PNG)
    assert report.detected_type == "png"
    mismatch = finding(report, "extension")
    assert mismatch.outcome is Outcome.REVIEW
    assert mismatch.reason == "the name 'figure.jpg' says jpeg but the content is png; it was checked as png"


def test_html_named_csv_is_checked_as_html(check: Check) -> None:
    report = check("table.csv", "<html><body><script>steal()</script><table><tr><td>3</td></tr></table></body></html>")
    assert report.detected_type == "html"
    assert finding(report, "extension").outcome is Outcome.REVIEW
    assert finding(report, "scripts").details["removed"] == 1


def test_a_workbook_with_any_name_is_a_workbook(check: Check, tmp_path: Path) -> None:
    content = write_workbook(tmp_path / "w.xlsx", {"counts": [("region", "n"), ("Paris", 120)]}).read_bytes()
    report = check("results.bin", content)
    assert report.detected_type == "xlsx"
    assert finding(report, "extension").outcome is Outcome.REVIEW


def test_a_table_saved_as_text_is_still_checked_cell_by_cell(check: Check) -> None:
    report = check("results.txt", "region,count\nParis,120\nLyon,4\n")
    assert report.detected_type == "txt"
    assert "extension" not in checks(report)  # a .txt name agrees with any plain text
    assert finding(report, "small_counts").outcome is Outcome.REVIEW


def test_a_text_file_named_like_a_workbook_is_a_broken_workbook(check: Check) -> None:
    report = check("results.xlsx", "region,count\nParis,120\n")
    refusal = finding(report, "parse")
    assert refusal.outcome is Outcome.FAIL
    assert "says xlsx but the content is not a readable xlsx file" in refusal.reason


def test_utf16_text_is_refused_with_advice(check: Check) -> None:
    report = check("table.csv", "region,count\nParis,120\n".encode("utf-16"))
    refusal = finding(report, "parse")
    assert refusal.outcome is Outcome.FAIL
    assert "save it as UTF-8" in refusal.reason


def test_windows_1252_text_is_read(check: Check) -> None:
    report = check("t.csv", "région,nombre\nÎle-de-France,3\nCôte-d'Or,120\n".encode("cp1252"))
    assert report.detected_type == "csv"
    assert finding(report, "small_counts").details["cells"][0]["row"] == "Île-de-France"


def test_a_long_table_whose_first_label_opens_like_json_is_a_table(check: Check) -> None:
    body = "[0-5),count\n" + "".join(f"[{i}-{i + 5}),{100 + i}\n" for i in range(10_000)) + "[90+),4\n"
    report = check("ages.csv", body)
    assert report.detected_type == "csv"
    assert finding(report, "small_counts").details["cells"][0]["row"] == "[90+)"
