"""UserStore and TokenStore on SQLAlchemy (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.user_store.sql_models import ApiTokenRow, UserRow
from studio9.auth.domain import ApiToken, EmailTaken, Role, TokenNotFound, User, UsernameTaken, UserNotFound


class SqlUserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, user: User) -> None:
        try:
            async with self._sessions.begin() as session:
                session.add(_user_row(user))
        except IntegrityError as exc:
            if user.email is not None and "email" in str(exc.orig).lower():
                raise EmailTaken() from None
            raise UsernameTaken(user.username) from None

    async def get(self, user_id: str) -> User:
        async with self._sessions() as session:
            row = await session.get(UserRow, user_id)
        if row is None:
            raise UserNotFound(user_id)
        return _user(row)

    async def get_by_username(self, username: str) -> User:
        async with self._sessions() as session:
            row = await session.scalar(sa.select(UserRow).where(UserRow.username == username))
        if row is None:
            raise UserNotFound(username)
        return _user(row)

    async def list(self, *, limit: int, after: str | None = None) -> Sequence[User]:
        query = sa.select(UserRow).order_by(UserRow.id).limit(limit)
        if after is not None:
            query = query.where(UserRow.id > after)
        async with self._sessions() as session:
            return [_user(row) for row in await session.scalars(query)]

    async def delete(self, user_id: str) -> None:
        async with self._sessions.begin() as session:
            # Tokens go explicitly as well as by ON DELETE CASCADE, so that a database
            # whose foreign keys are off (an SQLite file opened elsewhere) stays clean.
            await session.execute(sa.delete(ApiTokenRow).where(ApiTokenRow.user_id == user_id))
            result = await session.execute(sa.delete(UserRow).where(UserRow.id == user_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise UserNotFound(user_id)

    async def set_login_state(
        self, user_id: str, *, failed_logins: int, locked_until: datetime | None
    ) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                sa.update(UserRow)
                .where(UserRow.id == user_id)
                .values(failed_logins=failed_logins, locked_until=locked_until)
            )

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(sa.select(sa.func.count()).select_from(UserRow)) or 0)


class SqlTokenStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, token: ApiToken) -> None:
        async with self._sessions.begin() as session:
            session.add(
                ApiTokenRow(
                    id=token.id,
                    user_id=token.user_id,
                    token_hash=token.token_hash,
                    name=token.name,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                    revoked_at=token.revoked_at,
                )
            )

    async def find(self, token_hash: str) -> tuple[ApiToken, User] | None:
        query = (
            sa.select(ApiTokenRow, UserRow)
            .join(UserRow, UserRow.id == ApiTokenRow.user_id)
            .where(ApiTokenRow.token_hash == token_hash)
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        return None if row is None else (_token(row[0]), _user(row[1]))

    async def get(self, token_id: str) -> ApiToken:
        async with self._sessions() as session:
            row = await session.get(ApiTokenRow, token_id)
        if row is None:
            raise TokenNotFound(token_id)
        return _token(row)

    async def list_for_user(self, user_id: str) -> Sequence[ApiToken]:
        query = sa.select(ApiTokenRow).where(ApiTokenRow.user_id == user_id).order_by(ApiTokenRow.id.desc())
        async with self._sessions() as session:
            return [_token(row) for row in await session.scalars(query)]

    async def revoke(self, token_id: str, at: datetime) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(ApiTokenRow, token_id, with_for_update=True)
            if row is None:
                raise TokenNotFound(token_id)
            if row.revoked_at is None:
                row.revoked_at = at


def _user_row(user: User) -> UserRow:
    return UserRow(
        id=user.id,
        username=user.username,
        role=user.role.value,
        password_hash=user.password_hash,
        failed_logins=user.failed_logins,
        locked_until=user.locked_until,
        created_at=user.created_at,
        email=user.email,
    )


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        created_at=row.created_at,
        password_hash=row.password_hash,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        email=row.email,
    )


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        token_hash=row.token_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        name=row.name,
    )
