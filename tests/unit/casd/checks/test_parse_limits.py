"""Files that cannot be checked within the limits FAIL with a "parse" reason, in bounded memory."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from infracalc.casd.checks import CheckSettings, Outcome, check_output

from .conftest import Check, finding, write_workbook

#: Far more than a refused check needs, far less than the files below would take if held whole.
MEMORY_BOUND = 48 * 1024 * 1024


def _check_with_peak(path: Path, name: str, settings: CheckSettings | None = None) -> tuple[object, int]:
    tracemalloc.start()
    try:
        report = check_output(path, name=name, settings=settings or CheckSettings())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return report, peak


def test_a_csv_with_ten_million_columns_is_refused_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    with path.open("w") as handle:
        handle.write("label,")
        for _ in range(100):
            handle.write("1," * 100_000)  # 10 million columns on one 20 MB line
        handle.write("1\n")
    report, peak = _check_with_peak(path, "wide.csv")
    refusal = finding(report, "parse")  # type: ignore[arg-type]
    assert refusal.outcome is Outcome.FAIL
    assert "INFRACALC_EXPORT_MAX_ROW_BYTES" in refusal.reason
    assert "too many columns" in refusal.reason
    assert peak < MEMORY_BOUND


def test_a_row_over_the_column_limit_is_refused(check: Check) -> None:
    row = ",".join(["1"] * 40)
    report = check("wide.csv", f"{row}\n{row}\n", settings=CheckSettings(max_columns=30))
    refusal = finding(report, "parse")
    assert refusal.outcome is Outcome.FAIL
    assert refusal.reason == (
        "the file cannot be checked: row 1 has 40 columns, more than 30 (INFRACALC_EXPORT_MAX_COLUMNS)"
    )


def test_a_huge_single_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text('label,notes\nParis,"' + "x" * 3_000_000 + '"\n')
    report, peak = _check_with_peak(path, "huge.csv")
    refusal = finding(report, "parse")  # type: ignore[arg-type]
    assert refusal.outcome is Outcome.FAIL
    assert "longer than 131,072 characters (INFRACALC_EXPORT_MAX_CELL_BYTES)" in refusal.reason
    assert peak < MEMORY_BOUND


def test_a_huge_field_spanning_lines_counts_as_one_record(check: Check) -> None:
    field = "line\n" * 400
    report = check(
        "multi.csv", f'label,notes\nParis,"{field}"\n', settings=CheckSettings(max_row_bytes=1000, max_cell_bytes=500)
    )
    assert "INFRACALC_EXPORT_MAX_ROW_BYTES" in finding(report, "parse").reason


def test_a_single_line_without_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "endless.csv"
    path.write_text("label,count\n" + "9" * 30_000_000)
    report, peak = _check_with_peak(path, "endless.csv")
    assert finding(report, "parse").outcome is Outcome.FAIL  # type: ignore[arg-type]
    assert peak < MEMORY_BOUND


def test_too_many_rows_are_refused(check: Check) -> None:
    body = "label,count\n" + "Paris,120\n" * 200
    report = check("long.csv", body, settings=CheckSettings(max_rows=100))
    assert finding(report, "parse").reason == (
        "the file cannot be checked: the table has more than 100 rows (INFRACALC_EXPORT_MAX_ROWS)"
    )


def test_a_file_over_the_size_cap_fails_before_any_parse(check: Check) -> None:
    report = check("big.csv", "label,count\n" + "Paris,120\n" * 100, settings=CheckSettings(max_bytes=500))
    refusal = finding(report, "size")
    assert refusal.outcome is Outcome.FAIL
    assert refusal.reason == "the file is 1,012 bytes, more than the limit of 500 (INFRACALC_EXPORT_MAX_BYTES)"
    assert [f.check for f in report.findings] == ["size"]
    assert report.detected_type == "csv"


def test_an_empty_file_fails(check: Check) -> None:
    report = check("empty.csv", b"")
    assert finding(report, "size").reason == "the file is empty"
    assert report.outcome is Outcome.FAIL


def test_a_missing_file_is_a_finding_not_an_exception(tmp_path: Path) -> None:
    report = check_output(tmp_path / "gone.csv", name="gone.csv")
    assert finding(report, "file").outcome is Outcome.FAIL


# XLSX


def _valid_workbook(tmp_path: Path) -> bytes:
    return write_workbook(tmp_path / "ok.xlsx", {"counts": [("region", "n"), ("Paris", 120)]}).read_bytes()


def test_a_truncated_workbook_fails_to_parse(check: Check, tmp_path: Path) -> None:
    content = _valid_workbook(tmp_path)
    report = check("broken.xlsx", content[: len(content) // 2])
    refusal = finding(report, "parse")
    assert refusal.outcome is Outcome.FAIL
    assert "starts like a ZIP archive" in refusal.reason
    assert "cannot be read" in refusal.reason


def test_a_corrupt_workbook_fails_to_parse(check: Check, tmp_path: Path) -> None:
    content = bytearray(_valid_workbook(tmp_path))
    content[40:2000] = bytes(1960)  # the local headers and compressed data, not the directory
    report = check("corrupt.xlsx", bytes(content))
    assert finding(report, "parse").outcome is Outcome.FAIL
    assert report.risk_score == 1.0


def test_a_workbook_with_malformed_sheet_xml_fails_to_parse(check: Check, tmp_path: Path) -> None:
    source = zipfile.ZipFile(io.BytesIO(_valid_workbook(tmp_path)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            archive.writestr(info, data)
    report = check("bad-sheet.xlsx", buffer.getvalue())
    refusal = finding(report, "parse")
    assert refusal.outcome is Outcome.FAIL
    assert refusal.reason.startswith("the file cannot be checked: the workbook cannot be read")


def test_a_zip_bomb_workbook_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    write_workbook(path, {"counts": [("region", "n"), ("Paris", 120)]})
    block = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/padding.bin", "w") as member,
    ):
        for _ in range(200):  # 200 MiB of zeros: about 200 KB compressed
            member.write(block)
    assert path.stat().st_size < 1024 * 1024
    report, peak = _check_with_peak(path, "bomb.xlsx")
    refusal = finding(report, "parse")  # type: ignore[arg-type]
    assert refusal.outcome is Outcome.FAIL
    assert "expands to" in refusal.reason
    assert "zip bomb" in refusal.reason
    assert peak < MEMORY_BOUND


def test_a_workbook_with_too_many_rows_is_refused(check: Check, tmp_path: Path) -> None:
    rows = [("region", "n")] + [(f"r{i}", 120) for i in range(30)]
    content = write_workbook(tmp_path / "w.xlsx", {"counts": rows}).read_bytes()
    report = check("long.xlsx", content, settings=CheckSettings(max_rows=20))
    refusal = finding(report, "parse")
    assert "more than 20 rows (INFRACALC_EXPORT_MAX_ROWS)" in refusal.reason


def test_a_workbook_with_too_many_columns_is_refused(check: Check, tmp_path: Path) -> None:
    rows = [["region"] + [f"c{i}" for i in range(40)], ["Paris"] + [120] * 40]
    content = write_workbook(tmp_path / "w.xlsx", {"counts": rows}).read_bytes()
    report = check("wide.xlsx", content, settings=CheckSettings(max_columns=30))
    refusal = finding(report, "parse")
    assert "more than 30 cells (INFRACALC_EXPORT_MAX_COLUMNS)" in refusal.reason


def test_a_workbook_row_of_cells_without_positions_is_counted_while_streaming(check: Check, tmp_path: Path) -> None:
    # Cells without an "r" attribute and no <dimension>: only the streaming scan sees the width.
    source = zipfile.ZipFile(io.BytesIO(_valid_workbook(tmp_path)))
    sheet = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row>'
        + b"<c><v>1</v></c>" * 50_000
        + b"</row></sheetData></worksheet>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, sheet if info.filename == "xl/worksheets/sheet1.xml" else source.read(info))
    report = check("wide.xlsx", buffer.getvalue())
    assert "row 1 has more than 10,000 cells" in finding(report, "parse").reason


def test_a_workbook_with_corrupt_compressed_data_fails_to_parse(check: Check, tmp_path: Path) -> None:
    path = tmp_path / "w.xlsx"
    rows = [("region", "n")] + [(f"r{i}", i * 37 % 1000) for i in range(2000)]
    write_workbook(path, {"counts": rows})
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 100, start + info.compress_size - 100, 97):
        content[offset] ^= 0x5A
    report = check("corrupt.xlsx", bytes(content))
    refusal = finding(report, "parse")
    assert refusal.outcome is Outcome.FAIL
    assert "not a readable XLSX (ZIP) archive" in refusal.reason


def test_a_check_that_trips_on_a_file_fails_it_instead_of_raising(
    check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr("infracalc.casd.checks.check.detect_type", broken)
    report = check("t.csv", "region,n\nParis,120\n")
    assert finding(report, "internal").reason == (
        "the checks could not complete (KeyError); the file cannot be exported as it is"
    )
    assert report.risk_score == 1.0
