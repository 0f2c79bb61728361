"""The row filter syntax of ``/rows``, parsed into a pyarrow compute expression (never into SQL).

A filter is one or more conditions joined by ``and`` (keywords in any case)::

    age >= 18 and country in ('FR', 'BE') and name contains 'ann' and email is not null

* a column is a bare name (letters, digits, ``_``; not a keyword) or a double-quoted name
  (``"first name"``; ``""`` is a quote inside one); names match ignoring case;
* a value is a single-quoted string (``'it''s'``), a number (``-1.5e3``), ``true`` or ``false``;
  it is converted to the column's type (a date or timestamp is written as a string:
  ``day >= '2024-01-31'``; a naive timestamp compared with a zoned column is taken as UTC);
* conditions: ``=``, ``!=`` (or ``<>``), ``<``, ``<=``, ``>``, ``>=``; ``in (v, …)`` and
  ``not in (v, …)``; ``is null`` and ``is not null``; ``contains 'text'`` (string columns,
  ignoring case).

As in SQL, a null matches no comparison (``!=`` and ``not in`` included); only ``is null`` finds
nulls. There is no ``or``: ask ``in`` for alternatives of one column. At most 64 conditions,
1,000 values per ``in`` and 4,096 characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from studio9.errors import InvalidInput

__all__ = ["RowFilter", "parse_filter"]

MAX_LENGTH: Final = 4096
MAX_CONDITIONS: Final = 64
MAX_IN_VALUES: Final = 1000
KEYWORDS: Final = frozenset({"and", "in", "not", "is", "null", "contains", "true", "false"})
_TOKEN: Final = re.compile(
    r"""\s*(?:
      (?P<name>"(?:[^"]|"")*")
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_COMPARE: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "=": lambda f, v: f == v,
    "!=": lambda f, v: f != v,
    "<>": lambda f, v: f != v,
    "<": lambda f, v: f < v,
    "<=": lambda f, v: f <= v,
    ">": lambda f, v: f > v,
    ">=": lambda f, v: f >= v,
}


@attrs.frozen
class RowFilter:
    """A parsed filter: the expression and the columns it reads."""

    expression: pc.Expression
    columns: tuple[str, ...]


@attrs.frozen
class _Token:
    kind: str
    text: str
    at: int


def _fail(message: str, **details: Any) -> InvalidInput:
    return InvalidInput(f"filter: {message}", field="filter", **details)


def _tokens(text: str) -> list[_Token]:
    tokens, at = [], 0
    while at < len(text):
        if not text[at:].strip():
            break
        match = _TOKEN.match(text, at)
        if match is None or match.lastgroup is None:
            raise _fail(f"cannot read {text[at:].strip()[:20]!r} (at character {at + 1})")
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        at = match.end()
    return tokens


def parse_filter(text: str, schema: pa.Schema) -> RowFilter:
    """Parse ``text`` against the table's ``schema``; ``InvalidInput`` (field ``filter``) when
    it is not a filter, names an unknown column or holds a value the column cannot hold."""
    if len(text) > MAX_LENGTH:
        raise _fail(f"longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokens(text), schema)
    expression = parser.condition()
    count = 1
    while parser.accept_word("and"):
        count += 1
        if count > MAX_CONDITIONS:
            raise _fail(f"more than {MAX_CONDITIONS} conditions")
        expression = expression & parser.condition()
    parser.end()
    return RowFilter(expression, tuple(dict.fromkeys(parser.columns)))


class _Parser:
    def __init__(self, tokens: list[_Token], schema: pa.Schema) -> None:
        self._tokens = tokens
        self._at = 0
        self._schema = schema
        self.columns: list[str] = []

    def _peek(self) -> _Token | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise _fail(f"expected {expected} at the end")
        self._at += 1
        return token

    def accept_word(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self._at += 1
            return True
        return False

    def _expect_word(self, word: str) -> None:
        if not self.accept_word(word):
            token = self._peek()
            raise _fail(
                f"expected {word!r}"
                + (f", not {token.text!r} (at character {token.at + 1})" if token else "")
            )

    def _expect_punct(self, punct: str) -> None:
        token = self._next(repr(punct))
        if token.kind != "punct" or token.text != punct:
            raise _fail(f"expected {punct!r}, not {token.text!r} (at character {token.at + 1})")

    def end(self) -> None:
        token = self._peek()
        if token is not None:
            raise _fail(f"expected 'and', not {token.text!r} (at character {token.at + 1})")

    def condition(self) -> pc.Expression:
        name = self._column()
        field, arrow_type = pc.field(name), self._schema.field(name).type
        token = self._next("an operator")
        if token.kind == "op":
            return _COMPARE[token.text](field, self._value(arrow_type, name))
        word = token.text.lower() if token.kind == "word" else ""
        if word == "is":
            negated = self.accept_word("not")
            self._expect_word("null")
            return field.is_valid() if negated else field.is_null()
        if word == "not":
            self._expect_word("in")
            return ~field.isin(self._values(arrow_type, name)) & field.is_valid()
        if word == "in":
            return field.isin(self._values(arrow_type, name))
        if word == "contains":
            if not (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
                raise _fail(f"contains needs a text column; {name!r} is {arrow_type}", column=name)
            literal = self._next("a string")
            if literal.kind != "string":
                raise _fail(f"contains takes a quoted string, not {literal.text!r}")
            return pc.match_substring(field, pattern=_unquote(literal.text, "'"), ignore_case=True)
        raise _fail(f"expected an operator after {name!r}, not {token.text!r} (at character {token.at + 1})")

    def _column(self) -> str:
        token = self._next("a column")
        if token.kind == "name":
            wanted = _unquote(token.text, '"')
        elif token.kind == "word" and token.text.lower() not in KEYWORDS:
            wanted = token.text
        else:
            raise _fail(f"expected a column, not {token.text!r} (at character {token.at + 1})")
        names = self._schema.names
        found = (
            wanted if wanted in names else next((n for n in names if n.casefold() == wanted.casefold()), None)
        )
        if found is None:
            raise InvalidInput(f"filter: the table has no column {wanted!r}", field="filter", column=wanted)
        self.columns.append(found)
        return found

    def _values(self, arrow_type: pa.DataType, name: str) -> pa.Array:
        self._expect_punct("(")
        values = [self._value(arrow_type, name)]
        while (token := self._next("')'")).text == ",":
            values.append(self._value(arrow_type, name))
            if len(values) > MAX_IN_VALUES:
                raise _fail(f"more than {MAX_IN_VALUES} values in one list")
        if token.text != ")":
            raise _fail(f"expected ',' or ')', not {token.text!r} (at character {token.at + 1})")
        try:
            return pa.array([v.as_py() for v in values], type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            raise _fail(
                f"a value of the list does not fit the {arrow_type} column {name!r}", column=name
            ) from None

    def _value(self, arrow_type: pa.DataType, name: str) -> pa.Scalar:
        token = self._next("a value")
        if token.kind == "string":
            raw: Any = _unquote(token.text, "'")
        elif token.kind == "number":
            raw = token.text if pa.types.is_string(arrow_type) else _number(token.text)
        elif token.kind == "word" and token.text.lower() in ("true", "false"):
            raw = token.text.lower() == "true"
        else:
            raise _fail(f"expected a value, not {token.text!r} (at character {token.at + 1})")
        return _typed(raw, arrow_type, name)


def _unquote(text: str, quote: str) -> str:
    return text[1:-1].replace(quote * 2, quote)


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _typed(raw: Any, arrow_type: pa.DataType, name: str) -> pa.Scalar:
    """``raw`` as a scalar of the column's type; a number keeps its own type for a numeric column
    (``integer_column < 2.5`` compares as numbers)."""
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    try:
        if numeric and isinstance(raw, int | float) and not isinstance(raw, bool):
            exact = isinstance(raw, int) or pa.types.is_floating(arrow_type)
            return pa.scalar(raw, type=arrow_type if exact else pa.float64())
        if isinstance(raw, str) and pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
            try:
                return pa.scalar(raw.strip()).cast(arrow_type)
            except pa.ArrowInvalid:  # no offset given: the time is UTC
                return pa.scalar(raw.strip()).cast(pa.timestamp(arrow_type.unit)).cast(arrow_type)
        if isinstance(raw, str) and not pa.types.is_string(arrow_type):
            raw = raw.strip()
        return pa.scalar(raw).cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError):
        raise _fail(
            f"{raw!r} is not a valid value for the {arrow_type} column {name!r}", column=name
        ) from None
