"""Logging: one format for our own events and for stdlib loggers alike.

JSON lines off a terminal (containers, CI), a readable console on one. Our events go
straight from structlog to the stream (no stdlib round trip: it is on every request's
path); third-party stdlib loggers (litestar, uvicorn, sqlalchemy, dramatiq, alembic) are
formatted by the same renderer through ``ProcessorFormatter``. ``request_id`` (set per
request, see ``request_id_var``) and anything bound with structlog's contextvars appear
on every line.

Every line passes ``redact_secrets`` last, after its exception is rendered, so no log
call, ours or a library's, can write a secret: values under secret-looking keys
(``authorization``, ``cookie``, ``password``, ``token``, ``body``…) at any depth, bearer
and ``s9_`` tokens and ``key=value`` secrets inside text, and URL passwords all become
``***``. Tracebacks never show frame locals: a request's scope holds its headers and body.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import Processor

from studio9.urls import REDACTED, redact

#: The current request's id; a plain ContextVar because setting it is on every request's path.
request_id_var: ContextVar[str | None] = ContextVar("studio9_request_id", default=None)

_NOISY_LOGGERS = {
    "uvicorn.access": logging.WARNING,
    "aiosqlite": logging.WARNING,
    "pika": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "botocore": logging.WARNING,
    "alembic.runtime.plugins": logging.WARNING,
}


# Keys whose values we make ourselves and which never hold a secret: not worth scanning.
_OWN_KEYS = frozenset({"timestamp", "level", "logger", "request_id"})
# A key is secret when its name contains one of these ...
_SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "authorization",
    "cookie",
    "credential",
    "api_key",
    "apikey",
    "private_key",
)
# ... or ends with one of these (``token`` but not ``token_id``; ``raw_body``, ``body``).
_SECRET_KEY_ENDS = ("token", "tokens", "body")
# Lower-case words without which no text holds a secret the pattern below finds; testing
# them with ``in`` is several times cheaper than running the pattern over every string.
_HINTS = ("bearer", "basic", "s9_", "pass", "secret", "token", "key", "auth", "cookie", "signature")
_SECRET_IN_TEXT = re.compile(
    # An Authorization value: ``Bearer <token>``, ``Basic <base64>``.
    r"((?:bearer|basic)\s+)[a-z0-9._~+/-]+=*"
    # Our own token format (``s9_`` + URL-safe base64), wherever it appears.
    r"|(\bs9_)[a-z0-9_-]{8,}"
    # ``password=…``, ``"token": "…"``, ``'api_key': '…'``: quoted values whole.
    r"|((?:password|passwd|secret|token|api[_-]?key|authorization|cookie|signature)['\"]?\s*[:=]\s*)"
    r"(?:b?'[^']*'|b?\"[^\"]*\"|[^\s'\",;&)}\]]+)",
    re.IGNORECASE,
)
# Tuples, not ``int | float``: isinstance against a union costs far more, on every value.
_NUMBERS = (int, float)
_COLLECTIONS = (list, tuple, set, frozenset)
# Deeper than this, a logged structure is not walked but replaced (a cycle would never end).
_MAX_DEPTH = 32


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Scrub every secret out of one log line, at any depth (the last processor before rendering)."""
    for key, value in event_dict.items():
        if key in _OWN_KEYS:
            continue
        if _is_secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:  # the common case first, without a call to _scrub
            event_dict[key] = _scrub_text(value)
        elif not (value is None or isinstance(value, _NUMBERS)):
            event_dict[key] = _scrub(value, 0)
    return event_dict


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: object) -> bool:
    # Cached: the same few keys come back on every line.
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")
    return any(part in name for part in _SECRET_KEY_PARTS) or name.endswith(_SECRET_KEY_ENDS)


def _scrub(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if value is None or isinstance(value, _NUMBERS):
        return value
    if depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, _COLLECTIONS):
        items = [_scrub(v, depth + 1) for v in value]
        return tuple(items) if type(value) is tuple else items
    # Anything else (bytes, exceptions, objects) is rendered as its repr anyway: scrub that.
    return _scrub_text(repr(value))


def _scrub_text(text: str) -> str:
    if text.isidentifier():  # event names, methods, ids: only a bare s9_ token could hide here
        return _SECRET_IN_TEXT.sub(_mask, text) if "s9_" in text else text
    if "://" in text:
        text = redact(text)
    lowered = text.lower()
    for hint in _HINTS:
        if hint in lowered:
            return _SECRET_IN_TEXT.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2) or match.group(3)) + REDACTED


def _drop_colour_hints(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event_dict


def _add_request_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *, cache: bool = True
) -> None:
    """Configure structlog and the stdlib root logger once per process.

    Args:
        level: least severe level written (debug, info, warning, error).
        fmt: ``json``, ``console`` or ``auto`` (console when ``stream`` is a TTY).
        stream: where lines go; standard error by default.
        cache: let loggers cache their configuration on first use (off in tests that
            reconfigure logging).
    """
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    # Exceptions are rendered before redaction so that their text is scrubbed too, and
    # without frame locals (show_locals defaults to True in structlog and rich: a request's
    # scope, headers and body sit in the locals of every frame of a failed request). The
    # console gets a plain traceback: rich's boxes wrap long lines, which could split a
    # token in two halves that no pattern recognises.
    exceptions: Processor = (
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        if as_json
        else structlog.processors.format_exc_info
    )
    tail: list[Processor] = [exceptions, redact_secrets]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            timestamper,
            *tail,
            renderer,
        ],
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=cache,
    )
    foreign: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_colour_hints,
        timestamper,
    ]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=foreign,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar", "dramatiq", "alembic"):
        # Let them propagate to our root handler instead of printing in their own format.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name, floor in _NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, numeric_level))
