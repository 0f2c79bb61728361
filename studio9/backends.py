"""What every backend adapter offers the composition root: a health check and a close.

Each context's own ports (``studio9/<ctx>/ports.py``) add the operations it needs; this
is the common floor that ``/health``, start-up checks and shutdown rely on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import attrs


@attrs.frozen(kw_only=True)
class AdapterOptions:
    """Settings an adapter may need besides its URL."""

    timeout: float = 5.0
    data_dir: Path = Path("./studio9-data")
    #: The system-of-record adapter (``studio9.database.Database``), already open, for adapters that
    #: live in the same database (``sql://`` checks that it is an SQL one).
    database: Backend | None = None


class Backend(Protocol):
    """A connection to one backend, owned by the composition root."""

    async def ping(self) -> None:
        """Return when the backend answers; raise BackendUnavailable when it does not."""

    async def aclose(self) -> None:
        """Release connections and threads. Idempotent."""
