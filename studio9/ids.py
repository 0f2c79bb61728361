"""Identifiers that sort by creation time and are unique across sites.

26 characters of Crockford's base32 alphabet over 128 bits: 48 bits of milliseconds since
the epoch, then 80 random bits. Ids made on different machines never collide in practice
(edge and cloud replicate later), and, the alphabet being in ASCII order, sorting ids as
strings sorts them by creation time, which gives stable cursors for paging.
"""

from __future__ import annotations

import base64
import os
import time

# RFC 4648 base32 digits mapped onto Crockford's, which are in ASCII order.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def new_id(now_ms: int | None = None) -> str:
    """A new 26-character, time-sortable, random id."""
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    raw = millis.to_bytes(6, "big") + os.urandom(10)
    return base64.b32encode(raw)[:26].translate(_TO_CROCKFORD).decode("ascii")


def derived_id(parent: str, label: str) -> str:
    """An id made from ``parent`` (an id) and ``label``, the same every time: the time part of
    ``parent`` and 80 bits of SHA-256 of both. A job names what it creates with it, so that a
    retried job finds what an earlier attempt made instead of making a second one."""
    import hashlib

    digest = hashlib.sha256(f"{parent}\x00{label}".encode()).digest()[:10]
    tail = base64.b32encode(digest).translate(_TO_CROCKFORD).decode("ascii")
    return parent[:10] + tail
