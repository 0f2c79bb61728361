"""Migrations go up and down on SQLite and PostgreSQL, and agree with the ORM models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from adapters.sql.migrations import alembic_config, sync_url
from migrations.schema import include_object, metadata
from studio9 import bootstrap
from studio9.config import Settings
from studio9.errors import ConfigError
from studio9.urls import AdapterURL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/migrations.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _all_tables(url: str) -> set[str]:
    engine = sa.create_engine(sync_url(AdapterURL.parse(url)))
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    """The tables the models describe: raw-SQL ones (full-text indexes) are left out, as in Alembic."""
    return {name for name in _all_tables(url) if include_object(None, name, "table", True, None)}


def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    bootstrap.migrate(settings)
    assert _tables(database_url) == set(metadata.tables)
    assert "search_fts" in _all_tables(database_url)
    bootstrap.migrate(settings, revision="base", downgrade=True)
    assert _all_tables(database_url) == set()
    bootstrap.migrate(settings)
    bootstrap.migrate(settings)  # a second upgrade is a no-op
    assert _tables(database_url) == set(metadata.tables)


def test_models_and_migrations_agree(database_url: str, tmp_path: Path) -> None:
    bootstrap.migrate(Settings(database_url=database_url, data_dir=tmp_path))
    engine = sa.create_engine(sync_url(AdapterURL.parse(database_url)))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migration_history_is_one_linear_chain() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert len(scripts.get_heads()) == 1
    assert [r.revision for r in scripts.walk_revisions()][-1] == "0001"  # the root


def test_unreachable_database_fails_with_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql+psycopg://nobody:pw@127.0.0.1:1/none", data_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        bootstrap.migrate(settings)
    assert info.value.setting == "STUDIO9_DATABASE_URL"
    assert "pw@" not in str(info.value)


def test_memory_database_needs_no_migration(tmp_path: Path) -> None:
    bootstrap.migrate(Settings(database_url="memory://", data_dir=tmp_path))
