"""ConfigStore in memory, with the same versioning as SQL.

URL:      memory:// (as STUDIO9_DATABASE_URL)
Features: nothing kept · thread-safe
Extra:    none
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import attrs

from studio9.config.domain import ConfigSetting, ConfigSettingVersion, SettingNotFound


class MemoryConfigStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: dict[tuple[str, str], ConfigSetting] = {}
        self._history: dict[tuple[str, str], list[ConfigSettingVersion]] = {}

    async def get(self, service: str, name: str) -> ConfigSetting:
        with self._lock:
            found = self._settings.get((service, name))
        if found is None:
            raise SettingNotFound(service, name)
        return found

    async def put(self, setting: ConfigSetting, *, expected_version: int | None) -> ConfigSetting | None:
        key = (setting.service, setting.name)
        with self._lock:
            row = self._settings.get(key)
            current = row.version if row else 0
            if expected_version is not None and expected_version != current:
                return None
            stored = attrs.evolve(
                setting, version=current + 1, created_at=row.created_at if row else setting.created_at
            )
            self._settings[key] = stored
            self._history.setdefault(key, []).append(
                ConfigSettingVersion(
                    version=stored.version,
                    value=stored.value,
                    tags=stored.tags,
                    by=stored.updated_by,
                    at=stored.updated_at,
                )
            )
        return stored

    async def delete(self, service: str, name: str, *, expected_version: int | None, by: str) -> bool:
        key = (service, name)
        with self._lock:
            row = self._settings.get(key)
            if row is None or (expected_version is not None and expected_version != row.version):
                return False
            del self._settings[key]
            self._history[key].append(
                ConfigSettingVersion(
                    version=row.version + 1,
                    value=row.value,
                    tags=row.tags,
                    by=by,
                    at=row.updated_at,
                    deleted=True,
                )
            )
        return True

    async def list(
        self, service: str, *, tag: str | None, limit: int, after: str | None
    ) -> Sequence[ConfigSetting]:
        with self._lock:
            found = sorted(
                (s for (svc, _), s in self._settings.items() if svc == service), key=lambda s: s.name
            )
        return [s for s in found if (after is None or s.name > after) and (tag is None or tag in s.tags)][
            :limit
        ]

    async def history(self, service: str, name: str, *, limit: int) -> Sequence[ConfigSettingVersion]:
        with self._lock:
            return list(reversed(self._history.get((service, name), [])))[:limit]
