"""Column checks of the prediction importer: one raw chunk in, the five ``BATCH_SCHEMA`` columns out.

Vectorized with ``pyarrow.compute`` where the check allows it (empty or over-long text,
confidence syntax and range); per row in Python only for JSON (``probabilities`` must parse as
an object; ``extra`` is encoded from the other columns). A bad row's first problem is recorded
in ``problems`` (index in the chunk → reason) and the row's values are replaced by harmless
ones, so the caller can fail the import or filter the rows out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from studio9.errors import InvalidInput
from studio9.predictions.domain import MAX_JSON_BYTES, MAX_TEXT_BYTES

__all__ = ["KNOWN", "REQUIRED", "check_columns", "json_text"]

REQUIRED: Final = ("item_key", "label")
KNOWN: Final = frozenset({*REQUIRED, "confidence", "probabilities"})
_NUMBER: Final = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_OBJECT = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()
_NULL_TEXT = pa.scalar(None, pa.string())
_PROBS = "probabilities"


def json_text(value: Any) -> str:
    """``value`` as compact JSON text."""
    return _ENCODER.encode(value).decode()


def check_columns(chunk: pa.RecordBatch, problems: dict[int, str]) -> list[pa.Array]:
    """The five checked columns of ``chunk``; bad rows' first problem goes into ``problems``."""
    names, n = chunk.schema.names, chunk.num_rows
    extra = [name for name in names if name not in KNOWN]

    def optional(name: str, check: Callable[[pa.Array, dict[int, str]], pa.Array], kind: Any) -> pa.Array:
        return check(chunk.column(name), problems) if name in names else pa.nulls(n, kind)

    return [
        _text(chunk.column("item_key"), "item_key", problems),
        _text(chunk.column("label"), "label", problems),
        optional("confidence", _confidence, pa.float64()),
        optional(_PROBS, _probabilities, pa.string()),
        _extra(chunk.select(extra), problems) if extra else pa.nulls(n, pa.string()),
    ]


def _flag(mask: pa.Array, problems: dict[int, str], reason: Callable[[int], str]) -> None:
    for index in pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist():
        problems.setdefault(index, reason(index))


def _as_text(values: pa.Array, name: str) -> pa.Array:
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidInput(f"column {name!r} must hold text, not {values.type}", column=name) from None


def _text(values: pa.Array, name: str, problems: dict[int, str]) -> pa.Array:
    text = _as_text(values, name)
    _flag(pc.or_(pc.is_null(text), pc.equal(pc.utf8_length(text), 0)), problems, lambda _: f"{name} is empty")
    too_long = pc.greater(pc.binary_length(text), MAX_TEXT_BYTES)
    _flag(too_long, problems, lambda _: f"{name} is longer than {MAX_TEXT_BYTES} bytes")
    return pc.fill_null(text, "")


def _confidence(values: pa.Array, problems: dict[int, str]) -> pa.Array:
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(values, pa.float64())
    elif _is_text(kind):
        text = pc.cast(values, pa.string())
        blank = pc.equal(pc.utf8_trim_whitespace(text), "")
        text = pc.if_else(blank, _NULL_TEXT, text)
        numeric = pc.match_substring_regex(text, _NUMBER)
        _flag(pc.invert(numeric), problems, lambda i: f"confidence {text[i].as_py()!r} is not a number")
        numbers = pc.cast(pc.utf8_trim_whitespace(pc.if_else(numeric, text, _NULL_TEXT)), pa.float64())
    else:
        raise InvalidInput(f"column 'confidence' must hold numbers, not {kind}", column="confidence")
    outside = pc.or_(pc.or_(pc.less(numbers, 0.0), pc.greater(numbers, 1.0)), pc.is_nan(numbers))
    _flag(outside, problems, lambda i: f"confidence {numbers[i].as_py()} is not between 0 and 1")
    return pc.if_else(pc.fill_null(outside, False), pa.scalar(None, pa.float64()), numbers)


def _probabilities(values: pa.Array, problems: dict[int, str]) -> pa.Array:
    kind = values.type
    texts: list[str | None]
    if _is_text(kind):
        texts = [text if text and text.strip() else None for text in values.to_pylist()]
        for index, text in enumerate(texts):
            if text is not None and not _is_object(text):
                problems.setdefault(index, "probabilities is not a JSON object")
    elif pa.types.is_struct(kind) or pa.types.is_map(kind):  # a map arrives as (key, value) pairs
        mappings = [dict(value) if isinstance(value, list) else value for value in values.to_pylist()]
        texts = [None if mapping is None else _ENCODER.encode(mapping).decode() for mapping in mappings]
    else:
        raise InvalidInput(
            f"column 'probabilities' must hold JSON objects, not {kind}", column="probabilities"
        )
    return _json_column(texts, "probabilities", problems)


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind))


def _is_object(text: str) -> bool:
    try:
        _OBJECT.decode(text)
    except msgspec.DecodeError:
        return False
    return True


def _extra(columns: pa.RecordBatch, problems: dict[int, str]) -> pa.Array:
    texts = [_ENCODER.encode(row).decode() for row in columns.to_pylist()]
    return _json_column(texts, "extra", problems)


def _json_column(texts: Sequence[str | None], name: str, problems: dict[int, str]) -> pa.Array:
    column = pa.array(texts, pa.string())
    too_long = pc.greater(pc.binary_length(column), MAX_JSON_BYTES)
    _flag(too_long, problems, lambda _: f"{name} is longer than {MAX_JSON_BYTES} bytes as JSON")
    return column
