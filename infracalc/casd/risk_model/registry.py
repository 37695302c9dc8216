"""The models' registry: trained models stored and recorded, shadowed, promoted by staff, and staff's recall bar.

A trained model's JSON goes to the object store at ``risk-models/v<version>-<id>/model.json`` and
its row to ``risk_models`` with the JSON's SHA-256; the audit log records both (``risk.train``).
A new model starts **in shadow**: routing asks it beside the model in force and logs its decisions
(``risk_decisions``) without acting on them. Staff promote it (``risk.promote``, with a reason and
the comparison of both on the same exports) only once it has decided at least
:data:`MIN_SHADOW_DECISIONS` exports, and only after its stored file is read back and matches its
recorded digest; the model it replaces is retired. At most one model is in force and one in shadow:
a newer training retires the older shadow. ``risk.retire`` goes back to the rules alone.
``risk.bar`` sets the recall a model must have measured before it may lower a level.

Stored models are tagged ``governance=CASD``: they are learnt from CASD staff's decisions on both
governances' exports, so they take the stricter owner (no project's retagging touches them).

Like the other CASD modules, nothing here commits: each function works in the caller's
transaction and appends its audit event through the ``audit`` callable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.objects import ObjectStore
from infracalc.casd.risk_model.dataset import released_with, verdict_of, votes_by_version
from infracalc.casd.risk_model.errors import PromotionRefused, UnknownModel
from infracalc.casd.risk_model.features import FEATURE_SET
from infracalc.casd.risk_model.model import RiskModel, level_at_least, sha256_of
from infracalc.db import Export, Governance, RiskDecision, RiskModelRecord, RiskModelStatus, RiskRouting

#: Where models are stored in the bucket.
MODEL_PREFIX: Final = "risk-models"
#: The fewest exports a shadow model must have decided before staff may promote it.
MIN_SHADOW_DECISIONS: Final = 20
#: The lowest recall bar staff may set: below it, a model that misses every other risky output could lower levels.
LOWEST_BAR: Final = 0.5
#: The longest reason staff give for a promotion, retirement or bar.
MAX_REASON: Final = 2000

#: Appends an audit event to the caller's transaction (``AuditLog.append`` or the service's ``record``).
Audit = Callable[..., Awaitable[Any]]


def object_key(version: int, model_id: str) -> str:
    """Where a model's JSON is stored."""
    return f"{MODEL_PREFIX}/v{version}-{model_id}/model.json"


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_model(store: ObjectStore, model: RiskModel, version: int) -> tuple[str, str]:
    """Write the model's JSON to the store (outside any transaction); returns its key and SHA-256."""
    data = model.to_bytes()
    key = object_key(version, model.id)
    await store.put_stream(
        key, _one_chunk(data), governance=Governance.CASD, max_bytes=len(data), content_type="application/json"
    )
    return key, sha256_of(data)


async def load_model(store: ObjectStore, record: RiskModelRecord) -> RiskModel:
    """The model a registry row names, read from the store and verified against the recorded SHA-256.

    Raises:
        ModelIntegrityError: the bytes or their content are not what was recorded.
        ObjectStoreError: the store failed.
    """
    data = b"".join([chunk async for chunk in store.read(record.object_key)])
    return RiskModel.from_bytes(data, sha256=record.sha256)


async def next_version(db_session: AsyncSession) -> int:
    """The version number the next trained model gets."""
    return int(await db_session.scalar(select(func.coalesce(func.max(RiskModelRecord.version), 0))) or 0) + 1


def _metrics_summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("roc_auc", "brier", "rules", "combined", "lowering", "model_at_load", "test_examples", "test_risky")
    return {name: metrics[name] for name in keep if name in metrics}


async def register(
    db_session: AsyncSession,
    model: RiskModel,
    *,
    version: int,
    key: str,
    sha256: str,
    actor: str,
    audit: Audit,
    now: datetime,
) -> RiskModelRecord:
    """Record a stored model as the new shadow (retiring any older shadow), with its ``risk.train`` event."""
    retired = []
    for older in await db_session.scalars(
        select(RiskModelRecord).where(RiskModelRecord.status == RiskModelStatus.SHADOW).with_for_update()
    ):
        older.status = RiskModelStatus.RETIRED
        older.retired_at = now
        retired.append(older.id)
    record = RiskModelRecord(
        id=model.id,
        version=version,
        status=RiskModelStatus.SHADOW,
        feature_set=FEATURE_SET,
        object_key=key,
        sha256=sha256,
        metrics=json.loads(json.dumps(dict(model.metrics))),
        trained_by=actor,
        trained_at=now,
    )
    db_session.add(record)
    await db_session.flush()
    await audit(
        db_session,
        actor=actor,
        action="risk.train",
        details={
            "model": model.id,
            "version": version,
            "object_key": key,
            "sha256": sha256,
            "feature_set": FEATURE_SET,
            "status": RiskModelStatus.SHADOW.value,
            "retired_shadow": retired,
            "trained": dict(model.trained),
            "metrics": _metrics_summary(model.metrics),
        },
    )
    return record


async def in_use(db_session: AsyncSession) -> tuple[RiskModelRecord | None, RiskModelRecord | None]:
    """The model in force and the model in shadow (either may be ``None``)."""
    rows = await db_session.scalars(
        select(RiskModelRecord).where(RiskModelRecord.status.in_([RiskModelStatus.IN_FORCE, RiskModelStatus.SHADOW]))
    )
    found = {row.status: row for row in rows}
    return found.get(RiskModelStatus.IN_FORCE), found.get(RiskModelStatus.SHADOW)


async def history(db_session: AsyncSession) -> list[RiskModelRecord]:
    """Every model ever trained, newest first."""
    return list(await db_session.scalars(select(RiskModelRecord).order_by(RiskModelRecord.version.desc())))


async def recall_bar(db_session: AsyncSession) -> float | None:
    """Staff's recall bar; ``None`` when unset (no model ever lowers a level)."""
    row = await db_session.get(RiskRouting, 1)
    return None if row is None else row.recall_bar


async def routing_settings(db_session: AsyncSession) -> RiskRouting | None:
    """The routing settings' row (``None`` before staff ever set a bar)."""
    return await db_session.get(RiskRouting, 1)


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise PromotionRefused("say why: a reason is required and goes to the audit log", field="reason")
    if len(text) > MAX_REASON:
        raise PromotionRefused(f"the reason is longer than {MAX_REASON} characters", field="reason")
    return text


async def set_recall_bar(
    db_session: AsyncSession, bar: float | None, *, actor: str, reason: str, audit: Audit, now: datetime
) -> RiskRouting:
    """Set (or clear, with ``None``) the recall a model must have measured before it may lower a level.

    Raises:
        PromotionRefused: the bar is not between 0.5 and 1, or no reason was given.
    """
    text = _reason(reason)
    if bar is not None and not LOWEST_BAR <= bar <= 1.0:  # also refuses NaN
        raise PromotionRefused(
            f"the recall bar must be between {LOWEST_BAR} and 1 (or off), got {bar}", field="recall_bar"
        )
    row = await db_session.get(RiskRouting, 1, with_for_update=True)
    if row is None:
        row = RiskRouting(id=1)
        db_session.add(row)
    previous = row.recall_bar
    row.recall_bar, row.updated_by, row.updated_at = bar, actor, now
    await db_session.flush()
    await audit(
        db_session, actor=actor, action="risk.bar", details={"recall_bar": bar, "previous": previous, "reason": text}
    )
    return row


async def _record(db_session: AsyncSession, model_id: str) -> RiskModelRecord:
    record = await db_session.get(RiskModelRecord, model_id, with_for_update=True)
    if record is None:
        raise UnknownModel(f"no risk model {model_id!r}")
    return record


async def shadow_decisions(db_session: AsyncSession, model_id: str) -> int:
    """How many export versions a model decided in shadow."""
    query = (
        select(func.count())
        .select_from(RiskDecision)
        .where(RiskDecision.model_id == model_id, RiskDecision.in_force.is_(False))
    )
    return int(await db_session.scalar(query) or 0)


async def promote(
    db_session: AsyncSession,
    store: ObjectStore,
    model_id: str,
    *,
    actor: str,
    reason: str,
    audit: Audit,
    now: datetime,
    min_decisions: int = MIN_SHADOW_DECISIONS,
) -> RiskModelRecord:
    """Put the shadow model ``model_id`` in force, retiring the one it replaces; audited ``risk.promote``.

    Raises:
        UnknownModel: no such model.
        PromotionRefused: it is not in shadow, has decided too few exports, or no reason was given.
        ModelIntegrityError: its stored file does not match the recorded digest (nothing changes).
    """
    text = _reason(reason)
    record = await _record(db_session, model_id)
    if record.status != RiskModelStatus.SHADOW:
        raise PromotionRefused(f"model {model_id} is {record.status.value}: only the model in shadow can be promoted")
    decided = await shadow_decisions(db_session, model_id)
    if decided < min_decisions:
        raise PromotionRefused(
            f"model {model_id} has decided {decided} export(s) in shadow; compare it with the model in force on at"
            f" least {min_decisions} before promoting it"
        )
    await load_model(store, record)  # read back and verified: a damaged file never goes in force
    comparison = await compare(db_session, model_id)
    replaced = None
    for current in await db_session.scalars(
        select(RiskModelRecord).where(RiskModelRecord.status == RiskModelStatus.IN_FORCE).with_for_update()
    ):
        current.status, current.retired_at = RiskModelStatus.RETIRED, now
        replaced = current.id
    record.status, record.promoted_by, record.promoted_at = RiskModelStatus.IN_FORCE, actor, now
    await db_session.flush()
    await audit(
        db_session,
        actor=actor,
        action="risk.promote",
        details={
            "model": record.id,
            "version": record.version,
            "sha256": record.sha256,
            "replaced": replaced,
            "reason": text,
            "comparison": comparison.to_json(),
        },
    )
    return record


async def retire(db_session: AsyncSession, *, actor: str, reason: str, audit: Audit, now: datetime) -> str:
    """Take the model in force out of routing (the rules alone decide again); audited ``risk.retire``.

    Raises:
        PromotionRefused: no model is in force, or no reason was given.
    """
    text = _reason(reason)
    current = await db_session.scalar(
        select(RiskModelRecord).where(RiskModelRecord.status == RiskModelStatus.IN_FORCE).with_for_update()
    )
    if current is None:
        raise PromotionRefused("no model is in force: the rules alone already decide")
    current.status, current.retired_at = RiskModelStatus.RETIRED, now
    await db_session.flush()
    await audit(db_session, actor=actor, action="risk.retire", details={"model": current.id, "reason": text})
    return current.id


@dataclass(frozen=True, slots=True)
class Comparison:
    """The shadow model beside what routed the same exports (the model then in force, or the rules alone)."""

    model_id: str
    #: Export versions the shadow decided.
    decided: int
    #: Of those, how many got the same level from both.
    agreed: int
    #: Those where the shadow's level was higher, and lower.
    shadow_higher: int
    shadow_lower: int
    #: Of those later decided by reviewers: how many were risky, and how many of those each sent to a person.
    labelled: int
    risky: int
    caught_by_shadow: int
    caught_in_force: int
    #: Level counts: ``{"in_force": {"low": n, ...}, "shadow": {...}}``.
    levels: Mapping[str, Mapping[str, int]]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "model": self.model_id,
            "decided": self.decided,
            "agreed": self.agreed,
            "shadow_higher": self.shadow_higher,
            "shadow_lower": self.shadow_lower,
            "labelled": self.labelled,
            "risky": self.risky,
            "caught_by_shadow": self.caught_by_shadow,
            "caught_in_force": self.caught_in_force,
            "levels": {name: dict(counts) for name, counts in self.levels.items()},
        }


async def compare(db_session: AsyncSession, model_id: str) -> Comparison:
    """Compare the shadow model ``model_id`` with what routed the same export versions."""
    shadow_rows = list(
        await db_session.scalars(
            select(RiskDecision).where(RiskDecision.model_id == model_id, RiskDecision.in_force.is_(False))
        )
    )
    keys = {(row.export_id, row.version) for row in shadow_rows}
    in_force: dict[tuple[str, int], str] = {}
    if keys:
        for row in await db_session.scalars(
            select(RiskDecision).where(
                RiskDecision.export_id.in_({key[0] for key in keys}), RiskDecision.in_force.is_(True)
            )
        ):
            in_force[(row.export_id, row.version)] = row.final_level
    exports = (
        {e.id: e for e in await db_session.scalars(select(Export).where(Export.id.in_({k[0] for k in keys})))}
        if keys
        else {}
    )
    votes = await votes_by_version(db_session) if keys else {}
    levels: dict[str, dict[str, int]] = {"in_force": {}, "shadow": {}}
    agreed = higher = lower = labelled = risky = by_shadow = by_force = 0
    for row in shadow_rows:
        key = (row.export_id, row.version)
        routed = RiskLevel(in_force.get(key, row.rules_level))
        shadow = RiskLevel(row.final_level)
        levels["in_force"][routed.value] = levels["in_force"].get(routed.value, 0) + 1
        levels["shadow"][shadow.value] = levels["shadow"].get(shadow.value, 0) + 1
        rank_routed, rank_shadow = level_at_least(routed), level_at_least(shadow)
        agreed += rank_routed == rank_shadow
        higher += rank_shadow > rank_routed
        lower += rank_shadow < rank_routed
        export = exports.get(row.export_id)
        found = verdict_of(
            votes.get(key, []), released_with_it=export is not None and released_with(export, row.version)
        )
        if found is not None:
            labelled += 1
            if found.verdict.risky:
                risky += 1
                by_shadow += rank_shadow >= 1
                by_force += rank_routed >= 1
    return Comparison(
        model_id=model_id,
        decided=len(shadow_rows),
        agreed=agreed,
        shadow_higher=higher,
        shadow_lower=lower,
        labelled=labelled,
        risky=risky,
        caught_by_shadow=by_shadow,
        caught_in_force=by_force,
        levels=levels,
    )
