"""Findings: what one check concluded about an output file, in words a researcher understands.

Every check gives one :class:`Finding` with an :class:`Outcome`: PASS (nothing to report), REVIEW
(a person must look before release) or FAIL (the file cannot be exported as it is). A report's
overall outcome is the worst of its findings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The longest list kept in a finding's details (cells flagged...): enough to act on, small to store.
MAX_DETAIL_ITEMS = 50


class Outcome(enum.StrEnum):
    """The verdict of one check, and of a whole report (the worst of its findings)."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    REVIEW = "review"
    FAIL = "fail"


_SEVERITY = {Outcome.PASS: 0, Outcome.REVIEW: 1, Outcome.FAIL: 2}


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The most severe of ``outcomes`` (FAIL > REVIEW > PASS); PASS when there are none."""
    return max(outcomes, key=_SEVERITY.__getitem__, default=Outcome.PASS)


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check found."""

    #: Short id of the check: ``file_type``, ``size``, ``small_counts``, ``zeros``, ``dominance``...
    check: str
    outcome: Outcome
    #: Plain language for researchers and reviewers.
    reason: str
    #: JSON-able particulars (cells flagged, counts); lists capped at :data:`MAX_DETAIL_ITEMS`.
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The finding as plain JSON."""
        return {"check": self.check, "outcome": str(self.outcome), "reason": self.reason, "details": dict(self.details)}
