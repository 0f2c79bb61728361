"""Use cases of the auth context: logins, tokens, users, and checking a request's token."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import attrs
import structlog

from studio9.auth.domain import (
    ApiToken,
    IssuedToken,
    Principal,
    Role,
    TokenNotFound,
    User,
    UsernameTaken,
    UserNotFound,
    check_password,
    check_username,
    normalise_email,
)
from studio9.auth.passwords import Argon2PasswordHasher
from studio9.auth.ports import OwnedWork, PasswordHasher, TokenStore, UserStore
from studio9.errors import (
    Conflict,
    InvalidInput,
    PermissionDenied,
    RateLimited,
    Studio9Error,
    Unauthenticated,
)
from studio9.ids import new_id

log = structlog.get_logger()

TOKEN_PREFIX = "s9_"  # noqa: S105 - a visible marker that makes leaked tokens easy to scan for
FIRST_ADMIN = "admin"
_CACHE_MAX_ENTRIES = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(secret: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is a safe, fast way to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


@attrs.frozen(kw_only=True)
class AuthPolicy:
    token_ttl: timedelta = timedelta(days=30)
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=5)
    cache_seconds: float = 5.0


@attrs.define
class _PrincipalCache:
    """Verified tokens, trusted for ``ttl`` seconds without asking the store again.

    Revocations in this process evict at once; those made by another process apply
    within ``ttl``. Keyed by the token hash, never by the secret.
    """

    ttl: float
    _entries: dict[str, tuple[Principal, float]] = attrs.field(factory=dict)

    def get(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[1] > self.ttl:
            return None
        return entry[0]

    def put(self, key: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= _CACHE_MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (principal, time.monotonic())

    def evict_token(self, token_id: str) -> None:
        for key in [k for k, (p, _) in self._entries.items() if p.token_id == token_id]:
            del self._entries[key]

    def evict_user(self, user_id: str) -> None:
        for key in [k for k, (p, _) in self._entries.items() if p.user_id == user_id]:
            del self._entries[key]


@attrs.define
class AuthService:
    users: UserStore
    tokens: TokenStore
    policy: AuthPolicy = AuthPolicy()
    hasher: PasswordHasher = attrs.field(factory=Argon2PasswordHasher)
    clock: Callable[[], datetime] = utcnow
    #: What users own elsewhere (jobs, files, streams), settled before a user is deleted.
    owned: OwnedWork | None = None
    _cache: _PrincipalCache = attrs.field(init=False)
    _lookups: dict[str, asyncio.Future[Principal]] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._cache = _PrincipalCache(ttl=self.policy.cache_seconds)

    # -- logins and tokens -------------------------------------------------------------

    async def login(self, username: str, password: str) -> IssuedToken:
        """Trade a username and password for a new token.

        Unknown users, accounts without a password and wrong passwords all cost one
        argon2 verification and give the same answer. After ``max_failures`` wrong
        passwords in a row the user is locked for ``lockout``.

        Raises:
            Unauthenticated: the username or password is wrong.
            RateLimited: the user is locked after too many failures.
        """
        user = await self._find_user(username)
        matches = await self.hasher.verify(user.password_hash if user else None, password)
        now = self.clock()
        if user is not None and user.locked_until is not None and user.locked_until > now:
            log.warning("login_refused_locked", user_id=user.id)
            raise RateLimited(
                "too many failed logins; try again later",
                retry_after=max(1, int((user.locked_until - now).total_seconds())),
            )
        if user is None or not matches:
            if user is not None:
                await self._record_failure(user, now)
            log.info("login_failed", username_known=user is not None)
            raise Unauthenticated("invalid username or password")
        if user.failed_logins or user.locked_until:
            await self.users.set_login_state(user.id, failed_logins=0, locked_until=None)
        log.info("login_succeeded", user_id=user.id)
        return await self.issue_token(user)

    async def issue_token(self, user: User, *, name: str | None = None) -> IssuedToken:
        """A new random token for ``user``; its secret is in the result and nowhere else."""
        now = self.clock()
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(
            id=new_id(),
            user_id=user.id,
            token_hash=hash_token(secret),
            created_at=now,
            expires_at=now + self.policy.token_ttl,
            name=name,
        )
        await self.tokens.add(token)
        log.info("token_issued", user_id=user.id, token_id=token.id)
        return IssuedToken(id=token.id, secret=secret, expires_at=token.expires_at)

    async def authenticate(self, secret: str) -> Principal:
        """The principal a bearer token stands for. Raises Unauthenticated.

        Concurrent requests with the same token share one store lookup (single flight), so a
        cache expiry under load costs one query, not one per request in flight.
        """
        key = hash_token(secret)
        principal = self._cache.get(key)
        if principal is not None and self.clock() < principal.token_expires_at:
            return principal
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(key))
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(key, None))
        return await asyncio.shield(lookup)

    async def _lookup(self, key: str) -> Principal:
        found = await self.tokens.find(key)
        if found is None or not found[0].is_active(self.clock()):
            raise Unauthenticated("invalid, expired or revoked token")
        token, user = found
        principal = Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            token_id=token.id,
            token_expires_at=token.expires_at,
            email=user.email,
        )
        self._cache.put(key, principal)
        return principal

    async def list_tokens(self, actor: Principal) -> Sequence[ApiToken]:
        return await self.tokens.list_for_user(actor.user_id)

    async def revoke_token(self, actor: Principal, token_id: str) -> None:
        """Revoke one of the actor's tokens (admins: anyone's). Another user's token is a 404."""
        token = await self.tokens.get(token_id)
        if not actor.owns(token.user_id):
            raise TokenNotFound(token_id)
        await self.tokens.revoke(token_id, self.clock())
        self._cache.evict_token(token_id)
        log.info("token_revoked", token_id=token_id, by=actor.user_id)

    # -- users ---------------------------------------------------------------------------

    async def create_user(
        self,
        actor: Principal | None,
        username: str,
        *,
        role: Role = Role.USER,
        password: str | None = None,
        email: str | None = None,
    ) -> tuple[User, IssuedToken]:
        """Create a user and a first token for it. ``actor`` None means the local operator (CLI).
        Shares made earlier to ``email`` are theirs from the start (see ``studio9.access``).

        Raises PermissionDenied, InvalidInput, UsernameTaken, EmailTaken.
        """
        if actor is not None:
            require_admin(actor)
        check_username(username)
        email = normalise_email(email) if email is not None else None
        if password is not None:
            if role is Role.SERVICE:
                raise Conflict("service accounts authenticate with tokens only", field="password")
            check_password(password)
        encoded = await self.hasher.hash(password) if password is not None else None
        user = User(
            id=new_id(),
            username=username,
            role=role,
            created_at=self.clock(),
            password_hash=encoded,
            email=email,
        )
        await self.users.add(user)
        log.info("user_created", user_id=user.id, role=role.value, by=actor.user_id if actor else "cli")
        return user, await self.issue_token(user)

    async def get_user(self, actor: Principal, user_id: str) -> User:
        require_admin(actor)
        return await self.users.get(user_id)

    async def list_users(self, actor: Principal, *, limit: int, after: str | None) -> Sequence[User]:
        require_admin(actor)
        return await self.users.list(limit=limit, after=after)

    async def delete_user(self, actor: Principal, user_id: str, *, transfer_to: str | None = None) -> None:
        """Delete a user and their tokens, having settled what they own (``OwnedWork``): given
        to ``transfer_to``, or else their streams paused and unfinished jobs cancelled.

        Settling comes first and is idempotent: if it fails, the user stays and the same
        request can be retried. It runs again after the deletion for what slipped in
        meanwhile (a request or stream cycle already under way); a failure then is logged,
        since the user is gone and a retry would be a 404.

        Raises:
            PermissionDenied: the actor is not an admin.
            Conflict: the actor deletes themself.
            UserNotFound: no such user.
            InvalidInput: ``transfer_to`` is that user, or no user (field ``transfer_to``).
            BackendUnavailable: settling failed; nothing was deleted.
        """
        require_admin(actor)
        if user_id == actor.user_id:
            raise Conflict("you cannot delete your own account")
        await self.users.get(user_id)
        if transfer_to is not None:
            await self._transfer_target(user_id, transfer_to)
        if self.owned is not None:
            await self.owned.settle(user_id, transfer_to=transfer_to, by=actor.user_id)
        await self.users.delete(user_id)
        self._cache.evict_user(user_id)
        log.info("user_deleted", user_id=user_id, by=actor.user_id, transfer_to=transfer_to)
        if self.owned is not None:
            try:
                await self.owned.settle(user_id, transfer_to=transfer_to, by=actor.user_id)
            except Studio9Error as exc:
                log.warning("user_leftovers_not_settled", user_id=user_id, error=exc.message)

    async def local_principal(self, username: str = "local") -> Principal:
        """The principal of an in-process caller (embedding), as the service account ``username``.

        Creates the account on first use. No token exists for it: this is for code that
        runs inside the process, never for requests.
        """
        try:
            user = await self.users.get_by_username(username)
        except UserNotFound:
            try:
                user, _ = await self.create_user(None, username, role=Role.SERVICE)
            except UsernameTaken:
                user = await self.users.get_by_username(username)
        return Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            token_id="in-process",  # noqa: S106 - a label: in-process callers hold no token
            token_expires_at=datetime.max.replace(tzinfo=UTC),
        )

    async def ensure_first_admin(self) -> IssuedToken | None:
        """On an empty user table, create the ``admin`` user and return its first token.

        Safe when several processes start at once: the one whose insert loses the race
        to the unique username gets None.
        """
        if await self.users.count() > 0:
            return None
        try:
            _, token = await self.create_user(None, FIRST_ADMIN, role=Role.ADMIN)
        except UsernameTaken:
            return None
        return token

    # -- helpers -------------------------------------------------------------------------

    async def _transfer_target(self, user_id: str, transfer_to: str) -> None:
        if transfer_to == user_id:
            raise InvalidInput("transfer_to must name another user than the one deleted", field="transfer_to")
        try:
            await self.users.get(transfer_to)
        except UserNotFound:
            raise InvalidInput(f"no user {transfer_to!r} to transfer to", field="transfer_to") from None

    async def _find_user(self, username: str) -> User | None:
        try:
            return await self.users.get_by_username(username)
        except UserNotFound:
            return None

    async def _record_failure(self, user: User, now: datetime) -> None:
        failures = user.failed_logins + 1
        locked_until = now + self.policy.lockout if failures >= self.policy.max_failures else None
        await self.users.set_login_state(
            user.id, failed_logins=0 if locked_until else failures, locked_until=locked_until
        )
        if locked_until:
            log.warning("user_locked", user_id=user.id, until=locked_until.isoformat())


def require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise PermissionDenied("this needs the admin role")
