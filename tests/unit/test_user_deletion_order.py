"""Deleting a user settles what they own first: a failure there keeps the user (the request can
be retried), and what slipped in meanwhile is settled again once the user is gone."""

from __future__ import annotations

import attrs
import pytest
from structlog.testing import capture_logs

from adapters.database.memory import MemoryDatabase
from studio9.auth import AuthPolicy, AuthService, Principal
from studio9.auth.domain import UserNotFound
from studio9.auth.passwords import Argon2PasswordHasher
from studio9.errors import BackendUnavailable, Unauthenticated


@attrs.define
class FlakyOwnedWork:
    """Stands in for the offboarding use case (``OwnedWork``): records every call, and fails the
    calls whose numbers (from 1) are in ``failing``, as a database outage would."""

    failing: frozenset[int]
    calls: list[tuple[str, str | None, str]] = attrs.Factory(list)

    async def settle(self, user_id: str, *, transfer_to: str | None, by: str) -> None:
        self.calls.append((user_id, transfer_to, by))
        if len(self.calls) in self.failing:
            raise BackendUnavailable("database unreachable")


def _auth(owned: FlakyOwnedWork) -> AuthService:
    db = MemoryDatabase()
    hasher = Argon2PasswordHasher(memory_kib=1024, time_cost=1)
    return AuthService(db.users, db.tokens, AuthPolicy(cache_seconds=0), hasher=hasher, owned=owned)


async def _admin(auth: AuthService) -> Principal:
    token = await auth.ensure_first_admin()
    assert token is not None
    return await auth.authenticate(token.secret)


async def test_a_failed_settle_keeps_the_user_and_a_retry_deletes_them() -> None:
    owned = FlakyOwnedWork(failing=frozenset({1}))
    auth = _auth(owned)
    admin = await _admin(auth)
    ada, token = await auth.create_user(admin, "ada")
    with pytest.raises(BackendUnavailable):
        await auth.delete_user(admin, ada.id)
    assert (await auth.authenticate(token.secret)).user_id == ada.id  # nothing was deleted
    await auth.delete_user(admin, ada.id)  # the same request again
    with pytest.raises(UserNotFound):
        await auth.users.get(ada.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(token.secret)
    # the failed try; then before the deletion, and after it for what slipped in meanwhile
    assert owned.calls == [(ada.id, None, admin.user_id)] * 3


async def test_a_failed_second_settle_is_logged_and_the_user_stays_deleted() -> None:
    owned = FlakyOwnedWork(failing=frozenset({2}))
    auth = _auth(owned)
    admin = await _admin(auth)
    ada, _ = await auth.create_user(admin, "ada")
    bob, _ = await auth.create_user(admin, "bob")
    with capture_logs() as logs:
        await auth.delete_user(admin, ada.id, transfer_to=bob.id)
    with pytest.raises(UserNotFound):
        await auth.users.get(ada.id)
    assert owned.calls == [(ada.id, bob.id, admin.user_id)] * 2
    (warning,) = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["event"] == "user_leftovers_not_settled" and warning["user_id"] == ada.id


async def test_nothing_is_settled_for_a_user_who_does_not_exist() -> None:
    owned = FlakyOwnedWork(failing=frozenset())
    auth = _auth(owned)
    admin = await _admin(auth)
    with pytest.raises(UserNotFound):
        await auth.delete_user(admin, "01NOSUCHUSER00000000000000")
    assert owned.calls == []
