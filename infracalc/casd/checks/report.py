"""The report of the output checks on one file: its detected type, findings and risk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infracalc.casd.checks.findings import Finding, Outcome, worst
from infracalc.casd.checks.risk import RiskLevel


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Everything the checks concluded about one file, ready to store and to show."""

    #: ``csv``, ``tsv``, ``txt``, ``md``, ``json``, ``png``, ``jpeg``, ``svg``, ``html``, ``pdf``,
    #: ``xlsx``, a refused type's name (``zip``, ``gif``...), or ``unknown``.
    detected_type: str
    findings: tuple[Finding, ...]
    #: 0.0 to 1.0; see :mod:`infracalc.casd.checks.risk` for the formula.
    risk_score: float
    #: low below 0.3, medium below 0.7, high from 0.7.
    risk_level: RiskLevel

    @property
    def outcome(self) -> Outcome:
        """The worst finding's outcome (FAIL > REVIEW > PASS); PASS when there are no findings."""
        return worst(finding.outcome for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, for a database JSON column or an API answer."""
        return {
            "detected_type": self.detected_type,
            "outcome": str(self.outcome),
            "risk_score": self.risk_score,
            "risk_level": str(self.risk_level),
            "findings": [finding.to_json() for finding in self.findings],
        }
