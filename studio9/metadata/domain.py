"""Search documents, the queries over them, and the text rules every index adapter shares.

A ``SearchDocument`` is a projection of something Studio9 owns (a job with its heartbeats
and result today, assets later), written to the index by the indexer and replaceable at
any time: the system of record stays the truth, the index can be rebuilt.

Text semantics, identical in every adapter because they all call ``words()``: text is
NFKC-normalised, case-folded (``str.casefold``, a stronger lowercasing that also folds
Greek final sigma, as SQLite's tokenizer does) and split into runs of letters and
digits, so punctuation (underscores included) separates words and ``"data.profile"`` is
the two words ``data`` and ``profile``. A document matches a query when it contains every word of the query,
whole words only, with no stemming and no accent folding. A query without words (no
text, blank text, punctuation only) does not filter by text.

Order: with words, by relevance (a per-document score: how often the words occur) then
id descending; without, by id descending, which is newest first for Studio9's
time-sortable ids. Cursors are opaque, bound to the query that made them, and page by
keyset, so pages never repeat or skip a document that did not change in between.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Self

import attrs

from studio9.errors import InvalidInput

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
#: Field keys are safe identifiers, so that adapters can name them in JSON paths.
FIELD_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_ID_LENGTH = 128
MAX_OWNER_ID_LENGTH = 64
MAX_LIMIT = 500
MAX_TEXT_LENGTH = 1000
MAX_QUERY_WORDS = 32

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The words of ``text``, in order, as every adapter indexes and matches them."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


class InvalidSearch(InvalidInput):
    """A search query or cursor that cannot be used (bad kind, filter key, limit or cursor)."""


# -- documents ---------------------------------------------------------------------------


def _check_fields(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    for key, item in value.items():
        if not isinstance(key, str) or not FIELD_KEY_PATTERN.fullmatch(key):
            raise ValueError(f"{attribute.name} key {key!r} is not an identifier")
        if not isinstance(item, str):
            raise ValueError(f"{attribute.name}[{key!r}] must be a string, not {type(item).__name__}")


def _check_aware(instance: Any, attribute: attrs.Attribute[Any], value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{attribute.name} must be timezone-aware")


def _check_json(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{attribute.name} must be JSON-serialisable: {exc}") from None


def _identifier(max_length: int) -> Any:
    return attrs.validators.and_(
        attrs.validators.instance_of(str), attrs.validators.min_len(1), attrs.validators.max_len(max_length)
    )


@attrs.frozen(kw_only=True)
class SearchDocument:
    """One searchable document. ``id`` is unique across kinds (a job's id, an asset's id).

    ``text`` is what full-text search sees (type, parameters, messages, error, result
    summary…); ``fields`` are exact-match filters such as ``{"status": "failed"}``;
    ``body`` is the JSON summary handed back with each hit. Invalid values raise
    ValueError: documents are built by Studio9's own code, never taken from a request.
    """

    id: str = attrs.field(validator=_identifier(MAX_ID_LENGTH))
    kind: str = attrs.field(validator=attrs.validators.matches_re(KIND_PATTERN))
    owner_id: str = attrs.field(validator=_identifier(MAX_OWNER_ID_LENGTH))
    text: str = attrs.field(validator=attrs.validators.instance_of(str))
    fields: Mapping[str, str] = attrs.field(factory=dict, validator=_check_fields)
    updated_at: datetime = attrs.field(validator=_check_aware)
    body: Mapping[str, Any] = attrs.field(factory=dict, validator=_check_json)


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


def _query_filters(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    for key, item in value.items():
        if not isinstance(key, str) or not FIELD_KEY_PATTERN.fullmatch(key):
            raise InvalidSearch(f"invalid filter name {key!r}", field="filters")
        if not isinstance(item, str):
            raise InvalidSearch(f"filter {key!r} must be a string", field="filters")


def _query_limit(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidSearch(f"limit must be between 1 and {MAX_LIMIT}", field="limit")


@attrs.frozen(kw_only=True)
class SearchPosition:
    """Where the previous page ended: its last hit's id and, for text queries, its score."""

    id: str
    score: float | None


@attrs.frozen(kw_only=True)
class SearchQuery:
    """Documents of one kind, optionally matching text and filters, one page at a time.

    ``owner_id`` None searches every owner (administrators); the service sets it for
    everyone else. Invalid values raise InvalidSearch (the caller's input, a 422).
    """

    kind: str = attrs.field(validator=_query_kind)
    text: str | None = attrs.field(default=None, validator=_query_text)
    filters: Mapping[str, str] = attrs.field(factory=dict, validator=_query_filters)
    owner_id: str | None = None
    limit: int = attrs.field(default=50, validator=_query_limit)
    cursor: str | None = None

    @property
    def words(self) -> tuple[str, ...]:
        """The distinct words a document must contain, in the order given."""
        return tuple(dict.fromkeys(words(self.text or "")))

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
        last_id, score = data.get("i"), data.get("s")
        if not isinstance(last_id, str) or isinstance(score, bool):
            raise InvalidSearch("malformed cursor", field="cursor")
        if not self.words and score is None:
            return SearchPosition(id=last_id, score=None)
        if self.words and isinstance(score, int | float):
            return SearchPosition(id=last_id, score=float(score))
        raise InvalidSearch("malformed cursor", field="cursor")

    def cursor_after(self, hit: SearchHit) -> str:
        """The cursor for the page that follows ``hit``."""
        data = {"q": self._fingerprint(), "i": hit.id, "s": hit.score}
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _fingerprint(self) -> str:
        # Everything that selects or orders documents; the page size may change between pages.
        key = [self.kind, self.words, sorted(self.filters.items()), self.owner_id]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


# -- results -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SearchHit:
    """A matching document as search returns it. ``score`` is None for queries without words."""

    id: str
    kind: str
    owner_id: str
    fields: Mapping[str, str]
    body: Mapping[str, Any]
    score: float | None = None


@attrs.frozen(kw_only=True)
class SearchPage:
    """One page of hits, and the cursor of the next page (None on the last page)."""

    items: Sequence[SearchHit]
    next_cursor: str | None = None

    @classmethod
    def of(cls, query: SearchQuery, hits: Sequence[SearchHit]) -> Self:
        """The page for ``hits``, given in order and fetched ``query.limit + 1`` at most.

        One hit beyond the limit means that another page follows.
        """
        items = list(hits[: query.limit])
        more = len(hits) > query.limit
        return cls(items=items, next_cursor=query.cursor_after(items[-1]) if more else None)
