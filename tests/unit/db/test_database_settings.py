"""Database settings: URL forms normalised to async drivers, default SQLite file, no password shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from infracalc.db import DatabaseSettings, DatabaseUrlError


@pytest.mark.parametrize(
    ("raw", "normalised", "backend"),
    [
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db", "sqlite"),
        ("sqlite+aiosqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db", "sqlite"),
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db", "postgresql"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db", "postgresql"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db", "postgresql"),
    ],
)
def test_url_forms_are_normalised_to_async_drivers(raw: str, normalised: str, backend: str) -> None:
    settings = DatabaseSettings.from_url(raw)
    assert settings.url.render_as_string() == normalised
    assert settings.backend == backend


def test_default_is_a_sqlite_file_under_infracalc_home(tmp_path: Path) -> None:
    settings = DatabaseSettings.from_env({"INFRACALC_HOME": str(tmp_path)})
    assert settings.backend == "sqlite"
    assert settings.sqlite_path == tmp_path / "infracalc.db"
    assert settings.busy_timeout_ms == 30_000


def test_url_from_the_environment() -> None:
    settings = DatabaseSettings.from_env(
        {"INFRACALC_DATABASE_URL": "postgresql://u:pw@db/x", "INFRACALC_DATABASE_BUSY_TIMEOUT_MS": "500"}
    )
    assert settings.backend == "postgresql"
    assert settings.sqlite_path is None
    assert settings.busy_timeout_ms == 500


def test_the_password_never_shows() -> None:
    settings = DatabaseSettings.from_url("postgresql://infracalc:s3cret-pw@127.0.0.1:5432/infracalc")
    assert "s3cret-pw" not in repr(settings)
    assert "s3cret-pw" not in str(settings)
    assert "infracalc@127.0.0.1" in repr(settings).replace(":***", "")
    assert settings.url.password == "s3cret-pw"


@pytest.mark.parametrize("raw", ["mysql://u:pw@h/db", "postgresql+psycopg2://u:pw@h/db", "not a url"])
def test_unsupported_urls_are_refused_without_their_password(raw: str) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        DatabaseSettings.from_url(raw)
    assert "pw" not in str(caught.value)


def test_bad_busy_timeout_names_the_variable() -> None:
    with pytest.raises(DatabaseUrlError, match="INFRACALC_DATABASE_BUSY_TIMEOUT_MS"):
        DatabaseSettings.from_env({"INFRACALC_DATABASE_BUSY_TIMEOUT_MS": "soon"})
