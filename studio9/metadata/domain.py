"""Search documents, the queries over them, and the text rules every index adapter shares.

A ``SearchDocument`` (``studio9.metadata.documents``, re-exported here) is a projection of
something Studio9 owns (a job with its heartbeats and result, an asset), written to the
index by the indexer and replaceable at any time: the system of record stays the truth,
the index can be rebuilt. Assets are documents of kind ``asset`` with the asset's own kind
in ``fields["asset_kind"]``: one query searches every asset kind, ``filters`` narrows it to
one, and the facet ``fields.asset_kind`` counts them.

Access: a query with ``readers`` (the caller's reader keys) sees only documents whose
``readers`` meet them, in hits and in facet counts alike; ``readers=None`` filters nothing
(administrators, and jobs, which are scoped by ``owner_id``).

Orders (``SearchQuery.order``), each with the id as the last tie-breaker so that keyset
cursors never repeat or skip a document that did not change in between:

- ``relevance`` (default): with words, the per-document score (how often the words occur)
  descending, then id descending; without words, as ``newest``.
- ``newest``: id descending, which is newest first for Studio9's time-sortable ids.
- ``updated``: ``updated_at`` descending (to the microsecond), then id descending.
- ``name``: ``name_key(fields)`` ascending (the folded ``fields["name"]``, "" without one),
  then id ascending.

Hits carry a score only under ``relevance`` with words. Cursors are opaque and bound to
the query that made them (everything that selects or orders documents, not the page size
nor the facets).

Facets (``SearchQuery.facets``): ``kind``, ``owner_id``, ``fields.<key>`` or ``terms.<key>``;
for each, how many matching documents (text, filters, terms, owner, readers: the same set
as the hits, ignoring paging) have each value: the top ``FACET_SIZE`` values by count
descending, then value ascending. A document counts once per value it has; documents
without the field count nowhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Self

import attrs

from studio9.metadata.documents import (
    FIELD_KEY_PATTERN,
    KIND_PATTERN,
    MAX_ID_LENGTH,
    MAX_OWNER_ID_LENGTH,
    MAX_READER_LENGTH,
    MAX_TERM_LENGTH,
    NAME_KEY_LENGTH,
    InvalidSearch,
    SearchDocument,
    name_key,
    words,
)

__all__ = [
    "FACET_SIZE",
    "FIELD_KEY_PATTERN",
    "KIND_PATTERN",
    "MAX_ID_LENGTH",
    "MAX_LIMIT",
    "MAX_OWNER_ID_LENGTH",
    "MAX_READER_LENGTH",
    "MAX_TERM_LENGTH",
    "NAME_KEY_LENGTH",
    "ORDERS",
    "InvalidSearch",
    "SearchDocument",
    "SearchHit",
    "SearchPage",
    "SearchPosition",
    "SearchQuery",
    "facet_source",
    "micros",
    "name_key",
    "top_values",
    "words",
]

MAX_LIMIT = 500
MAX_TEXT_LENGTH = 1000
MAX_QUERY_WORDS = 32
#: A caller's reader keys: themselves, their email, their groups and projects.
MAX_READER_KEYS = 10_000
MAX_FACETS = 8
FACET_SIZE: Final = 50
ORDERS: Final = ("relevance", "newest", "updated", "name")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(at: datetime) -> int:
    """``at`` as integer microseconds since the epoch: the ``updated`` order's cursor key."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def facet_source(name: str) -> tuple[str, str | None]:
    """Where facet ``name`` counts: ``("kind", None)``, ``("owner_id", None)``,
    ``("fields", key)`` or ``("terms", key)``.

    Raises:
        InvalidSearch: (field ``facets``) not one of those forms.
    """
    if name in ("kind", "owner_id"):
        return name, None
    source, _, key = name.partition(".")
    if source in ("fields", "terms") and FIELD_KEY_PATTERN.fullmatch(key):
        return source, key
    raise InvalidSearch(
        f"unknown facet {name!r}: expected kind, owner_id, fields.<key> or terms.<key>", field="facets"
    )


def top_values(counts: Mapping[str, int]) -> dict[str, int]:
    """The ``FACET_SIZE`` values with the highest counts (then the lowest values), in that order."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:FACET_SIZE])


# -- queries -----------------------------------------------------------------------------


def _query_kind(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not KIND_PATTERN.fullmatch(value):
        raise InvalidSearch(f"unknown document kind {value!r}", field="kind")


def _query_text(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidSearch(f"search text is longer than {MAX_TEXT_LENGTH} characters", field="text")
    if len(set(words(value))) > MAX_QUERY_WORDS:
        raise InvalidSearch(f"search text has more than {MAX_QUERY_WORDS} words", field="text")


def _query_pairs(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    for key, item in value.items():
        if not isinstance(key, str) or not FIELD_KEY_PATTERN.fullmatch(key):
            raise InvalidSearch(f"invalid {attribute.name} name {key!r}", field=attribute.name)
        if not isinstance(item, str):
            raise InvalidSearch(f"{attribute.name} {key!r} must be a string", field=attribute.name)


def _query_owner(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidSearch(f"{attribute.name} must be a string", field=attribute.name)


def _reader_set(value: Any) -> frozenset[str] | None:
    if value is None or isinstance(value, frozenset):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence | set):
        raise InvalidSearch("readers must be a set of reader keys", field="readers")
    return frozenset(value)


def _query_readers(instance: Any, attribute: attrs.Attribute[Any], value: frozenset[str] | None) -> None:
    if value is None:
        return
    if len(value) > MAX_READER_KEYS:
        raise InvalidSearch(f"more than {MAX_READER_KEYS} reader keys", field="readers")
    for key in value:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_READER_LENGTH:
            raise InvalidSearch(f"reader keys are 1-{MAX_READER_LENGTH} characters", field="readers")


def _query_order(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ORDERS:
        raise InvalidSearch(f"unknown order {value!r}; expected one of {', '.join(ORDERS)}", field="order")


def _facet_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise InvalidSearch("facets must be a list of facet names", field="facets")
    return tuple(dict.fromkeys(value))


def _query_facets(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if len(value) > MAX_FACETS:
        raise InvalidSearch(f"more than {MAX_FACETS} facets", field="facets")
    for name in value:
        if not isinstance(name, str):
            raise InvalidSearch("facet names must be strings", field="facets")
        facet_source(name)


def _query_limit(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidSearch(f"limit must be between 1 and {MAX_LIMIT}", field="limit")


@attrs.frozen(kw_only=True)
class SearchPosition:
    """Where the previous page ended: its last hit's id, and its score (``relevance`` with
    words) or its sort key (``updated``: microseconds since the epoch; ``name``: the name key)."""

    id: str
    score: float | None
    key: int | str | None = None

    @property
    def updated_at(self) -> datetime:
        """The ``updated`` order's key as a datetime (UTC)."""
        assert isinstance(self.key, int)
        return datetime.fromtimestamp(self.key // 1_000_000, UTC).replace(microsecond=self.key % 1_000_000)


@attrs.frozen(kw_only=True)
class SearchQuery:
    """Documents of one kind, optionally matching text and filters, one page at a time.

    ``owner_id`` keeps one owner's documents, ``not_owner_id`` everyone else's (``scope=shared``);
    ``readers`` keeps the documents those reader keys may read (None: no access filter, for
    administrators and owner-scoped jobs). ``filters`` match ``fields`` exactly; ``any_terms``
    match a document whose ``terms[key]`` contains the value (``{"tags": "q1"}``); all of them
    hold at once. ``order`` is one of ``ORDERS``; ``facets`` names the counts to return.
    Invalid values raise InvalidSearch naming the field (the caller's input, a 422).
    """

    kind: str = attrs.field(validator=_query_kind)
    text: str | None = attrs.field(default=None, validator=_query_text)
    filters: Mapping[str, str] = attrs.field(factory=dict, validator=_query_pairs)
    any_terms: Mapping[str, str] = attrs.field(factory=dict, validator=_query_pairs)
    owner_id: str | None = attrs.field(default=None, validator=_query_owner)
    not_owner_id: str | None = attrs.field(default=None, validator=_query_owner)
    readers: frozenset[str] | None = attrs.field(
        default=None, converter=_reader_set, validator=_query_readers
    )
    order: str = attrs.field(default="relevance", validator=_query_order)
    facets: Sequence[str] = attrs.field(factory=tuple, converter=_facet_names, validator=_query_facets)
    limit: int = attrs.field(default=50, validator=_query_limit)
    cursor: str | None = None

    @property
    def words(self) -> tuple[str, ...]:
        """The distinct words a document must contain, in the order given."""
        return tuple(dict.fromkeys(words(self.text or "")))

    @property
    def ranked(self) -> bool:
        """Whether hits are ordered (and scored) by relevance: ``relevance`` with words."""
        return self.order == "relevance" and bool(self.words)

    @property
    def sort(self) -> str:
        """The effective order: ``relevance`` (with words), ``newest``, ``updated`` or ``name``."""
        if self.order == "relevance":
            return "relevance" if self.words else "newest"
        return self.order

    def position(self) -> SearchPosition | None:
        """The decoded cursor, or None on the first page.

        Raises:
            InvalidSearch: the cursor is malformed or was made by a different query.
        """
        if self.cursor is None:
            return None
        try:
            raw = base64.b64decode(self.cursor + "=" * (-len(self.cursor) % 4), altchars=b"-_", validate=True)
            data = json.loads(raw)
        except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise InvalidSearch("malformed cursor", field="cursor") from None
        if not isinstance(data, dict) or data.get("q") != self._fingerprint():
            raise InvalidSearch("the cursor belongs to a different query", field="cursor")
        last_id, score, key = data.get("i"), data.get("s"), data.get("k")
        if not isinstance(last_id, str) or isinstance(score, bool) or isinstance(key, bool):
            raise InvalidSearch("malformed cursor", field="cursor")
        sort = self.sort
        if sort == "relevance" and isinstance(score, int | float) and key is None:
            return SearchPosition(id=last_id, score=float(score))
        if sort == "newest" and score is None and key is None:
            return SearchPosition(id=last_id, score=None)
        if sort == "updated" and score is None and isinstance(key, int):
            return SearchPosition(id=last_id, score=None, key=key)
        if sort == "name" and score is None and isinstance(key, str):
            return SearchPosition(id=last_id, score=None, key=key)
        raise InvalidSearch("malformed cursor", field="cursor")

    def cursor_after(self, hit: SearchHit) -> str:
        """The cursor for the page that follows ``hit``."""
        data: dict[str, Any] = {"q": self._fingerprint(), "i": hit.id, "s": hit.score}
        sort = self.sort
        if sort == "updated":
            data["k"] = micros(hit.updated_at)
        elif sort == "name":
            data["k"] = name_key(hit.fields)
        raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _fingerprint(self) -> str:
        # Everything that selects or orders documents; the page size and facets may change
        # between pages. Queries of the original form keep their original fingerprint.
        key: list[Any] = [self.kind, self.words, sorted(self.filters.items()), self.owner_id]
        extra = [
            self.not_owner_id,
            sorted(self.any_terms.items()),
            None if self.readers is None else sorted(self.readers),
            self.sort,
        ]
        if extra != [None, [], None, "relevance" if self.words else "newest"]:
            key.append(extra)
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


# -- results -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SearchHit:
    """A matching document as search returns it. ``score`` is set only under ``relevance`` with words."""

    id: str
    kind: str
    owner_id: str
    fields: Mapping[str, str]
    body: Mapping[str, Any]
    updated_at: datetime
    score: float | None = None


@attrs.frozen(kw_only=True)
class SearchPage:
    """One page of hits, the cursor of the next page (None on the last page), and the facets
    the query asked for (each in ``top_values`` order; every asked facet is present)."""

    items: Sequence[SearchHit]
    next_cursor: str | None = None
    facets: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)

    @classmethod
    def of(
        cls,
        query: SearchQuery,
        hits: Sequence[SearchHit],
        facets: Mapping[str, Mapping[str, int]] | None = None,
    ) -> Self:
        """The page for ``hits``, given in order and fetched ``query.limit + 1`` at most.

        One hit beyond the limit means that another page follows. ``facets`` maps each facet
        of the query to its counts (absent ones are empty; each is put in ``top_values`` order).
        """
        items = list(hits[: query.limit])
        more = len(hits) > query.limit
        given = facets or {}
        counted = {name: top_values(given.get(name, {})) for name in query.facets}
        return cls(items=items, next_cursor=query.cursor_after(items[-1]) if more else None, facets=counted)
