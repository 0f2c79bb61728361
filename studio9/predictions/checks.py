"""Column checks of the prediction importer: one raw chunk in, the five ``BATCH_SCHEMA`` columns out.

Vectorized with ``pyarrow.compute`` (empty or over-long text, confidence syntax and range,
``extra`` objects from text columns) and with one msgspec pass per chunk for the JSON objects
of ``probabilities``; per row in Python only where that cannot decide (a chunk with a bad or
unusual value, ``extra`` from Parquet's typed columns). A bad row's first problem is recorded
in ``problems`` (index in the chunk → reason) and the row's values are replaced by harmless
ones, so the caller can fail the import or filter the rows out. Every Arrow buffer comes from
``ARROW_POOL`` (see ``studio9.predictions.arrow``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from studio9.errors import InvalidInput
from studio9.predictions.arrow import ARROW_POOL as POOL
from studio9.predictions.domain import MAX_JSON_BYTES, MAX_TEXT_BYTES

__all__ = ["KNOWN", "REQUIRED", "check_columns", "json_text"]

REQUIRED: Final = ("item_key", "label")
KNOWN: Final = frozenset({*REQUIRED, "confidence", "probabilities"})
_NUMBER: Final = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
#: Numbers that may be out of float range (msgspec rejects 1e999): an exponent of three digits
#: or more, or 200 digits in a row. Rows holding one are checked one by one.
_HUGE_NUMBER: Final = r"[eE]\+?[0-9]{3}|[0-9]{200}"
_CONTROL: Final = r"[\x00-\x1f]"
_OBJECT = msgspec.json.Decoder(dict[str, Any])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ENCODER = msgspec.json.Encoder()
_NULL_TEXT = pa.scalar(None, pa.string())
_QUOTE, _BACKSLASH, _SPACE, _PLUS, _ZERO = (ord(c) for c in '"\\ +0')
_NUMERIC_BYTES = np.zeros(256, dtype=bool)
_NUMERIC_BYTES[list(b"0123456789.eE+-")] = True
_PROBS = "probabilities"


def json_text(value: Any) -> str:
    """``value`` as compact JSON text."""
    return _ENCODER.encode(value).decode()


def check_columns(chunk: pa.RecordBatch, problems: dict[int, str]) -> list[pa.Array]:
    """The five checked columns of ``chunk``; bad rows' first problem goes into ``problems``."""
    names, n = chunk.schema.names, chunk.num_rows
    extra = [name for name in names if name not in KNOWN]

    def optional(name: str, check: Callable[[pa.Array, dict[int, str]], pa.Array], kind: Any) -> pa.Array:
        return check(chunk.column(name), problems) if name in names else pa.nulls(n, kind, memory_pool=POOL)

    return [
        _text(chunk.column("item_key"), "item_key", problems),
        _text(chunk.column("label"), "label", problems),
        optional("confidence", _confidence, pa.float64()),
        optional(_PROBS, _probabilities, pa.string()),
        _extra(chunk.select(extra), problems) if extra else pa.nulls(n, pa.string(), memory_pool=POOL),
    ]


def _flag(mask: pa.Array, problems: dict[int, str], reason: Callable[[int], str]) -> None:
    for index in pc.indices_nonzero(_fill(mask, False)).to_pylist():
        problems.setdefault(index, reason(index))


def _fill(values: pa.Array, value: Any) -> pa.Array:
    """``values`` with nulls replaced by ``value`` (``pc.fill_null`` takes no memory pool)."""
    return pc.coalesce(values, pa.scalar(value, values.type), memory_pool=POOL)


def _as_text(values: pa.Array, name: str) -> pa.Array:
    try:
        return pc.cast(values, pa.string(), memory_pool=POOL)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidInput(f"column {name!r} must hold text, not {values.type}", column=name) from None


def _text(values: pa.Array, name: str, problems: dict[int, str]) -> pa.Array:
    text = _as_text(values, name)
    empty = pc.or_(pc.is_null(text), pc.equal(pc.binary_length(text), 0), memory_pool=POOL)
    _flag(empty, problems, lambda _: f"{name} is empty")
    too_long = pc.greater(pc.binary_length(text, memory_pool=POOL), MAX_TEXT_BYTES, memory_pool=POOL)
    _flag(too_long, problems, lambda _: f"{name} is longer than {MAX_TEXT_BYTES} bytes")
    return _fill(text, "") if text.null_count else text


def _confidence(values: pa.Array, problems: dict[int, str]) -> pa.Array:
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(values, pa.float64(), memory_pool=POOL)
    elif _is_text(kind):
        text = pc.cast(values, pa.string(), memory_pool=POOL)
        numbers = _plain_numbers(text)
        if numbers is None:
            trimmed = pc.utf8_trim_whitespace(text, memory_pool=POOL)
            text = pc.if_else(pc.equal(trimmed, ""), _NULL_TEXT, text, memory_pool=POOL)  # blank: null
            numeric = pc.match_substring_regex(text, _NUMBER, memory_pool=POOL)
            _flag(pc.invert(numeric), problems, lambda i: f"confidence {text[i].as_py()!r} is not a number")
            number_text = pc.if_else(numeric, trimmed, _NULL_TEXT, memory_pool=POOL)
            numbers = pc.cast(number_text, pa.float64(), memory_pool=POOL)
    else:
        raise InvalidInput(f"column 'confidence' must hold numbers, not {kind}", column="confidence")
    outside = pc.or_(pc.or_(pc.less(numbers, 0.0), pc.greater(numbers, 1.0)), pc.is_nan(numbers))
    _flag(outside, problems, lambda i: f"confidence {numbers[i].as_py()} is not between 0 and 1")
    if not pc.any(outside).as_py():
        return numbers
    return pc.if_else(_fill(outside, False), pa.scalar(None, pa.float64()), numbers, memory_pool=POOL)


def _plain_numbers(text: pa.Array) -> pa.Array | None:
    """``text`` as numbers when its bytes are only digits, ``.``, ``e``, ``E``, ``+`` and ``-``
    and Arrow's cast takes every non-empty value (empty: null); else None. Over that alphabet
    the cast accepts exactly what ``_NUMBER`` does (checked exhaustively up to five
    characters), so the regex, the slow part, is needed only for anything else."""
    if not _NUMERIC_BYTES[_data(text)].all():
        return None
    empty = pc.equal(pc.binary_length(text), 0)
    if pc.any(empty).as_py():
        text = pc.if_else(empty, _NULL_TEXT, text, memory_pool=POOL)
    try:
        return pc.cast(text, pa.float64(), memory_pool=POOL)
    except pa.ArrowInvalid:
        return None


def _probabilities(values: pa.Array, problems: dict[int, str]) -> pa.Array:
    kind = values.type
    if _is_text(kind):
        texts = _object_texts(pc.cast(values, pa.string(), memory_pool=POOL), problems)
        return _json_column(texts, _PROBS, problems)
    if pa.types.is_struct(kind) or pa.types.is_map(kind):  # a map arrives as (key, value) pairs
        mappings = [dict(value) if isinstance(value, list) else value for value in values.to_pylist()]
        texts = [None if mapping is None else _ENCODER.encode(mapping).decode() for mapping in mappings]
        return _json_column(pa.array(texts, pa.string(), memory_pool=POOL), _PROBS, problems)
    raise InvalidInput(f"column 'probabilities' must hold JSON objects, not {kind}", column=_PROBS)


def _object_texts(text: pa.Array, problems: dict[int, str]) -> pa.Array:
    """``text`` with blank values as nulls; values that are not a JSON object are flagged.

    Values written as ``{…}`` are checked together (``_all_objects``); the rest — and every value
    of a chunk where that fails — one by one, as ``_is_object`` decides.
    """
    braced = pc.and_(pc.starts_with(text, "{"), pc.ends_with(text, "}"), memory_pool=POOL)
    together = _fill(braced, False)
    if _may_hold_huge_numbers(text):
        huge = _fill(pc.match_substring_regex(text, _HUGE_NUMBER), False)
        together = pc.and_(together, pc.invert(huge), memory_pool=POOL)
    if not _all_objects(pc.filter(text, together, memory_pool=POOL)):
        together = pa.array(np.zeros(len(text), dtype=bool))
    blank = np.zeros(len(text), dtype=bool)
    alone = np.flatnonzero(np.logical_not(together.to_numpy(zero_copy_only=False)))
    if not len(alone):
        return text
    for index, value in zip(alone.tolist(), pc.take(text, alone, memory_pool=POOL).to_pylist(), strict=True):
        if not value or not value.strip():
            blank[index] = True
        elif not _is_object(value):
            problems.setdefault(index, "probabilities is not a JSON object")
    return pc.if_else(pa.array(blank), _NULL_TEXT, text, memory_pool=POOL) if blank.any() else text


def _all_objects(texts: pa.Array) -> bool:
    """Whether every value (each starting with ``{`` and ending with ``}``) is a JSON object.

    One decode of ``[v1,v2,…]`` as raw elements: it succeeds with as many elements as values,
    each exactly as long as its value, only if the values split there, so each one is a whole
    JSON value, and the brace makes it an object. (Raw skipping validates as msgspec's object
    decoding does, except number range and UTF-8: the caller leaves huge numbers out and the
    bytes are checked here.)
    """
    if not len(texts):
        return True
    try:
        texts.validate(full=True)  # UTF-8: Parquet strings are not checked on read
    except pa.ArrowInvalid:
        return False
    listed = pa.ListArray.from_arrays(pa.array([0, len(texts)], pa.int32()), texts, pool=POOL)
    joined = pc.binary_join(listed, ",", memory_pool=POOL)[0].as_buffer()
    try:
        elements = _RAW_LIST.decode(b"[" + joined.to_pybytes() + b"]")
    except msgspec.DecodeError:
        return False
    if len(elements) != len(texts):
        return False
    lengths = np.fromiter(map(len, elements), dtype=np.int64, count=len(elements))
    return bool(np.array_equal(lengths, pc.binary_length(texts).to_numpy(zero_copy_only=False)))


def _may_hold_huge_numbers(text: pa.Array) -> bool:
    """False when no value can hold a number ``_HUGE_NUMBER`` matches: no ``e`` or ``E``
    followed by a digit or ``+`` in the bytes, no value of 200 bytes. Saves the regex."""
    data = _data(text)
    after_e = data[1:][(data[:-1] | _SPACE) == ord("e")]  # | 0x20: lower case
    if ((after_e - _ZERO < 10) | (after_e == _PLUS)).any():
        return True
    longest = pc.max(pc.binary_length(text)).as_py()
    return longest is not None and longest >= 200


def _data(text: pa.Array) -> np.ndarray:
    """The bytes behind a text array's values (those of the array it was sliced from, if so)."""
    data = text.buffers()[2]
    return np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind))


def _is_object(text: str) -> bool:
    try:
        _OBJECT.decode(text)
    except msgspec.DecodeError:
        return False
    return True


def _extra(columns: pa.RecordBatch, problems: dict[int, str]) -> pa.Array:
    if all(_is_text(field.type) for field in columns.schema):  # CSV: every value is text
        parts: list[Any] = []
        for position, (name, values) in enumerate(zip(columns.schema.names, columns.columns, strict=True)):
            parts += [("{" if position == 0 else ",") + json_text(name) + ":", _json_strings(values)]
        column = pc.binary_join_element_wise(*parts, "}", "", memory_pool=POOL)
    else:  # typed Parquet columns: msgspec's encoding of each type (timestamps, lists…)
        texts = [_ENCODER.encode(row).decode() for row in columns.to_pylist()]
        column = pa.array(texts, pa.string(), memory_pool=POOL)
    return _json_column(column, "extra", problems)


def _json_strings(values: pa.Array) -> pa.Array:
    """Each text value as a JSON string literal (``null`` for a null), as msgspec writes it."""
    text = pc.cast(values, pa.string(), memory_pool=POOL)
    data, escaped = _data(text), text
    if ((data == _QUOTE) | (data == _BACKSLASH) | (data < _SPACE)).any():  # else nothing to escape
        escaped = pc.replace_substring(escaped, "\\", "\\\\", memory_pool=POOL)
        escaped = pc.replace_substring(escaped, '"', '\\"', memory_pool=POOL)
    literals = pc.binary_join_element_wise('"', escaped, '"', "", memory_pool=POOL)
    literals = _fill(literals, "null") if literals.null_count else literals
    if not (data < _SPACE).any():
        return literals
    control = _fill(pc.match_substring_regex(text, _CONTROL), False)
    odd = pc.filter(text, control).to_pylist()  # control characters: msgspec's escapes, row by row
    replacements = pa.array([json_text(value) for value in odd], pa.string(), memory_pool=POOL)
    return pc.replace_with_mask(literals, control, replacements, memory_pool=POOL)


def _json_column(column: pa.Array, name: str, problems: dict[int, str]) -> pa.Array:
    too_long = pc.greater(pc.binary_length(column), MAX_JSON_BYTES)
    _flag(too_long, problems, lambda _: f"{name} is longer than {MAX_JSON_BYTES} bytes as JSON")
    return column
