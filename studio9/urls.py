"""Backend URLs: parsing, and redaction so that a password never reaches a log line.

Shared by every context (as `errors` and `ids` are), so it lives beside them, not in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import attrs

from studio9.errors import ConfigError

# Matches the userinfo password in any scheme://user:password@host string, so that free
# text (error messages from drivers, for instance) can be scrubbed as well as our URLs.
_PASSWORD_IN_TEXT = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)")
# Credentials passed in a URL's query string (a presigned S3 URL's signature, an API key).
_SECRET_IN_QUERY = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|access_token|api_key|apikey|access_key"
    r"|secret_key|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)"
    r"(?P<secret>[^&#\s'\"]+)",
    re.IGNORECASE,
)
REDACTED = "***"


def redact(text: str) -> str:
    """Replace every URL password (and every credential in a URL's query) inside ``text`` with ``***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _PASSWORD_IN_TEXT.sub(lambda m: m.group("head") + REDACTED, text)
    return _SECRET_IN_QUERY.sub(lambda m: m.group("head") + REDACTED, text)


def redact_values(value: Any) -> Any:
    """``value`` (JSON-like) with ``redact`` applied to every string in it: for stored documents
    (settings, a stream's params) shown back to users, where a URL may carry credentials."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(item) for item in value]
    return value


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
