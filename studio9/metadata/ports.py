"""What the metadata context needs: a search index, and the change feed its indexer drains.

Adapters: ``adapters/search_index/memory.py`` (memory://) and ``adapters/search_index/sql.py`` (sql://:
SQLite FTS5 or PostgreSQL full-text, in the system-of-record database); the change feed is the
transactional outbox (table ``outbox``), drained through the job store (``adapters/job_store/``)
and written by the job, catalog and access stores (``adapters/sql/outbox.py``).
Contract: ``tests/contract/test_search_index.py``, ``tests/contract/test_change_feed.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs

from studio9.metadata.domain import SearchDocument, SearchPage, SearchQuery


class SearchIndex(Protocol):
    """**Protocol:** a rebuildable projection of documents, searched by words and fields.

    Every adapter follows the text semantics of ``studio9.metadata.domain``. Any method
    may raise BackendUnavailable when the backend does not answer; retrying is safe,
    since every write is idempotent.
    """

    async def upsert(self, docs: Sequence[SearchDocument]) -> None:
        """Insert or replace documents by id, in bulk; an empty sequence does nothing.

        A document replaces the stored one only when its ``updated_at`` is the same or
        later, so that a replayed outbox never rolls a document back. Within one call,
        the same rule applies in order (of equal times, the later document wins).
        """

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove the documents with these ids; unknown ids are ignored."""

    async def search(self, query: SearchQuery) -> SearchPage:
        """One page of the documents matching ``query``, in the order it names, with its facets.

        Only documents whose reader keys meet ``query.readers`` (when set) are matched: they
        alone are hits, and they alone are counted in the facets, which cover every matching
        document whatever the page.

        Raises:
            InvalidSearch: the query's cursor is malformed or belongs to another query.
        """

    async def clear(self, kind: str) -> None:
        """Remove every document of ``kind`` (before a full reindex)."""

    async def ping(self) -> None:
        """Return when the index answers; raise BackendUnavailable when it does not."""

    async def aclose(self) -> None:
        """Release what the adapter holds (not a shared database). Idempotent."""


@attrs.frozen(kw_only=True)
class Change:
    """An outbox entry: ``topic`` (``job``, ``job.<status>`` or ``asset``) and the id of what changed.

    Every entry means "re-index ``ref_id``"; a ``job.<status>`` one also means "announce it".
    ``asset`` entries are written by the catalog store (an asset added, versioned, updated,
    deleted or transferred) and the access store (a share put or deleted, a project link made,
    moved or removed, a group or project deleted with shares or links of the asset), in the
    change's transaction; ``ref_id`` is the asset id, and a missing asset means "remove it"."""

    id: int
    topic: str
    ref_id: str


class ChangeFeed(Protocol):
    """The transactional outbox, read by the indexer."""

    async def pending(self, *, limit: int) -> Sequence[Change]:
        """The oldest entries not yet acknowledged."""

    async def acknowledge(self, change_ids: Sequence[int]) -> None:
        """Forget these entries. Idempotent."""

    def draining(self) -> AbstractAsyncContextManager[bool]:
        """Enter to drain: yields True when this caller may drain now, False while another
        process drains the same feed (every indexer would otherwise read, index and announce
        the same entries). Held for one drain; released on exit, or when its process dies."""
