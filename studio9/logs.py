"""Logging: one format for our own events and for stdlib loggers alike.

JSON lines off a terminal (containers, CI), a readable console on one. Our events go
straight from structlog to the stream (no stdlib round trip: it is on every request's
path); third-party stdlib loggers (litestar, uvicorn, sqlalchemy, dramatiq, alembic) are
formatted by the same renderer through ``ProcessorFormatter``. ``request_id`` (set per
request, see ``request_id_var``) and anything bound with structlog's contextvars appear
on every line. Every line passes ``_redact_secrets``: a credentialed URL never gets out.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from studio9.config.urls import redact

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


def _redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and "://" in value:
            event_dict[key] = redact(value)
    return event_dict


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
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    tail: list[Processor] = [structlog.processors.dict_tracebacks] if as_json else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            timestamper,
            _redact_secrets,
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
        _redact_secrets,
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
