from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.database.memory import MemoryDatabase
from studio9.auth import AuthPolicy, AuthService, Principal, Role
from studio9.auth.domain import TokenNotFound, UsernameTaken
from studio9.auth.passwords import Argon2PasswordHasher
from studio9.errors import Conflict, InvalidInput, PermissionDenied, RateLimited, Unauthenticated


@attrs.define
class Clock:
    now: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@attrs.define
class CountingHasher:
    """Spies on the real hasher: how many verifications each login costs."""

    inner: Argon2PasswordHasher = attrs.field(
        factory=lambda: Argon2PasswordHasher(memory_kib=1024, time_cost=1)
    )
    verifications: int = 0

    async def hash(self, password: str) -> str:
        return await self.inner.hash(password)

    async def verify(self, encoded: str | None, password: str) -> bool:
        self.verifications += 1
        return await self.inner.verify(encoded, password)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def auth(clock: Clock, hasher: CountingHasher) -> AuthService:
    db = MemoryDatabase()
    policy = AuthPolicy(
        token_ttl=timedelta(days=30), max_failures=3, lockout=timedelta(minutes=5), cache_seconds=60
    )
    return AuthService(db.users, db.tokens, policy, hasher=hasher, clock=clock)


async def _admin(auth: AuthService) -> Principal:
    token = await auth.ensure_first_admin()
    assert token is not None
    return await auth.authenticate(token.secret)


async def test_login_issues_a_token_that_authenticates(auth: AuthService) -> None:
    admin = await _admin(auth)
    await auth.create_user(admin, "ada", password="correct horse")
    issued = await auth.login("ada", "correct horse")
    principal = await auth.authenticate(issued.secret)
    assert (principal.username, principal.role, principal.token_id) == ("ada", Role.USER, issued.id)
    stored = await auth.tokens.get(issued.id)
    assert issued.secret not in repr(stored)
    assert stored.token_hash != issued.secret


async def test_wrong_password_and_unknown_user_cost_one_verification_each(
    auth: AuthService, hasher: CountingHasher
) -> None:
    admin = await _admin(auth)
    await auth.create_user(admin, "ada", password="correct horse")
    for username, password in [("ada", "wrong horse"), ("nobody", "whatever1"), ("ada", "correct horse")]:
        before = hasher.verifications
        if password == "correct horse":
            await auth.login(username, password)
        else:
            with pytest.raises(Unauthenticated, match="invalid username or password"):
                await auth.login(username, password)
        assert hasher.verifications == before + 1


async def test_repeated_failures_lock_the_user_until_the_lockout_ends(
    auth: AuthService, clock: Clock
) -> None:
    admin = await _admin(auth)
    await auth.create_user(admin, "ada", password="correct horse")
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await auth.login("ada", "wrong horse")
    with pytest.raises(RateLimited) as info:
        await auth.login("ada", "correct horse")
    assert 0 < info.value.retry_after <= 300
    clock.advance(minutes=5, seconds=1)
    assert await auth.login("ada", "correct horse")


async def test_a_success_resets_the_failure_count(auth: AuthService) -> None:
    admin = await _admin(auth)
    await auth.create_user(admin, "ada", password="correct horse")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await auth.login("ada", "wrong horse")
    await auth.login("ada", "correct horse")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await auth.login("ada", "wrong horse")
    await auth.login("ada", "correct horse")


async def test_token_expires_after_its_lifetime(auth: AuthService, clock: Clock) -> None:
    admin = await _admin(auth)
    _, issued = await auth.create_user(admin, "ada", password="correct horse")
    assert issued.expires_at == clock.now + timedelta(days=30)
    await auth.authenticate(issued.secret)  # cached from here on
    clock.advance(days=30)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(issued.secret)


async def test_revoked_token_is_refused_at_once_even_when_cached(auth: AuthService) -> None:
    admin = await _admin(auth)
    _, issued = await auth.create_user(admin, "ada", password="correct horse")
    ada = await auth.authenticate(issued.secret)
    await auth.revoke_token(ada, issued.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(issued.secret)
    await auth.revoke_token(admin, issued.id)  # idempotent


async def test_users_cannot_revoke_each_others_tokens_but_admins_can(auth: AuthService) -> None:
    admin = await _admin(auth)
    _, ada_token = await auth.create_user(admin, "ada", password="correct horse")
    _, bob_token = await auth.create_user(admin, "bob", password="battery staple")
    bob = await auth.authenticate(bob_token.secret)
    with pytest.raises(TokenNotFound):
        await auth.revoke_token(bob, ada_token.id)
    await auth.revoke_token(admin, ada_token.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(ada_token.secret)


async def test_service_accounts_have_tokens_but_no_password(auth: AuthService) -> None:
    admin = await _admin(auth)
    user, token = await auth.create_user(admin, "worker-1", role=Role.SERVICE)
    assert user.password_hash is None
    assert (await auth.authenticate(token.secret)).role is Role.SERVICE
    with pytest.raises(Unauthenticated):
        await auth.login("worker-1", "")
    with pytest.raises(Conflict):
        await auth.create_user(admin, "worker-2", role=Role.SERVICE, password="long enough")


async def test_only_admins_manage_users(auth: AuthService) -> None:
    admin = await _admin(auth)
    _, token = await auth.create_user(admin, "ada", password="correct horse")
    ada = await auth.authenticate(token.secret)
    with pytest.raises(PermissionDenied):
        await auth.create_user(ada, "eve", password="correct horse")
    with pytest.raises(PermissionDenied):
        await auth.list_users(ada, limit=10, after=None)
    with pytest.raises(PermissionDenied):
        await auth.delete_user(ada, admin.user_id)


async def test_deleting_a_user_removes_their_tokens(auth: AuthService) -> None:
    admin = await _admin(auth)
    user, token = await auth.create_user(admin, "ada", password="correct horse")
    await auth.authenticate(token.secret)
    await auth.delete_user(admin, user.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(token.secret)
    with pytest.raises(Conflict):
        await auth.delete_user(admin, admin.user_id)


@pytest.mark.parametrize(
    ("username", "password"),
    [("Ada", "correct horse"), ("a" * 64, "correct horse"), ("-ada", "correct horse"), ("ada", "short")],
)
async def test_bad_usernames_and_passwords_are_rejected(
    auth: AuthService, username: str, password: str
) -> None:
    admin = await _admin(auth)
    with pytest.raises(InvalidInput):
        await auth.create_user(admin, username, password=password)


async def test_usernames_are_unique(auth: AuthService) -> None:
    admin = await _admin(auth)
    await auth.create_user(admin, "ada", password="correct horse")
    with pytest.raises(UsernameTaken):
        await auth.create_user(admin, "ada", password="other horse")


async def test_first_admin_is_created_only_once(auth: AuthService) -> None:
    first = await auth.ensure_first_admin()
    assert first is not None
    assert (await auth.authenticate(first.secret)).role is Role.ADMIN
    assert await auth.ensure_first_admin() is None
