"""The risk model's errors, all under :class:`RiskModelError`.

- :class:`NotEnoughReviews`: too few reviewed versions (or of one verdict only) to train and test a model;
- :class:`ModelIntegrityError`: a stored model whose digest or content is not what the registry recorded;
- :class:`UnknownModel`: no model has this id;
- :class:`PromotionRefused`: a promotion or a setting staff asked for that the rules do not allow.
"""

from __future__ import annotations

from infracalc.errors import InfracalcError


class RiskModelError(InfracalcError):
    """Root of the risk model's errors."""


class NotEnoughReviews(RiskModelError):
    """The reviews cannot train and test a model yet; the message says what is missing."""


class ModelIntegrityError(RiskModelError):
    """A stored model is not the one recorded (digest) or not a valid model (content): it is never used."""


class UnknownModel(RiskModelError):
    """No risk model has this id."""


class PromotionRefused(RiskModelError):
    """Staff asked for something the registry's rules refuse (promoting an unshadowed model, a bar out of range).

    ``field`` names the value that is not acceptable (``reason``, ``recall_bar``); ``None`` when the
    registry's state refuses it (a model not in shadow, too few exports compared).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
