"""Colysée: the exports' disclosure risk learnt from the reviewers' decisions, never weaker than the rules.

CASD's output checking scores every output, has people check the riskiest and a sample of the
others, and learns from their decisions. This package does that for INFRACALC, framework-free
(no web framework; a test holds it), one concept per module:

- :mod:`~infracalc.casd.risk_model.features`: the versioned feature set, from a checks' report;
- :mod:`~infracalc.casd.risk_model.dataset`: every export version as an example, labelled by the
  reviewers' final verdict and weighted by its chance of review;
- :mod:`~infracalc.casd.risk_model.training`: a calibrated logistic regression fitted on the past
  and measured on the future (scikit-learn, imported there only);
- :mod:`~infracalc.casd.risk_model.model`: a model as plain parameters, scored in plain Python,
  stored as JSON verified by its SHA-256 (no pickle);
- :mod:`~infracalc.casd.risk_model.routing`: the rules' level and a model's opinion made one,
  never weaker than the rules;
- :mod:`~infracalc.casd.risk_model.assessor`: the models in force and in shadow asked about each
  export, and their decisions logged;
- :mod:`~infracalc.casd.risk_model.registry`: storing, shadowing, promoting, retiring, the recall bar;
- :mod:`~infracalc.casd.risk_model.explanations`: why a risk was raised, by code, in French and English;
- :mod:`~infracalc.casd.risk_model.errors`: the errors, under :class:`RiskModelError`.
"""

from __future__ import annotations

from infracalc.casd.risk_model.assessor import RiskAssessor
from infracalc.casd.risk_model.dataset import Example, Verdict, examples, verdict_of
from infracalc.casd.risk_model.errors import (
    ModelIntegrityError,
    NotEnoughReviews,
    PromotionRefused,
    RiskModelError,
    UnknownModel,
)
from infracalc.casd.risk_model.explanations import TEMPLATES, render
from infracalc.casd.risk_model.features import FEATURE_SET, FEATURES, FeatureVector, ProjectHistory, features
from infracalc.casd.risk_model.model import RiskModel
from infracalc.casd.risk_model.routing import Assessment, Opinion, combined_level, may_lower
from infracalc.casd.risk_model.training import TrainingOptions, train

__all__ = [
    "FEATURES",
    "FEATURE_SET",
    "TEMPLATES",
    "Assessment",
    "Example",
    "FeatureVector",
    "ModelIntegrityError",
    "NotEnoughReviews",
    "Opinion",
    "ProjectHistory",
    "PromotionRefused",
    "RiskAssessor",
    "RiskModel",
    "RiskModelError",
    "TrainingOptions",
    "UnknownModel",
    "Verdict",
    "combined_level",
    "examples",
    "features",
    "may_lower",
    "render",
    "train",
    "verdict_of",
]
