"""In-memory stand-ins for the blob store, the search index and the prediction sink.

URL:      memory://
Features: nothing kept · single process
Extra:    none

Their data operations arrive with the issues that use them (jobs, search, predictions);
today they take part in start-up checks, health and shutdown like every adapter.
"""

from __future__ import annotations

from typing import Self

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL


class InMemoryBackend:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self.objects.clear()
