"""An in-memory SearchIndex: a dictionary behind a lock; nothing survives the process.

URL:      memory://
Features: AND-of-words full text · exact field and term filters · owner and reader scoping ·
          four orders with keyset paging · facets · thread-safe · every search scans every
          document (tests, development, small edges)
Extra:    none
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any, Self

import attrs

from studio9.backends import AdapterOptions
from studio9.metadata.domain import (
    SearchDocument,
    SearchHit,
    SearchPage,
    SearchPosition,
    SearchQuery,
    facet_source,
    micros,
    name_key,
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
        matched = [entry for entry in entries if _matches(entry, query)]
        facets = {name: _count(matched, name) for name in query.facets}
        ranked = query.ranked
        hits = [_hit(entry, query.words if ranked else ()) for entry in matched]
        hits.sort(key=lambda hit: _hit_key(query, hit))
        if position is not None:
            after = _position_key(query, position)
            hits = [hit for hit in hits if _hit_key(query, hit) > after]
        return SearchPage.of(query, [_detached(hit) for hit in hits[: query.limit + 1]], facets)

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
        and (query.not_owner_id is None or doc.owner_id != query.not_owner_id)
        and (query.readers is None or not doc.readers.isdisjoint(query.readers))
        and all(doc.fields.get(key) == value for key, value in query.filters.items())
        and all(value in doc.terms.get(key, ()) for key, value in query.any_terms.items())
        and all(word in entry.counts for word in query.words)
    )


def _count(entries: Sequence[_Entry], facet: str) -> Counter[str]:
    source, key = facet_source(facet)
    counts: Counter[str] = Counter()
    for entry in entries:
        doc = entry.doc
        if source == "kind":
            counts[doc.kind] += 1
        elif source == "owner_id":
            counts[doc.owner_id] += 1
        elif source == "fields":
            assert key is not None
            if key in doc.fields:
                counts[doc.fields[key]] += 1
        else:
            assert key is not None
            counts.update(doc.terms.get(key, ()))  # distinct per document already
    return counts


def _hit(entry: _Entry, query_words: Sequence[str]) -> SearchHit:
    doc = entry.doc
    score = float(sum(entry.counts[word] for word in query_words)) if query_words else None
    return SearchHit(
        id=doc.id,
        kind=doc.kind,
        owner_id=doc.owner_id,
        fields=doc.fields,
        body=doc.body,
        updated_at=doc.updated_at,
        score=score,
    )


class _Desc:
    """A string that sorts backwards, for the descending id of mixed-direction keys."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __gt__(self, other: _Desc) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _hit_key(query: SearchQuery, hit: SearchHit) -> tuple[Any, ...]:
    """An ascending sort key: the page order is the order of these keys."""
    sort = query.sort
    if sort == "relevance":
        return (-(hit.score or 0.0), _Desc(hit.id))
    if sort == "updated":
        return (-micros(hit.updated_at), _Desc(hit.id))
    if sort == "name":
        return (name_key(hit.fields), hit.id)
    return (_Desc(hit.id),)


def _position_key(query: SearchQuery, position: SearchPosition) -> tuple[Any, ...]:
    sort = query.sort
    if sort == "relevance":
        return (-(position.score or 0.0), _Desc(position.id))
    if sort == "updated":
        assert isinstance(position.key, int)
        return (-position.key, _Desc(position.id))
    if sort == "name":
        return (position.key, position.id)
    return (_Desc(position.id),)


def _detached(hit: SearchHit) -> SearchHit:
    return attrs.evolve(hit, fields=dict(hit.fields), body=copy.deepcopy(hit.body))
