from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from studio9.logs import configure_logging, redact_secrets


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


TOKEN = "s9_" + "Zx3-kP9_qL2mN8vB4cR7tY1wE6uI0oA5sD2fG4hJ6k"  # the shape auth issues
PASSWORD = "correct-horse-battery-staple"


def _log_a_failure() -> None:
    """Logs an exception raised where a password, a body and a token are local variables."""
    password, body = PASSWORD, {"username": "ann", "password": PASSWORD}
    authorization = f"Bearer {TOKEN}"
    try:
        raise RuntimeError(f"refused {authorization} with {len(password)} {len(body)}")
    except RuntimeError:
        structlog.get_logger("studio9.test").exception("failed")
        logging.getLogger("litestar").exception("failed in a library")


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_show_no_locals_and_their_text_is_scrubbed(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("info", fmt, stream, cache=False)
    _log_a_failure()
    text = stream.getvalue()
    assert text.count("refused Bearer ***") == 2  # our logger's and the library's
    assert "_log_a_failure" in text  # the frames are there, their locals are not
    assert PASSWORD not in text and TOKEN not in text and TOKEN[3:15] not in text


def test_secret_values_are_scrubbed_at_any_depth_and_the_rest_kept() -> None:
    event = {
        "event": "request_seen",
        "headers": {"Authorization": f"Bearer {TOKEN}", "Cookie": "sid=abc123", "X-Api-Key": "k-1"},
        "params": {"user": {"password": PASSWORD, "token_id": "06H4TOKENID", "name": "ann"}},
        "items": [{"access_token": "at-1", "key": "item-key"}, ("set-cookie", f"s9={TOKEN}")],
        "raw_body": b'{"password": "x"}',
        "body": {"anything": 1},
        "client_secret": "cs-1",
        "blob_key": "files/ab/cd",
        "count": 3,
    }
    out = redact_secrets(None, "info", event)
    assert out["headers"] == {"Authorization": "***", "Cookie": "***", "X-Api-Key": "***"}
    assert out["params"] == {"user": {"password": "***", "token_id": "06H4TOKENID", "name": "ann"}}
    assert out["items"] == [{"access_token": "***", "key": "item-key"}, ("set-cookie", "s9=s9_***")]
    assert (out["raw_body"], out["body"], out["client_secret"]) == ("***", "***", "***")
    assert (out["event"], out["blob_key"], out["count"]) == ("request_seen", "files/ab/cd", 3)


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        (f"upstream refused Bearer {TOKEN}", "upstream refused Bearer ***"),
        (f"token {TOKEN} was revoked", "token s9_*** was revoked"),
        (
            "connect to postgresql://app:hunter2@db:5432/x failed",
            "connect to postgresql://app:***@db:5432/x failed",
        ),
        ("dsn: host=db password=hunter2 user=app", "dsn: host=db password=*** user=app"),
        ("{'password': 'two words', 'user': 'ann'}", "{'password': ***, 'user': 'ann'}"),
        ('{"token": "abc", "token_id": "t-1"}', '{"token": ***, "token_id": "t-1"}'),
        ("GET /files?X-Amz-Signature=f00d&a=1", "GET /files?X-Amz-Signature=***&a=1"),
        ("the token_id is t-1, a password was wrong", "the token_id is t-1, a password was wrong"),
    ],
)
def test_secrets_inside_text_are_scrubbed(text: str, scrubbed: str) -> None:
    assert redact_secrets(None, "info", {"event": text})["event"] == scrubbed


def test_an_exception_value_holding_a_token_is_scrubbed() -> None:
    out = redact_secrets(None, "error", {"event": "failed", "error": PermissionError(f"bad {TOKEN}")})
    assert out["error"] == "PermissionError('bad s9_***')"


def test_a_structure_that_contains_itself_does_not_hang() -> None:
    loop: dict[str, object] = {"name": "x"}
    loop["self"] = loop
    assert redact_secrets(None, "info", {"event": "e", "value": loop})["value"]["name"] == "x"
