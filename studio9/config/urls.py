"""Backend URLs: parsing, and redaction so that a password never reaches a log line."""

from __future__ import annotations

import re
from typing import Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import attrs

from studio9.errors import ConfigError

# Matches the userinfo password in any scheme://user:password@host string, so that free
# text (error messages from drivers, for instance) can be scrubbed as well as our URLs.
_PASSWORD_IN_TEXT = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)")
REDACTED = "***"


def redact(text: str) -> str:
    """Replace every URL password inside ``text`` with ``***``."""
    return _PASSWORD_IN_TEXT.sub(lambda m: m.group("head") + REDACTED, text)


@attrs.frozen(repr=False)
class AdapterURL:
    """A parsed backend URL such as ``postgresql+psycopg://user:pw@host:5432/db?pool_size=5``.

    ``str()`` and ``repr()`` redact the password; ``secret()`` gives the full URL to the
    one place that needs it (the driver).
    """

    scheme: str
    username: str | None
    password: str | None = attrs.field(eq=False)
    host: str | None
    port: int | None
    path: str
    query: dict[str, str] = attrs.field(factory=dict, hash=False)
    _raw: str = attrs.field(default="", eq=False, alias="raw")

    @classmethod
    def parse(cls, raw: str, *, setting: str | None = None) -> Self:
        """Parse ``raw``; raise ConfigError naming ``setting`` when it is not a URL."""
        if "://" not in raw:
            raise ConfigError(f"{redact(raw)!r} is not a URL (expected scheme://...)", setting=setting)
        parts = urlsplit(raw)
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"{redact(raw)!r} has an invalid port", setting=setting) from None
        return cls(
            scheme=parts.scheme.lower(),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            host=parts.hostname,
            port=port,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query)),
            raw=raw,
        )

    def secret(self) -> str:
        """The URL with its password, for the driver only. Never log this."""
        return self._raw

    def with_scheme(self, scheme: str) -> str:
        """The full URL (password included) under another scheme, for drivers that want their own."""
        return scheme + self._raw[len(self.scheme) :]

    @property
    def netloc(self) -> str:
        """``user:***@host:port`` with the password redacted."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + REDACTED
            auth += "@"
        host = self.host or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return auth + host + (f":{self.port}" if self.port is not None else "")

    def __str__(self) -> str:
        return redact(self._raw)

    def __repr__(self) -> str:
        return f"AdapterURL({str(self)!r})"
