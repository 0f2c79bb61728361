"""An in-memory SearchIndex: a dictionary behind a lock; nothing survives the process.

URL:      memory://
Features: AND-of-words full text · exact field filters · owner scoping · keyset paging ·
          thread-safe · every search scans every document (tests, development, small edges)
Extra:    none
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Self

import attrs

from studio9.backends import AdapterOptions
from studio9.metadata.domain import (
    SearchDocument,
    SearchHit,
    SearchPage,
    SearchPosition,
    SearchQuery,
    words,
)
from studio9.urls import AdapterURL


@attrs.frozen
class _Entry:
    doc: SearchDocument
    counts: Counter[str]


class MemorySearchIndex:
    """Documents by id, with their word counts; the same semantics as the SQL index."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls()

    async def upsert(self, docs: Sequence[SearchDocument]) -> None:
        # Bodies go through JSON, as in a database: the stored copy is detached from the
        # caller's objects and reads back the same (tuples as lists) on every adapter.
        entries = [
            _Entry(
                attrs.evolve(doc, fields=dict(doc.fields), body=json.loads(json.dumps(doc.body))),
                Counter(words(doc.text)),
            )
            for doc in docs
        ]
        with self._lock:
            for entry in entries:
                current = self._entries.get(entry.doc.id)
                if current is None or entry.doc.updated_at >= current.doc.updated_at:
                    self._entries[entry.doc.id] = entry

    async def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            for doc_id in ids:
                self._entries.pop(doc_id, None)

    async def search(self, query: SearchQuery) -> SearchPage:
        position = query.position()
        with self._lock:
            entries = list(self._entries.values())
        query_words = query.words
        hits = [_hit(entry, query_words) for entry in entries if _matches(entry, query)]
        hits.sort(key=_sort_key, reverse=True)
        if position is not None:
            hits = [hit for hit in hits if _sort_key(hit) < _position_key(position)]
        return SearchPage.of(query, [_detached(hit) for hit in hits[: query.limit + 1]])

    async def clear(self, kind: str) -> None:
        with self._lock:
            for doc_id in [i for i, e in self._entries.items() if e.doc.kind == kind]:
                del self._entries[doc_id]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        with self._lock:
            self._entries.clear()


def _matches(entry: _Entry, query: SearchQuery) -> bool:
    doc = entry.doc
    return (
        doc.kind == query.kind
        and (query.owner_id is None or doc.owner_id == query.owner_id)
        and all(doc.fields.get(key) == value for key, value in query.filters.items())
        and all(word in entry.counts for word in query.words)
    )


def _hit(entry: _Entry, query_words: Sequence[str]) -> SearchHit:
    doc = entry.doc
    score = float(sum(entry.counts[word] for word in query_words)) if query_words else None
    return SearchHit(
        id=doc.id, kind=doc.kind, owner_id=doc.owner_id, fields=doc.fields, body=doc.body, score=score
    )


def _sort_key(hit: SearchHit) -> tuple[float, str]:
    return (hit.score or 0.0, hit.id)


def _position_key(position: SearchPosition) -> tuple[float, str]:
    return (position.score or 0.0, position.id)


def _detached(hit: SearchHit) -> SearchHit:
    return attrs.evolve(hit, fields=dict(hit.fields), body=copy.deepcopy(hit.body))
