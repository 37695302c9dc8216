"""Schema migrations: Alembic, run programmatically to the newest revision.

The service calls :func:`upgrade` at start; the tests call it on every fresh database. A new
revision is written with Alembic's API on :func:`alembic_config`, for example::

    from alembic import command
    command.revision(alembic_config(url), "add imports", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection

from infracalc.db.engine import create_engine
from infracalc.db.settings import DatabaseSettings

#: Where ``env.py`` and the revisions live.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Arbitrary constant naming the PostgreSQL advisory lock that lets one migrator run at a time.
_MIGRATION_LOCK = 0x1AF7AC41C


def alembic_config(database: str | URL | DatabaseSettings | None = None) -> Config:
    """An Alembic configuration for INFRACALC's migrations, optionally bound to ``database``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    if database is not None:
        settings = database if isinstance(database, DatabaseSettings) else DatabaseSettings.from_url(database)
        # ConfigParser interpolates '%': escape it (a password may contain one).
        config.set_main_option("sqlalchemy.url", settings.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


async def upgrade(database: str | URL | DatabaseSettings, revision: str = "head") -> None:
    """Migrate ``database`` to ``revision`` (default: the newest), in one transaction.

    Safe to call from several processes at once: on PostgreSQL an advisory lock makes them take
    turns, on SQLite the write lock does; the later ones find nothing left to do.
    """
    settings = database if isinstance(database, DatabaseSettings) else DatabaseSettings.from_url(database)
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
