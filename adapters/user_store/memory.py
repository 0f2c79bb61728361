"""UserStore and TokenStore held in dictionaries: nothing survives the process.

URL:      memory:// (stores of the in-memory system of record, ``MemoryDatabase``)
Features: thread-safe · one lock for both stores (deleting a user deletes its tokens)
Extra:    none
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

import attrs

from studio9.auth.domain import ApiToken, EmailTaken, TokenNotFound, User, UsernameTaken, UserNotFound


@attrs.define
class UserTables:
    """Users and tokens behind one lock: deleting a user deletes its tokens in the same step."""

    lock: threading.Lock = attrs.field(factory=threading.Lock)
    users: dict[str, User] = attrs.field(factory=dict)
    tokens: dict[str, ApiToken] = attrs.field(factory=dict)


class MemoryUserStore:
    def __init__(self, tables: UserTables) -> None:
        self._t = tables

    async def add(self, user: User) -> None:
        with self._t.lock:
            if any(u.username == user.username for u in self._t.users.values()):
                raise UsernameTaken(user.username)
            if user.email is not None and any(u.email == user.email for u in self._t.users.values()):
                raise EmailTaken()
            self._t.users[user.id] = user

    async def get(self, user_id: str) -> User:
        with self._t.lock:
            if user_id not in self._t.users:
                raise UserNotFound(user_id)
            return self._t.users[user_id]

    async def get_by_username(self, username: str) -> User:
        with self._t.lock:
            for user in self._t.users.values():
                if user.username == username:
                    return user
        raise UserNotFound(username)

    async def list(self, *, limit: int, after: str | None = None) -> Sequence[User]:
        with self._t.lock:
            ids = sorted(i for i in self._t.users if after is None or i > after)[:limit]
            return [self._t.users[i] for i in ids]

    async def delete(self, user_id: str) -> None:
        with self._t.lock:
            if self._t.users.pop(user_id, None) is None:
                raise UserNotFound(user_id)
            for token_id in [t.id for t in self._t.tokens.values() if t.user_id == user_id]:
                del self._t.tokens[token_id]

    async def set_login_state(
        self, user_id: str, *, failed_logins: int, locked_until: datetime | None
    ) -> None:
        with self._t.lock:
            if user := self._t.users.get(user_id):
                self._t.users[user_id] = attrs.evolve(
                    user, failed_logins=failed_logins, locked_until=locked_until
                )

    async def count(self) -> int:
        with self._t.lock:
            return len(self._t.users)


class MemoryTokenStore:
    def __init__(self, tables: UserTables) -> None:
        self._t = tables

    async def add(self, token: ApiToken) -> None:
        with self._t.lock:
            self._t.tokens[token.id] = token

    async def find(self, token_hash: str) -> tuple[ApiToken, User] | None:
        with self._t.lock:
            for token in self._t.tokens.values():
                if token.token_hash == token_hash and token.user_id in self._t.users:
                    return token, self._t.users[token.user_id]
        return None

    async def get(self, token_id: str) -> ApiToken:
        with self._t.lock:
            if token_id not in self._t.tokens:
                raise TokenNotFound(token_id)
            return self._t.tokens[token_id]

    async def list_for_user(self, user_id: str) -> Sequence[ApiToken]:
        with self._t.lock:
            return sorted(
                (t for t in self._t.tokens.values() if t.user_id == user_id), key=lambda t: t.id, reverse=True
            )

    async def revoke(self, token_id: str, at: datetime) -> None:
        with self._t.lock:
            token = self._t.tokens.get(token_id)
            if token is None:
                raise TokenNotFound(token_id)
            if token.revoked_at is None:
                self._t.tokens[token_id] = attrs.evolve(token, revoked_at=at)
