"""The feature set: what the risk model reads of one export version, from its checks' report and little else.

**Version** :data:`FEATURE_SET` (``colysee-features/1``). A model records the feature set it was
trained on and is refused by any code whose set differs: adding, removing or redefining a feature
means a new version here and a new model.

**What goes in.** The stored report of the output checks (:meth:`CheckReport.to_json`): the
detected type, each finding's outcome and its details' counts and margins (cells checked and
flagged, data rows and widest row, the smallest count *flagged* (only below the threshold), the
largest N-K share and the smallest p-ratio over the cells with contributions); the stored file's
size; the justification's *length*; the version number; and the project's history of reviewed
outcomes before the version was submitted. No cell value, label, file name or text of the
justification enters a feature: a model and its training data hold counts, shares and margins.

**The features**, in the order of a vector (:data:`FEATURES`; logs are base 10 of 1 + the value):

=========================  ===============================================================
name                       value
=========================  ===============================================================
type_table                 1 for csv, tsv, xlsx
type_text                  1 for txt, md
type_image                 1 for png, jpeg
type_document              1 for pdf
type_markup                1 for html, svg
type_data                  1 for json
log_size                   log of the file's bytes
log_rows                   log of the data rows (tables)
log_columns                log of the widest row's data cells (tables)
log_cells                  log of the data cells checked (tables)
rules_score                the rules' risk score (:mod:`infracalc.casd.checks.risk`)
review_rules               distinct rules asking for a review (the manual review left out)
small_count_cells          log of the cells with a count from 1 to threshold - 1
zero_cells                 log of the cells with a zero count
few_contributor_cells      log of the cells with fewer contributors than the threshold
dominance_cells            log of the cells failing the N-K rule
p_ratio_cells              log of the cells failing the p-ratio rule
smallest_count_margin      (threshold - smallest flagged count) / threshold; 0 when none
flagged_share              share of data cells flagged by the cell rules (0 to 1)
has_contributors           1 when contributions per cell were given
dominance_margin           largest N-K share - k (in -1..1); 0 without contributions
p_ratio_margin             p - smallest p-ratio (in -1..1); 0 without contributions
name_mismatch              1 when the name says another type than the content
embedded_objects           1 when a workbook holds pictures, charts or embedded files
active_content             1 when scripts were found (and stripped) in HTML or SVG
justification_length       log of the justification's characters
resubmission               versions before this one (0 to 3)
project_reviews            log of the project's versions decided before this one
project_risky_share        share of those that reviewers rejected or sent back (0 without history)
=========================  ===============================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from infracalc.casd.checks.risk import MANUAL_REVIEW, TABLE_TYPES, TEXT_TYPES

#: The version of the feature set; a model trained on another version is refused.
FEATURE_SET: Final = "colysee-features/1"

#: The features' names, in vector order (described in the module docstring).
FEATURES: Final = (
    "type_table",
    "type_text",
    "type_image",
    "type_document",
    "type_markup",
    "type_data",
    "log_size",
    "log_rows",
    "log_columns",
    "log_cells",
    "rules_score",
    "review_rules",
    "small_count_cells",
    "zero_cells",
    "few_contributor_cells",
    "dominance_cells",
    "p_ratio_cells",
    "smallest_count_margin",
    "flagged_share",
    "has_contributors",
    "dominance_margin",
    "p_ratio_margin",
    "name_mismatch",
    "embedded_objects",
    "active_content",
    "justification_length",
    "resubmission",
    "project_reviews",
    "project_risky_share",
)

_TYPE_GROUPS: Final = {
    "type_table": TABLE_TYPES,
    "type_text": TEXT_TYPES,
    "type_image": frozenset({"png", "jpeg"}),
    "type_document": frozenset({"pdf"}),
    "type_markup": frozenset({"html", "svg"}),
    "type_data": frozenset({"json"}),
}
#: The findings counted cell by cell, and the feature each one feeds.
_CELL_COUNTS: Final = {
    "small_counts": "small_count_cells",
    "zeros": "zero_cells",
    "few_contributors": "few_contributor_cells",
    "dominance": "dominance_cells",
    "p_ratio": "p_ratio_cells",
}
_CELL_RULES: Final = ("small_counts", "zeros")
#: The findings that set a flag when they ask for a review.
_FLAGS: Final = {"extension": "name_mismatch", "embedded": "embedded_objects"}
_MOST_RESUBMISSIONS: Final = 3


@dataclass(frozen=True, slots=True)
class ProjectHistory:
    """The project's versions decided by reviewers before a given time, and how many were rejected or sent back."""

    reviewed: int = 0
    risky: int = 0

    @property
    def risky_share(self) -> float:
        """The share rejected or sent back; 0 without history."""
        return self.risky / self.reviewed if self.reviewed else 0.0


@dataclass(frozen=True, slots=True)
class FeatureVector:
    """One version's features (:data:`FEATURES` order) and the plain facts behind them, for explanations."""

    values: tuple[float, ...]
    #: Human-sized values (counts, shares, margins) that explanations quote; never a cell value or label.
    facts: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """``{name: value}``."""
        return dict(zip(FEATURES, self.values, strict=True))


def _log(value: float) -> float:
    return math.log10(1.0 + max(0.0, value))


def _number(details: Mapping[str, Any], key: str) -> float | None:
    value = details.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _findings(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = report.get("findings")
    if not isinstance(found, list):
        return []
    return [item for item in found if isinstance(item, Mapping)]


def _details(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    details = finding.get("details")
    return details if isinstance(details, Mapping) else {}


def _read_margins(
    check: str,
    finding: Mapping[str, Any],
    details: Mapping[str, Any],
    values: dict[str, float],
    facts: dict[str, float],
) -> None:
    """The shape, margins and flags one finding gives (small counts, dominance, p-ratio, name, embedded, scripts)."""
    if check == "small_counts":
        rows = _number(details, "rows") or 0.0
        columns = _number(details, "columns") or 0.0
        values["log_rows"], values["log_columns"] = _log(rows), _log(columns)
        facts["rows"], facts["columns"] = rows, columns
        threshold = _number(details, "threshold")
        smallest = _number(details, "smallest")
        if threshold and smallest is not None and 0 < smallest < threshold:
            values["smallest_count_margin"] = (threshold - smallest) / threshold
            facts["smallest_count"], facts["threshold"] = smallest, threshold
    elif check == "dominance":
        values["has_contributors"] = 1.0
        share, k = _number(details, "largest_share"), _number(details, "k")
        if share is not None and k is not None:
            values["dominance_margin"] = _clip(share - k, -1.0, 1.0)
            facts["largest_share"], facts["k"] = share, k
    elif check == "p_ratio":
        values["has_contributors"] = 1.0
        ratio, p = _number(details, "smallest_ratio"), _number(details, "p")
        if ratio is not None and p is not None:
            values["p_ratio_margin"] = _clip(p - ratio, -1.0, 1.0)
            facts["smallest_ratio"], facts["p"] = ratio, p
    elif check in _FLAGS and finding.get("outcome") == "review":
        values[_FLAGS[check]] = 1.0
    elif check == "scripts" and (_number(details, "removed") or 0.0) > 0:
        values["active_content"] = 1.0


def features(
    report: Mapping[str, Any],
    *,
    size: int,
    justification_length: int,
    version: int,
    history: ProjectHistory,
) -> FeatureVector:
    """The feature vector of one export version, from its stored checks' report.

    Args:
        report: the report as stored (:meth:`CheckReport.to_json`); unknown or missing fields count as absent.
        size: the stored file's bytes.
        justification_length: the justification's characters (its text never enters the model).
        version: the version number (1 for the first submission).
        history: the project's versions decided before this one was submitted.
    """
    kind = str(report.get("detected_type", "unknown"))
    values: dict[str, float] = {name: 0.0 for name in FEATURES}
    facts: dict[str, float] = {}
    for name, kinds in _TYPE_GROUPS.items():
        values[name] = 1.0 if kind in kinds else 0.0
    values["log_size"] = _log(size)
    facts["size"] = float(size)
    score = report.get("risk_score")
    values["rules_score"] = float(score) if isinstance(score, int | float) and math.isfinite(score) else 0.0
    review_rules: set[str] = set()
    cells_checked = 0.0
    flagged = 0.0
    for finding in _findings(report):
        check = str(finding.get("check", ""))
        details = _details(finding)
        if finding.get("outcome") == "review" and check != MANUAL_REVIEW:
            review_rules.add(check)
        count = _number(details, "flagged") or 0.0
        if check in _CELL_COUNTS:
            values[_CELL_COUNTS[check]] = _log(count)
            facts[_CELL_COUNTS[check]] = count
        if check in _CELL_RULES:
            cells_checked = max(cells_checked, _number(details, "cells_checked") or 0.0)
            flagged += count
        _read_margins(check, finding, details, values, facts)
    values["log_cells"] = _log(cells_checked)
    facts["cells_checked"] = cells_checked
    values["flagged_share"] = min(1.0, flagged / cells_checked) if cells_checked else 0.0
    facts["flagged_share"] = values["flagged_share"]
    values["review_rules"] = float(len(review_rules))
    facts["review_rules"] = float(len(review_rules))
    values["justification_length"] = _log(justification_length)
    facts["justification_length"] = float(justification_length)
    values["resubmission"] = float(min(max(0, version - 1), _MOST_RESUBMISSIONS))
    facts["resubmission"] = float(max(0, version - 1))
    values["project_reviews"] = _log(history.reviewed)
    values["project_risky_share"] = history.risky_share
    facts["project_reviews"], facts["project_risky"] = float(history.reviewed), float(history.risky)
    facts["project_risky_share"] = history.risky_share
    return FeatureVector(tuple(values[name] for name in FEATURES), facts)


def check_feature_names(names: Sequence[str], feature_set: str) -> None:
    """Refuse a model whose feature set or feature list is not this code's.

    Raises:
        ValueError: the set's version or the names differ.
    """
    if feature_set != FEATURE_SET:
        raise ValueError(f"the model reads feature set {feature_set!r}; this code computes {FEATURE_SET!r}")
    if tuple(names) != FEATURES:
        raise ValueError(f"the model's features differ from {FEATURE_SET}'s list")
