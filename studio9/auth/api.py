"""HTTP routes of the auth context: logins, tokens, users."""

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from studio9.auth.domain import ApiToken, IssuedToken, Principal, Role, User
from studio9.auth.service import AuthService
from studio9.web.paging import keyset_page
from studio9.web.responses import problems

#: What ``normalise_email`` accepts, for the schema: ``name@domain.tld``, no spaces, one ``@``.
EMAIL_PATTERN = r"^\s*[^@\s]+@[^@\s]*[^@\s.][^@\s]*\.[^@\s]*[^@\s.][^@\s]*\s*$"


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    name: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class TokenOut(msgspec.Struct):
    id: str
    token: str
    expires_at: datetime

    @classmethod
    def from_domain(cls, issued: IssuedToken) -> "TokenOut":
        return cls(id=issued.id, token=issued.secret, expires_at=issued.expires_at)


class TokenInfoOut(msgspec.Struct):
    id: str
    name: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_domain(cls, token: ApiToken) -> "TokenInfoOut":
        return cls(
            id=token.id,
            name=token.name,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )


class TokenListOut(msgspec.Struct):
    items: list[TokenInfoOut]


class MeOut(msgspec.Struct):
    id: str
    username: str
    role: str
    token_id: str
    token_expires_at: datetime
    email: str | None = None


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    role: Role = Role.USER
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    #: Shares made to this address before the user existed are theirs from the start.
    email: Annotated[str, msgspec.Meta(max_length=320, pattern=EMAIL_PATTERN)] | None = None


class UserOut(msgspec.Struct):
    id: str
    username: str
    role: str
    created_at: datetime
    has_password: bool
    email: str | None = None

    @classmethod
    def from_domain(cls, user: User) -> "UserOut":
        return cls(
            id=user.id,
            username=user.username,
            role=user.role.value,
            created_at=user.created_at,
            has_password=user.password_hash is not None,
            email=user.email,
        )


class CreatedUserOut(msgspec.Struct):
    user: UserOut
    token: TokenOut


class UserListOut(msgspec.Struct):
    items: list[UserOut]
    next_cursor: str | None


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/tokens", operation_id="CreateToken", status_code=201, responses=problems(401, 429, 503))
    async def login(self, data: JSONBody[LoginIn], auth_service: NamedDependency[AuthService]) -> TokenOut:
        """Trade a username and password for a new API token (shown once)."""
        return TokenOut.from_domain(await auth_service.login(data.username, data.password))

    @get("/me", operation_id="GetMe")
    async def me(self, principal: NamedDependency[Principal]) -> MeOut:
        """Who the presented token belongs to."""
        return MeOut(
            id=principal.user_id,
            username=principal.username,
            role=principal.role.value,
            token_id=principal.token_id,
            token_expires_at=principal.token_expires_at,
            email=principal.email,
        )

    @get("/tokens", operation_id="ListTokens")
    async def list_tokens(
        self, principal: NamedDependency[Principal], auth_service: NamedDependency[AuthService]
    ) -> TokenListOut:
        """The caller's tokens, newest first, without their secrets."""
        return TokenListOut([TokenInfoOut.from_domain(t) for t in await auth_service.list_tokens(principal)])

    @delete("/tokens/{token_id:str}", operation_id="RevokeToken", status_code=204)
    async def revoke(
        self,
        token_id: FromPath[str],
        principal: NamedDependency[Principal],
        auth_service: NamedDependency[AuthService],
    ) -> None:
        """Revoke a token at once. Admins may revoke anyone's."""
        await auth_service.revoke_token(principal, token_id)


class UserController(Controller):
    path = "/users"
    tags = ["auth"]

    @post("/", operation_id="CreateUser", status_code=201, responses=problems(403, 409))
    async def create(
        self,
        data: JSONBody[UserIn],
        principal: NamedDependency[Principal],
        auth_service: NamedDependency[AuthService],
    ) -> CreatedUserOut:
        """Create a user (admin only) and a first token for it, shown once."""
        user, token = await auth_service.create_user(
            principal, data.username, role=data.role, password=data.password, email=data.email
        )
        return CreatedUserOut(user=UserOut.from_domain(user), token=TokenOut.from_domain(token))

    @get("/", operation_id="ListUsers", responses=problems(403))
    async def list_users(
        self,
        principal: NamedDependency[Principal],
        auth_service: NamedDependency[AuthService],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> UserListOut:
        """Users ordered by id (admin only); pass ``next_cursor`` back as ``cursor``."""
        page, next_cursor = await keyset_page(
            lambda size, after: auth_service.list_users(principal, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda user: user.id,
        )
        return UserListOut([UserOut.from_domain(u) for u in page], next_cursor=next_cursor)

    @get("/{user_id:str}", operation_id="GetUser", responses=problems(403))
    async def get_user(
        self,
        user_id: FromPath[str],
        principal: NamedDependency[Principal],
        auth_service: NamedDependency[AuthService],
    ) -> UserOut:
        """One user (admin only)."""
        return UserOut.from_domain(await auth_service.get_user(principal, user_id))

    @delete("/{user_id:str}", operation_id="DeleteUser", status_code=204, responses=problems(403, 409))
    async def delete_user(
        self,
        user_id: FromPath[str],
        principal: NamedDependency[Principal],
        auth_service: NamedDependency[AuthService],
        transfer_to: Annotated[
            str | None,
            QueryParameter(
                min_length=1,
                max_length=64,
                description="Id of the user who gets the deleted user's jobs, files and streams.",
            ),
        ] = None,
    ) -> None:
        """Delete a user and their tokens (admin only).

        With ``transfer_to``, their jobs, files and streams become that user's. Without it,
        their streams are paused and their queued and running jobs cancelled; their finished
        jobs, files, streams and predictions stay, readable by admins.
        """
        await auth_service.delete_user(principal, user_id, transfer_to=transfer_to)
