"""How a run ends, as its owner sees it: an outcome with an error code and a message; and the
values the runtime decides about a delivery and an outcome (verdicts).

A handler's exception becomes a ``JobError`` here. The job shows a stable code and a message
(``invalid_input``: "row 12, column 'age': expected an integer"); the traceback, with the
server's file paths in it, goes to the server log only, under the job's id. Expected errors
(a ``Studio9Error`` such as bad input or a missing file) carry their own message and details;
anything else is ``handler_error`` with the exception's name and its message, absolute paths
shortened to their last part.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import attrs

from studio9.errors import (
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Studio9Error,
)
from studio9.jobs.domain import Job, JobError, JobEvent, JobStatus, transition
from studio9.jobs.service import Decision, later, note
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


class OutcomeKind(enum.Enum):
    """How a run ended; the value names it in logs and events (``late_completed_ignored``)."""

    COMPLETED = "completed"
    FAILED = "failed"
    #: Stopped by the runtime (a cancel, a lost lease, a release): decided when it is recorded.
    INTERRUPTED = "interrupted"


@attrs.frozen(kw_only=True)
class Outcome:
    """How a run ended, before it is recorded."""

    kind: OutcomeKind
    result: dict[str, Any] | None = None
    error: JobError | None = None
    retryable: bool = False


def failure(exc: BaseException, *, retryable: bool) -> Outcome:
    """The outcome of a handler that raised ``exc``: a code and a message, never a traceback."""
    return Outcome(kind=OutcomeKind.FAILED, retryable=retryable, error=error_of(exc))


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
    return Outcome(
        kind=OutcomeKind.INTERRUPTED, error=JobError(code=reason, message=f"interrupted: {reason}")
    )


def timed_out(timeout: float) -> Outcome:
    return Outcome(kind=OutcomeKind.FAILED, error=JobError(code="timeout", message=f"ran over {timeout:g}s"))


# -- verdicts: decisions about a job that say more than its change ----------------------------


class Verdict(Protocol):
    @property
    def change(self) -> Decision:
        """The changed job and its events, or None for "leave it"."""


VerdictT = TypeVar("VerdictT", bound=Verdict)


@attrs.frozen
class ClaimVerdict:
    """A delivery decided on the job as read: the change, and whether it claims the job (else a
    duplicate, a cancelled job, a retry not due yet, or a job of an unknown type, failed)."""

    change: Decision = None
    claimed: bool = False


@attrs.frozen
class Settlement:
    """An outcome decided on the held job: the change, and for a retry its delay in seconds."""

    change: Decision
    retry_delay: float | None = None


@attrs.define
class LastVerdict(Generic[VerdictT]):
    """A decision that returns a verdict, as ``JobService.update`` takes it (the change only),
    keeping the last verdict: after a lost race the job is decided again, and only the last
    decision was stored."""

    decide: Callable[[Job], VerdictT]
    last: VerdictT | None = attrs.field(default=None, init=False)

    def __call__(self, job: Job) -> Decision:
        self.last = self.decide(job)
        return self.last.change


def holds(current: Job, worker: str, attempt: int) -> bool:
    """Whether ``worker`` still holds attempt ``attempt`` of the job (as stored: ``current``)."""
    return (
        current.status is JobStatus.RUNNING and current.lease_owner == worker and current.attempt == attempt
    )


def settle(
    current: Job,
    outcome: Outcome,
    *,
    holder: str,
    attempt: int,
    now: datetime,
    outputs: Sequence[str],
    used_temp: bool,
    backoff: Callable[[int], float],
) -> Settlement:
    """How ``outcome`` of attempt ``attempt``, run by worker ``holder``, is recorded on ``current``
    (the job as stored), given the ``outputs`` the run wrote, whether it ``used_temp`` blobs, and
    the retry ``backoff`` (seconds before the next attempt, by attempts so far)."""
    if not holds(current, holder, attempt):
        if current.is_terminal and current.attempt == attempt:
            return Settlement((current, [note(current, f"late_{outcome.kind.value}_ignored", holder, now)]))
        return Settlement(None)
    events: list[JobEvent] = []
    common: dict[str, Any] = {"outputs": tuple(outputs), "eta_seconds": None}
    if not used_temp:  # nothing to clean: say so now and save the cleaner a write
        common["cleaned_at"] = now
    retry_delay = None
    if current.cancel_requested:
        # The cancel was accepted (202) before this outcome was stored: it wins. A result,
        # an error or outputs of the run that was asked to stop are not the job's (the
        # cleaner deletes the outputs' blobs).
        if outputs:
            common.pop("cleaned_at", None)
        changed, event = transition(
            current,
            JobStatus.CANCELLED,
            at=now,
            reason="cancelled",
            actor=holder,
            **{**common, "outputs": ()},
        )
        if outcome.kind is not OutcomeKind.INTERRUPTED:
            ignored = f"{outcome.kind.value}_after_cancel_ignored"
            events.append(note(current, ignored, holder, now))
    elif outcome.kind is OutcomeKind.COMPLETED:
        changed, event = transition(
            current,
            JobStatus.COMPLETED,
            at=now,
            reason="completed",
            actor=holder,
            result=outcome.result,
            **common,
        )
    elif outcome.retryable and current.handler_attempts < current.max_attempts:
        retry_delay = backoff(current.handler_attempts)
        common.pop("cleaned_at", None)
        changed, event = transition(
            current,
            JobStatus.QUEUED,
            at=now,
            reason="retrying",
            actor=holder,
            error=outcome.error,
            not_before=later(now, retry_delay),
            dispatched_at=now,
            **common,
        )
    else:
        changed, event = transition(
            current,
            JobStatus.FAILED,
            at=now,
            reason=outcome.error.code if outcome.error else "failed",
            actor=holder,
            error=outcome.error,
            **common,
        )
    # A job that made no temporary resources is marked clean (``cleaned_at``) without a
    # ``resources_cleaned`` event: that event says the supervisor removed something.
    events.append(event)
    return Settlement((changed, events), retry_delay=retry_delay)
