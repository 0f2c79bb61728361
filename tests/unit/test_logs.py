from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from studio9.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_context_and_never_a_url_password() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream, cache=False)
    with structlog.contextvars.bound_contextvars(request_id="r-1"):
        structlog.get_logger("studio9.test").info("backend_opened", url="postgresql://app:hunter2@db/x")
        logging.getLogger("sqlalchemy.pool").warning("lost postgresql://app:hunter2@db/x")
    lines = _lines(stream)
    assert [line["event"] for line in lines] == ["backend_opened", "lost postgresql://app:***@db/x"]
    assert all(line["request_id"] == "r-1" for line in lines)
    assert lines[0]["url"] == "postgresql://app:***@db/x"
    assert lines[1]["logger"] == "sqlalchemy.pool"
    assert "hunter2" not in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_level_filters_and_console_format_is_not_json() -> None:
    stream = io.StringIO()
    configure_logging("warning", "console", stream, cache=False)
    structlog.get_logger().info("hidden")
    structlog.get_logger().warning("shown", key="value")
    text = stream.getvalue()
    assert "hidden" not in text
    assert "shown" in text and "key" in text
    assert not text.lstrip().startswith("{")
