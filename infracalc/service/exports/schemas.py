"""What the exports API accepts and returns (msgspec structs; unknown fields are refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from infracalc.casd.exports import MAX_COMMENT
from infracalc.db import ExportState, Governance, ReviewVerdict


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """A reviewer's vote on the export's current version, with a comment the requester will read."""

    verdict: ReviewVerdict
    comment: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_COMMENT)]


class ReviewOut(msgspec.Struct):
    """One vote."""

    version: int
    reviewer: str
    verdict: ReviewVerdict
    comment: str
    at: datetime


class VersionOut(msgspec.Struct):
    """One submitted file of an export, with the output checks' report."""

    version: int
    size: int
    sha256: str
    justification: str
    submitted_at: datetime
    #: ``detected_type``, ``outcome``, ``risk_score``, ``risk_level`` and ``findings`` (check, outcome, reason...).
    report: dict[str, Any]


class ExportOut(msgspec.Struct):
    """An export: where it stands, how risky its current version is, how many approvals release it."""

    id: str
    project: str
    #: The bubble (and session) it was submitted from.
    session: str
    requested_by: str
    name: str
    governance: Governance
    state: ExportState
    risk_level: str
    risk_score: float
    required_reviews: int
    #: Released at once and drawn for a review after release.
    sampled: bool
    current_version: int
    created_at: datetime
    updated_at: datetime
    #: The current version's findings, in plain language (what to fix, what reviewers will look at).
    reasons: list[str]


class ExportDetail(ExportOut):
    """An export with every version and every vote."""

    versions: list[VersionOut]
    reviews: list[ReviewOut]


class DownloadOut(msgspec.Struct):
    """A presigned URL of the released file, usable without credentials until ``expires_at``."""

    url: str
    expires_at: datetime
