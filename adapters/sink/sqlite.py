"""Predictions in a local SQLite file.

URL:      sqlite:///path/predictions.db   (edge default: under the data dir)
Features: batched loads · single host
Extra:    none
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Self

import anyio.to_thread

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
from studio9.errors import BackendUnavailable, ConfigError


class SqlitePredictionSink:
    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self._timeout = timeout

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        if not url.path or url.path == "/":
            raise ConfigError("sqlite:// URL needs a file path", setting="STUDIO9_SINK_URL")
        return cls(Path(url.path), timeout=options.timeout)

    async def ping(self) -> None:
        await anyio.to_thread.run_sync(self._ping_blocking)

    def _ping_blocking(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(self.path, timeout=self._timeout) as conn:
                conn.execute("SELECT 1")
            conn.close()
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(f"prediction sink {self.path} unusable: {exc}") from exc

    async def aclose(self) -> None:
        return None
