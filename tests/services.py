"""Real servers the tests use, and the skip-locally / fail-in-CI rule for them.

A test that needs PostgreSQL or RabbitMQ asks for it through ``require``: when the
server does not answer, the test is skipped with the reason, unless
``STUDIO9_REQUIRE_SERVICES=1`` (CI), where it fails instead.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "STUDIO9_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RABBITMQ_URL = os.environ.get("STUDIO9_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def services_required() -> bool:
    return os.environ.get("STUDIO9_REQUIRE_SERVICES") == "1"


def answers(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=timeout):
            return True
    except OSError:
        return False


def require(name: str, url: str) -> str:
    """``url`` if its server answers; otherwise skip (locally) or fail (CI)."""
    if answers(url):
        return url
    reason = f"{name} is not answering at {urlsplit(url).hostname}:{urlsplit(url).port}"
    if services_required():
        pytest.fail(f"{reason} and STUDIO9_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)
