"""Training on the past, testing on the future, storing the fit as JSON that reproduces scikit-learn exactly."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.risk_model import (
    ModelIntegrityError,
    NotEnoughReviews,
    RiskModel,
    TrainingOptions,
    Verdict,
    render,
    train,
)
from infracalc.casd.risk_model.explanations import TEMPLATES
from infracalc.casd.risk_model.model import sha256_of
from infracalc.casd.risk_model.training import sampling_scale
from tests.unit.casd.risk_model.conftest import corpus

NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return train(corpus(400), model_id="m1", options=TrainingOptions(), now=NOW)


def test_the_model_is_measured_on_the_future_only(model: RiskModel) -> None:
    trained = model.trained
    assert trained["train"] == 300
    assert trained["test"] == 100
    assert trained["train_until"] < trained["test_from"]
    metrics = model.metrics
    # The hidden rule is learnable from the features: the model ranks well and is calibrated.
    assert metrics["roc_auc"] > 0.85
    assert 0 <= metrics["brier"] < 0.15
    for name in ("rules", "combined", "lowering", "model_at_load"):
        assert 0 <= metrics[name]["load"] <= 1
        assert 0 <= metrics[name]["recall"] <= 1
    # The higher of both levels reviews at least what the rules review, so it catches at least as many.
    assert metrics["combined"]["recall"] >= metrics["rules"]["recall"]
    assert metrics["combined"]["load"] >= metrics["rules"]["load"]


def test_the_stored_json_is_canonical_validated_and_reproduces_the_probabilities(model: RiskModel) -> None:
    data = model.to_bytes()
    loaded = RiskModel.from_bytes(data, sha256=sha256_of(data))
    assert loaded.to_bytes() == data
    for example in corpus(50, seed=99):
        assert loaded.probability(example.vector) == model.probability(example.vector)
    document = json.loads(data)
    assert document["format"] == "infracalc-risk-model/1"
    assert document["feature_set"] == "colysee-features/1"
    assert document["calibration"]["method"] == "sigmoid"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["coefficients"].pop(), "list of"),
        (lambda d: d.update(feature_set="colysee-features/0"), "feature set"),
        (lambda d: d["scaler"]["scale"].__setitem__(0, 0.0), "positive"),
        (lambda d: d["calibration"].update(method="isotonic"), "calibration"),
        (lambda d: d["thresholds"].update(medium=0.9, high=0.1), "above"),
        (lambda d: d.pop("intercept"), "lacks"),
        (lambda d: d["coefficients"].__setitem__(3, "1e400"), "finite"),
    ],
)
def test_a_tampered_or_foreign_model_is_refused(model: RiskModel, change, message: str) -> None:  # type: ignore[no-untyped-def]
    document = json.loads(model.to_bytes())
    change(document)
    data = json.dumps(document).encode()
    with pytest.raises(ModelIntegrityError, match=message):
        RiskModel.from_bytes(data, sha256=sha256_of(data))


def test_bytes_that_differ_from_the_recorded_digest_are_never_parsed(model: RiskModel) -> None:
    data = model.to_bytes()
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        RiskModel.from_bytes(data + b" ", sha256=sha256_of(data))


def test_too_few_reviews_or_one_verdict_only_cannot_train() -> None:
    with pytest.raises(NotEnoughReviews, match="at least 30"):
        train(corpus(20), model_id="m", options=TrainingOptions(), now=NOW)
    approved = [dataclasses.replace(e, verdict=Verdict.APPROVE) for e in corpus(60)]
    with pytest.raises(NotEnoughReviews, match="of each"):
        train(approved, model_id="m", options=TrainingOptions(), now=NOW)


def test_explanations_name_the_features_that_raised_the_risk_in_both_languages(model: RiskModel) -> None:
    examples = corpus(200, seed=3)
    riskiest = max(examples, key=lambda e: model.probability(e.vector))
    reasons = model.explain(riskiest.vector, riskiest.detected_type)
    assert reasons, "the riskiest version has reasons"
    for reason in reasons:
        assert reason["code"] in TEMPLATES
        english, french = render(reason, "en"), render(reason, "fr")
        assert english
        assert french
        assert english != french
        assert "{" not in english
        assert "{" not in french
    assert model.level(model.probability(riskiest.vector)) != RiskLevel.LOW
    # Weights are shown by feature, largest first.
    weights = model.weights()
    assert abs(weights[0][1]) >= abs(weights[-1][1])


def test_every_template_fills_in_with_its_parameters() -> None:
    from infracalc.casd.risk_model import FEATURES
    from infracalc.casd.risk_model.explanations import parameters

    facts = {name: 2.0 for name in ("size", "rows", "columns", "cells_checked", "smallest_count", "threshold")}
    for name in FEATURES:
        assert f"risk.{name}" in TEMPLATES, name
        reason = {"code": f"risk.{name}", "params": parameters(name, facts, "csv")}
        for language in ("fr", "en"):
            text = render(reason, language)
            assert "{" not in text, (name, language, text)
    assert render({"code": "risk.unknown_future_code", "params": {}}, "fr") == "risk.unknown_future_code"


def test_the_active_sample_keeps_the_configured_load_and_draws_more_where_the_model_is_unsure() -> None:
    probabilities = [0.01] * 80 + [0.2] * 20
    sampling = sampling_scale(probabilities, 0.1)
    chances = [max(sampling.floor, min(sampling.cap, sampling.scale * min(p, 1 - p))) for p in probabilities]
    assert sum(chances) / len(chances) == pytest.approx(0.1, abs=1e-6)
    assert chances[-1] > chances[0]
    assert sampling.floor == pytest.approx(0.025)
    assert sampling.cap == pytest.approx(0.4)
    assert sampling_scale([], 0.1).scale == 0.0
