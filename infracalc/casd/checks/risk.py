"""The disclosure-risk score of an output file, from its findings: simple, monotone and explained.

The score is a number from 0 to 1, built so that a reviewer can redo it by hand:

- any FAIL finding: **1.0** (the file cannot leave as it is);
- otherwise a **base** for what could be checked automatically: plain text and markdown 0.05;
  tables (CSV, TSV, XLSX), checked cell by cell, 0.10; files no rule can read (images, PDF,
  HTML, SVG, JSON) 0.40, i.e. medium at least, since only a person can check them;
- **+0.20 for each rule that asks for a review** (distinct check ids with outcome REVIEW:
  small counts, zeros, dominance, p-ratio, few contributors, a name that disagrees with the
  content, embedded objects...; the ``manual_review`` finding is already in the base);
- **+0.30 * min(1, 5 * f)**, where f is the fraction of data cells flagged by the cell rules
  (small counts and zeros, over the data cells checked): a table where one cell in five or more
  is flagged gets the whole 0.30;
- **+0.10 when active content** (scripts, event handlers) was found in HTML or SVG, even though it is
  stripped: someone put it there;
- a REVIEW anywhere puts the score at **0.30 at least** (medium: a person must look), and a file
  without FAIL stays **below 1.0** (at most 0.99).

Adding a finding, a flagged cell or a REVIEW never lowers the score. Levels (the contract's
mapping): low below 0.30, medium from 0.30 to below 0.70, high from 0.70.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from infracalc.casd.checks.findings import Finding, Outcome

#: Base scores by detected type (see the module docstring).
TEXT_BASE = 0.05
TABLE_BASE = 0.10
UNCHECKED_BASE = 0.40
TEXT_TYPES = frozenset({"txt", "md"})
TABLE_TYPES = frozenset({"csv", "tsv", "xlsx"})

#: What each REVIEW rule, the flagged fraction and active content add.
PER_REVIEW_RULE = 0.20
FLAGGED_WEIGHT = 0.30
FLAGGED_SATURATION = 5.0
ACTIVE_CONTENT = 0.10

#: Level boundaries: low < MEDIUM <= medium < HIGH <= high.
MEDIUM = 0.30
HIGH = 0.70

#: The checks whose details carry ``flagged`` and ``cells_checked`` (cell rules over the table).
CELL_RULES = ("small_counts", "zeros")
#: Not counted as a REVIEW rule: the base already says the file needs a person.
MANUAL_REVIEW = "manual_review"


class RiskLevel(enum.StrEnum):
    """Low, medium or high disclosure risk (governance routes an export by it)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def risk_level(score: float) -> RiskLevel:
    """The level of ``score``: low below 0.30, medium below 0.70, high from 0.70."""
    if score >= HIGH:
        return RiskLevel.HIGH
    if score >= MEDIUM:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def flagged_fraction(findings: Sequence[Finding]) -> float:
    """The fraction of checked data cells flagged by the cell rules (0 when no cell was checked)."""
    checked = 0
    flagged = 0
    for finding in findings:
        if finding.check in CELL_RULES:
            checked = max(checked, int(finding.details.get("cells_checked", 0)))
            flagged += int(finding.details.get("flagged", 0))
    return min(1.0, flagged / checked) if checked else 0.0


def risk_score(detected_type: str, findings: Sequence[Finding]) -> float:
    """The risk score of a file of ``detected_type`` with these findings (formula in the module docstring)."""
    if any(finding.outcome is Outcome.FAIL for finding in findings):
        return 1.0
    if detected_type in TEXT_TYPES:
        score = TEXT_BASE
    elif detected_type in TABLE_TYPES:
        score = TABLE_BASE
    else:
        score = UNCHECKED_BASE
    review_rules = {f.check for f in findings if f.outcome is Outcome.REVIEW and f.check != MANUAL_REVIEW}
    score += PER_REVIEW_RULE * len(review_rules)
    score += FLAGGED_WEIGHT * min(1.0, FLAGGED_SATURATION * flagged_fraction(findings))
    if any(f.check == "scripts" and f.details.get("removed", 0) for f in findings):
        score += ACTIVE_CONTENT
    if any(finding.outcome is Outcome.REVIEW for finding in findings):
        score = max(score, MEDIUM)
    return round(min(score, 0.99), 4)
