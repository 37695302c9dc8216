"""``infracalc risk ...``: the export risk models run by CASD staff on the service's host.

Each command builds its collaborators from the service's own settings (``INFRACALC_DATABASE_URL``,
``INFRACALC_S3_*``, ``INFRACALC_AUDIT_KEY``, ``INFRACALC_EXPORT_SAMPLE_RATE``) and calls
:mod:`infracalc.casd.risk_model`; every change goes to the audit log in its own transaction, signed
with the service's checkpoint key. :func:`report_lines` is what ``infracalc risk report`` prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.audit import AuditLog, AuditSettings
from infracalc.casd.exports import ExportSettings
from infracalc.casd.objects import ObjectStore
from infracalc.casd.risk_model import registry
from infracalc.casd.risk_model.runs import train_and_register
from infracalc.casd.risk_model.training import TrainingOptions
from infracalc.config import SettingError
from infracalc.db import DatabaseSettings, RiskModelRecord, create_engine, session_factory, upgrade, utc_now
from infracalc.storage import S3Settings, make_s3_client


@dataclass(frozen=True, slots=True)
class Collaborators:
    """What a risk command works with."""

    sessions: async_sessionmaker[AsyncSession]
    store: ObjectStore
    audit_log: AuditLog
    sample_rate: float

    async def audit(self, session: AsyncSession, **event: Any) -> None:
        """Append an audit event to ``session``'s transaction and seal the log when due."""
        await self.audit_log.append(session, **event)
        await self.audit_log.maybe_checkpoint(session)


@contextlib.asynccontextmanager
async def collaborators(env: Mapping[str, str] | None = None) -> AsyncIterator[Collaborators]:
    """The database (migrated), the object store and the audit log, from the service's settings.

    Raises:
        SettingError: a required setting is missing.
    """
    database = DatabaseSettings.from_env(env)
    try:
        s3 = S3Settings.from_env(env)
    except KeyError as error:
        raise SettingError(f"{error.args[0]} is required: models are stored in the object store") from None
    await upgrade(database)
    engine = create_engine(database)
    try:
        store = ObjectStore(make_s3_client(s3), s3.bucket)
        await store.ensure_bucket()
        yield Collaborators(
            sessions=session_factory(engine),
            store=store,
            audit_log=AuditLog.from_settings(AuditSettings.from_env(env)),
            sample_rate=ExportSettings.from_env(env).sample_rate,
        )
    finally:
        await engine.dispose()


async def train(
    found: Collaborators, *, actor: str, medium: float, high: float, progress: Callable[[str], None]
) -> RiskModelRecord:
    """Train a model on every review so far and record it in shadow."""
    options = TrainingOptions(medium=medium, high=high, sample_rate=found.sample_rate)
    return await train_and_register(
        found.sessions, found.store, actor=actor, options=options, audit=found.audit, progress=progress
    )


async def promote(found: Collaborators, model_id: str, *, actor: str, reason: str) -> RiskModelRecord:
    """Put the shadow model in force (audited)."""
    async with found.sessions() as session, session.begin():
        return await registry.promote(
            session, found.store, model_id, actor=actor, reason=reason, audit=found.audit, now=utc_now()
        )


async def retire(found: Collaborators, *, actor: str, reason: str) -> str:
    """Take the model in force out of routing (audited)."""
    async with found.sessions() as session, session.begin():
        return await registry.retire(session, actor=actor, reason=reason, audit=found.audit, now=utc_now())


async def set_bar(found: Collaborators, bar: float | None, *, actor: str, reason: str) -> None:
    """Set or clear the recall bar (audited)."""
    async with found.sessions() as session, session.begin():
        await registry.set_recall_bar(session, bar, actor=actor, reason=reason, audit=found.audit, now=utc_now())


def _pair(metrics: Mapping[str, Any], name: str) -> str:
    found = metrics.get(name)
    if not isinstance(found, Mapping):
        return "-"
    return f"load {found.get('load', 0):.1%}, recall {found.get('recall', 0):.1%}"


def metric_lines(metrics: Mapping[str, Any]) -> list[str]:
    """A model's measured figures, one per line."""
    found = metrics.get("sampled")
    sampled: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return [
        f"test: {metrics.get('test_examples', '?')} versions, {metrics.get('test_risky', '?')} rejected or sent back",
        f"ROC AUC {metrics.get('roc_auc', float('nan')):.3f}, Brier score {metrics.get('brier', float('nan')):.3f}",
        f"rules alone:                 {_pair(metrics, 'rules')}",
        f"higher of rules and model:   {_pair(metrics, 'combined')}",
        f"with lowering (bar figure):  {_pair(metrics, 'lowering')}",
        f"model alone at that load:    {_pair(metrics, 'model_at_load')}",
        f"rules + fixed sample:        {_pair(sampled, 'rules_fixed_rate')}",
        f"model + active sample:       {_pair(sampled, 'combined_active')}",
    ]


async def report_lines(found: Collaborators) -> list[str]:
    """What ``infracalc risk report`` prints: the bar, the models in force and in shadow, and the history."""
    async with found.sessions() as session:
        in_force, shadow = await registry.in_use(session)
        settings = await registry.routing_settings(session)
        models = await registry.history(session)
        comparison = await registry.compare(session, shadow.id) if shadow is not None else None
    bar = None if settings is None else settings.recall_bar
    lines = [f"recall bar: {'off (no model lowers a level)' if bar is None else f'{bar:.0%}'}"]
    for title, record in (("in force", in_force), ("in shadow", shadow)):
        if record is None:
            lines.append(f"{title}: none" + (" (the rules alone decide)" if title == "in force" else ""))
            continue
        lines.append(
            f"{title}: model {record.id} (v{record.version}), trained {record.trained_at:%Y-%m-%d %H:%M} by "
            f"{record.trained_by}, sha256 {record.sha256}"
        )
        lines.extend(f"  {line}" for line in metric_lines(record.metrics))
        recall = record.metrics.get("lowering", {}).get("recall")
        if bar is not None and isinstance(recall, int | float):
            lines.append(f"  may lower a level: {'yes' if recall >= bar else 'no'} (recall {recall:.1%} vs bar)")
    if comparison is not None:
        lines.append(
            f"shadow beside routing: {comparison.decided} export(s), {comparison.agreed} same level, "
            f"{comparison.shadow_higher} higher, {comparison.shadow_lower} lower; of {comparison.risky} risky "
            f"decided since: shadow sent {comparison.caught_by_shadow} to a person, "
            f"routing {comparison.caught_in_force}"
        )
    lines.append("history:")
    lines.extend(
        f"  v{record.version} {record.id} {record.status.value:9} trained {record.trained_at:%Y-%m-%d %H:%M}"
        f" ROC AUC {record.metrics.get('roc_auc', float('nan')):.3f}"
        for record in models
    )
    return lines


__all__ = ["Collaborators", "collaborators", "metric_lines", "promote", "report_lines", "retire", "set_bar", "train"]
