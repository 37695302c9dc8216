"""Small crafted files for the output checks, written in the test's temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from infracalc.casd.checks import CheckReport, Finding, check_output

Check = Callable[..., CheckReport]


@pytest.fixture
def check(tmp_path: Path) -> Check:
    """Write ``content`` as ``name`` and check it (keyword arguments go to ``check_output``)."""

    def run(name: str, content: bytes | str, **kwargs: Any) -> CheckReport:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return check_output(path, name=name, **kwargs)

    return run


def write_workbook(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    workbook.save(path)
    return path


def finding(report: CheckReport, check: str) -> Finding:
    matches = [f for f in report.findings if f.check == check]
    assert len(matches) == 1, f"expected one {check!r} finding in {report.to_json()}"
    return matches[0]


def checks(report: CheckReport) -> dict[str, str]:
    return {f.check: str(f.outcome) for f in report.findings}
