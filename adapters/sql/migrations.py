"""Running the Alembic migrations in ``migrations/`` against a database URL.

Migrations run on a synchronous engine (the stdlib ``sqlite3`` driver, or psycopg in its
synchronous mode): they run before the event loop starts, once per deployment step.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

import migrations as migrations_package
from adapters.sql.engine import normalise_url, sqlite_file
from studio9.errors import ConfigError
from studio9.urls import AdapterURL, redact

SETTING = "STUDIO9_DATABASE_URL"


def sync_url(url: AdapterURL) -> str:
    """The synchronous-driver URL for the same database."""
    driver_url = normalise_url(url)
    if driver_url.startswith("sqlite+aiosqlite"):
        if (path := sqlite_file(driver_url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        return "sqlite+pysqlite" + driver_url[len("sqlite+aiosqlite") :]
    return driver_url


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations_package.__file__).parent))
    return config


def run(url: AdapterURL, *, revision: str = "head", downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the database at ``url`` to ``revision``.

    Raises:
        ConfigError: the database cannot be reached or a migration fails.
    """
    engine = sa.create_engine(sync_url(url), poolclass=NullPool)
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if downgrade:
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        reason = redact(str(getattr(exc, "orig", None) or exc)).splitlines()[0]
        raise ConfigError(f"migration failed on {url}: {reason}", setting=SETTING) from None
    finally:
        engine.dispose()


def check_current(url: AdapterURL) -> None:
    """Raise ConfigError unless the database's schema is at the newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = sa.create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        reason = redact(str(getattr(exc, "orig", None) or exc)).splitlines()[0]
        raise ConfigError(f"cannot read the schema revision of {url}: {reason}", setting=SETTING) from None
    finally:
        engine.dispose()
    if current != head:
        raise ConfigError(
            f"the database schema is at revision {current or 'none'} but this Studio9 needs {head}; "
            "run `studio9 migrate`",
            setting=SETTING,
        )
