"""The export risk models for CASD staff: in force and in shadow, how they measured, promoting, retiring, the bar.

Each function asks OPA first (``risk.read``, ``risk.promote``, ``risk.bar``: CASD staff only), then
calls :mod:`infracalc.casd.risk_model.registry` in one transaction whose audit event goes through
the service's ``record``. The registry's refusals become API errors: an unknown model 404, a
promotion the rules refuse or a damaged model file 409, a bar out of range 422.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select

from infracalc.casd.objects import ObjectStoreError
from infracalc.casd.risk_model import ModelIntegrityError, PromotionRefused, RiskModel, UnknownModel, registry
from infracalc.casd.risk_model.registry import Comparison
from infracalc.casd.risk_model.routing import measured_recall
from infracalc.db import RiskDecision, RiskModelRecord, RiskRouting, utc_now
from infracalc.service.context import ServiceContext
from infracalc.service.errors import Conflict, InvalidInput, NotFound, Unavailable
from infracalc.service.principals import Principal

#: The most recent model decisions shown.
RECENT_DECISIONS: Final = 25


@dataclass(frozen=True, slots=True)
class ModelView:
    """A model in use: its registry row, its verified parameters (``None`` with ``problem`` when unreadable)."""

    record: RiskModelRecord
    model: RiskModel | None
    problem: str | None
    #: Whether, with staff's bar, it may lower a level (its measured recall with lowering reaches the bar).
    may_lower: bool

    @property
    def weights(self) -> list[tuple[str, float]]:
        """Each feature's weight (log-odds per standard deviation), largest first; empty when unreadable."""
        return [] if self.model is None else self.model.weights()


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the staff page shows."""

    in_force: ModelView | None
    shadow: ModelView | None
    routing: RiskRouting | None
    comparison: Comparison | None
    history: Sequence[RiskModelRecord]
    recent: Sequence[RiskDecision]
    #: The exports a shadow model must have decided before it may be promoted.
    min_decisions: int

    @property
    def recall_bar(self) -> float | None:
        """Staff's recall bar (``None``: no model lowers a level)."""
        return None if self.routing is None else self.routing.recall_bar


@contextlib.contextmanager
def _api_errors() -> Iterator[None]:
    try:
        yield
    except UnknownModel as error:
        raise NotFound(str(error)) from None
    except PromotionRefused as error:
        if error.field is not None:
            raise InvalidInput(str(error), field=error.field) from None
        raise Conflict(str(error)) from None
    except ModelIntegrityError as error:
        raise Conflict(f"the model's stored file cannot be trusted: {error}") from None
    except ObjectStoreError as error:
        raise Unavailable(f"the object store failed: {error}") from None


async def _view(context: ServiceContext, record: RiskModelRecord | None, bar: float | None) -> ModelView | None:
    if record is None:
        return None
    if context.objects is None:
        return ModelView(record, None, "object storage is not configured", may_lower=False)
    try:
        model = await registry.load_model(context.objects, record)
    except (ModelIntegrityError, ObjectStoreError) as error:
        return ModelView(record, None, str(error), may_lower=False)
    recall = measured_recall(model)
    return ModelView(record, model, None, may_lower=bar is not None and recall is not None and recall >= bar)


async def overview(context: ServiceContext, principal: Principal) -> Overview:
    """The models in force and in shadow (verified), the bar, the comparison, recent decisions, the history."""
    await context.authorize(principal, "risk.read")
    async with context.read_sessions() as session:
        in_force, shadow = await registry.in_use(session)
        routing = await registry.routing_settings(session)
        comparison = await registry.compare(session, shadow.id) if shadow is not None else None
        history = await registry.history(session)
        recent = list(
            await session.scalars(
                select(RiskDecision).order_by(RiskDecision.at.desc(), RiskDecision.id.desc()).limit(RECENT_DECISIONS)
            )
        )
    bar = None if routing is None else routing.recall_bar
    return Overview(
        in_force=await _view(context, in_force, bar),
        shadow=await _view(context, shadow, bar),
        routing=routing,
        comparison=comparison,
        history=history,
        recent=recent,
        min_decisions=registry.MIN_SHADOW_DECISIONS,
    )


async def promote(context: ServiceContext, principal: Principal, model_id: str, reason: str) -> RiskModelRecord:
    """Put the shadow model in force (audited ``risk.promote``)."""
    await context.authorize(principal, "risk.promote")
    if context.objects is None:
        raise Unavailable("object storage is not configured (INFRACALC_S3_ENDPOINT_URL)")
    async with context.sessions() as session, session.begin():
        with _api_errors():
            return await registry.promote(
                session,
                context.objects,
                model_id,
                actor=principal.username,
                reason=reason,
                audit=context.record,
                now=utc_now(),
            )


async def retire(context: ServiceContext, principal: Principal, reason: str) -> str:
    """Take the model in force out of routing (audited ``risk.retire``); returns its id."""
    await context.authorize(principal, "risk.promote")
    async with context.sessions() as session, session.begin():
        with _api_errors():
            return await registry.retire(
                session, actor=principal.username, reason=reason, audit=context.record, now=utc_now()
            )


async def set_bar(context: ServiceContext, principal: Principal, bar: float | None, reason: str) -> None:
    """Set or clear staff's recall bar (audited ``risk.bar``)."""
    await context.authorize(principal, "risk.bar")
    async with context.sessions() as session, session.begin():
        with _api_errors():
            await registry.set_recall_bar(
                session, bar, actor=principal.username, reason=reason, audit=context.record, now=utc_now()
            )
