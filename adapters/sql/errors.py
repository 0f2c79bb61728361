"""How the SQL stores tell "the database did not answer" from an answer.

A dropped, refused or invalidated connection is ``BackendUnavailable`` (HTTP 503, worth a retry);
an integrity error is an answer (a duplicate, a lost race) that the store turns into its own error;
anything else is a bug and passes through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from studio9.errors import BackendUnavailable
from studio9.urls import redact


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Connection-level failures become BackendUnavailable; integrity errors pass through."""
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError):
            raise BackendUnavailable(f"database unreachable: {redact(str(exc.orig or exc))}") from exc
        raise
