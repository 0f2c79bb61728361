"""How deeply a JSON text nests, judged on its bytes before anything parses it.

Parsers recurse once per level: msgspec raises ``RecursionError`` near the interpreter's
limit, ``json.loads`` too, and code that walks the decoded value (validation, search
documents, redaction) recurses again. So every JSON that reaches Studio9 from outside is
refused past ``MAX_JSON_DEPTH`` levels before it is decoded. This module has no
dependencies, so any entry point (HTTP bodies today, queue messages tomorrow) can use it.

The check runs on every JSON request body and must stay cheap on the largest one: nearly
every body has fewer brackets than the limit and is passed by two ``bytes.count``; the
rest is measured with C-speed byte operations (escapes and strings dropped, brackets
kept, empty containers stripped) and only what is left is summed in Python.
"""

from __future__ import annotations

from array import array
from itertools import accumulate

__all__ = ["MAX_JSON_DEPTH", "exceeds_depth"]

#: The deepest nesting of arrays and objects accepted (``[[1]]`` is 2 levels). Real
#: documents (job params, stream items, settings) stay under 10; 64 leaves room for any
#: honest structure and is far from where parsers and our own recursion get into trouble.
MAX_JSON_DEPTH = 64

# Brackets become signed bytes: +1 for an opening one, -1 (0xff) for a closing one; quotes
# stay; every other byte is deleted, so once strings are gone a running sum is the depth.
_SIGNED = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOISE = bytes(b for b in range(256) if b not in b'[]{}"')
_QUOTE, _BARE_STRING = b'"', b'""'
_OPEN, _EMPTY = b"\x01", b"\x01\xff"
# Stripping empty containers removes exactly one level each round (from balanced input);
# two rounds clear the leaves of typical documents (objects of scalars, short lists) so
# that little is left for the Python-level sum.
_ROUNDS = 2


def exceeds_depth(text: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``limit`` levels deep.

    Exact for valid JSON; for malformed text it may over-count (the text is refused
    anyway) but never counts less than a parser would descend before failing.
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    if b"\\" in text:
        # Escapes are the only way a quote hides inside a string. ``\\`` pairs go first,
        # so that in ``"a\\"`` the last quote still ends the string.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = text.translate(_SIGNED, _NOISE)
    # Brackets between quotes are text. Most strings hold none and are now ``""``: dropping
    # those (two adjacent quotes, whatever they open or close) keeps every later quote's
    # parity; in what is left, the pieces between quotes alternate outside and inside.
    structure = structure.replace(_BARE_STRING, b"")
    if _QUOTE in structure:
        structure = b"".join(structure.split(_QUOTE)[::2])
    if structure.count(_OPEN) <= limit:
        return False
    if _OPEN * (limit + 1) in structure:
        return True  # an unbroken run of openers, as in a flood of ``[``: no need to sum
    stripped = 0
    while stripped < _ROUNDS:
        shorter = structure.replace(_EMPTY, b"")
        if len(shorter) == len(structure):
            break
        structure, stripped = shorter, stripped + 1
        if not structure:
            return stripped > limit
    return stripped + max(accumulate(array("b", structure)), default=0) > limit
