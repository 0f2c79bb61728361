"""Users, roles, API tokens and the principal a request acts as."""

from __future__ import annotations

import enum
import re
from datetime import datetime

import attrs

from studio9.errors import Conflict, InvalidInput, NotFound

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024  # argon2 is fine with long inputs; this bounds the work per request
MAX_EMAIL_LENGTH = 320  # RFC 5321's 64-octet local part, "@" and 255-octet domain


class Role(enum.StrEnum):
    """What a user may do. ``service`` accounts are for workers: tokens only, no password."""

    ADMIN = "admin"
    USER = "user"
    SERVICE = "service"


@attrs.frozen(kw_only=True)
class User:
    id: str
    username: str
    role: Role
    created_at: datetime
    #: argon2 encoded hash; None for accounts that cannot log in with a password.
    password_hash: str | None = attrs.field(default=None, repr=False)
    failed_logins: int = 0
    locked_until: datetime | None = None
    #: Normalised (``normalise_email``), unique; what a share to an email address reaches.
    email: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@attrs.frozen(kw_only=True)
class ApiToken:
    """A stored token. Only the SHA-256 of the secret is kept; the secret is shown once."""

    id: str
    user_id: str
    token_hash: str = attrs.field(repr=False)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    name: str | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@attrs.frozen(kw_only=True)
class IssuedToken:
    """A token as handed to its owner, the one time its secret is visible."""

    id: str
    secret: str = attrs.field(repr=False)
    expires_at: datetime


@attrs.frozen(kw_only=True)
class Principal:
    """Who a request acts as: the token's user, as of when the token was checked."""

    user_id: str
    username: str
    role: Role
    token_id: str
    token_expires_at: datetime
    #: The user's email (normalised), if they have one: shares to it are theirs.
    email: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def owns(self, owner_id: str) -> bool:
        """The access rule of what is never shared (jobs, streams, prediction rows, tokens) and
        the first step of the asset policy (``studio9.access.policy``): its owner, or an admin."""
        return self.is_admin or owner_id == self.user_id


class UserNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"user {ref!r} not found")


class UsernameTaken(Conflict):
    def __init__(self, username: str) -> None:
        super().__init__(f"username {username!r} is taken", field="username")


class EmailTaken(Conflict):
    def __init__(self) -> None:
        # The address is not repeated: whose it is, is not the caller's to learn.
        super().__init__("another user has this email address", field="email")


def normalise_email(text: str) -> str:
    """The one spelling of an email address that Studio9 stores and compares: trimmed and
    case-folded (a share to ``Ada@Example.org`` reaches the user created as ``ada@example.org``;
    strictly the local part may be case-sensitive, but no mail system in use treats it so).

    Raises InvalidInput (field ``email``) unless it is ``local@domain`` with text on both sides,
    no spaces, at most 320 characters.
    """
    email = text.strip().casefold()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or len(text.strip()) > MAX_EMAIL_LENGTH  # as given: case folding may lengthen it
        or any(c.isspace() for c in email)
        or "@" in local
    ):
        raise InvalidInput("not an email address (name@domain)", field="email")
    return email


class TokenNotFound(NotFound):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id!r} not found")


def check_username(username: str) -> str:
    """Return ``username`` if acceptable; raise InvalidInput naming the field otherwise."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            "username must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
            field="username",
        )
    return username


def check_password(password: str) -> str:
    """Return ``password`` if its length is acceptable; raise InvalidInput otherwise."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise InvalidInput(
            f"password must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters", field="password"
        )
    return password
