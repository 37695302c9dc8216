"""The risk score on representative files: ordered, monotone, and mapped to levels as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.casd.checks import CheckReport, Finding, Outcome, RiskLevel
from infracalc.casd.checks.risk import risk_level, risk_score

from .conftest import Check, write_workbook

PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)


def _table(small: int, zeros: int = 0, rows: int = 40) -> str:
    lines = ["region,a,b"]
    for i in range(rows):
        a = "3" if i < small else "120"
        b = "0" if i < zeros else "250"
        lines.append(f"r{i},{a},{b}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def reports(check: Check, tmp_path: Path) -> dict[str, CheckReport]:
    workbook = write_workbook(tmp_path / "w.xlsx", {"s": [("g", "n"), ("A", 4), ("B", 0)]}).read_bytes()
    return {
        "notes": check("notes.md", "# Notes\n\nThe model converged.\n"),
        "clean table": check("clean.csv", _table(0)),
        "one small count": check("one.csv", _table(1)),
        "image": check("figure.png", PNG),
        "small counts and zeros": check("two.csv", _table(2, 2)),
        "mostly small counts and zeros": check("many.csv", _table(30, 30)),
        "workbook with small counts, zeros and a picture named .bin": check("w.bin", workbook),
        "refused type": check("archive.zip", b"PK\x05\x06" + bytes(18)),
    }


def test_representative_files_are_ordered_by_risk(reports: dict[str, CheckReport]) -> None:
    scores = {name: report.risk_score for name, report in reports.items()}
    assert list(scores.values()) == sorted(scores.values()), scores
    assert scores["notes"] == 0.05
    assert scores["clean table"] == 0.10
    assert scores["refused type"] == 1.0


def test_levels_on_representative_files(reports: dict[str, CheckReport]) -> None:
    levels = {name: report.risk_level for name, report in reports.items()}
    assert levels == {
        "notes": RiskLevel.LOW,
        "clean table": RiskLevel.LOW,
        "one small count": RiskLevel.MEDIUM,
        "image": RiskLevel.MEDIUM,
        "small counts and zeros": RiskLevel.MEDIUM,
        "mostly small counts and zeros": RiskLevel.HIGH,
        "workbook with small counts, zeros and a picture named .bin": RiskLevel.HIGH,
        "refused type": RiskLevel.HIGH,
    }


def test_the_formula_on_one_table() -> None:
    # 1 REVIEW rule (+0.20), 2 of 80 cells flagged (f = 0.025: +0.30 * 0.125), table base 0.10.
    small = Finding("small_counts", Outcome.REVIEW, "", {"cells_checked": 80, "flagged": 2})
    zeros = Finding("zeros", Outcome.PASS, "", {"cells_checked": 80, "flagged": 0})
    assert risk_score("csv", [small, zeros]) == pytest.approx(0.10 + 0.20 + 0.30 * 0.125)


def test_a_review_never_scores_low() -> None:
    mismatch = Finding("extension", Outcome.REVIEW, "")
    assert risk_score("txt", [mismatch]) == 0.30


def test_more_findings_never_lower_the_score() -> None:
    found = [
        Finding("small_counts", Outcome.REVIEW, "", {"cells_checked": 100, "flagged": 5}),
        Finding("zeros", Outcome.REVIEW, "", {"cells_checked": 100, "flagged": 10}),
        Finding("dominance", Outcome.REVIEW, ""),
        Finding("scripts", Outcome.PASS, "", {"removed": 2}),
        Finding("p_ratio", Outcome.REVIEW, ""),
        Finding("parse", Outcome.FAIL, ""),
    ]
    for kind in ("txt", "csv", "png"):
        scores = [risk_score(kind, found[:n]) for n in range(len(found) + 1)]
        assert scores == sorted(scores), (kind, scores)
        assert scores[-1] == 1.0
        assert max(scores[:-1]) <= 0.99


@pytest.mark.parametrize(
    ("score", "level"),
    [(0.0, "low"), (0.29, "low"), (0.30, "medium"), (0.69, "medium"), (0.70, "high"), (1.0, "high")],
)
def test_level_boundaries(score: float, level: str) -> None:
    assert risk_level(score) == level


def test_report_outcome_and_json(reports: dict[str, CheckReport]) -> None:
    assert reports["clean table"].outcome is Outcome.PASS
    assert reports["one small count"].outcome is Outcome.REVIEW
    assert reports["refused type"].outcome is Outcome.FAIL
    assert CheckReport("txt", (), 0.0, RiskLevel.LOW).outcome is Outcome.PASS
    document = reports["one small count"].to_json()
    assert document["outcome"] == "review"
    assert document["risk_level"] == "medium"
    assert document["detected_type"] == "csv"
    assert {"check": "small_counts", "outcome": "review"}.items() <= document["findings"][2].items()
    import json

    assert json.loads(json.dumps(document)) == document
