"""What the config-settings service needs from storage.

Adapters: ``adapters/config_store/sql.py`` (SQLite, PostgreSQL), ``adapters/config_store/memory.py``.
Contract: ``tests/contract/test_config_store.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from studio9.config.domain import ConfigSetting, ConfigSettingVersion


class ConfigStore(Protocol):
    async def get(self, service: str, name: str) -> ConfigSetting:
        """Raises SettingNotFound."""

    async def put(self, setting: ConfigSetting, *, expected_version: int | None) -> ConfigSetting | None:
        """Create (``expected_version`` 0: only if absent) or replace (only if the stored version
        is ``expected_version``; None: whatever it is). Stores ``setting`` with the next version and
        appends it to the history. Returns the stored setting, or None when the expectation failed."""

    async def delete(self, service: str, name: str, *, expected_version: int | None, by: str) -> bool:
        """Remove it (recording a ``deleted`` history entry); False when absent or the version differs."""

    async def list(
        self, service: str, *, tag: str | None, limit: int, after: str | None
    ) -> Sequence[ConfigSetting]:
        """Settings of ``service`` ordered by name, after the name ``after``."""

    async def history(self, service: str, name: str, *, limit: int) -> Sequence[ConfigSettingVersion]:
        """Versions newest first (deleted settings keep their history)."""
