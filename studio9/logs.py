"""Logging: one structlog chain for our own events and for stdlib loggers alike.

JSON lines off a terminal (containers, CI), a readable console on one. ``request_id``,
``job_id`` and similar are bound through contextvars and appear on every line logged
while they are bound. Third-party stdlib loggers (litestar, uvicorn, sqlalchemy,
dramatiq, alembic) are routed through the same processors, so a container emits one
format. Every line passes ``_redact_secrets`` so a credentialed URL never gets out.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

from studio9.config.urls import redact

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


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_colour_hints,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        _redact_secrets,
    ]


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
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=cache,
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        final.append(_exception_as_dict)
    final.append(renderer)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar", "dramatiq", "alembic"):
        # Let them propagate to our root handler instead of printing in their own format.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name, floor in _NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, numeric_level))


def _exception_as_dict(logger: Any, name: str, event_dict: EventDict) -> EventDict:
    return structlog.processors.dict_tracebacks(logger, name, event_dict)
