"""How a run ends, as its owner sees it: an outcome with an error code and a message.

A handler's exception becomes a ``JobError`` here. The job shows a stable code and a message
(``invalid_input``: "row 12, column 'age': expected an integer"); the traceback, with the
server's file paths in it, goes to the server log only, under the job's id. Expected errors
(a ``Studio9Error`` such as bad input or a missing file) carry their own message and details;
anything else is ``handler_error`` with the exception's name and its message, absolute paths
shortened to their last part.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from studio9.errors import (
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Studio9Error,
)
from studio9.jobs.domain import JobError
from studio9.urls import redact

_MESSAGE_LIMIT = 2000

#: Codes of expected errors, most specific first (as ``studio9.api.problems`` maps them to statuses).
_CODES: tuple[tuple[type[Studio9Error], str], ...] = (
    (InvalidInput, "invalid_input"),
    (NotFound, "not_found"),
    (PermissionDenied, "permission_denied"),
    (Conflict, "conflict"),
    (BackendUnavailable, "backend_unavailable"),
)

# An absolute path in free text ('/srv/studio9/blobs/jobs/x/in.csv'), not a URL's path
# ('http://host/a/b') nor a relative one: two or more components after a leading slash.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"<>|:]+/)+([^\s/'\"<>|:]*)")


@attrs.frozen(kw_only=True)
class Outcome:
    """How a run ended, before it is recorded."""

    kind: str  # completed | failed | interrupted
    result: dict[str, Any] | None = None
    error: JobError | None = None
    retryable: bool = False


def failure(exc: BaseException, *, retryable: bool) -> Outcome:
    """The outcome of a handler that raised ``exc``: a code and a message, never a traceback."""
    return Outcome(kind="failed", retryable=retryable, error=error_of(exc))


def error_of(exc: BaseException) -> JobError:
    if isinstance(exc, Studio9Error):
        code = next((code for kind, code in _CODES if isinstance(exc, kind)), "handler_error")
        details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool)}
        return JobError(
            code=code,
            message=without_paths(exc.message)[:_MESSAGE_LIMIT] or type(exc).__name__,
            details={"exception": type(exc).__name__, **details},
        )
    text = without_paths(str(exc))
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return JobError(
        code="handler_error", message=message[:_MESSAGE_LIMIT], details={"exception": type(exc).__name__}
    )


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to ``…/<last part>`` (where the server keeps its
    files is nobody's business but the server log's), and credentials in URLs redacted."""
    return redact(_ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(1), text))


def interrupted(reason: str, timeout: float) -> Outcome:
    """The outcome of a run stopped by the runtime: a timeout fails it; anything else (a cancel,
    a lost lease, a release) is decided when it is recorded."""
    if reason == "timeout":
        return timed_out(timeout)
    return Outcome(kind="interrupted", error=JobError(code=reason, message=f"interrupted: {reason}"))


def timed_out(timeout: float) -> Outcome:
    return Outcome(kind="failed", error=JobError(code="timeout", message=f"ran over {timeout:g}s"))
