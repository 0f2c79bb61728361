"""The domain error tree: every error Studio9 raises on purpose.

Contexts subclass these and adapters translate vendor exceptions into them at the
boundary (``raise ... from exc``). The HTTP layer maps each base class to one RFC 9457
problem type in one place (``studio9.api.problems``); handlers never build error
responses themselves.

    Studio9Error
    ├── InvalidInput          422  the request is well-formed but its content is wrong
    │   └── MalformedRequest  400  the request cannot be parsed at all
    ├── Unauthenticated       401  no token, a bad one, an expired or revoked one
    ├── PermissionDenied      403  authenticated, but the role does not allow it
    ├── NotFound              404  absent, or owned by someone the caller cannot see
    ├── Conflict              409  the state of the resource forbids the change
    │   └── PreconditionFailed 412  an If-Match (ETag) no longer matches
    ├── PayloadTooLarge       413  a body or upload over its limit
    ├── RateLimited           429  too many attempts; ``retry_after`` seconds to wait
    ├── BackendUnavailable    503  a backend did not answer; safe to retry later
    └── ConfigError           --   start-up only: the process exits with code 2
"""

from __future__ import annotations

from typing import Any


class Studio9Error(Exception):
    """Base for every error Studio9 raises on purpose."""

    #: Extra, safe-to-show facts about the error (field names, limits); never secrets.
    details: dict[str, Any]

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(Studio9Error):
    """The input is understood but not acceptable (a field fails validation)."""


class MalformedRequest(InvalidInput):
    """The input cannot be parsed at all (malformed JSON, wrong content type)."""


class Unauthenticated(Studio9Error):
    """The caller did not prove who they are."""


class PermissionDenied(Studio9Error):
    """The caller is known but may not do this."""


class NotFound(Studio9Error):
    """The resource does not exist, or the caller may not know that it does."""


class Conflict(Studio9Error):
    """The resource's current state forbids the change."""


class PreconditionFailed(Conflict):
    """The caller's precondition (an ``If-Match`` ETag) does not hold any more."""


class PayloadTooLarge(Studio9Error):
    """A request body or upload exceeds its limit."""


class RateLimited(Studio9Error):
    """Too many attempts; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class BackendUnavailable(Studio9Error):
    """A backend (database, broker, index, blob store, sink) did not answer."""


class ConfigError(Studio9Error):
    """The settings cannot be used; raised at start-up, the process exits with code 2.

    ``setting`` names the environment variable at fault, so the one line printed on
    exit tells the operator what to change.
    """

    def __init__(self, message: str, *, setting: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.setting = setting

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}" if self.setting else self.message
