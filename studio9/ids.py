"""Identifiers that sort by creation time and are unique across sites.

A ULID-style 26-character Crockford base32 string: 48 bits of milliseconds since the
epoch, then 80 random bits. Ids made on different machines never collide in practice
(edge and cloud replicate later), and sorting them sorts by creation time, which gives
stable cursors for paging.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now_ms: int | None = None) -> str:
    """A new 26-character, time-sortable, random id."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
