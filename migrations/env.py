"""Alembic environment: runs on the connection ``adapters.sql.migrations.run`` hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from migrations.schema import include_object, metadata

target_metadata = metadata


def run_migrations_online() -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `studio9 migrate`, which supplies the connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
