"""Password hashing with argon2id, a memory-hard KDF.

Parameters follow the OWASP password-storage recommendation for argon2id
(19 MiB of memory, 2 passes, 1 lane). Hashing runs in a worker thread so that a
login never stalls the event loop for other requests.
"""

from __future__ import annotations

import anyio.to_thread
import argon2

_HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the username is unknown or has no password, so that the
# answer takes the same time whether or not the user exists.
_DUMMY_HASH = _HASHER.hash("studio9-timing-equaliser")


async def hash_password(password: str) -> str:
    """The argon2id encoding of ``password`` (salt and parameters included)."""
    return await anyio.to_thread.run_sync(_HASHER.hash, password)


async def verify_password(encoded: str | None, password: str) -> bool:
    """Whether ``password`` matches ``encoded``; costs the same when ``encoded`` is None."""
    return await anyio.to_thread.run_sync(_verify, encoded, password)


def _verify(encoded: str | None, password: str) -> bool:
    try:
        _HASHER.verify(encoded or _DUMMY_HASH, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
    return encoded is not None
