"""ConfigStore on SQLAlchemy: the current value per key, and every version in a history table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.config_store.sql_models import ConfigSettingHistoryRow, ConfigSettingRow
from studio9.config.domain import ConfigSetting, ConfigSettingVersion, SettingNotFound


class _LostRace(Exception):
    """Rolls the transaction back when the compare-and-set finds another version."""


class SqlConfigStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, service: str, name: str) -> ConfigSetting:
        async with self._sessions() as session:
            row = await session.get(ConfigSettingRow, (service, name))
        if row is None:
            raise SettingNotFound(service, name)
        return _setting(row)

    async def put(self, setting: ConfigSetting, *, expected_version: int | None) -> ConfigSetting | None:
        try:
            async with self._sessions.begin() as session:
                row = await session.get(
                    ConfigSettingRow, (setting.service, setting.name), with_for_update=True
                )
                current = row.version if row is not None else 0
                if expected_version is not None and expected_version != current:
                    return None
                stored = attrs.evolve(
                    setting,
                    version=current + 1,
                    created_at=row.created_at if row is not None else setting.created_at,
                )
                values = _values(stored)
                if row is None:
                    session.add(ConfigSettingRow(**values))
                else:
                    result = await session.execute(
                        sa.update(ConfigSettingRow)
                        .where(
                            ConfigSettingRow.service == stored.service,
                            ConfigSettingRow.name == stored.name,
                            ConfigSettingRow.version == current,
                        )
                        .values(**values)
                    )
                    # SQLite ignores FOR UPDATE: the version in the WHERE makes this a compare-and-set.
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        raise _LostRace
                session.add(_history(stored, deleted=False))
        except (IntegrityError, _LostRace):
            return None  # someone else wrote it between our read and our write; nothing of ours is kept
        return stored

    async def delete(self, service: str, name: str, *, expected_version: int | None, by: str) -> bool:
        async with self._sessions.begin() as session:
            row = await session.get(ConfigSettingRow, (service, name), with_for_update=True)
            if row is None or (expected_version is not None and expected_version != row.version):
                return False
            setting = _setting(row)
            await session.delete(row)
            gone = attrs.evolve(
                setting, version=setting.version + 1, updated_by=by, updated_at=setting.updated_at
            )
            session.add(_history(gone, deleted=True))
        return True

    async def list(
        self, service: str, *, tag: str | None, limit: int, after: str | None
    ) -> Sequence[ConfigSetting]:
        statement = sa.select(ConfigSettingRow).where(ConfigSettingRow.service == service)
        if after is not None:
            statement = statement.where(ConfigSettingRow.name > after)
        async with self._sessions() as session:
            rows = await session.scalars(statement.order_by(ConfigSettingRow.name))
            found = [_setting(r) for r in rows]
        # Tags are a small JSON list: filter here rather than with dialect-specific JSON SQL.
        return [s for s in found if tag is None or tag in s.tags][:limit]

    async def history(self, service: str, name: str, *, limit: int) -> Sequence[ConfigSettingVersion]:
        statement = (
            sa.select(ConfigSettingHistoryRow)
            .where(ConfigSettingHistoryRow.service == service, ConfigSettingHistoryRow.name == name)
            .order_by(ConfigSettingHistoryRow.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return [
                ConfigSettingVersion(
                    version=r.version, value=r.value, tags=tuple(r.tags), by=r.by, at=r.at, deleted=r.deleted
                )
                for r in await session.scalars(statement)
            ]


def _values(setting: ConfigSetting) -> dict[str, Any]:
    return {
        "service": setting.service,
        "name": setting.name,
        "value": setting.value,
        "tags": list(setting.tags),
        "version": setting.version,
        "created_at": setting.created_at,
        "updated_at": setting.updated_at,
        "updated_by": setting.updated_by,
    }


def _history(setting: ConfigSetting, *, deleted: bool) -> ConfigSettingHistoryRow:
    return ConfigSettingHistoryRow(
        service=setting.service,
        name=setting.name,
        version=setting.version,
        value=setting.value,
        tags=list(setting.tags),
        by=setting.updated_by,
        at=setting.updated_at,
        deleted=deleted,
    )


def _setting(row: ConfigSettingRow) -> ConfigSetting:
    return ConfigSetting(
        service=row.service,
        name=row.name,
        value=row.value,
        tags=tuple(row.tags),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
