"""Identity: users, roles, password logins and API tokens."""

from studio9.auth.domain import ApiToken, IssuedToken, Principal, Role, User
from studio9.auth.service import AuthPolicy, AuthService

__all__ = ["ApiToken", "AuthPolicy", "AuthService", "IssuedToken", "Principal", "Role", "User"]
