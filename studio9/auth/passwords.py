"""Password hashing with argon2id, a memory-hard KDF.

Parameters follow the OWASP password-storage recommendation for argon2id
(19 MiB of memory, 2 passes, 1 lane). Hashing runs in a worker thread so that a
login never stalls the event loop for other requests.
"""

from __future__ import annotations

import anyio.to_thread
import argon2


class Argon2PasswordHasher:
    """The ``PasswordHasher`` Studio9 uses."""

    def __init__(self, *, time_cost: int = 2, memory_kib: int = 19 * 1024, parallelism: int = 1) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when there is no real hash (unknown user, service account), so
        # that the answer takes the same time whether or not the user exists.
        self._dummy_hash = self._hasher.hash("studio9-timing-equaliser")

    async def hash(self, password: str) -> str:
        return str(await anyio.to_thread.run_sync(self._hasher.hash, password))

    async def verify(self, encoded: str | None, password: str) -> bool:
        return await anyio.to_thread.run_sync(self._verify, encoded, password)

    def _verify(self, encoded: str | None, password: str) -> bool:
        try:
            self._hasher.verify(encoded or self._dummy_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
        return encoded is not None
