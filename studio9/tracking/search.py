"""MLflow's run search language: filters, ``order_by`` keys and page tokens, parsed without sqlparse.

A filter is comparisons joined by ``AND`` (``OR`` is refused, as by MLflow)::

    metrics.loss < 0.5 and params.model = 'tree' and tags."my tag" LIKE 'a%'
    attributes.status != 'FAILED' and run_id IN ('…', '…') and dataset.context = 'training'

An identifier is ``<type>.<key>`` (type ``metric(s)``, ``param(s)``/``parameter(s)``, ``tag(s)``,
``attribute(s)``/``attr``/``run``, ``dataset(s)``); a bare key is an attribute. Keys with other
characters than letters, digits, ``_`` and ``.`` are quoted with backticks or double quotes.

- metrics and the numeric attributes (``start_time``, ``end_time``; alias ``created``) compare
  with ``= != < <= > >=`` to a number; a metric compares its run's latest value;
- params and tags take ``= != LIKE ILIKE`` with a quoted string, and ``IS NULL``/``IS NOT NULL``;
- string attributes (``run_id``, ``run_name`` (alias ``run name``), ``status``, ``user_id``,
  ``artifact_uri``) take ``= != LIKE ILIKE`` and, for ``run_id`` only, ``IN``/``NOT IN`` a list;
- dataset keys (``name``, ``digest``, ``context``) take ``= != LIKE ILIKE IN NOT IN``.

Keywords are case-insensitive. String values are quoted with ``'`` (or ``"``); a quote inside is
doubled (``'it''s'``) or escaped with a backslash. ``LIKE`` is case-sensitive, ``ILIKE`` not; in
both ``%`` is any run of characters, ``_`` any one character, and no character escapes them.
Errors are ``InvalidTrackingInput`` with MLflow's messages.

How filters are evaluated in memory, and the order runs sort in, is ``studio9.tracking.matching``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Sequence
from typing import Final

import attrs

from studio9.tracking.domain import InvalidTrackingInput
from studio9.tracking.tokens import END, SEGMENT, Token, is_quoted, tokenize, unquote


class EntityType(enum.StrEnum):
    """What an identifier names, by MLflow's canonical names."""

    METRIC = "metric"
    PARAM = "parameter"
    TAG = "tag"
    ATTRIBUTE = "attribute"
    DATASET = "dataset"


_ENTITY_NAMES: Final = {
    "metric": EntityType.METRIC,
    "metrics": EntityType.METRIC,
    "parameter": EntityType.PARAM,
    "parameters": EntityType.PARAM,
    "param": EntityType.PARAM,
    "params": EntityType.PARAM,
    "tag": EntityType.TAG,
    "tags": EntityType.TAG,
    "attribute": EntityType.ATTRIBUTE,
    "attributes": EntityType.ATTRIBUTE,
    "attr": EntityType.ATTRIBUTE,
    "run": EntityType.ATTRIBUTE,
    "dataset": EntityType.DATASET,
    "datasets": EntityType.DATASET,
}
NUMERIC_ATTRIBUTES: Final = frozenset({"start_time", "end_time"})
STRING_ATTRIBUTES: Final = frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri"})
DATASET_KEYS: Final = frozenset({"name", "digest", "context"})
_ALIASES: Final = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
_ATTRIBUTE_KEYS: Final = sorted(NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES | set(_ALIASES))
NUMERIC_COMPARATORS: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})
_NULL_TESTS: Final = frozenset({"IS NULL", "IS NOT NULL"})
_STRING_COMPARATORS: Final = frozenset({"=", "!=", "LIKE", "ILIKE"})
_LIST_COMPARATORS: Final = frozenset({"IN", "NOT IN"})
_COMPARATORS: Final = {
    EntityType.METRIC: NUMERIC_COMPARATORS,
    EntityType.PARAM: _STRING_COMPARATORS | _NULL_TESTS,
    EntityType.TAG: _STRING_COMPARATORS | _NULL_TESTS,
    EntityType.DATASET: _STRING_COMPARATORS | _LIST_COMPARATORS,
}
#: The value a comparison compares with: a number (metrics, numeric attributes), a string, a list
#: of strings (IN), or None (IS NULL).
Value = float | int | str | tuple[str, ...] | None


@attrs.frozen(kw_only=True)
class Comparison:
    """One ``<identifier> <comparator> <value>`` of a filter; ``key`` has its alias resolved and
    ``comparator`` is upper-case (``IS NOT NULL``, ``NOT IN``)."""

    entity: EntityType
    key: str
    comparator: str
    value: Value


@attrs.frozen(kw_only=True)
class OrderKey:
    """One ``order_by`` entry."""

    entity: EntityType
    key: str
    ascending: bool = True


# -- identifiers ----------------------------------------------------------------------------------


def _identifier(text: str, *, ordering: bool = False) -> tuple[EntityType, str]:
    """``text`` (one name token) as (entity, key), the key's alias resolved."""
    head = re.match(SEGMENT, text)
    assert head is not None  # the tokenizer matched a name
    if head.end() == len(text):
        entity, key = EntityType.ATTRIBUTE, unquote(text) if is_quoted(text) else text
    else:
        kind = head.group()
        kind = kind[1:-1] if kind.startswith("`") and kind.endswith("`") else kind
        if kind not in _ENTITY_NAMES:
            valid = [str(e) for e in EntityType]
            raise InvalidTrackingInput(
                f"Invalid entity type '{kind}'. Valid values are {valid}", field="filter"
            )
        entity = _ENTITY_NAMES[kind]
        rest = text[head.end() + 1 :]
        key = unquote(rest) if re.fullmatch(SEGMENT, rest) and is_quoted(rest) else rest
    field = "order_by" if ordering else "filter"
    if entity is EntityType.ATTRIBUTE:
        key = _ALIASES.get(key, key)
        if key not in NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES:
            raise InvalidTrackingInput(
                f"Invalid attribute key '{key}' specified. Valid keys are '{_ATTRIBUTE_KEYS}'", field=field
            )
    elif entity is EntityType.DATASET:
        if ordering:
            raise InvalidTrackingInput(f"Invalid order_by entity type '{entity}'", field=field)
        if key not in DATASET_KEYS:
            raise InvalidTrackingInput(
                f"Invalid dataset key '{key}' specified. Valid keys are '{sorted(DATASET_KEYS)}'", field=field
            )
    return entity, key


# -- filters --------------------------------------------------------------------------------------


def _invalid_clause(token: Token) -> InvalidTrackingInput:
    return InvalidTrackingInput(f"Invalid clause(s) in filter string: '{token.text}'", field="filter")


def _invalid_comparison(expected: str, found: Token) -> InvalidTrackingInput:
    return InvalidTrackingInput(
        f"Invalid comparison clause. Expected {expected} found '{found.text}'", field="filter"
    )


def parse_filter(text: str | None) -> tuple[Comparison, ...]:
    """The comparisons of an MLflow run filter (none for an empty one)."""
    if text is None or not text.strip():
        return ()
    tokens = [*tokenize(text), END]
    comparisons: list[Comparison] = []
    at = 0
    while True:
        comparison, at = _comparison(tokens, at)
        comparisons.append(comparison)
        if tokens[at] is END:
            return tuple(comparisons)
        if not tokens[at].is_("AND"):
            raise _invalid_clause(tokens[at])
        at += 1


def _comparison(tokens: Sequence[Token], at: int) -> tuple[Comparison, int]:
    """The comparison starting at ``at`` (``tokens`` end with ``END``); the index after it."""
    first = tokens[at]
    if first.kind == "keyword":
        raise _invalid_clause(first)
    if first.kind != "name":
        raise _invalid_comparison("'Identifier'", first)
    entity, key = _identifier(first.text)
    second = tokens[at + 1]
    third = tokens[at + 2] if second is not END else END
    if second.kind == "op" or second.is_("LIKE") or second.is_("ILIKE") or second.is_("IN"):
        comparator, at = second.text.upper(), at + 2
    elif second.is_("NOT") and third.is_("IN"):
        comparator, at = "NOT IN", at + 3
    elif second.is_("IS") and third.is_("NULL"):
        return _null_test(entity, key, "IS NULL"), at + 3
    elif second.is_("IS") and third.is_("NOT") and tokens[at + 3].is_("NULL"):
        return _null_test(entity, key, "IS NOT NULL"), at + 4
    elif second is END or second.is_("AND"):
        raise _invalid_clause(first)
    else:
        raise _invalid_comparison("comparison", second)
    _check_comparator(entity, key, comparator)
    return _with_value(tokens, at, entity, key, comparator)


def _with_value(
    tokens: Sequence[Token], at: int, entity: EntityType, key: str, comparator: str
) -> tuple[Comparison, int]:
    token = tokens[at]
    if token is END or token.kind in ("op", "keyword") or token.text in (")", ","):
        raise _invalid_comparison("value token", token)
    listed = comparator in _LIST_COMPARATORS
    if token.text == "(" or listed:
        if token.text != "(" or not listed:
            raise _invalid_comparison("a list of quoted strings" if listed else "value token", token)
        items, at = _list(tokens, at)
        return Comparison(entity=entity, key=key, comparator=comparator, value=items), at
    value: Value
    if entity is EntityType.METRIC or (entity is EntityType.ATTRIBUTE and key in NUMERIC_ATTRIBUTES):
        if token.kind != "number":
            what = "metric" if entity is EntityType.METRIC else f"numeric attribute: {key}"
            raise InvalidTrackingInput(
                f"Expected numeric value type for {what}. Found {token.text}", field="filter"
            )
        integer = entity is EntityType.ATTRIBUTE and re.fullmatch(r"[-+]?\d+", token.text)
        value = int(token.text) if integer else float(token.text)
    else:
        value = token.string()
        if value is None:
            raise InvalidTrackingInput(_not_a_string(entity, token.text), field="filter")
    return Comparison(entity=entity, key=key, comparator=comparator, value=value), at + 1


def _not_a_string(entity: EntityType, text: str) -> str:
    if entity in (EntityType.PARAM, EntityType.TAG):
        return f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value {text}"
    if entity is EntityType.DATASET:
        return f"Expected a quoted string value for dataset attributes. Got value {text}"
    return f"Expected a quoted string value for attributes. Got value {text}"


def _list(tokens: Sequence[Token], at: int) -> tuple[tuple[str, ...], int]:
    """The quoted strings of ``( 'a', 'b' )`` whose ``(`` is at ``at``; the index after ``)``."""
    items: list[str] = []
    at += 1
    while True:
        token = tokens[at]
        if token.text == ")" and token.kind == "punct":
            if not items:
                raise InvalidTrackingInput(
                    "While parsing a list in the query, expected a non-empty list of string values, "
                    "but got empty list",
                    field="filter",
                )
            return tuple(items), at + 1
        if items:
            if token.text != "," or token.kind != "punct":
                break
            at += 1
        item = tokens[at].string()
        if item is None:
            break
        items.append(item)
        at += 1
    raise InvalidTrackingInput(
        "While parsing a list in the query, expected a non-empty list of string values, but got "
        "ill-formed list.",
        field="filter",
    )


def _check_comparator(entity: EntityType, key: str, comparator: str) -> None:
    if entity is EntityType.ATTRIBUTE:
        if key in NUMERIC_ATTRIBUTES:
            valid = NUMERIC_COMPARATORS
        elif comparator in _LIST_COMPARATORS and key != "run_id":
            raise InvalidTrackingInput(
                "Only ['run_id'] attributes support comparison with a list of quoted string values.",
                field="filter",
            )
        else:
            valid = _STRING_COMPARATORS | _LIST_COMPARATORS
    else:
        valid = _COMPARATORS[entity]
    if comparator not in valid:
        raise InvalidTrackingInput(
            f"Invalid comparator '{comparator}' not one of '{sorted(valid)}'", field="filter"
        )


def _null_test(entity: EntityType, key: str, comparator: str) -> Comparison:
    if entity not in (EntityType.PARAM, EntityType.TAG):
        raise InvalidTrackingInput(
            f"IS NULL / IS NOT NULL is only supported for tags and params, not for '{entity}' '{key}'",
            field="filter",
        )
    return Comparison(entity=entity, key=key, comparator=comparator, value=None)


# -- order_by -------------------------------------------------------------------------------------


def parse_order_by(entries: Sequence[str] | None) -> tuple[OrderKey, ...]:
    """Each ``"<identifier> [ASC|DESC]"`` as an OrderKey (ascending by default); refuses a key
    named twice."""
    keys: list[OrderKey] = []
    for entry in entries or ():
        try:
            tokens = tokenize(entry)
        except InvalidTrackingInput:
            tokens = []
        if not 1 <= len(tokens) <= 2 or tokens[0].kind != "name":
            raise InvalidTrackingInput(
                f"Invalid order_by clause '{entry}'. Could not be parsed.", field="order_by"
            )
        ascending = True
        if len(tokens) == 2:
            direction = tokens[1].text.upper()
            if tokens[1].kind != "name" or direction not in ("ASC", "DESC"):
                raise InvalidTrackingInput(
                    f"Invalid ordering key in order_by clause '{entry}'.", field="order_by"
                )
            ascending = direction == "ASC"
        entity, key = _identifier(tokens[0].text, ordering=True)
        if any((k.entity, k.key) == (entity, key) for k in keys):
            raise InvalidTrackingInput(
                f"`order_by` contains duplicate fields: {list(entries or ())}", field="order_by"
            )
        keys.append(OrderKey(entity=entity, key=key, ascending=ascending))
    return tuple(keys)


# -- page tokens ----------------------------------------------------------------------------------


def encode_page_token(offset: int) -> str:
    """The token of the page that starts at ``offset``: base64 of ``{"offset": n}``, as MLflow's."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a page token names (0 for none); raises InvalidTrackingInput for a bad token."""
    if not token:
        return 0
    try:
        decoded = base64.b64decode(token.encode(), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidTrackingInput(
            "Invalid page token, could not base64-decode", field="page_token"
        ) from None
    try:
        parsed = json.loads(decoded)
    except ValueError:
        raise InvalidTrackingInput(
            f"Invalid page token, decoded value={decoded!r}", field="page_token"
        ) from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    if isinstance(offset, str) and offset.isdigit():
        offset = int(offset)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidTrackingInput(f"Invalid page token, parsed value={parsed}", field="page_token")
    return offset
