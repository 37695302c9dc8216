"""Alembic's entry point: runs the revisions on a connection it is given, or on one it opens.

:func:`infracalc.db.migrate.upgrade` hands over a connection (``config.attributes["connection"]``)
already inside a transaction; the Alembic command line instead gets ``sqlalchemy.url`` (or
``INFRACALC_DATABASE_URL``) and opens an async engine itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

# Importing the model modules registers their tables on Base.metadata (autogenerate compares against it).
from infracalc.audit import models as _audit_models  # noqa: F401
from infracalc.db import models as _db_models  # noqa: F401
from infracalc.db.base import Base
from infracalc.db.engine import create_engine
from infracalc.db.models import is_modelled
from infracalc.db.settings import DatabaseSettings

config = context.config
target_metadata = Base.metadata


def _settings() -> DatabaseSettings:
    url = config.get_main_option("sqlalchemy.url")
    return DatabaseSettings.from_url(url) if url else DatabaseSettings.from_env()


def run_migrations(connection: Connection) -> None:
    """Run the pending revisions on ``connection`` (batch mode, so SQLite can alter tables)."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=is_modelled,  # the full-text search structures are made by hand (0008)
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on_new_engine() -> None:
    """Open an async engine on the configured database and run the revisions on it."""
    engine = create_engine(_settings())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_settings().url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is None:
        asyncio.run(run_on_new_engine())
    else:
        run_migrations(given)
