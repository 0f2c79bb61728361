"""The tokens of MLflow's search language (``studio9.tracking.search``), read with one regular
expression rather than sqlparse: names (dotted, with backtick- or double-quoted segments), quoted
strings, numbers, comparison operators, parentheses and commas, and the keywords."""

from __future__ import annotations

import re
from typing import Final

import attrs

from studio9.tracking.domain import InvalidTrackingInput

__all__ = ["END", "KEYWORDS", "SEGMENT", "Token", "is_quoted", "tokenize", "unquote"]

SEGMENT: Final = r"(?:`[^`]*`|\"(?:[^\"\\]|\\.)*\"|\w+)"
_TOKENS = re.compile(
    rf"""
    (?P<space>\s+)
    |(?P<string>'(?:[^'\\]|\\.|'')*')
    |(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    |(?P<name>{SEGMENT}(?:\.{SEGMENT})*)
    |(?P<op><=|>=|!=|<>|==|=|<|>)
    |(?P<punct>[(),])
    """,
    re.VERBOSE,
)
KEYWORDS: Final = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"})


@attrs.frozen
class Token:
    """One token; ``kind`` is string, number, name, op, punct, keyword, or end (``END``)."""

    kind: str  # string | number | name | op | punct | keyword
    text: str  # as written

    def is_(self, keyword: str) -> bool:
        return self.kind == "keyword" and self.text.upper() == keyword

    def string(self) -> str | None:
        """The string this token is a quoted value of (``'…'``, or MLflow's ``"…"``), else None."""
        if self.kind == "string" or (
            self.kind == "name" and self.text.startswith('"') and re.fullmatch(SEGMENT, self.text)
        ):
            return unquote(self.text)
        return None


END = Token("end", "")


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, white space dropped; raises InvalidTrackingInput at a character no
    token starts with."""
    tokens: list[Token] = []
    at = 0
    while at < len(text):
        found = _TOKENS.match(text, at)
        if found is None:
            raise InvalidTrackingInput(f"Invalid clause(s) in filter string: '{text[at:]}'", field="filter")
        at = found.end()
        kind = found.lastgroup or ""
        if kind == "space":
            continue
        if kind == "name" and found.group().upper() in KEYWORDS:
            kind = "keyword"
        tokens.append(Token(kind, found.group()))
    return tokens


def unquote(text: str) -> str:
    """A quoted string's content: a doubled quote and backslash escapes undone."""
    quote, body = text[0], text[1:-1]
    if quote == "`":
        return body
    return re.sub(r"\\(.)", r"\1", body.replace(quote * 2, quote))


def is_quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] == text[-1] and text[0] in "`\"'"
