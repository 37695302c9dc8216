"""Exports: a file leaving a bubble, checked for disclosure, reviewed as its governance and risk require.

A bubble submits a file with a justification (:func:`submit`). The output checks
(:func:`infracalc.casd.checks.check_output`) score its disclosure risk; a file that fails them is
refused outright (no object, no row, one ``export.refuse`` audit event). Scripts are stripped from
HTML and SVG, and the file is stored at ``projects/<project>/exports/<id>/v<n>/<name>``, tagged with
the project's governance. It is then routed (:func:`route`, ARCHITECTURE.md section 3):

============  =====================================  ==========================================
risk          CASD governance                        INFRACALC governance
============  =====================================  ==========================================
low           one reviewer                           released at once; 10 % sampled for review
medium        one reviewer                           one reviewer
high          two distinct reviewers                 two distinct reviewers
============  =====================================  ==========================================

The risk is the rules' level, or, when a risk model is in force (:mod:`infracalc.casd.risk_model`,
Colysée), the higher of the rules' and the model's (a model lowers it only under INFRACALC, by one
level, once its measured recall passes staff's bar); the report keeps what each model said in its
``risk_model`` section, with the features that raised the risk. A model in force also sets each
low-risk export's chance of a review after release (more where it is unsure, at the same load);
without one the chance is the fixed rate. A file that fails the checks never reaches a model.

The sample is drawn with the ``random.Random`` the caller passes (seeded, so a run can be
replayed) and every draw is audited (``export.sample``), sampled or not. CASD staff review
(:func:`review`): approve, reject or request changes, one vote per reviewer and version; the
requester never reviews their own export. Enough distinct approvals release it; a rejection or a
request for changes ends the round at once. After changes were requested the bubble submits a new
version (:func:`resubmit`), which starts with no votes. Once released, project members get a
presigned URL valid 15 minutes (:func:`download`).

States move only as :data:`TRANSITIONS` allows; anything else raises :class:`InvalidTransition`::

    submitted -> checked -> in_review -> changes_requested | approved | rejected
    checked -> released                  (low risk under INFRACALC: at once)
    approved -> released                 (in the same step, once enough reviewers approved)
    changes_requested -> submitted       (a new version)
    released -> rejected                 (a sampled export rejected by its review after release)

Like :mod:`infracalc.casd.sessions`, nothing here commits: every function works in the caller's
transaction, and writes its audit events (through the ``audit`` callable the caller passes, the
service's ``context.record``) and the session events of the submitting bubble in it. The object
is written before the transaction (:func:`stage`), so that no database lock is held while a large
file travels to the store; a caller whose transaction fails deletes it (:func:`deleted_on_failure`).

Errors, all under :class:`ExportError`: :class:`InvalidExport` (bad input), :class:`UnknownExport`,
:class:`InvalidTransition` (a move the state does not allow), :class:`SelfReview`,
:class:`DuplicateVote`, :class:`NotReleased`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd import sessions
from infracalc.casd.checks import CheckReport, CheckSettings, Outcome, RiskLevel, check_output, strip_active_content
from infracalc.casd.filenames import InvalidFileName, check_file_name
from infracalc.casd.objects import DOWNLOAD_SECONDS, ObjectStore, ObjectStoreError
from infracalc.casd.risk_model.assessor import RiskAssessor
from infracalc.casd.risk_model.dataset import REPORT_SECTION
from infracalc.casd.risk_model.routing import Assessment, rules_only
from infracalc.config import SettingError
from infracalc.db import (
    Export,
    ExportReview,
    ExportState,
    ExportVersion,
    Governance,
    Project,
    ReviewVerdict,
    SessionRecord,
    utc_now,
)
from infracalc.errors import InfracalcError

#: Returns the current time, timezone-aware.
Clock = Callable[[], datetime]

#: Shortest justification, in characters once trimmed.
MIN_JUSTIFICATION = 20
#: Longest justification, in characters.
MAX_JUSTIFICATION = 4000
#: Longest review comment, in characters.
MAX_COMMENT = 4000
#: Share of low-risk INFRACALC exports drawn for a review after their release.
SAMPLE_RATE = 0.10
#: Where an export's session events come from.
SOURCE = "service"
#: Random bytes in an export id (shown as hex).
_ID_BYTES = 8

#: Every move an export may make; :func:`move` refuses the others.
TRANSITIONS: Mapping[ExportState, frozenset[ExportState]] = {
    ExportState.SUBMITTED: frozenset({ExportState.CHECKED}),
    ExportState.CHECKED: frozenset({ExportState.IN_REVIEW, ExportState.RELEASED}),
    ExportState.IN_REVIEW: frozenset({ExportState.CHANGES_REQUESTED, ExportState.APPROVED, ExportState.REJECTED}),
    ExportState.CHANGES_REQUESTED: frozenset({ExportState.SUBMITTED}),
    ExportState.APPROVED: frozenset({ExportState.RELEASED}),
    # A sampled export reviewed after its release may be withdrawn: no more downloads.
    ExportState.RELEASED: frozenset({ExportState.REJECTED}),
    ExportState.REJECTED: frozenset(),
}


class ExportError(InfracalcError):
    """Root of the exports module's errors."""


class InvalidExport(ExportError):
    """A submission or review that cannot be accepted as given; ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownExport(ExportError):
    """No export has this id (or no project, or no session, that a submission names)."""


class InvalidTransition(ExportError):
    """The export's state does not allow this move (reviewing a released export, a new version of one in review)."""


class SelfReview(ExportError):
    """The requester of an export may not review it."""


class DuplicateVote(ExportError):
    """This reviewer has voted on this version already."""


class NotReleased(ExportError):
    """The export is not released: nothing can be downloaded yet."""


class Audit(Protocol):
    """Appends an audit event to the caller's transaction (the service's ``ServiceContext.record``)."""

    def __call__(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        project_id: str | None = None,
        governance: Governance | str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Awaitable[None]:
        """Record one event; does not commit."""
        ...


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """How exports are checked and sampled."""

    #: The output checks' settings (``INFRACALC_EXPORT_MAX_BYTES``, ``INFRACALC_EXPORT_THRESHOLD``...).
    checks: CheckSettings = field(default_factory=CheckSettings)
    #: ``INFRACALC_EXPORT_SAMPLE_RATE``: share of low-risk INFRACALC exports reviewed after release.
    sample_rate: float = SAMPLE_RATE
    #: ``INFRACALC_EXPORT_SAMPLE_SEED``: seed of the sampling draws (``None``: a random seed at start).
    sample_seed: int | None = None

    @property
    def max_bytes(self) -> int:
        """The largest file accepted (the checks' size cap)."""
        return self.checks.max_bytes

    def sampler(self) -> random.Random:
        """The random source of the sampling draws, seeded with :attr:`sample_seed` when set."""
        return random.Random(self.sample_seed if self.sample_seed is not None else secrets.randbits(64))  # noqa: S311 - a review sample, not a secret

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExportSettings:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            SettingError: a value is not a number, or the rate is not between 0 and 1.
        """
        env = os.environ if env is None else env
        try:
            rate = float(env.get("INFRACALC_EXPORT_SAMPLE_RATE", str(SAMPLE_RATE)))
            seed_text = env.get("INFRACALC_EXPORT_SAMPLE_SEED", "").strip()
            seed = int(seed_text) if seed_text else None
        except ValueError as error:
            raise SettingError(f"INFRACALC_EXPORT_SAMPLE_RATE and _SEED must be numbers: {error}") from None
        if not 0.0 <= rate <= 1.0 or math.isnan(rate):
            raise SettingError(f"INFRACALC_EXPORT_SAMPLE_RATE must be between 0 and 1, got {rate}")
        return cls(checks=CheckSettings.from_env(env), sample_rate=rate, sample_seed=seed)


@dataclass(frozen=True, slots=True)
class Route:
    """How an export is reviewed: how many distinct approvals release it, and whether it is sampled."""

    #: Distinct approvals needed; 0 releases it at once.
    required_reviews: int
    #: Released at once, with a sampling draw for a review afterwards.
    sample: bool


def route(governance: Governance | str, risk: RiskLevel | str) -> Route:
    """The review an export of this risk needs under this governance (ARCHITECTURE.md section 3)."""
    owner, level = Governance(governance), RiskLevel(risk)
    if level == RiskLevel.HIGH:
        return Route(required_reviews=2, sample=False)
    if owner == Governance.INFRACALC and level == RiskLevel.LOW:
        return Route(required_reviews=0, sample=True)
    return Route(required_reviews=1, sample=False)


def move(export: Export, to: ExportState) -> ExportState:
    """Move ``export`` to state ``to``; returns the state it left.

    Raises:
        InvalidTransition: :data:`TRANSITIONS` does not allow it.
    """
    current = ExportState(export.state)
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(state.value for state in TRANSITIONS[current])) or "nothing: it is final"
        raise InvalidTransition(
            f"export {export.id} is {current.value}: it cannot become {to.value} (from {current.value}: {allowed})"
        )
    export.state = to
    return current


@dataclass(frozen=True, slots=True)
class Submitted:
    """An export version stored and recorded; ``export.state`` says what happens next (released or in review)."""

    export: Export
    version: ExportVersion
    report: CheckReport
    #: Whether scripts were stripped from the file before storing it.
    stripped: bool
    #: The object written: a caller whose commit fails deletes it.
    object_key: str


@dataclass(frozen=True, slots=True)
class Refused:
    """A submission the output checks failed: nothing stored, one ``export.refuse`` audit event."""

    report: CheckReport

    @property
    def reasons(self) -> list[str]:
        """The failing findings' reasons, for the requester."""
        return [finding.reason for finding in self.report.findings if finding.outcome == Outcome.FAIL]


@dataclass(frozen=True, slots=True)
class Download:
    """A presigned URL of a released export, and when it stops working."""

    url: str
    expires_at: datetime


@dataclass(slots=True)
class _Events:
    """Audit and session events of one change, written together at the end of it."""

    audit: Audit
    session: AsyncSession
    project_id: str
    governance: Governance
    session_id: str
    clock: Clock
    pending: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, actor: str, action: str, summary: str, details: dict[str, Any]) -> None:
        self.pending.append((actor, action, summary, details))

    async def write(self) -> None:
        at = self.clock()
        await sessions.append_events(
            self.session,
            self.session_id,
            [
                sessions.NewEvent(at=at, source=SOURCE, kind=action, summary=summary, details=details)
                for _, action, summary, details in self.pending
            ],
        )
        # Last: the audit append holds the log's head until the commit.
        for actor, action, _, details in self.pending:
            await self.audit(
                self.session,
                actor=actor,
                action=action,
                project_id=self.project_id,
                governance=self.governance,
                details=details,
            )


def export_file_name(name: str) -> str:
    """``name`` in normal form (NFC), checked to be a plain file name (:mod:`infracalc.casd.filenames`).

    Raises:
        InvalidExport: empty, a path (separators, ``.`` or ``..``), control or text-direction characters,
            white space around it, or over 255 bytes.
    """
    try:
        return check_file_name(name)
    except InvalidFileName as error:
        raise InvalidExport(str(error), field="name") from None


def _justification(text: str) -> str:
    trimmed = text.strip()
    if len(trimmed) < MIN_JUSTIFICATION:
        raise InvalidExport(
            f"the justification must say what the file holds and why it may leave, in at least {MIN_JUSTIFICATION}"
            f" characters (got {len(trimmed)})",
            field="justification",
        )
    if len(trimmed) > MAX_JUSTIFICATION:
        raise InvalidExport(f"the justification is longer than {MAX_JUSTIFICATION} characters", field="justification")
    return trimmed


def _contributors(contributors: Mapping[str, Sequence[float]] | None) -> dict[str, list[float]] | None:
    if contributors is None:
        return None
    checked: dict[str, list[float]] = {}
    for cell, values in contributors.items():
        if not isinstance(cell, str) or "|" not in cell:
            raise InvalidExport(
                f"contributors are keyed '<row label>|<column name>', got {cell!r}", field="contributors"
            )
        if isinstance(values, str | bytes) or not all(
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) for value in values
        ):
            raise InvalidExport(f"contributors of {cell!r} must be a list of numbers", field="contributors")
        checked[cell] = [float(value) for value in values]
    return checked


def _summary(report: CheckReport) -> dict[str, Any]:
    """What the audit log and the session keep of a report."""
    return {
        "outcome": report.outcome.value,
        "risk_level": report.risk_level.value,
        "risk_score": report.risk_score,
        "detected_type": report.detected_type,
        "findings": [
            {"check": finding.check, "outcome": finding.outcome.value, "reason": finding.reason}
            for finding in report.findings
        ],
    }


def object_key(project_id: str, export_id: str, version: int, name: str) -> str:
    """Where a version of an export is stored."""
    return f"projects/{project_id}/exports/{export_id}/v{version}/{name}"


@dataclass(frozen=True, slots=True)
class Checked:
    """A spooled file that went through the output checks (and lost its scripts), ready to submit."""

    path: Path
    name: str
    justification: str
    report: CheckReport
    #: Whether scripts were stripped from the file.
    stripped: bool


async def check(
    path: Path,
    *,
    name: str,
    justification: str,
    contributors: Mapping[str, Sequence[float]] | None = None,
    settings: ExportSettings,
) -> Checked:
    """Check the submission's inputs, run the output checks and strip scripts from HTML and SVG.

    Runs in a worker thread and touches no database: the caller does it before opening the
    transaction that :func:`submit` or :func:`resubmit` needs, so that no write lock is held while a
    large file is read.

    Raises:
        InvalidExport: the name, the justification or the contributors are not acceptable.
    """
    name = export_file_name(name)
    justification = _justification(justification)
    cells = _contributors(contributors)

    def run() -> Checked:
        report = check_output(path, name=name, settings=settings.checks, contributors=cells)
        stripped = report.outcome != Outcome.FAIL and strip_active_content(path, report.detected_type)
        return Checked(path=path, name=name, justification=justification, report=report, stripped=stripped)

    return await asyncio.to_thread(run)


@dataclass(frozen=True, slots=True)
class Staged:
    """A version's file already in the object store, before the transaction that records it."""

    export_id: str
    version: int
    #: Where it is stored: the caller deletes it when the transaction does not commit.
    key: str
    size: int
    sha256: str
    #: The governance it is tagged with (set again in the transaction if the project switched meanwhile).
    governance: Governance


@contextlib.asynccontextmanager
async def deleted_on_failure(store: ObjectStore) -> AsyncIterator[list[str]]:
    """Collects the keys of staged objects; deletes them if the block (its commit included) fails.

    ::

        async with deleted_on_failure(store) as staged_keys:
            staged = await stage(store, checked, ...)
            staged_keys.append(staged.key)
            async with sessions() as db, db.begin():
                await submit(db, store, checked, staged=staged, ...)
    """
    keys: list[str] = []
    try:
        yield keys
    except BaseException:
        for key in keys:
            with contextlib.suppress(ObjectStoreError):
                await asyncio.shield(store.delete(key))  # even when the caller was cancelled
        raise


def new_export_id() -> str:
    """A fresh export id (random, 16 hex characters)."""
    return secrets.token_hex(_ID_BYTES)


async def stage(
    store: ObjectStore,
    checked: Checked,
    *,
    project_id: str,
    export_id: str,
    version: int,
    governance: Governance,
    settings: ExportSettings,
) -> Staged:
    """Store a checked file as version ``version`` of export ``export_id``, outside any transaction.

    :func:`submit` and :func:`resubmit` then record it; ``governance`` is the project's as the caller
    last read it (they retag the object if it changed before their transaction).
    """
    key = object_key(project_id, export_id, version, checked.name)
    stored = await store.put_file(key, checked.path, governance=governance, max_bytes=settings.max_bytes)
    return Staged(export_id, version, key, stored.size, stored.sha256, governance)


async def submit(
    db_session: AsyncSession,
    store: ObjectStore,
    checked: Checked,
    *,
    staged: Staged | None,
    project_id: str,
    session_id: str,
    requested_by: str,
    actor: str,
    settings: ExportSettings,
    sampler: random.Random,
    audit: Audit,
    clock: Clock = utc_now,
    assessor: RiskAssessor | None = None,
) -> Submitted | Refused:
    """Record a new export from a bubble, and route it; does not commit.

    Args:
        db_session: The caller's session, in a transaction.
        store: Where the file is stored (a staged object is retagged there if the governance changed).
        checked: The file and its checks (:func:`check`); a file that failed them is refused here.
        staged: The file as :func:`stage` stored it (version 1 of a new id); ``None`` exactly when the
            checks failed it.
        project_id: The bubble's project.
        session_id: The bubble's id (its session's id): the export's events go to that session.
        requested_by: The person the bubble works for; they may never review this export.
        actor: How the audit log names the caller (``bubble:<id>``).
        settings: The sampling rate and the size cap.
        sampler: The random source of the sampling draw (seeded by the caller).
        audit: Appends an audit event to ``db_session``'s transaction.
        clock: The time of the change.
        assessor: Asks the risk models in force and in shadow (:mod:`infracalc.casd.risk_model`); ``None``:
            the rules' level and the fixed sample rate alone.

    Returns:
        :class:`Submitted`, or :class:`Refused` when the checks failed it (then only the refusal's audit
        and session events were added).

    Raises:
        UnknownExport: the project or the bubble's session does not exist.
    """
    project = await _project(db_session, project_id)
    await _session_exists(db_session, session_id)
    events = _Events(audit, db_session, project.id, project.governance, session_id, clock)
    report = checked.report
    if report.outcome == Outcome.FAIL:
        return await _refuse(events, actor, report, name=checked.name, export_id=None)
    staged = _staged_as(staged, project_id, version=1, name=checked.name)
    now = clock()
    export = Export(
        id=staged.export_id,
        project_id=project.id,
        session_id=session_id,
        requested_by=requested_by,
        name=checked.name,
        governance=project.governance,
        state=ExportState.SUBMITTED,
        risk_level=report.risk_level.value,
        risk_score=report.risk_score,
        required_reviews=0,
        sampled=False,
        current_version=1,
        created_at=now,
        updated_at=now,
    )
    return await _record_version(
        db_session,
        store,
        events,
        export,
        staged=staged,
        checked=checked,
        actor=actor,
        settings=settings,
        sampler=sampler,
        now=now,
        assessor=assessor,
    )


async def resubmit(
    db_session: AsyncSession,
    store: ObjectStore,
    checked: Checked,
    *,
    staged: Staged | None,
    export_id: str,
    project_id: str,
    session_id: str,
    actor: str,
    settings: ExportSettings,
    sampler: random.Random,
    audit: Audit,
    clock: Clock = utc_now,
    assessor: RiskAssessor | None = None,
) -> Submitted | Refused:
    """Submit a new version of an export whose reviewers asked for changes; the votes start again.

    ``checked`` comes from :func:`check` (with the export's name), ``staged`` from :func:`stage` (the
    next version number; ``None`` exactly when the checks failed it). The new version keeps the export's
    name and is routed afresh (its own risk, the project's
    governance now). Its events go to the session of the bubble that first submitted the export.

    Raises:
        UnknownExport: no export of ``project_id`` has this id.
        InvalidTransition: no changes were requested, or another version arrived since ``staged`` was made.
    """
    export = await _export(db_session, export_id, for_update=True)
    if export.project_id != project_id:
        raise UnknownExport(f"project {project_id!r} has no export {export_id!r}")
    if export.state != ExportState.CHANGES_REQUESTED:
        raise InvalidTransition(
            f"export {export.id} is {export.state.value}: a new version is accepted only after changes were requested"
        )
    project = await _project(db_session, export.project_id)
    events = _Events(audit, db_session, project.id, project.governance, export.session_id, clock)
    report = checked.report
    if report.outcome == Outcome.FAIL:
        return await _refuse(events, actor, report, name=export.name, export_id=export.id, via_session=session_id)
    staged = _staged_as(staged, project_id, version=export.current_version + 1, name=export.name, export_id=export.id)
    now = clock()
    move(export, ExportState.SUBMITTED)
    export.governance = project.governance
    export.risk_level = report.risk_level.value
    export.risk_score = report.risk_score
    export.sampled = False
    export.current_version = staged.version
    return await _record_version(
        db_session,
        store,
        events,
        export,
        staged=staged,
        checked=checked,
        actor=actor,
        settings=settings,
        sampler=sampler,
        now=now,
        via_session=session_id,
        assessor=assessor,
    )


async def _refuse(
    events: _Events,
    actor: str,
    report: CheckReport,
    *,
    name: str,
    export_id: str | None,
    via_session: str | None = None,
) -> Refused:
    refused = Refused(report)
    details: dict[str, Any] = {"name": name, "reasons": refused.reasons, **_summary(report)}
    if export_id is not None:
        details["export"] = export_id
    if via_session is not None:
        details["bubble"] = via_session
    events.add(actor, "export.refuse", f"export of {name} refused: {'; '.join(refused.reasons)}", details)
    await events.write()
    return refused


def _staged_as(
    staged: Staged | None, project_id: str, *, version: int, name: str, export_id: str | None = None
) -> Staged:
    """``staged``, checked to be the object this version must have.

    Raises:
        InvalidTransition: it holds another version (one more arrived since it was staged).
        ValueError: no staged object, or one for another export (a bug of the caller).
    """
    if staged is None:
        raise ValueError("a file that passed the checks must be staged first (stage())")
    if export_id is not None and staged.export_id != export_id:
        raise ValueError(f"the staged object belongs to export {staged.export_id}, not {export_id}")
    if staged.version != version:
        raise InvalidTransition(
            f"export {staged.export_id} is at version {version - 1} now: submit the new version again"
        )
    if staged.key != object_key(project_id, staged.export_id, version, name):
        raise ValueError(f"the staged object {staged.key} is not where version {version} of {name} belongs")
    return staged


async def _record_version(
    db_session: AsyncSession,
    store: ObjectStore,
    events: _Events,
    export: Export,
    *,
    staged: Staged,
    checked: Checked,
    actor: str,
    settings: ExportSettings,
    sampler: random.Random,
    now: datetime,
    via_session: str | None = None,
    assessor: RiskAssessor | None = None,
) -> Submitted:
    report, stripped = checked.report, checked.stripped
    key, version = staged.key, staged.version
    if staged.governance != export.governance:
        # The project switched between staging and this transaction: the tag follows the record.
        await store.set_governance(key, export.governance)
    move(export, ExportState.CHECKED)
    stored_report = report.to_json()
    assessment = await _assess(
        db_session,
        assessor,
        stored_report=stored_report,
        staged=staged,
        checked=checked,
        export=export,
        settings=settings,
        now=now,
    )
    plan = route(export.governance, assessment.level)
    export.required_reviews = plan.required_reviews
    export.risk_level = assessment.level.value
    stored_report[REPORT_SECTION] = assessment.to_json()
    row = ExportVersion(
        export_id=export.id,
        version=version,
        object_key=key,
        size=staged.size,
        sha256=staged.sha256,
        report=stored_report,
        justification=checked.justification,
        submitted_at=now,
    )
    if version == 1:
        db_session.add(export)
        await db_session.flush()
    db_session.add(row)
    if assessor is not None:
        assessor.record(db_session, assessment, export_id=export.id, version=version, at=now)
    details: dict[str, Any] = {
        "export": export.id,
        "version": version,
        "name": export.name,
        "size": staged.size,
        "sha256": staged.sha256,
        "scripts_stripped": stripped,
        "required_reviews": plan.required_reviews,
        **_summary(report),
        "risk_level": assessment.level.value,
        REPORT_SECTION: assessment.to_json(),
    }
    if via_session is not None:
        details["bubble"] = via_session
    if plan.sample:
        move(export, ExportState.RELEASED)
        draw = sampler.random()
        rate = assessment.sample_probability
        export.sampled = draw < rate
        details["state"] = export.state.value
        events.add(actor, "export.submit", f"export {export.name} v{version} submitted ({assessment.level})", details)
        events.add(
            actor,
            "export.sample",
            f"export {export.name}: sampling draw {draw:.4f} against {rate:.4f}: "
            + ("queued for a review after release" if export.sampled else "not sampled"),
            {
                "export": export.id,
                "version": version,
                "draw": draw,
                "rate": rate,
                "sampled": export.sampled,
                "model": None if assessment.in_force is None else assessment.in_force.model_id,
            },
        )
        events.add(
            actor,
            "export.release",
            f"export {export.name} v{version} released at once (low risk, INFRACALC governance)",
            {"export": export.id, "version": version, "reason": "low risk under INFRACALC governance"},
        )
    else:
        move(export, ExportState.IN_REVIEW)
        details["state"] = export.state.value
        events.add(
            actor,
            "export.submit",
            f"export {export.name} v{version} submitted ({assessment.level}): "
            f"{plan.required_reviews} reviewer(s) needed",
            details,
        )
    export.updated_at = now
    await db_session.flush()
    await events.write()
    return Submitted(export=export, version=row, report=report, stripped=stripped, object_key=key)


async def _assess(
    db_session: AsyncSession,
    assessor: RiskAssessor | None,
    *,
    stored_report: dict[str, Any],
    staged: Staged,
    checked: Checked,
    export: Export,
    settings: ExportSettings,
    now: datetime,
) -> Assessment:
    """The level the version is routed by: the rules' alone, or with the models (never weaker than the rules)."""
    if assessor is None:
        return rules_only(checked.report.risk_level, settings.sample_rate)
    return await assessor.assess(
        db_session,
        report=stored_report,
        size=staged.size,
        justification=checked.justification,
        version=staged.version,
        project_id=export.project_id,
        governance=export.governance,
        sample_rate=settings.sample_rate,
        now=now,
    )


async def review(
    db_session: AsyncSession,
    *,
    export_id: str,
    reviewer: str,
    verdict: ReviewVerdict | str,
    comment: str,
    audit: Audit,
    clock: Clock = utc_now,
) -> Export:
    """Record a reviewer's vote on the current version and move the export accordingly; does not commit.

    An export in review: a rejection rejects it and a request for changes returns it to the bubble at
    once; an approval releases it once :attr:`Export.required_reviews` distinct reviewers approved this
    version. A sampled export reviewed after its release: an approval confirms it, a rejection
    withdraws it (no more downloads); changes cannot be requested of it any more.

    Raises:
        UnknownExport: no export has this id.
        SelfReview: ``reviewer`` requested it.
        DuplicateVote: ``reviewer`` has voted on this version already.
        InvalidTransition: the export is not awaiting a review.
        InvalidExport: the comment is empty or too long.
    """
    choice = ReviewVerdict(verdict)
    comment = comment.strip()
    if not comment:
        raise InvalidExport("a review needs a comment for the requester", field="comment")
    if len(comment) > MAX_COMMENT:
        raise InvalidExport(f"the comment is longer than {MAX_COMMENT} characters", field="comment")
    export = await _export(db_session, export_id, for_update=True)
    if reviewer == export.requested_by:
        raise SelfReview(f"{reviewer} requested export {export.id}: the requester never reviews their own export")
    post_release = export.state == ExportState.RELEASED and export.sampled
    if export.state != ExportState.IN_REVIEW and not post_release:
        raise InvalidTransition(
            f"export {export.id} is {export.state.value}: only an export in review, or a sampled one after its "
            "release, can be reviewed"
        )
    if post_release and choice == ReviewVerdict.CHANGES:
        raise InvalidTransition(
            f"export {export.id} was released already: a review after release approves or rejects it"
        )
    votes = await _votes(db_session, export)
    if reviewer in votes:
        raise DuplicateVote(
            f"{reviewer} voted {votes[reviewer].value} on version {export.current_version} of export {export.id}"
            " already: one vote per reviewer and version"
        )
    if post_release and votes:
        raise InvalidTransition(f"export {export.id} had its review after release already")
    now = clock()
    db_session.add(
        ExportReview(
            export_id=export.id,
            version=export.current_version,
            reviewer=reviewer,
            verdict=choice,
            comment=comment,
            at=now,
        )
    )
    project = await _project(db_session, export.project_id)
    events = _Events(audit, db_session, project.id, project.governance, export.session_id, clock)
    details: dict[str, Any] = {
        "export": export.id,
        "version": export.current_version,
        "verdict": choice.value,
        "comment": comment,
        "after_release": post_release,
    }
    approvals = sum(1 for vote in votes.values() if vote == ReviewVerdict.APPROVE) + (choice == ReviewVerdict.APPROVE)
    released = False
    if choice == ReviewVerdict.REJECT:
        move(export, ExportState.REJECTED)
    elif choice == ReviewVerdict.CHANGES:
        move(export, ExportState.CHANGES_REQUESTED)
    elif not post_release and approvals >= export.required_reviews:
        move(export, ExportState.APPROVED)
        move(export, ExportState.RELEASED)
        released = True
    details["state"] = export.state.value
    details["approvals"] = approvals
    details["required_reviews"] = export.required_reviews
    export.updated_at = now
    events.add(
        reviewer,
        "export.review",
        f"{reviewer} voted {choice.value} on {export.name} v{export.current_version}",
        details,
    )
    if released:
        events.add(
            reviewer,
            "export.release",
            f"export {export.name} v{export.current_version} released after {approvals} approval(s)",
            {"export": export.id, "version": export.current_version, "approvals": approvals},
        )
    await db_session.flush()
    await events.write()
    return export


async def download(
    db_session: AsyncSession,
    store: ObjectStore,
    *,
    export_id: str,
    username: str,
    audit: Audit,
    clock: Clock = utc_now,
    expires_in: int = DOWNLOAD_SECONDS,
) -> Download:
    """A presigned URL of the released export's current version, valid ``expires_in`` seconds; audited.

    Who may download (members of the project) is the caller's policy's to decide; this function
    refuses anything not released.

    Raises:
        UnknownExport: no export has this id.
        NotReleased: the export is not (or no longer) released.
    """
    export = await _export(db_session, export_id)
    if export.state != ExportState.RELEASED:
        raise NotReleased(f"export {export.id} is {export.state.value}: it can be downloaded once released")
    version = await _version(db_session, export, export.current_version)
    summary = f"{username} downloaded {export.name} v{version.version}"
    return await _audited_link(
        db_session,
        store,
        export,
        version,
        username=username,
        audit=audit,
        action="export.download",
        summary=summary,
        clock=clock,
        expires_in=expires_in,
    )


async def inspect(
    db_session: AsyncSession,
    store: ObjectStore,
    *,
    export_id: str,
    username: str,
    audit: Audit,
    version: int | None = None,
    clock: Clock = utc_now,
    expires_in: int = DOWNLOAD_SECONDS,
) -> Download:
    """A presigned URL of one version (default: the current one) in any state, for a reviewer to read; audited.

    Reviewers must see what they approve. Who may inspect (CASD staff) is the caller's policy's to
    decide; the event ``export.inspect`` records who read which version and when.

    Raises:
        UnknownExport: no export has this id, or it has no such version.
    """
    export = await _export(db_session, export_id)
    found = await _version(db_session, export, export.current_version if version is None else version)
    summary = f"{username} read {export.name} v{found.version} ({export.state.value})"
    return await _audited_link(
        db_session,
        store,
        export,
        found,
        username=username,
        audit=audit,
        action="export.inspect",
        summary=summary,
        clock=clock,
        expires_in=expires_in,
    )


async def _version(db_session: AsyncSession, export: Export, number: int) -> ExportVersion:
    found = await db_session.get(ExportVersion, (export.id, number))
    if found is None:
        raise UnknownExport(f"export {export.id} has no version {number}")
    return found


async def _audited_link(
    db_session: AsyncSession,
    store: ObjectStore,
    export: Export,
    version: ExportVersion,
    *,
    username: str,
    audit: Audit,
    action: str,
    summary: str,
    clock: Clock,
    expires_in: int,
) -> Download:
    """A presigned URL of ``version``, with its audit and session event ``action`` (a download or a reviewer's read)."""
    now = clock()
    url = store.presigned_download(version.object_key, filename=export.name, expires_in=expires_in)
    project = await _project(db_session, export.project_id)
    events = _Events(audit, db_session, project.id, project.governance, export.session_id, clock)
    events.add(
        username,
        action,
        summary,
        {"export": export.id, "version": version.version, "sha256": version.sha256, "expires_in": expires_in},
    )
    await events.write()
    return Download(url=url, expires_at=now + timedelta(seconds=expires_in))


async def get(db_session: AsyncSession, export_id: str) -> tuple[Export, list[ExportVersion], list[ExportReview]]:
    """An export, its versions (oldest first) and its reviews (in order).

    Raises:
        UnknownExport: no export has this id.
    """
    export = await _export(db_session, export_id)
    versions = await db_session.scalars(
        select(ExportVersion).where(ExportVersion.export_id == export.id).order_by(ExportVersion.version)
    )
    reviews = await db_session.scalars(
        select(ExportReview).where(ExportReview.export_id == export.id).order_by(ExportReview.at, ExportReview.id)
    )
    return export, list(versions.all()), list(reviews.all())


async def get_many(
    db_session: AsyncSession, export_ids: Sequence[str]
) -> list[tuple[Export, list[ExportVersion], list[ExportReview]]]:
    """Like :func:`get` for each of ``export_ids`` (in that order), in three queries; unknown ids are left out."""
    if not export_ids:
        return []
    found = {export.id: export for export in await db_session.scalars(select(Export).where(Export.id.in_(export_ids)))}
    versions: dict[str, list[ExportVersion]] = {export_id: [] for export_id in found}
    for version in await db_session.scalars(
        select(ExportVersion).where(ExportVersion.export_id.in_(found)).order_by(ExportVersion.version)
    ):
        versions[version.export_id].append(version)
    reviews: dict[str, list[ExportReview]] = {export_id: [] for export_id in found}
    for vote in await db_session.scalars(
        select(ExportReview).where(ExportReview.export_id.in_(found)).order_by(ExportReview.at, ExportReview.id)
    ):
        reviews[vote.export_id].append(vote)
    return [(found[i], versions[i], reviews[i]) for i in export_ids if i in found]


async def find(
    db_session: AsyncSession,
    *,
    project_id: str | None = None,
    state: ExportState | None = None,
    sampled: bool | None = None,
    limit: int = 200,
) -> list[Export]:
    """Exports, newest first (at most ``limit``), of a project and/or in a state and/or sampled."""
    query = select(Export).order_by(Export.created_at.desc(), Export.id).limit(limit)
    if project_id is not None:
        query = query.where(Export.project_id == project_id)
    if state is not None:
        query = query.where(Export.state == state)
    if sampled is not None:
        query = query.where(Export.sampled == sampled)
    return list((await db_session.scalars(query)).all())


async def awaiting_review(db_session: AsyncSession, *, limit: int = 200) -> list[Export]:
    """Exports waiting for a reviewer: in review, or sampled after release and not reviewed yet; oldest first."""
    reviewed = select(ExportReview.export_id).where(ExportReview.version == Export.current_version)
    query = (
        select(Export)
        .where(
            (Export.state == ExportState.IN_REVIEW)
            | ((Export.state == ExportState.RELEASED) & Export.sampled & Export.id.not_in(reviewed))
        )
        .order_by(Export.updated_at, Export.id)
        .limit(limit)
    )
    return list((await db_session.scalars(query)).all())


async def _votes(db_session: AsyncSession, export: Export) -> dict[str, ReviewVerdict]:
    rows = await db_session.execute(
        select(ExportReview.reviewer, ExportReview.verdict).where(
            ExportReview.export_id == export.id, ExportReview.version == export.current_version
        )
    )
    return {reviewer: ReviewVerdict(verdict) for reviewer, verdict in rows.all()}


async def _export(db_session: AsyncSession, export_id: str, *, for_update: bool = False) -> Export:
    query = select(Export).where(Export.id == export_id)
    if for_update:
        # Two reviewers approving at once: the second waits, then counts the first's vote.
        query = query.with_for_update()
    export = await db_session.scalar(query)
    if export is None:
        raise UnknownExport(f"no export {export_id!r}")
    return export


async def _project(db_session: AsyncSession, project_id: str) -> Project:
    project = await db_session.get(Project, project_id)
    if project is None:
        raise UnknownExport(f"no project {project_id!r}")
    return project


async def _session_exists(db_session: AsyncSession, session_id: str) -> None:
    if await db_session.get(SessionRecord, session_id) is None:
        raise UnknownExport(f"no session {session_id!r}: exports are submitted from a registered bubble")
