from __future__ import annotations

import pytest

from studio9.errors import ConfigError
from studio9.urls import AdapterURL, redact


def test_parse_splits_every_part() -> None:
    url = AdapterURL.parse("postgresql+psycopg://app:p%40ss@db.local:5433/studio9?pool_size=5")
    assert url.scheme == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port) == ("app", "p@ss", "db.local", 5433)
    assert url.path == "/studio9"
    assert url.query == {"pool_size": "5"}


def test_str_and_repr_redact_the_password_but_secret_keeps_it() -> None:
    raw = "amqp://guest:s3cret@rabbit:5672/vhost"
    url = AdapterURL.parse(raw)
    assert "s3cret" not in str(url)
    assert "s3cret" not in repr(url)
    assert str(url) == "amqp://guest:***@rabbit:5672/vhost"
    assert url.netloc == "guest:***@rabbit:5672"
    assert url.secret() == raw


def test_redact_scrubs_passwords_inside_free_text() -> None:
    text = 'connection to "postgresql://u:topsecret@h:5432/d" failed; retry amqp://a:b@c/'
    cleaned = redact(text)
    assert "topsecret" not in cleaned
    assert "a:***@c" in cleaned
    assert redact("no url here") == "no url here"


def test_url_without_password_is_unchanged() -> None:
    assert str(AdapterURL.parse("sqlite+aiosqlite:///tmp/x.db")) == "sqlite+aiosqlite:///tmp/x.db"


@pytest.mark.parametrize("raw", ["not a url", "postgres://h:notaport/db"])
def test_malformed_url_raises_config_error_naming_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError, match="STUDIO9_DATABASE_URL"):
        AdapterURL.parse(raw, setting="STUDIO9_DATABASE_URL")
