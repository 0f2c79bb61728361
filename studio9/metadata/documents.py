"""Search documents and the text rules every index adapter shares (re-exported by ``domain``).

Text semantics, identical in every adapter because they all call ``words()``: text is
NFKC-normalised, case-folded (``str.casefold``, a stronger lowercasing that also folds
Greek final sigma, as SQLite's tokenizer does) and split into runs of letters and
digits, so punctuation (underscores included) separates words and ``"data.profile"`` is
the two words ``data`` and ``profile``. A document matches a query when it contains every word of the query,
whole words only, with no stemming and no accent folding. A query without words (no
text, blank text, punctuation only) does not filter by text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from studio9.errors import InvalidInput

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
#: Field and term keys are safe identifiers, so that adapters can name them in JSON paths.
FIELD_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_ID_LENGTH = 128
MAX_OWNER_ID_LENGTH = 64
#: A term value (a tag, a project id) and a reader key (``e:`` + a 320-character email).
MAX_TERM_LENGTH = 256
MAX_READER_LENGTH = 330
#: The ``name`` order compares the first characters of the folded name only, so that a
#: cursor holding it stays within ``studio9.web.paging.SEARCH_CURSOR`` (400 characters).
NAME_KEY_LENGTH = 48

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The words of ``text``, in order, as every adapter indexes and matches them."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def name_key(fields: Mapping[str, str]) -> str:
    """What the ``name`` order compares: ``fields["name"]`` NFKC-normalised, case-folded and cut
    to ``NAME_KEY_LENGTH`` characters ("" without a name); code point order, as every adapter sorts."""
    return unicodedata.normalize("NFKC", fields.get("name", "")).casefold()[:NAME_KEY_LENGTH]


class InvalidSearch(InvalidInput):
    """A search query or cursor that cannot be used (bad kind, filter key, limit or cursor)."""


def _check_fields(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    for key, item in value.items():
        if not isinstance(key, str) or not FIELD_KEY_PATTERN.fullmatch(key):
            raise ValueError(f"{attribute.name} key {key!r} is not an identifier")
        if not isinstance(item, str):
            raise ValueError(f"{attribute.name}[{key!r}] must be a string, not {type(item).__name__}")


def _distinct_terms(value: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    # A tag given twice counts once, in facets as in filters; a bare string is one value, not letters.
    if not isinstance(value, Mapping):
        raise ValueError("terms must be a mapping of key to values")
    return {
        key: (items,) if isinstance(items, str) else tuple(dict.fromkeys(items))
        for key, items in value.items()
    }


def _check_terms(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, Sequence[str]]) -> None:
    for key, items in value.items():
        if not isinstance(key, str) or not FIELD_KEY_PATTERN.fullmatch(key):
            raise ValueError(f"terms key {key!r} is not an identifier")
        for item in items:
            if not isinstance(item, str) or not 1 <= len(item) <= MAX_TERM_LENGTH:
                raise ValueError(f"terms[{key!r}] values must be strings of 1-{MAX_TERM_LENGTH} characters")


def _reader_keys(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _check_readers(instance: Any, attribute: attrs.Attribute[Any], value: frozenset[str]) -> None:
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_READER_LENGTH:
            raise ValueError(f"reader keys must be strings of 1-{MAX_READER_LENGTH} characters")


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
    ``terms`` are multi-valued exact terms (``{"tags": ["q1", "sales"], "projects": [...]}``),
    kept distinct per key; ``readers`` are the reader keys (``u:<id>``, ``g:<id>``,
    ``e:<email>``, ``p:<id>``) of who may read it, matched by ``SearchQuery.readers``
    (none: only queries without a reader filter see it); ``body`` is the JSON summary
    handed back with each hit. Invalid values raise ValueError: documents are built by
    Studio9's own code, never taken from a request.
    """

    id: str = attrs.field(validator=_identifier(MAX_ID_LENGTH))
    kind: str = attrs.field(validator=attrs.validators.matches_re(KIND_PATTERN))
    owner_id: str = attrs.field(validator=_identifier(MAX_OWNER_ID_LENGTH))
    text: str = attrs.field(validator=attrs.validators.instance_of(str))
    fields: Mapping[str, str] = attrs.field(factory=dict, validator=_check_fields)
    terms: Mapping[str, Sequence[str]] = attrs.field(
        factory=dict, converter=_distinct_terms, validator=_check_terms
    )
    readers: frozenset[str] = attrs.field(factory=frozenset, converter=_reader_keys, validator=_check_readers)
    updated_at: datetime = attrs.field(validator=_check_aware)
    body: Mapping[str, Any] = attrs.field(factory=dict, validator=_check_json)

    def term_pairs(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` of ``terms``, each once."""
        return [(key, value) for key, values in self.terms.items() for value in values]
