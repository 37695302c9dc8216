"""Training data from the reviews: each export version's features, labelled by the reviewers' final verdict.

**The label** of a version (:func:`verdict_of`): ``reject`` when a reviewer rejected it (in review
or after its release), else ``changes`` when one asked for changes, else ``approve`` when it was
released with that version's approvals (after review, or confirmed by its review after release);
anything else (not reviewed, or awaiting its second reviewer) is unlabelled. The model learns
``risky`` = reject or changes.

**The weight** of a labelled version is one over the chance it had of being reviewed: 1 when
routing sent it to reviewers, ``1 / q`` when it was released at once and drawn for a review after
release with chance ``q`` (recorded in its report's ``risk_model`` section, else the configured
rate). Weighted, the reviewed versions stand for every version, so the metrics measure the
platform's exports and not only those people happened to look at.

**The project's history** of a version counts the project's versions decided before it was
submitted, so no example learns from its own future.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.risk_model.features import FeatureVector, ProjectHistory, features
from infracalc.db import Export, ExportReview, ExportState, ExportVersion, ReviewVerdict

#: The section of a stored report where routing by risk writes what it decided (:mod:`.routing`).
REPORT_SECTION = "risk_model"


class Verdict(enum.StrEnum):
    """The reviewers' final verdict on one version."""

    APPROVE = "approve"
    CHANGES = "changes"
    REJECT = "reject"

    @property
    def risky(self) -> bool:
        """Rejected or sent back: what the model learns to foresee."""
        return self is not Verdict.APPROVE


@dataclass(frozen=True, slots=True)
class Decided:
    """A version's verdict and when the deciding vote was cast."""

    verdict: Verdict
    at: datetime


def verdict_of(votes: Sequence[tuple[ReviewVerdict, datetime]], *, released_with_it: bool) -> Decided | None:
    """The final verdict of a version from its votes (see the module docstring); ``None`` when undecided.

    Args:
        votes: each vote on the version and when it was cast.
        released_with_it: the export is released (or approved) and this is its current version.
    """
    for kind, verdict in ((ReviewVerdict.REJECT, Verdict.REJECT), (ReviewVerdict.CHANGES, Verdict.CHANGES)):
        times = [at for vote, at in votes if vote == kind]
        if times:
            return Decided(verdict, min(times))
    if votes and released_with_it:
        return Decided(Verdict.APPROVE, max(at for _, at in votes))
    return None


@dataclass(frozen=True, slots=True)
class Example:
    """One export version, its features, and the reviewers' verdict when there is one."""

    export_id: str
    version: int
    project_id: str
    governance: str
    submitted_at: datetime
    detected_type: str
    vector: FeatureVector
    rules_level: RiskLevel
    verdict: Verdict | None
    decided_at: datetime | None
    #: One over the chance this version had of being reviewed (see the module docstring).
    weight: float
    #: Released at once (low risk under INFRACALC): the population the sample is drawn from.
    released_at_once: bool


def _rules_level(report: Mapping[str, Any]) -> RiskLevel:
    section = report.get(REPORT_SECTION)
    level = section.get("rules_level") if isinstance(section, Mapping) else report.get("risk_level")
    try:
        return RiskLevel(str(level))
    except ValueError:
        return RiskLevel.HIGH  # an unreadable level counts as the strictest


def _sample_probability(report: Mapping[str, Any], default: float) -> float:
    section = report.get(REPORT_SECTION)
    value = section.get("sample_probability") if isinstance(section, Mapping) else None
    if isinstance(value, int | float) and 0 < value <= 1:
        return float(value)
    return default


def history_before(decided: Iterable[tuple[datetime, bool]], at: datetime) -> ProjectHistory:
    """The history made of ``(decided_at, risky)`` pairs decided strictly before ``at``."""
    reviewed = risky = 0
    for when, was_risky in decided:
        if when < at:
            reviewed += 1
            risky += was_risky
    return ProjectHistory(reviewed=reviewed, risky=risky)


async def votes_by_version(
    db_session: AsyncSession, project_id: str | None = None
) -> dict[tuple[str, int], list[tuple[ReviewVerdict, datetime]]]:
    """Each version's votes and when they were cast (of one project, or all)."""
    query = select(ExportReview.export_id, ExportReview.version, ExportReview.verdict, ExportReview.at)
    if project_id is not None:
        query = query.join(Export, Export.id == ExportReview.export_id).where(Export.project_id == project_id)
    votes: dict[tuple[str, int], list[tuple[ReviewVerdict, datetime]]] = defaultdict(list)
    for export_id, version, verdict, at in await db_session.execute(query):
        votes[(export_id, version)].append((ReviewVerdict(verdict), at))
    return votes


def released_with(export: Export, version: int) -> bool:
    """Whether ``version`` is the one the export was released (or approved) with."""
    return export.current_version == version and export.state in {ExportState.RELEASED, ExportState.APPROVED}


async def project_history(db_session: AsyncSession, project_id: str, before: datetime) -> ProjectHistory:
    """The project's versions decided by reviewers before ``before``, and how many were risky."""
    votes = await votes_by_version(db_session, project_id=project_id)
    if not votes:
        return ProjectHistory()
    exports = {
        export.id: export
        for export in await db_session.scalars(select(Export).where(Export.id.in_({key[0] for key in votes})))
    }
    decided = []
    for (export_id, version), cast in votes.items():
        export = exports.get(export_id)
        found = verdict_of(cast, released_with_it=export is not None and released_with(export, version))
        if found is not None:
            decided.append((found.at, found.verdict.risky))
    return history_before(decided, before)


async def examples(db_session: AsyncSession, *, sample_rate: float) -> list[Example]:
    """Every export version as an example, oldest first, labelled where reviewers decided it.

    Args:
        db_session: a session (read only).
        sample_rate: the chance of a review after release of versions whose report does not record theirs.
    """
    exports = {export.id: export for export in await db_session.scalars(select(Export))}
    versions = list(
        await db_session.scalars(select(ExportVersion).order_by(ExportVersion.submitted_at, ExportVersion.export_id))
    )
    votes = await votes_by_version(db_session)
    decided_by_project: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    decisions: dict[tuple[str, int], Decided | None] = {}
    for row in versions:
        export = exports[row.export_id]
        cast = votes.get((row.export_id, row.version), [])
        found = verdict_of(cast, released_with_it=released_with(export, row.version))
        decisions[(row.export_id, row.version)] = found
        if found is not None:
            decided_by_project[export.project_id].append((found.at, found.verdict.risky))
    built = []
    for row in versions:
        export = exports[row.export_id]
        report = row.report if isinstance(row.report, Mapping) else {}
        found = decisions[(row.export_id, row.version)]
        at_once = export.required_reviews == 0 and row.version == export.current_version
        weight = 1.0 / _sample_probability(report, sample_rate) if at_once and found is not None else 1.0
        built.append(
            Example(
                export_id=row.export_id,
                version=row.version,
                project_id=export.project_id,
                governance=str(export.governance),
                submitted_at=row.submitted_at,
                detected_type=str(report.get("detected_type", "unknown")),
                vector=features(
                    report,
                    size=row.size,
                    justification_length=len(row.justification),
                    version=row.version,
                    history=history_before(decided_by_project[export.project_id], row.submitted_at),
                ),
                rules_level=_rules_level(report),
                verdict=None if found is None else found.verdict,
                decided_at=None if found is None else found.at,
                weight=weight,
                released_at_once=at_once,
            )
        )
    return built
