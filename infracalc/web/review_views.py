"""What the review pages show: an export's votes against its review rule, the checks' findings, a project's files.

The rules themselves live in :mod:`infracalc.casd.exports` (how many distinct approvals release an
export, who may not vote) and are enforced there and by OPA; this module only reads the domain's
answers (:class:`~infracalc.service.exports.schemas.ExportDetail`) and says where an export stands
in words a reviewer can act on: how many approvals it has, who gave them, whether it needs a
second reviewer, whether the person looking may vote at all. It also gathers the exports and
imports a project page lists, through the same domain functions as the API (so OPA decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infracalc.db import ExportState, ReviewVerdict
from infracalc.service.context import ServiceContext
from infracalc.service.exports import service as exports
from infracalc.service.exports.schemas import ExportDetail, ReviewOut
from infracalc.service.imports import service as imports
from infracalc.service.imports.schemas import ImportOut
from infracalc.service.principals import Person

#: What a reviewer's approval records when they leave the comment empty (a comment is required to refuse only).
APPROVED_WITHOUT_COMMENT = "approved without comment"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's conclusion on a version, as the report stored it."""

    check: str
    outcome: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReviewStatus:
    """Where an export stands against its review rule, seen by one person.

    ``key`` names the catalogue message (``reviews.status.<key>``) that sums it up:
    ``needs_reviewers`` (no approval yet, ``required`` needed), ``needs_second`` (one of two
    approvals), ``sampled`` (released at once, drawn for a review after release), or the export's
    state when no vote is awaited (``released``, ``rejected``, ``changes_requested``...).
    """

    key: str
    #: Distinct approvals needed to release the current version.
    required: int
    #: The reviewers who approved the current version, in order.
    approved_by: tuple[str, ...]
    #: Every vote on the current version, in order.
    votes: tuple[ReviewOut, ...]
    #: The person looking requested the export: the requester never reviews their own.
    own: bool
    #: The person looking voted on the current version already (one vote per reviewer and version).
    voted: bool
    #: A vote is awaited (in review, or sampled after release and not reviewed yet).
    open: bool

    @property
    def missing(self) -> int:
        """Approvals still needed."""
        return max(0, self.required - len(self.approved_by))

    @property
    def may_vote(self) -> bool:
        """Whether the person looking can vote now (the domain and OPA decide; this only hides a form bound to fail)."""
        return self.open and not self.own and not self.voted


def review_status(export: ExportDetail, username: str) -> ReviewStatus:
    """Where ``export`` stands against its review rule, for ``username`` looking at it."""
    votes = tuple(review for review in export.reviews if review.version == export.current_version)
    approved_by = tuple(review.reviewer for review in votes if review.verdict == ReviewVerdict.APPROVE)
    sampled_open = export.state == ExportState.RELEASED and export.sampled and not votes
    is_open = export.state == ExportState.IN_REVIEW or sampled_open
    if sampled_open:
        key = "sampled"
    elif not is_open:
        key = export.state.value
    elif approved_by and len(approved_by) < export.required_reviews:
        key = "needs_second"
    else:
        key = "needs_reviewers"
    return ReviewStatus(
        key=key,
        required=export.required_reviews if export.state == ExportState.IN_REVIEW else 1,
        approved_by=approved_by,
        votes=votes,
        own=export.requested_by == username,
        voted=any(review.reviewer == username for review in votes),
        open=is_open,
    )


def findings(report: dict[str, Any]) -> list[Finding]:
    """The findings of a stored checks report, in their order; malformed entries are skipped."""
    found = report.get("findings")
    if not isinstance(found, list):
        return []
    return [
        Finding(str(item.get("check", "")), str(item.get("outcome", "")), str(item.get("reason", "")))
        for item in found
        if isinstance(item, dict)
    ]


def size_text(size: int) -> str:
    """A byte count for people: ``512 B``, ``2.0 KiB``, ``3.5 MiB``, ``1.2 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":  # noqa: PLR2004 - the binary prefix step
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class ProjectFiles:
    """The exports (with their votes) and imports a project page lists."""

    exports: list[ExportDetail]
    imports: list[ImportOut]

    @staticmethod
    def size(size: int) -> str:
        """A byte count for people (:func:`size_text`), for the template."""
        return size_text(size)


async def project_files(context: ServiceContext, person: Person, project_id: str) -> ProjectFiles:
    """The project's exports, each with its reviews, and its imports, newest first (members and staff)."""
    listed = await exports.list_project(context, person, project_id)
    details = await exports.read_many(context, person, listed)
    return ProjectFiles(exports=details, imports=await imports.list_imports(context, person, project_id))
