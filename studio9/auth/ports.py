"""What the auth context needs from storage.

Adapters: ``adapters/user_store/``: ``memory.py`` (memory://) and ``sql.py`` (SQLite, PostgreSQL).
Contract: ``tests/contract/test_auth_stores.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from studio9.auth.domain import ApiToken, Principal, User


class UserStore(Protocol):
    """Users by id and by username."""

    async def add(self, user: User) -> None:
        """Store a new user. Raises UsernameTaken when the username exists."""

    async def get(self, user_id: str) -> User:
        """Raises UserNotFound."""

    async def get_by_username(self, username: str) -> User:
        """Raises UserNotFound."""

    async def list(self, *, limit: int, after: str | None = None) -> Sequence[User]:
        """Users ordered by id, starting after the id ``after``."""

    async def delete(self, user_id: str) -> None:
        """Delete the user and every token of theirs. Raises UserNotFound."""

    async def set_login_state(
        self, user_id: str, *, failed_logins: int, locked_until: datetime | None
    ) -> None:
        """Record the outcome of a login attempt (failure count and lock)."""

    async def count(self) -> int:
        """How many users exist (the first start creates an admin when this is 0)."""


class TokenStore(Protocol):
    """API tokens, looked up by the hash of their secret."""

    async def add(self, token: ApiToken) -> None:
        """Store a new token."""

    async def find(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """The token with this hash and its user, or None. Inactive tokens are returned too."""

    async def get(self, token_id: str) -> ApiToken:
        """Raises TokenNotFound."""

    async def list_for_user(self, user_id: str) -> Sequence[ApiToken]:
        """Every token of the user, newest first."""

    async def revoke(self, token_id: str, at: datetime) -> None:
        """Mark the token revoked (idempotent: an earlier revocation time is kept). Raises TokenNotFound."""


class PasswordHasher(Protocol):
    """A memory-hard password KDF."""

    async def hash(self, password: str) -> str:
        """The encoded hash, salt and parameters included."""

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Whether ``password`` matches; with ``encoded`` None, do the same work and return False."""


class OwnedWork(Protocol):
    """What a user owns in other contexts (jobs, files, streams), settled when the user is deleted.

    Implemented outside this context (``studio9.offboarding``, wired by the composition root),
    so that auth needs no other context's service.
    """

    async def settle(self, user_id: str, *, transfer_to: str | None, by: str) -> None:
        """Give everything ``user_id`` owns to the user ``transfer_to``; with None, stop their
        streams and cancel their unfinished jobs (the rest stays, readable by admins).

        Idempotent, so a failed deletion can simply be retried. ``by`` is the acting admin.
        Raises BackendUnavailable when a backend fails part-way (the user must then stay).
        """


async def owner_principal(users: UserStore, owner_id: str, job_id: str) -> Principal:
    """The principal a job acts as: its owner, as the owner is now (a role change applies).

    Every context's jobs use it, so that a job reads exactly what its owner may read.
    Raises UserNotFound when the owner is gone.
    """
    user = await users.get(owner_id)
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        token_id=f"job:{job_id}",  # a label: jobs hold no token
        token_expires_at=datetime.max.replace(tzinfo=UTC),
        email=user.email,  # shares to the owner's email reach their jobs too
    )
