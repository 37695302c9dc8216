"""The disclosure rules (statistical disclosure control), after ACRO's definitions and defaults.

**Which cells are counts.** A table's header is its first row with something beside the first
cell (rows before it, like a title, hold no data), and its first column holds the row labels;
both are left out. In the other (data) cells, a count is a non-negative
integer: text that is only digits, with an optional ``+``, leading zeros and surrounding blanks
(``"7"``, ``" 007 "``), or an XLSX number without a fractional part (not a boolean). Decimals
written as such in text (``"7.0"``, ``"7.5"``) are magnitudes, not counts. XLSX cannot tell them
apart (Excel stores every number as a double and writes 7.0 as ``7``), so there a whole number is
a count, as a reader sees it. Other text, dates and empty cells are ignored. Thousands separators
do not matter: they only appear in counts far above any threshold.

**Rules on counts** (every sheet of a workbook, each with its own header):

- small counts: a count from 1 to ``threshold - 1`` (ACRO ``safe_threshold``, 10) -> REVIEW;
- zeros: a count of 0 (ACRO ``zeros_are_disclosive``): structural or disclosive zeros -> REVIEW.

**Rules on contributors**, when the caller gives each cell's contributions (key
``"<row label>|<column name>"``; ACRO's aggregation functions):

- few contributors: fewer than ``threshold`` contributions (ACRO's threshold rule) -> REVIEW;
- dominance N-K: the ``n`` largest contributions hold more than ``k`` of a positive cell total
  (ACRO ``safe_nk_n`` 2, ``safe_nk_k`` 0.9) -> REVIEW;
- p-ratio: (total - largest - second largest) / largest is below ``p`` (ACRO ``safe_pratio_p``
  0.10); when it cannot be computed (one contribution, or a total of zero or less) the cell is
  flagged when zeros are treated as disclosive, as ACRO does -> REVIEW.

Each rule gives one finding naming the cells (the first 50 in its details, 5 in its reason).
The findings' details also carry the margins the export risk model reads
(:mod:`infracalc.casd.risk_model.features`): the table's shape (data rows, widest row), the
smallest count flagged (only below the threshold, so no value a rule let through is repeated),
the largest N-K share and the smallest p-ratio over the cells with contributions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infracalc.casd.checks.findings import MAX_DETAIL_ITEMS, Finding, Outcome
from infracalc.casd.checks.settings import CheckSettings

_REASON_ITEMS = 5
_LABEL_CHARS = 60
_SEPARATOR = "\x1f"


def as_count(value: object) -> int | None:
    """The count a cell value holds, or ``None`` when it is not a count (see the module docstring)."""
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("+"):
            text = text[1:]
        if text and text.isascii() and text.isdigit():
            return int(text)
    return None


def workbook_count(value: object) -> int | None:
    """The count an XLSX cell value holds: as :func:`as_count`, and a whole float is a count too."""
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    return as_count(value)


def _label(value: object) -> str:
    text = "" if value is None else str(value).strip()
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _cells(total: int) -> str:
    return f"{total:,} cells hold" if total > 1 else "1 cell holds"


def _cells_text(cells: Sequence[Mapping[str, Any]], total: int) -> str:
    shown = ", ".join(
        f"'{cell['row']}'/'{cell['column']}'" + (f" in sheet '{cell['sheet']}'" if cell.get("sheet") else "")
        for cell in cells[:_REASON_ITEMS]
    )
    return shown + (f" and {total - _REASON_ITEMS:,} more" if total > _REASON_ITEMS else "")


class CountRules:
    """Applies the rules on counts to the rows of one or more tables, streaming."""

    def __init__(self, settings: CheckSettings) -> None:
        self._threshold = settings.threshold
        self._check_zeros = settings.check_zeros
        self._smallest_flagged = 0 if settings.check_zeros else 1
        #: Data cells seen (excluding header rows and label columns).
        self.cells_checked = 0
        self.small: list[dict[str, Any]] = []
        self.small_total = 0
        self.zeros: list[dict[str, Any]] = []
        self.zeros_total = 0
        #: Data rows seen, and the widest one's data cells: the table's shape, for the risk model.
        self.rows = 0
        self.columns = 0
        #: The smallest count flagged (1 to threshold-1), ``None`` when none was: a margin, never a cell's value
        #: above the threshold.
        self.smallest: int | None = None
        # A row whose text holds no short integer cannot hold a flagged count: one search over the
        # joined row (a separator before every data cell, none before the label) skips the
        # cell-by-cell work for most rows. It may let through more than counts, never fewer.
        digits = max(1, len(str(max(0, settings.threshold - 1))))
        self._candidate = re.compile(rf"{_SEPARATOR}[\s+0]*[0-9]{{1,{digits}}}\s*(?={_SEPARATOR}|$)")

    def _flag(  # noqa: PLR0917 - private, called from one hot loop
        self, value: int, sheet: str | None, header: Sequence[object], row: Sequence[object], number: int, column: int
    ) -> None:
        if value == 0:
            if not self._check_zeros:
                return
            bucket = self.zeros
            self.zeros_total += 1
        elif value < self._threshold:
            bucket = self.small
            self.small_total += 1
            if self.smallest is None or value < self.smallest:
                self.smallest = value
        else:
            return
        if len(bucket) < MAX_DETAIL_ITEMS:
            cell: dict[str, Any] = {
                "row": _label(row[0]),
                "column": _label(header[column])
                if column < len(header) and header[column] not in (None, "")
                else f"column {column + 1}",
                "row_number": number,
                "column_number": column + 1,
            }
            if sheet is not None:
                cell["sheet"] = sheet
            bucket.append(cell)

    def text_rows(self, rows: Iterable[Sequence[str]], sheet: str | None = None) -> None:
        """Apply the rules to rows of text cells (CSV, TSV, markdown tables) after the header row."""
        header: Sequence[str] | None = None
        candidate = self._candidate.search
        join = _SEPARATOR.join
        for number, row in enumerate(rows, 1):
            if header is None:
                if any(cell.strip() for cell in row[1:]):
                    header = row
                continue
            width = len(row) - 1
            if width <= 0:
                continue
            self.cells_checked += width
            self.rows += 1
            self.columns = max(self.columns, width)
            if candidate(join(row)) is None:
                continue
            for column in range(1, len(row)):
                value = as_count(row[column])
                if value is not None and value < self._threshold:
                    self._flag(value, sheet, header, row, number, column)

    def value_rows(self, rows: Iterable[Sequence[object]], sheet: str | None = None) -> None:
        """Apply the rules to rows of typed values (XLSX) after the header row."""
        header: Sequence[object] | None = None
        for number, row in enumerate(rows, 1):
            if header is None:
                if any(value is not None and str(value).strip() for value in row[1:]):
                    header = row
                continue
            width = max(0, len(row) - 1)
            self.cells_checked += width
            if width:
                self.rows += 1
                self.columns = max(self.columns, width)
            for column in range(1, len(row)):
                count = workbook_count(row[column])
                if count is not None and count < self._threshold:
                    self._flag(count, sheet, header, row, number, column)

    def findings(self) -> list[Finding]:
        """The small-counts finding, and the zeros finding."""
        checked = self.cells_checked
        common = {"cells_checked": checked, "threshold": self._threshold}
        shape = {"rows": self.rows, "columns": self.columns}
        top = self._threshold - 1
        if self.small_total:
            small = Finding(
                "small_counts",
                Outcome.REVIEW,
                f"{_cells(self.small_total)} counts between 1 and {top} "
                f"(threshold {self._threshold}): rows {_cells_text(self.small, self.small_total)}",
                {**common, **shape, "flagged": self.small_total, "smallest": self.smallest, "cells": self.small},
            )
        else:
            small = Finding(
                "small_counts",
                Outcome.PASS,
                f"no count between 1 and {top} (threshold {self._threshold}) in {checked:,} data cells"
                if top >= 1
                else f"threshold {self._threshold}: no count is too small",
                {**common, **shape, "flagged": 0},
            )
        if not self._check_zeros:
            zeros = Finding("zeros", Outcome.PASS, "zeros are not checked (INFRACALC_EXPORT_CHECK_ZEROS is off)", {})
        elif self.zeros_total:
            zeros = Finding(
                "zeros",
                Outcome.REVIEW,
                f"{_cells(self.zeros_total)} a zero count (structural or "
                f"disclosive zeros: a zero can reveal that nobody in a group has a trait): rows "
                f"{_cells_text(self.zeros, self.zeros_total)}",
                {**common, "flagged": self.zeros_total, "cells": self.zeros},
            )
        else:
            zeros = Finding("zeros", Outcome.PASS, f"no zero count in {checked:,} data cells", {**common, "flagged": 0})
        return [small, zeros]


def _names(keys: Sequence[str], total: int) -> str:
    shown = ", ".join(f"'{_label(key)}'" for key in keys[:_REASON_ITEMS])
    return shown + (f" and {total - _REASON_ITEMS:,} more" if total > _REASON_ITEMS else "")


def _shares(values: Sequence[float], nk_n: int) -> tuple[float | None, float | None]:
    """A cell's N-K share and p-ratio from its contributions sorted largest first (``None`` where undefined)."""
    total = math.fsum(values)
    share = math.fsum(values[:nk_n]) / total if total > 0 else None
    ratio = (total - values[0] - values[1]) / values[0] if total > 0 and len(values) > 1 else None
    return share, ratio


def contributor_findings(contributors: Mapping[str, Sequence[float]], settings: CheckSettings) -> list[Finding]:
    """The few-contributors, dominance (N-K) and p-ratio findings for cells with known contributions."""
    invalid: list[str] = []
    few: list[str] = []
    dominated: list[str] = []
    low_ratio: list[str] = []
    # The margins (the largest top-n share, the smallest p-ratio over the cells): how near the rules'
    # limits the table came, for the risk model; aggregates over cells, never one contributor's value.
    margins: list[tuple[float | None, float | None]] = []
    for key, raw in contributors.items():
        try:
            values = sorted((float(v) for v in raw if not isinstance(v, bool)), reverse=True)
        except (TypeError, ValueError):
            invalid.append(key)
            continue
        if len(values) != len(raw) or not all(math.isfinite(v) for v in values):
            invalid.append(key)
            continue
        if len(values) < settings.threshold:
            few.append(key)
        share, ratio = _shares(values, settings.nk_n)
        margins.append((share, ratio))
        if share is not None and share > settings.nk_k:
            dominated.append(key)
        # A p-ratio that cannot be computed (one contribution, a total of zero or less) is flagged as ACRO does.
        if (ratio is None and settings.check_zeros) or (ratio is not None and ratio < settings.p_ratio):
            low_ratio.append(key)
    cells = len(contributors)
    findings: list[Finding] = []
    if invalid:
        findings.append(
            Finding(
                "contributors",
                Outcome.FAIL,
                f"the contributions given for {len(invalid):,} cell(s) are not all finite numbers: "
                f"{_names(invalid, len(invalid))}",
                {"cells": invalid[:MAX_DETAIL_ITEMS], "flagged": len(invalid)},
            )
        )
    shares = [share for share, _ in margins if share is not None]
    ratios = [ratio for _, ratio in margins if ratio is not None]
    dominance = {"n": settings.nk_n, "k": settings.nk_k} | ({"largest_share": round(max(shares), 4)} if shares else {})
    p_ratio = {"p": settings.p_ratio} | ({"smallest_ratio": round(min(ratios), 4)} if ratios else {})
    rules = (
        (
            "few_contributors",
            few,
            f"fewer than {settings.threshold} contributors (threshold rule)",
            {"threshold": settings.threshold},
        ),
        (
            "dominance",
            dominated,
            f"the {settings.nk_n} largest contributors hold more than {settings.nk_k:.0%} of the cell total (N-K rule)",
            dominance,
        ),
        (
            "p_ratio",
            low_ratio,
            f"the others' total is less than {settings.p_ratio:.0%} of the largest contribution, so the second "
            "largest contributor can estimate the largest closely (p-ratio rule)",
            p_ratio,
        ),
    )
    for check, flagged, rule, parameters in rules:
        details: dict[str, Any] = {**parameters, "cells_checked": cells, "flagged": len(flagged)}
        if flagged:
            details["cells"] = flagged[:MAX_DETAIL_ITEMS]
            reason = f"{len(flagged):,} of {cells:,} cells: {rule}: {_names(flagged, len(flagged))}"
            findings.append(Finding(check, Outcome.REVIEW, reason, details))
        else:
            findings.append(Finding(check, Outcome.PASS, f"none of {cells:,} cells: {rule}", details))
    return findings
