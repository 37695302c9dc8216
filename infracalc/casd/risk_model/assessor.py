"""The models at work on each export: :class:`RiskAssessor` asks the model in force and the shadow, and logs both.

:func:`infracalc.casd.exports.submit` calls :meth:`RiskAssessor.assess` in its transaction for a
report that did not fail: it reads the registry (which model is in force, which in shadow, staff's
bar), loads each model's file once (kept by digest; every load is verified against the SHA-256 the
registry recorded), computes the version's features (its project's history read in the same
transaction) and returns the :class:`~infracalc.casd.risk_model.routing.Assessment`. Then
:meth:`RiskAssessor.record` writes each model's decision to ``risk_decisions``.

A model whose file cannot be read or verified is left out, with a warning in the log and the
reason in the report: routing then falls back to the rules alone, which is never weaker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.objects import ObjectStore, ObjectStoreError
from infracalc.casd.risk_model.dataset import project_history
from infracalc.casd.risk_model.errors import ModelIntegrityError
from infracalc.casd.risk_model.features import features
from infracalc.casd.risk_model.model import RiskModel
from infracalc.casd.risk_model.registry import in_use, load_model, recall_bar
from infracalc.casd.risk_model.routing import Assessment, Opinion, opinion, rules_only
from infracalc.db import Governance, RiskDecision, RiskModelRecord

_log = logging.getLogger(__name__)


class RiskAssessor:
    """Asks the models in force and in shadow about export versions; keeps verified models by digest."""

    def __init__(self, store: ObjectStore | None) -> None:
        """An assessor reading models from ``store`` (``None``: no store, so the rules alone decide)."""
        self._store = store
        self._models: dict[str, RiskModel] = {}

    async def _model(self, record: RiskModelRecord | None) -> tuple[RiskModel | None, str | None]:
        if record is None:
            return None, None
        cached = self._models.get(record.sha256)
        if cached is not None and cached.id == record.id:
            return cached, None
        if self._store is None:
            return None, "no object store is configured"
        try:
            model = await load_model(self._store, record)
        except (ModelIntegrityError, ObjectStoreError) as error:
            _log.warning("risk model %s not used (%s): the rules decide alone", record.id, error)
            return None, f"model {record.id} could not be loaded: {error}"
        self._models[record.sha256] = model
        return model, None

    async def assess(
        self,
        db_session: AsyncSession,
        *,
        report: Mapping[str, Any],
        size: int,
        justification: str,
        version: int,
        project_id: str,
        governance: Governance | str,
        sample_rate: float,
        now: datetime,
    ) -> Assessment:
        """The level a version (whose checks did not fail) is routed by, and both models' opinions."""
        rules_level = RiskLevel(str(report["risk_level"]))
        force_record, shadow_record = await in_use(db_session)
        if force_record is None and shadow_record is None:
            return rules_only(rules_level, sample_rate)
        in_force, unavailable = await self._model(force_record)
        shadow, _ = await self._model(shadow_record)
        if in_force is None and shadow is None:
            return _unavailable(rules_only(rules_level, sample_rate), unavailable)
        vector = features(
            report,
            size=size,
            justification_length=len(justification),
            version=version,
            history=await project_history(db_session, project_id, now),
        )
        bar = await recall_bar(db_session)
        kind = str(report.get("detected_type", "unknown"))

        def ask(model: RiskModel | None) -> Opinion | None:
            if model is None:
                return None
            return opinion(model, vector, kind=kind, rules_level=rules_level, governance=governance, recall_bar=bar)

        force_opinion, shadow_opinion = ask(in_force), ask(shadow)
        if force_opinion is None:
            assessment = Assessment(
                rules_level=rules_level, level=rules_level, sample_probability=sample_rate, shadow=shadow_opinion
            )
            return _unavailable(assessment, unavailable)
        return Assessment(
            rules_level=rules_level,
            level=force_opinion.final_level,
            sample_probability=force_opinion.sample_probability,
            in_force=force_opinion,
            shadow=shadow_opinion,
        )

    @staticmethod
    def record(db_session: AsyncSession, assessment: Assessment, *, export_id: str, version: int, at: datetime) -> None:
        """Add each model's decision on the version to the caller's transaction."""
        for found, in_force in ((assessment.in_force, True), (assessment.shadow, False)):
            if found is None:
                continue
            db_session.add(
                RiskDecision(
                    export_id=export_id,
                    version=version,
                    model_id=found.model_id,
                    in_force=in_force,
                    probability=found.probability,
                    model_level=found.model_level.value,
                    rules_level=assessment.rules_level.value,
                    final_level=found.final_level.value,
                    sample_probability=found.sample_probability if found.final_level == RiskLevel.LOW else None,
                    explanation=found.explanation,
                    at=at,
                )
            )


def _unavailable(assessment: Assessment, reason: str | None) -> Assessment:
    if reason is None:
        return assessment
    return Assessment(
        rules_level=assessment.rules_level,
        level=assessment.level,
        sample_probability=assessment.sample_probability,
        in_force=assessment.in_force,
        shadow=assessment.shadow,
        model_unavailable=reason,
    )
