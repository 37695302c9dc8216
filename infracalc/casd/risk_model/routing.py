"""Routing by risk, never weaker than the rules: how the rules' level and a model's opinion become one level.

The security property, tested over many synthetic reports:

- a report that FAILs is refused by :func:`infracalc.casd.exports.submit` before any model is
  asked: no model ever sees, let alone releases, a file the rules refuse;
- the level is the **higher** of the rules' level and the model's: a model may always raise it;
- a model may **lower** it only under INFRACALC governance, only by one level, and only when
  staff set a recall bar and the model's measured recall with lowering
  (``metrics["lowering"]["recall"]``, of rejected or changed outputs on the time-ordered test)
  reaches it. Under CASD governance every export is still reviewed, and a model never takes a
  reviewer away;
- without a model in force (none promoted, or its file cannot be loaded or verified) the level is
  the rules' and the sample is the configured rate: exactly the platform before models.

The chance of a review after release (low risk under INFRACALC) is the model's
(:meth:`RiskModel.sample_probability`: more where it is unsure, at the configured load) or the
fixed rate without a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.risk_model.explanations import LANGUAGES, render
from infracalc.casd.risk_model.model import LEVELS_BY_RANK, RiskModel, level_at_least
from infracalc.db import Governance


def measured_recall(model: RiskModel) -> float | None:
    """The recall the bar is compared with: of risky outputs, with lowering, on the time-ordered test."""
    lowering = model.metrics.get("lowering")
    recall = lowering.get("recall") if isinstance(lowering, Mapping) else None
    return float(recall) if isinstance(recall, int | float) else None


def may_lower(governance: Governance | str, model: RiskModel, recall_bar: float | None) -> bool:
    """Whether ``model`` may lower a level under ``governance`` with staff's ``recall_bar``."""
    if Governance(governance) != Governance.INFRACALC or recall_bar is None:
        return False
    recall = measured_recall(model)
    return recall is not None and recall >= recall_bar


def combined_level(
    rules_level: RiskLevel | str, model_level: RiskLevel | str | None, *, lowering_allowed: bool
) -> RiskLevel:
    """The level routing uses: the higher of both, or one level below the rules' when lowering is allowed."""
    rules = RiskLevel(rules_level)
    if model_level is None:
        return rules
    model = RiskLevel(model_level)
    if level_at_least(model) >= level_at_least(rules):
        return model
    if not lowering_allowed:
        return rules
    # At most one level down: a model, however sure, never turns a high risk into a release.
    return LEVELS_BY_RANK[level_at_least(rules) - 1]


@dataclass(frozen=True, slots=True)
class Opinion:
    """What one model said of one version, and the level routing gets with it in force."""

    model_id: str
    probability: float
    model_level: RiskLevel
    final_level: RiskLevel
    #: The chance of a review after release it gives (used when the final level releases at once).
    sample_probability: float
    explanation: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, for the report and the audit log: each reason by code, and as a sentence in each language."""
        return {
            "model": self.model_id,
            "probability": round(self.probability, 6),
            "model_level": self.model_level.value,
            "level": self.final_level.value,
            "sample_probability": round(self.sample_probability, 6),
            "explanation": [
                {**reason, "text": {language: render(reason, language) for language in LANGUAGES}}
                for reason in self.explanation
            ],
        }


def opinion(
    model: RiskModel,
    vector: Any,
    *,
    kind: str,
    rules_level: RiskLevel,
    governance: Governance | str,
    recall_bar: float | None,
) -> Opinion:
    """``model``'s opinion of a version (its :class:`~infracalc.casd.risk_model.features.FeatureVector`)."""
    probability = model.probability(vector)
    level = model.level(probability)
    return Opinion(
        model_id=model.id,
        probability=probability,
        model_level=level,
        final_level=combined_level(rules_level, level, lowering_allowed=may_lower(governance, model, recall_bar)),
        sample_probability=model.sample_probability(probability),
        explanation=model.explain(vector, kind),
    )


@dataclass(frozen=True, slots=True)
class Assessment:
    """The level an export version is routed by, and what the models in force and in shadow said."""

    rules_level: RiskLevel
    level: RiskLevel
    #: The chance of a review after release, when the level releases it at once.
    sample_probability: float
    in_force: Opinion | None = None
    shadow: Opinion | None = None
    #: Why no model was used although one is in force (its file failed to load or verify); ``None`` otherwise.
    model_unavailable: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The report's ``risk_model`` section (and the audit event's), in plain JSON."""
        section: dict[str, Any] = {
            "rules_level": self.rules_level.value,
            "level": self.level.value,
            "sample_probability": round(self.sample_probability, 6),
            "in_force": None if self.in_force is None else self.in_force.to_json(),
            "shadow": None if self.shadow is None else self.shadow.to_json(),
        }
        if self.model_unavailable is not None:
            section["model_unavailable"] = self.model_unavailable
        return section


def rules_only(rules_level: RiskLevel | str, sample_rate: float) -> Assessment:
    """The assessment without a model: the rules' level and the fixed rate."""
    level = RiskLevel(rules_level)
    return Assessment(rules_level=level, level=level, sample_probability=sample_rate)
