"""A trained risk model as plain parameters: scored in plain Python, stored as reviewable JSON.

The model is a logistic regression over standardised features, calibrated by Platt's sigmoid
(scikit-learn's ``CalibratedClassifierCV(method="sigmoid", ensemble=False)``): with ``z`` the
standardised vector, ``f = w·z + c`` and the probability that reviewers reject the version or ask
for changes is ``1 / (1 + exp(a·f + b))``. That is all it takes to score, so the service needs no
scikit-learn and loads no pickle: a stored model is a JSON object (:meth:`RiskModel.to_json`)
whose every number a reviewer can read, whose SHA-256 the registry and the audit log record, and
which :meth:`RiskModel.from_json` validates field by field before use.

The model's level: high from ``thresholds.high``, medium from ``thresholds.medium``, else low.
The chance of a review after release it gives a low-risk export grows with its uncertainty
(``min(p, 1 - p)``), scaled so that the average chance over the training period's low-risk
exports is the configured sample rate (:meth:`RiskModel.sample_probability`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.risk_model.errors import ModelIntegrityError
from infracalc.casd.risk_model.explanations import MIN_CONTRIBUTION, MOST_REASONS, parameters
from infracalc.casd.risk_model.features import FEATURE_SET, FEATURES, FeatureVector, check_feature_names

#: The format of a stored model; another one is refused.
MODEL_FORMAT: Final = "infracalc-risk-model/1"
#: The only calibration method stored models use.
SIGMOID: Final = "sigmoid"


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelIntegrityError(f"the model's {name} is not a finite number: {value!r}")
    return float(value)


def _finite_list(value: Any, name: str, length: int) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != length:
        raise ModelIntegrityError(f"the model's {name} must be a list of {length} numbers")
    return tuple(_finite(item, name) for item in value)


def _probability(value: Any, name: str) -> float:
    number = _finite(value, name)
    if not 0.0 <= number <= 1.0:
        raise ModelIntegrityError(f"the model's {name} must be between 0 and 1, got {number}")
    return number


def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class Sampling:
    """How the model turns uncertainty into a chance of review after release, at the configured review load."""

    #: The average chance over low-risk exports (``INFRACALC_EXPORT_SAMPLE_RATE`` at training).
    rate: float
    #: Chance = clip(scale * uncertainty, floor, cap); ``scale`` 0 means the fixed rate.
    scale: float
    floor: float
    cap: float

    def to_json(self) -> dict[str, float]:
        """Plain JSON."""
        return {"rate": self.rate, "scale": self.scale, "floor": self.floor, "cap": self.cap}


@dataclass(frozen=True, slots=True)
class RiskModel:
    """A calibrated logistic regression over :data:`FEATURES`, with its levels' thresholds and sampling."""

    id: str
    means: tuple[float, ...]
    scales: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    #: Platt's sigmoid: p = 1 / (1 + exp(a * f + b)).
    calibration_a: float
    calibration_b: float
    #: Probability from which the model says medium, and high.
    medium: float
    high: float
    sampling: Sampling
    #: When and on what it was trained, and what the time-ordered test measured.
    trained: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def logit_contributions(self, vector: FeatureVector) -> tuple[float, ...]:
        """Each feature's share of ``f`` above the average training version (``w_j * z_j``)."""
        return tuple(
            w * (x - m) / s
            for w, x, m, s in zip(self.coefficients, vector.values, self.means, self.scales, strict=True)
        )

    def probability(self, vector: FeatureVector) -> float:
        """The calibrated probability that reviewers reject this version or ask for changes."""
        decision = self.intercept + math.fsum(self.logit_contributions(vector))
        return _expit(-(self.calibration_a * decision + self.calibration_b))

    def level(self, probability: float) -> RiskLevel:
        """The model's level for ``probability``."""
        if probability >= self.high:
            return RiskLevel.HIGH
        if probability >= self.medium:
            return RiskLevel.MEDIUM
        return RiskLevel.LOW

    def sample_probability(self, probability: float) -> float:
        """The chance of a review after release for a low-risk export the model gives ``probability``."""
        sampling = self.sampling
        if sampling.scale <= 0:
            return sampling.rate
        uncertainty = min(probability, 1.0 - probability)
        return max(sampling.floor, min(sampling.cap, sampling.scale * uncertainty))

    def explain(self, vector: FeatureVector, kind: str) -> list[dict[str, Any]]:
        """The features that raised this version's risk most, as ``{"code", "params"}`` (largest first)."""
        # Calibration with a > 0 would turn a larger f into a smaller probability: the signs follow it.
        direction = -1.0 if self.calibration_a > 0 else 1.0
        raised = sorted(
            (
                (direction * contribution, name)
                for contribution, name in zip(self.logit_contributions(vector), FEATURES, strict=True)
                if direction * contribution >= MIN_CONTRIBUTION
            ),
            reverse=True,
        )
        return [
            {"code": f"risk.{name}", "params": parameters(name, vector.facts, kind)}
            for _, name in raised[:MOST_REASONS]
        ]

    def weights(self) -> list[tuple[str, float]]:
        """Each feature's weight on the standardised scale, in log-odds of a risky verdict (largest first)."""
        direction = -1.0 if self.calibration_a > 0 else 1.0
        scale = abs(self.calibration_a) or 1.0
        return sorted(
            ((name, direction * scale * w) for name, w in zip(FEATURES, self.coefficients, strict=True)),
            key=lambda item: -abs(item[1]),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (see the module docstring)."""
        return {
            "format": MODEL_FORMAT,
            "id": self.id,
            "feature_set": FEATURE_SET,
            "features": list(FEATURES),
            "scaler": {"mean": list(self.means), "scale": list(self.scales)},
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
            "calibration": {"method": SIGMOID, "a": self.calibration_a, "b": self.calibration_b},
            "thresholds": {"medium": self.medium, "high": self.high},
            "sampling": self.sampling.to_json(),
            "trained": dict(self.trained),
            "metrics": dict(self.metrics),
        }

    def to_bytes(self) -> bytes:
        """The stored bytes: canonical JSON (sorted keys), so that the same model always has the same SHA-256."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, sha256: str) -> RiskModel:
        """Load stored bytes after checking their SHA-256 against the one the registry recorded.

        Raises:
            ModelIntegrityError: the digest differs, or the JSON is not a valid model of this feature set.
        """
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise ModelIntegrityError(f"the stored model's SHA-256 is {found}, not the {sha256} recorded")
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelIntegrityError(f"the stored model is not JSON: {error}") from None
        return cls.from_json(document)

    @classmethod
    def from_json(cls, document: Any) -> RiskModel:
        """Validate a stored model field by field.

        Raises:
            ModelIntegrityError: anything missing, of the wrong kind, not finite, or of another feature set.
        """
        if not isinstance(document, Mapping) or document.get("format") != MODEL_FORMAT:
            raise ModelIntegrityError(f"not a stored risk model of format {MODEL_FORMAT}")
        try:
            check_feature_names(document.get("features") or [], str(document.get("feature_set")))
            scaler, calibration = document["scaler"], document["calibration"]
            thresholds, sampling = document["thresholds"], document["sampling"]
            count = len(FEATURES)
            scales = _finite_list(scaler["scale"], "scales", count)
            if any(scale <= 0 for scale in scales):
                raise ModelIntegrityError("the model's scales must be positive")
            if calibration.get("method") != SIGMOID:
                raise ModelIntegrityError(f"unknown calibration {calibration.get('method')!r}")
            medium, high = _probability(thresholds["medium"], "medium"), _probability(thresholds["high"], "high")
            if medium > high:
                raise ModelIntegrityError("the model's medium threshold is above its high one")
            return cls(
                id=str(document["id"]),
                means=_finite_list(scaler["mean"], "means", count),
                scales=scales,
                coefficients=_finite_list(document["coefficients"], "coefficients", count),
                intercept=_finite(document["intercept"], "intercept"),
                calibration_a=_finite(calibration["a"], "calibration"),
                calibration_b=_finite(calibration["b"], "calibration"),
                medium=medium,
                high=high,
                sampling=Sampling(
                    rate=_probability(sampling["rate"], "sampling rate"),
                    scale=_finite(sampling["scale"], "sampling scale"),
                    floor=_probability(sampling["floor"], "sampling floor"),
                    cap=_probability(sampling["cap"], "sampling cap"),
                ),
                trained=dict(document.get("trained") or {}),
                metrics=dict(document.get("metrics") or {}),
            )
        except ValueError as error:  # check_feature_names
            raise ModelIntegrityError(str(error)) from None
        except (KeyError, TypeError, AttributeError) as error:
            raise ModelIntegrityError(f"the stored model lacks or mistypes a field: {error!r}") from None


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def level_at_least(level: RiskLevel | str) -> int:
    """The level's rank (low 0, medium 1, high 2), to compare levels."""
    return _RANKS[RiskLevel(level)]


_RANKS: Final = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2}
LEVELS_BY_RANK: Final[Sequence[RiskLevel]] = (RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH)
