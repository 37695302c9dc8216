"""Fitting and measuring a model on the reviews, in time order: train on the past, test on the future.

:func:`train` sorts the labelled versions by submission time, fits on the first 75 % and measures
on the last 25 % (never shuffled across that line: a model is judged on exports it could not have
seen). The fit is scikit-learn's ``CalibratedClassifierCV(LogisticRegression(), method="sigmoid",
ensemble=False)`` over standardised features with the examples' weights (one over their chance of
review): one regression on the whole training part, and a Platt sigmoid fitted on its
out-of-fold scores. The stored model (:class:`RiskModel`) is that fit, exactly the one measured;
its plain-Python probabilities are checked against scikit-learn's before it is returned.

**The metrics** (weighted, on the test part): ROC AUC and Brier score of the probability; for
each way of setting levels, the *load* (share of outputs at medium or above, i.e. seen by a person
before release) and the *recall* (share of rejected or changed outputs among them):

- ``rules``: the rules' level alone;
- ``combined``: the higher of the rules' and the model's (what routing does without a bar);
- ``lowering``: the same, with the model allowed to lower one level (what routing does once the
  model passes staff's bar; ``lowering.recall`` is the figure compared with the bar);
- ``model_at_load``: the model alone, reviewing its riskiest outputs up to ``combined``'s load;
- ``sampled``: ``combined`` plus the expected reviews after release of its low-risk outputs (the
  model's active sample), beside ``rules`` plus the fixed-rate sample.

scikit-learn is imported inside :func:`train` only: the service, which scores with the stored
parameters, never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.risk_model.dataset import Example
from infracalc.casd.risk_model.errors import NotEnoughReviews
from infracalc.casd.risk_model.features import FEATURE_SET, FEATURES
from infracalc.casd.risk_model.model import RiskModel, Sampling, level_at_least
from infracalc.casd.risk_model.routing import combined_level

#: The fewest labelled versions a model is trained on (train and test parts together).
MIN_EXAMPLES: Final = 30
#: The share of labelled versions (the oldest) the model is fitted on; the rest tests it.
TRAIN_SHARE: Final = 0.75
#: The fewest of each verdict (risky, approved) the training part needs for a calibrated fit.
MIN_PER_CLASS: Final = 2
#: Default probability from which the model says medium (a person looks), and high (two people).
DEFAULT_MEDIUM: Final = 0.2
DEFAULT_HIGH: Final = 0.6
#: The active sample's chance of review stays between rate / SPREAD and rate * SPREAD.
SAMPLE_SPREAD: Final = 4.0
#: Scales below this are a constant feature (its standardised value is then 0).
_CONSTANT: Final = 1e-12
#: The largest sampling scale tried (uncertainties are at least this small's inverse apart).
_LARGEST_SCALE: Final = 1e12
#: Agreement tolerated between the plain-Python and scikit-learn probabilities.
_AGREEMENT: Final = 1e-9


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    """What a training run is asked for."""

    medium: float = DEFAULT_MEDIUM
    high: float = DEFAULT_HIGH
    #: The configured share of low-risk exports reviewed after release (``INFRACALC_EXPORT_SAMPLE_RATE``).
    sample_rate: float = 0.10
    #: The regression's inverse regularisation strength.
    c: float = 1.0


def _weighted_share(weights: Sequence[float], chosen: Sequence[bool]) -> float:
    total = math.fsum(weights)
    return math.fsum(w for w, c in zip(weights, chosen, strict=True) if c) / total if total else 0.0


def load_and_recall(weights: Sequence[float], risky: Sequence[bool], reviewed: Sequence[float]) -> dict[str, float]:
    """Weighted load (share reviewed) and recall (share of risky ones reviewed); ``reviewed`` may be a chance."""
    total = math.fsum(weights)
    risky_total = math.fsum(w for w, r in zip(weights, risky, strict=True) if r)
    seen = math.fsum(w * p for w, p in zip(weights, reviewed, strict=True))
    caught = math.fsum(w * p for w, r, p in zip(weights, risky, reviewed, strict=True) if r)
    return {
        "load": round(seen / total, 6) if total else 0.0,
        "recall": round(caught / risky_total, 6) if risky_total else 0.0,
    }


def top_at_load(probabilities: Sequence[float], weights: Sequence[float], load: float) -> list[bool]:
    """The outputs with the highest probabilities whose weights add up to ``load`` of the total (ties kept)."""
    order = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])
    budget = load * math.fsum(weights)
    chosen = [False] * len(probabilities)
    spent = 0.0
    for index in order:
        if spent >= budget - 1e-12:
            break
        chosen[index] = True
        spent += weights[index]
    return chosen


def sampling_scale(probabilities: Sequence[float], rate: float, *, spread: float = SAMPLE_SPREAD) -> Sampling:
    """The active sample's parameters: chance = clip(scale * min(p, 1 - p)) averaging ``rate`` over ``probabilities``.

    With no low-risk output to calibrate on, or none the model is unsure about, the scale is 0 (fixed rate).
    """
    floor, cap = rate / spread, min(1.0, rate * spread)
    uncertainties = [min(p, 1.0 - p) for p in probabilities]
    if rate <= 0 or not uncertainties or max(uncertainties) <= 0:
        return Sampling(rate=rate, scale=0.0, floor=floor, cap=cap)

    def mean_chance(scale: float) -> float:
        return math.fsum(max(floor, min(cap, scale * u)) for u in uncertainties) / len(uncertainties)

    low, high = 0.0, 1.0
    while mean_chance(high) < rate and high < _LARGEST_SCALE:
        high *= 2
    for _ in range(100):  # bisection: mean_chance grows with the scale
        middle = (low + high) / 2
        if mean_chance(middle) < rate:
            low = middle
        else:
            high = middle
    return Sampling(rate=rate, scale=high, floor=floor, cap=cap)


def _check_enough(train: Sequence[Example], test: Sequence[Example], labelled: int) -> None:
    if labelled < MIN_EXAMPLES:
        raise NotEnoughReviews(
            f"{labelled} version(s) have a final verdict; a model needs at least {MIN_EXAMPLES} to train and test"
        )
    risky = sum(1 for e in train if e.verdict is not None and e.verdict.risky)
    if min(risky, len(train) - risky) < MIN_PER_CLASS:
        raise NotEnoughReviews(
            f"the oldest {len(train)} decided versions hold {risky} rejected or sent back and {len(train) - risky}"
            f" approved; training needs at least {MIN_PER_CLASS} of each"
        )
    risky_test = sum(1 for e in test if e.verdict is not None and e.verdict.risky)
    if risky_test in (0, len(test)):
        raise NotEnoughReviews(
            f"the newest {len(test)} decided versions are all {'approved' if risky_test == 0 else 'risky'}: the test"
            " needs both verdicts to measure a model"
        )


def train(
    examples: Sequence[Example],
    *,
    model_id: str,
    options: TrainingOptions,
    now: datetime,
    progress: Callable[[str], None] = lambda _: None,
) -> RiskModel:
    """Fit, calibrate and measure a model on ``examples`` (labelled or not), time-ordered; see the module docstring.

    Raises:
        NotEnoughReviews: too few decided versions, or a part lacks one of the verdicts.
    """
    import numpy as np  # noqa: PLC0415 - training only: the service never loads them
    from sklearn.calibration import CalibratedClassifierCV  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.metrics import brier_score_loss, roc_auc_score  # noqa: PLC0415
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    labelled = sorted((e for e in examples if e.verdict is not None), key=lambda e: (e.submitted_at, e.export_id))
    cut = int(len(labelled) * TRAIN_SHARE)
    train_part, test_part = labelled[:cut], labelled[cut:]
    _check_enough(train_part, test_part, len(labelled))
    progress(f"{len(labelled)} decided versions: training on {len(train_part)}, testing on {len(test_part)}")

    def arrays(part: Sequence[Example]) -> tuple[Any, Any, Any]:
        x = np.array([e.vector.values for e in part], dtype=float)
        y = np.array([1 if e.verdict is not None and e.verdict.risky else 0 for e in part])
        w = np.array([e.weight for e in part], dtype=float)
        return x, y, w

    x_train, y_train, w_train = arrays(train_part)
    means = x_train.mean(axis=0)
    scales = x_train.std(axis=0)
    scales[scales <= _CONSTANT] = 1.0
    folds = int(min(5, y_train.sum(), len(y_train) - y_train.sum()))
    classifier = CalibratedClassifierCV(
        LogisticRegression(C=options.c, max_iter=5000),
        method="sigmoid",
        cv=StratifiedKFold(n_splits=max(2, folds), shuffle=True, random_state=0),
        ensemble=False,
    )
    classifier.fit((x_train - means) / scales, y_train, sample_weight=w_train)
    fitted = classifier.calibrated_classifiers_[0]
    regression, sigmoid = fitted.estimator, fitted.calibrators[0]
    cutoff = train_part[-1].submitted_at
    model = RiskModel(
        id=model_id,
        means=tuple(float(v) for v in means),
        scales=tuple(float(v) for v in scales),
        coefficients=tuple(float(v) for v in regression.coef_[0]),
        intercept=float(regression.intercept_[0]),
        calibration_a=float(sigmoid.a_),
        calibration_b=float(sigmoid.b_),
        medium=options.medium,
        high=options.high,
        sampling=Sampling(rate=options.sample_rate, scale=0.0, floor=0.0, cap=1.0),
    )
    x_test, y_test, w_test = arrays(test_part)
    theirs = classifier.predict_proba((x_test - means) / scales)[:, 1]
    ours = [model.probability(e.vector) for e in test_part]
    if max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) > _AGREEMENT:
        raise RuntimeError("the stored parameters do not reproduce scikit-learn's probabilities")
    # The active sample is calibrated on the training period's outputs released at once, reviewed or not.
    population = [
        model.probability(e.vector)
        for e in examples
        if e.submitted_at <= cutoff
        and e.governance == "INFRACALC"
        and combined_level(e.rules_level, model.level(model.probability(e.vector)), lowering_allowed=False)
        == RiskLevel.LOW
    ]
    sampling = sampling_scale(population, options.sample_rate)
    model = _with(model, sampling=sampling)
    metrics = measure(model, test_part, ours, sample_rate=options.sample_rate)
    metrics["roc_auc"] = round(float(roc_auc_score(y_test, ours, sample_weight=w_test)), 6)
    metrics["brier"] = round(float(brier_score_loss(y_test, ours, sample_weight=w_test)), 6)
    trained = {
        "at": now.isoformat(),
        "feature_set": FEATURE_SET,
        "features": len(FEATURES),
        "examples": len(examples),
        "decided": len(labelled),
        "train": len(train_part),
        "test": len(test_part),
        "train_until": cutoff.isoformat(),
        "test_from": test_part[0].submitted_at.isoformat(),
        "sampling_population": len(population),
        "options": {"medium": options.medium, "high": options.high, "c": options.c},
    }
    return _with(model, trained=trained, metrics=metrics)


def _with(model: RiskModel, **changes: Any) -> RiskModel:
    values = {name: getattr(model, name) for name in model.__dataclass_fields__}
    values.update(changes)
    return RiskModel(**values)


def measure(
    model: RiskModel, part: Sequence[Example], probabilities: Sequence[float], *, sample_rate: float
) -> dict[str, Any]:
    """The load and recall of each way of setting levels on ``part`` (see the module docstring)."""
    weights = [e.weight for e in part]
    risky = [e.verdict is not None and e.verdict.risky for e in part]
    model_levels = [model.level(p) for p in probabilities]
    pairs = list(zip(part, model_levels, strict=True))
    combined = [combined_level(e.rules_level, m, lowering_allowed=False) for e, m in pairs]
    lowered = [combined_level(e.rules_level, m, lowering_allowed=True) for e, m in pairs]

    def reviewed(levels: Sequence[RiskLevel]) -> list[float]:
        return [1.0 if level_at_least(level) >= 1 else 0.0 for level in levels]

    rules = load_and_recall(weights, risky, reviewed([e.rules_level for e in part]))
    both = load_and_recall(weights, risky, reviewed(combined))
    top = top_at_load(probabilities, weights, both["load"])
    active = [
        1.0 if level_at_least(level) >= 1 else model.sample_probability(p)
        for level, p in zip(combined, probabilities, strict=True)
    ]
    fixed = [1.0 if level_at_least(e.rules_level) >= 1 else sample_rate for e in part]
    return {
        "test_examples": len(part),
        "test_risky": sum(risky),
        "rules": rules,
        "combined": both,
        "lowering": load_and_recall(weights, risky, reviewed(lowered)),
        "model_at_load": load_and_recall(weights, risky, [1.0 if c else 0.0 for c in top]),
        "sampled": {
            "rules_fixed_rate": load_and_recall(weights, risky, fixed),
            "combined_active": load_and_recall(weights, risky, active),
        },
        "thresholds": {"medium": model.medium, "high": model.high},
        "share_reviewed_at_once": _weighted_share(weights, [a >= 1.0 for a in active]),
    }
