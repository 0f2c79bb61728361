"""UserStore and TokenStore contract, run against every system-of-record adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from studio9.auth.domain import ApiToken, EmailTaken, Role, TokenNotFound, User, UsernameTaken, UserNotFound
from studio9.ids import new_id

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _user(name: str, **changes: Any) -> User:
    values: dict[str, Any] = {
        "id": new_id(),
        "username": name,
        "role": Role.USER,
        "created_at": NOW,
        "password_hash": "$argon2id$fake",
    }
    values.update(changes)
    return User(**values)


def _token(user: User, **changes: Any) -> ApiToken:
    values: dict[str, Any] = {
        "id": new_id(),
        "user_id": user.id,
        "token_hash": new_id().ljust(64, "0"),
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=30),
    }
    values.update(changes)
    return ApiToken(**values)


async def test_added_user_reads_back_equal_by_id_and_username(database: Any) -> None:
    user = _user("ada", role=Role.ADMIN, failed_logins=2, locked_until=NOW)
    await database.users.add(user)
    assert await database.users.get(user.id) == user
    assert await database.users.get_by_username("ada") == user
    assert (await database.users.get(user.id)).created_at.tzinfo is not None


async def test_duplicate_username_raises_username_taken(database: Any) -> None:
    await database.users.add(_user("ada"))
    with pytest.raises(UsernameTaken):
        await database.users.add(_user("ada"))
    assert await database.users.count() == 1


async def test_an_email_reads_back_and_belongs_to_one_user(database: Any) -> None:
    ada = _user("ada", email="ada@example.org")
    await database.users.add(ada)
    assert (await database.users.get(ada.id)).email == "ada@example.org"
    with pytest.raises(EmailTaken):
        await database.users.add(_user("ada2", email="ada@example.org"))
    # Users without an email are many.
    await database.users.add(_user("bob"))
    await database.users.add(_user("cy"))
    assert await database.users.count() == 3


async def test_unknown_user_raises_not_found(database: Any) -> None:
    with pytest.raises(UserNotFound):
        await database.users.get("missing")
    with pytest.raises(UserNotFound):
        await database.users.get_by_username("missing")
    with pytest.raises(UserNotFound):
        await database.users.delete("missing")


async def test_list_pages_in_id_order(database: Any) -> None:
    users = [_user(f"user{i}") for i in range(5)]
    for user in reversed(users):
        await database.users.add(user)
    first = await database.users.list(limit=2)
    rest = await database.users.list(limit=10, after=first[-1].id)
    assert [u.id for u in [*first, *rest]] == sorted(u.id for u in users)


async def test_login_state_is_recorded(database: Any) -> None:
    user = _user("ada")
    await database.users.add(user)
    await database.users.set_login_state(user.id, failed_logins=4, locked_until=NOW + timedelta(minutes=5))
    stored = await database.users.get(user.id)
    assert (stored.failed_logins, stored.locked_until) == (4, NOW + timedelta(minutes=5))


async def test_token_found_by_hash_with_its_user(database: Any) -> None:
    user = _user("ada")
    await database.users.add(user)
    token = _token(user, name="laptop")
    await database.tokens.add(token)
    assert await database.tokens.find(token.token_hash) == (token, user)
    assert await database.tokens.find("0" * 64) is None
    assert await database.tokens.get(token.id) == token


async def test_revoke_keeps_the_first_revocation_time(database: Any) -> None:
    user = _user("ada")
    await database.users.add(user)
    token = _token(user)
    await database.tokens.add(token)
    await database.tokens.revoke(token.id, NOW)
    await database.tokens.revoke(token.id, NOW + timedelta(hours=1))
    assert (await database.tokens.get(token.id)).revoked_at == NOW
    with pytest.raises(TokenNotFound):
        await database.tokens.revoke("missing", NOW)


async def test_tokens_list_newest_first_and_go_with_their_user(database: Any) -> None:
    user, other = _user("ada"), _user("bob")
    await database.users.add(user)
    await database.users.add(other)
    older, newer = _token(user, id=new_id(1_000)), _token(user, id=new_id(2_000))
    await database.tokens.add(older)
    await database.tokens.add(newer)
    await database.tokens.add(_token(other))
    assert [t.id for t in await database.tokens.list_for_user(user.id)] == [newer.id, older.id]
    await database.users.delete(user.id)
    assert await database.tokens.find(older.token_hash) is None
    assert await database.tokens.list_for_user(user.id) == []
    assert len(await database.tokens.list_for_user(other.id)) == 1
