"""Where the database is: ``INFRACALC_DATABASE_URL``, normalised to an async driver.

SQLite is the embedded default (a file under ``INFRACALC_HOME``); PostgreSQL is for production.
Both the plain forms (``sqlite:///path``, ``postgresql://user:pw@host/db``) and their async forms
(``sqlite+aiosqlite://``, ``postgresql+asyncpg://``) are accepted; the settings always hold the
async form. The password never appears in a repr or a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from infracalc.config import home_dir
from infracalc.errors import InfracalcError

Backend = Literal["sqlite", "postgresql"]

#: The async driver each accepted URL scheme is served by.
_DRIVERS: dict[str, tuple[Backend, str]] = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "sqlite+aiosqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgres": ("postgresql", "postgresql+asyncpg"),
    "postgresql": ("postgresql", "postgresql+asyncpg"),
    "postgresql+asyncpg": ("postgresql", "postgresql+asyncpg"),
}


class DatabaseError(InfracalcError):
    """Root of the database package's errors."""


class DatabaseUrlError(DatabaseError):
    """``INFRACALC_DATABASE_URL`` (or a URL given in code) cannot be used."""


def normalise_url(raw: str | URL) -> URL:
    """Parse ``raw`` and switch it to its async driver (``sqlite+aiosqlite`` or ``postgresql+asyncpg``).

    Raises:
        DatabaseUrlError: the URL cannot be parsed, or names a database or driver INFRACALC does not support.
    """
    try:
        url = make_url(raw)
    except ArgumentError:
        # The raw string may hold a password: name the problem, not the value.
        raise DatabaseUrlError(
            "the database URL cannot be parsed (expected sqlite:///PATH or postgresql://HOST/DB)"
        ) from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        supported = ", ".join(sorted(_DRIVERS))
        raise DatabaseUrlError(f"database URL scheme {url.drivername!r} is not supported (use one of: {supported})")
    return url.set(drivername=driver[1])


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Which database the service uses and how it waits for SQLite's write lock."""

    #: ``INFRACALC_DATABASE_URL``: ``sqlite:///path`` or ``postgresql://user:password@host/db``, normalised to its
    #: async driver (default: ``sqlite:///<INFRACALC_HOME>/infracalc.db``).
    url: URL
    #: ``INFRACALC_DATABASE_BUSY_TIMEOUT_MS``: how long a SQLite writer waits for the write lock before failing (and,
    #: in the service, for its turn at the one write connection).
    busy_timeout_ms: int = 30_000

    def __repr__(self) -> str:
        # URL hides its password in renderings that ask for it; say so explicitly here.
        shown = self.url.render_as_string(hide_password=True)
        return f"DatabaseSettings(url={shown!r}, busy_timeout_ms={self.busy_timeout_ms})"

    @classmethod
    def from_url(cls, raw: str | URL, *, busy_timeout_ms: int = 30_000) -> DatabaseSettings:
        """Settings for the database at ``raw`` (any accepted form, see the module docstring)."""
        return cls(url=normalise_url(raw), busy_timeout_ms=busy_timeout_ms)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DatabaseSettings:
        """Read the database settings from ``env`` (default: the process environment).

        Raises:
            DatabaseUrlError: ``INFRACALC_DATABASE_URL`` or ``INFRACALC_DATABASE_BUSY_TIMEOUT_MS`` is unusable.
        """
        env = os.environ if env is None else env
        raw = env.get("INFRACALC_DATABASE_URL") or f"sqlite:///{home_dir(env) / 'infracalc.db'}"
        timeout_raw = env.get("INFRACALC_DATABASE_BUSY_TIMEOUT_MS") or "30000"
        try:
            timeout = int(timeout_raw)
        except ValueError:
            raise DatabaseUrlError(f"INFRACALC_DATABASE_BUSY_TIMEOUT_MS={timeout_raw!r} is not a number") from None
        if timeout < 0:
            raise DatabaseUrlError(f"INFRACALC_DATABASE_BUSY_TIMEOUT_MS={timeout} is negative")
        return cls.from_url(raw, busy_timeout_ms=timeout)

    @property
    def backend(self) -> Backend:
        """``"sqlite"`` or ``"postgresql"``."""
        return _DRIVERS[self.url.drivername][0]

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL and in-memory SQLite."""
        if self.backend != "sqlite" or not self.url.database or self.url.database == ":memory:":
            return None
        return Path(self.url.database)
