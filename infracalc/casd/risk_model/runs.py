"""A training run from start to end: read the reviews, fit in a worker thread, store the JSON, register the shadow.

The model's file is written before the transaction that records it (no lock held while it travels
to the store) and deleted if that transaction fails, as exports do with their files. The
``risk.train`` audit event is written in the same transaction as the registry's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.casd.objects import ObjectStore, ObjectStoreError
from infracalc.casd.risk_model.dataset import examples
from infracalc.casd.risk_model.registry import Audit, next_version, register, store_model
from infracalc.casd.risk_model.training import TrainingOptions, train
from infracalc.db import RiskModelRecord, utc_now

#: Random bytes in a model id (shown as hex).
_ID_BYTES = 6


async def train_and_register(
    sessions: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    *,
    actor: str,
    options: TrainingOptions,
    audit: Audit,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[str], None] = lambda _: None,
) -> RiskModelRecord:
    """Train a model on every review so far and record it as the new shadow model.

    Raises:
        NotEnoughReviews: the reviews cannot train and test a model yet (nothing is written).
        ObjectStoreError: the store failed (nothing is recorded).
    """
    async with sessions() as db_session:
        found = await examples(db_session, sample_rate=options.sample_rate)
        version = await next_version(db_session)
    progress(f"{len(found)} export versions read")
    model_id = secrets.token_hex(_ID_BYTES)
    now = clock()
    model = await asyncio.to_thread(train, found, model_id=model_id, options=options, now=now, progress=progress)
    key, sha256 = await store_model(store, model, version)
    progress(f"stored {key} (sha256 {sha256})")
    try:
        async with sessions() as db_session, db_session.begin():
            record = await register(
                db_session, model, version=version, key=key, sha256=sha256, actor=actor, audit=audit, now=now
            )
    except BaseException:
        with contextlib.suppress(ObjectStoreError):
            await asyncio.shield(store.delete(key))
        raise
    return record
