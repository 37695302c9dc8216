"""Routing by risk is never weaker than the rules: checked exhaustively, and over many synthetic reports.

The property: the level routing uses is never below the rules' level unless the model may lower
it (INFRACALC governance, a bar set, the model's measured recall at or above it), and then by one
level at most; under CASD every level still needs a reviewer. (A report that FAILs never reaches
a model: :func:`infracalc.casd.exports.submit` refuses it first, tested against the real database.)
"""

from __future__ import annotations

import itertools
import random

import pytest

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.exports import route
from infracalc.casd.risk_model import ProjectHistory, RiskModel, combined_level, features, may_lower
from infracalc.casd.risk_model.model import Sampling, level_at_least
from infracalc.casd.risk_model.routing import opinion
from infracalc.db import Governance
from tests.unit.casd.risk_model.conftest import image_report, table_report

LEVELS = list(RiskLevel)
BARS = [None, 0.5, 0.8, 0.95, 1.0]
RECALLS = [None, 0.0, 0.6, 0.9, 0.97, 1.0]


def model_with(recall: float | None, coefficients: tuple[float, ...] | None = None, seed: int = 0) -> RiskModel:
    from infracalc.casd.risk_model import FEATURES

    rng = random.Random(seed)
    count = len(FEATURES)
    return RiskModel(
        id=f"m{seed}",
        means=tuple(0.0 for _ in range(count)),
        scales=tuple(1.0 for _ in range(count)),
        coefficients=coefficients or tuple(rng.uniform(-3, 3) for _ in range(count)),
        intercept=rng.uniform(-3, 3),
        calibration_a=-rng.uniform(0.2, 2.0),
        calibration_b=rng.uniform(-1, 1),
        medium=rng.uniform(0.05, 0.5),
        high=rng.uniform(0.5, 0.95),
        sampling=Sampling(rate=0.1, scale=rng.uniform(0, 2), floor=0.025, cap=0.4),
        metrics={} if recall is None else {"lowering": {"recall": recall, "load": 0.3}},
    )


@pytest.mark.parametrize("governance", list(Governance))
def test_every_combination_is_never_below_the_rules_unless_the_bar_passes_and_then_one_level_at_most(
    governance: Governance,
) -> None:
    for rules, model_level, bar, recall in itertools.product(LEVELS, [*LEVELS, None], BARS, RECALLS):
        model = model_with(recall)
        allowed = may_lower(governance, model, bar)
        final = combined_level(rules, model_level, lowering_allowed=allowed)
        rank, rules_rank = level_at_least(final), level_at_least(rules)
        passes = governance == Governance.INFRACALC and bar is not None and recall is not None and recall >= bar
        assert allowed == passes
        if not passes:
            assert rank >= rules_rank, (governance, rules, model_level, bar, recall)
        assert rank >= rules_rank - 1
        if model_level is not None:
            assert rank >= min(level_at_least(model_level), rules_rank)  # never below both
            if level_at_least(model_level) >= rules_rank:
                assert final == model_level  # a model always may raise
        if governance == Governance.CASD:
            assert route(governance, final).required_reviews >= 1


def test_over_thousands_of_synthetic_reports_and_random_models_routing_is_never_weaker_than_the_rules() -> None:
    rng = random.Random(2026)
    checked = lowered = raised = 0
    for case in range(3000):
        if rng.random() < 0.2:
            report = image_report()
        else:
            small = rng.choice([0, 0, 1, 4, 30])
            rows, columns = rng.randint(1, 80), rng.randint(1, 50)
            report = table_report(
                small=small,
                zeros=rng.choice([0, 1, 3]),
                cells=rows * columns,
                rows=rows,
                columns=columns,
                smallest=rng.randint(1, 9) if small else None,
            )
        vector = features(
            report,
            size=rng.randint(10, 10**7),
            justification_length=rng.randint(20, 4000),
            version=rng.randint(1, 4),
            history=ProjectHistory(rng.randint(0, 30), rng.randint(0, 10)),
        )
        governance = rng.choice(list(Governance))
        bar, recall = rng.choice(BARS), rng.choice(RECALLS)
        rules = RiskLevel(report["risk_level"])
        said = opinion(
            model_with(recall, seed=case), vector, kind="csv", rules_level=rules, governance=governance, recall_bar=bar
        )
        final_rank, rules_rank = level_at_least(said.final_level), level_at_least(rules)
        passes = governance == Governance.INFRACALC and bar is not None and recall is not None and recall >= bar
        assert final_rank >= rules_rank - (1 if passes else 0)
        assert 0.0 <= said.probability <= 1.0
        assert 0.0 < said.sample_probability <= 1.0
        if governance == Governance.CASD:
            assert route(governance, said.final_level).required_reviews >= 1
        lowered += final_rank < rules_rank
        raised += final_rank > rules_rank
        checked += 1
    # The property was exercised both ways, not vacuously.
    assert lowered > 50
    assert raised > 50
    assert checked == 3000


def test_a_low_risk_infracalc_export_is_released_with_a_sample_and_anything_higher_needs_reviewers() -> None:
    assert route(Governance.INFRACALC, RiskLevel.LOW).sample
    assert route(Governance.INFRACALC, RiskLevel.MEDIUM).required_reviews == 1
    assert route(Governance.CASD, RiskLevel.LOW).required_reviews == 1
    assert route(Governance.CASD, RiskLevel.HIGH).required_reviews == 2
