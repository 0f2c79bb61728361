"""Blobs as files under one directory.

URL:      file:///absolute/dir   (edge default: file://<data dir>/blobs)
Features: survives restarts · single host
Extra:    none
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
from studio9.errors import BackendUnavailable, ConfigError


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        if not url.path:
            raise ConfigError("file:// URL needs a directory path", setting="STUDIO9_BLOB_URL")
        return cls(Path(url.path))

    async def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(f"blob directory {self.root} cannot be created: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BackendUnavailable(f"blob directory {self.root} is not writable")

    async def aclose(self) -> None:
        return None
