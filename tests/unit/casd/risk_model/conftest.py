"""Synthetic export versions for the risk model's unit tests: reports as the checks store them, and verdicts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from infracalc.casd.checks.risk import risk_level
from infracalc.casd.risk_model import Example, ProjectHistory, Verdict, features

START = datetime(2026, 1, 1, tzinfo=UTC)


def table_report(
    *, small: int, zeros: int, cells: int, rows: int, columns: int, smallest: int | None
) -> dict[str, Any]:
    """A stored report of a CSV table with ``small`` small counts and ``zeros`` zeros among ``cells`` data cells."""
    flagged = small + zeros
    score = min(0.99, 0.10 + 0.20 * ((small > 0) + (zeros > 0)) + 0.30 * min(1.0, 5 * flagged / max(1, cells)))
    if flagged:
        score = max(score, 0.30)
    small_details: dict[str, Any] = {
        "cells_checked": cells,
        "threshold": 10,
        "rows": rows,
        "columns": columns,
        "flagged": small,
    }
    if small:
        small_details["smallest"] = smallest
        small_details["cells"] = [{"row": "secret-label", "column": "2020", "row_number": 2, "column_number": 2}]
    return {
        "detected_type": "csv",
        "outcome": "review" if flagged else "pass",
        "risk_score": round(score, 4),
        "risk_level": risk_level(score).value,
        "findings": [
            {"check": "size", "outcome": "pass", "reason": "", "details": {"bytes": 100}},
            {"check": "file_type", "outcome": "pass", "reason": "", "details": {"detected": "csv"}},
            {"check": "small_counts", "outcome": "review" if small else "pass", "reason": "", "details": small_details},
            {
                "check": "zeros",
                "outcome": "review" if zeros else "pass",
                "reason": "",
                "details": {"cells_checked": cells, "threshold": 10, "flagged": zeros},
            },
        ],
    }


def image_report() -> dict[str, Any]:
    return {
        "detected_type": "png",
        "outcome": "review",
        "risk_score": 0.4,
        "risk_level": "medium",
        "findings": [
            {"check": "file_type", "outcome": "pass", "reason": "", "details": {"detected": "png"}},
            {"check": "manual_review", "outcome": "review", "reason": "", "details": {}},
        ],
    }


def corpus(count: int, seed: int = 7, noise: float = 0.05) -> list[Example]:
    """Versions whose hidden verdict is risky when the smallest count is 1-3 or the table is wide, plus noise."""
    rng = random.Random(seed)
    built = []
    for index in range(count):
        kind = rng.random()
        if kind < 0.15:
            report = image_report()
            risky = rng.random() < 0.3
        else:
            small = rng.choice([0, 0, 0, 1, 2, 5])
            columns = rng.choice([3, 5, 8, 40])
            rows = rng.randint(5, 60)
            smallest = rng.randint(1, 9) if small else None
            report = table_report(
                small=small,
                zeros=rng.choice([0, 0, 1]),
                cells=rows * columns,
                rows=rows,
                columns=columns,
                smallest=smallest,
            )
            risky = (smallest is not None and smallest <= 3) or columns >= 40
        if rng.random() < noise:
            risky = not risky
        vector = features(
            report, size=1000 + index, justification_length=rng.randint(20, 300), version=1, history=ProjectHistory()
        )
        built.append(
            Example(
                export_id=f"e{index:05d}",
                version=1,
                project_id=f"p{index % 7}",
                governance="INFRACALC" if index % 2 else "CASD",
                submitted_at=START + timedelta(hours=index),
                detected_type=str(report["detected_type"]),
                vector=vector,
                rules_level=risk_level(float(report["risk_score"])),
                verdict=Verdict.REJECT if risky else Verdict.APPROVE,
                decided_at=START + timedelta(hours=index, minutes=30),
                weight=1.0,
                released_at_once=False,
            )
        )
    return built
