"""What one read-only SQL query may use: ``SqlLimits``, for previews and ``tables.sql`` derives.

No setting changes them yet: the composition root uses these defaults.

- rows of a preview: 100 by default, at most 1000 (a preview is for looking; a whole result
  is a derived table);
- time: 10 s for a preview (a request must answer; longer work belongs in a ``tables.sql``
  job), 1800 s for a derive (a job, but a runaway join must still end; the job's own timeout
  is 10 minutes longer, so the query's limit ends it first, with a clear message);
- memory: 512 MB for a preview (one query cannot starve the API process), 2 GB for a derive
  (which may also spill to its scratch directory);
- threads: 2 per query, so several previews can run at once.
"""

from __future__ import annotations

from typing import Final

import attrs

DEFAULT_PREVIEW_ROWS: Final = 100
MAX_PREVIEW_ROWS: Final = 1000
PREVIEW_TIMEOUT_S: Final = 10.0
DERIVE_TIMEOUT_S: Final = 1800.0
PREVIEW_MEMORY: Final = "512MB"
DERIVE_MEMORY: Final = "2GB"
QUERY_THREADS: Final = 2


@attrs.frozen(kw_only=True)
class SqlLimits:
    """What one query may use (see the module doc)."""

    max_rows: int = MAX_PREVIEW_ROWS
    preview_timeout_s: float = PREVIEW_TIMEOUT_S
    derive_timeout_s: float = DERIVE_TIMEOUT_S
    preview_memory: str = PREVIEW_MEMORY
    derive_memory: str = DERIVE_MEMORY
    threads: int = QUERY_THREADS
