"""A small HTTP client of the Studio9 API, for the ``studio9 jobs`` and ``studio9 files`` commands.

Every failure becomes one line for a person: a ``ConfigError`` naming the setting to fix (no
token, an API URL that is not one, a token the server refuses) or an ``ApiError`` with the
server's problem detail (404 unknown job, 422 bad params) or why it cannot be reached.
Neither ever holds the token, nor a password inside the API URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from studio9.config.settings import Settings
from studio9.errors import ConfigError, Studio9Error
from studio9.urls import redact

CHUNK = 1024 * 1024
#: A problem detail or error body longer than this is cut: it is shown on one terminal line.
MAX_DETAIL = 300
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


class ApiError(Studio9Error):
    """The server answered with a problem, or could not be reached; ``message`` says which."""


def api_base(settings: Settings) -> str:
    """The server's origin: STUDIO9_API_URL, else this host's STUDIO9_HOST and STUDIO9_PORT.

    Raises:
        ConfigError: STUDIO9_API_URL is not an http(s) URL.
    """
    if settings.api_url:
        try:
            url = httpx.URL(settings.api_url)
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"expected http://host:port or https://host, got {redact(settings.api_url)!r}",
                setting="STUDIO9_API_URL",
            )
        return settings.api_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - a bind-all address
    return f"http://{host}:{settings.port}"


def api_token(settings: Settings) -> str:
    """STUDIO9_TOKEN, else the first admin's token file in the data directory.

    Raises:
        ConfigError: no token, or one that cannot be a token (never shown).
    """
    if settings.token:
        token, origin = settings.token.strip(), "STUDIO9_TOKEN"
    else:
        path = settings.data_dir / "admin-token"
        try:
            token, origin = path.read_text(encoding="utf-8").strip(), str(path)
        except OSError:
            raise ConfigError(
                f"no token: set STUDIO9_TOKEN (or run where {path} is readable)", setting="STUDIO9_TOKEN"
            ) from None
    # A header cannot carry it; httpx would fail deep in the request, naming neither.
    if not token or not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(
            f"the token in {origin} is not a Studio9 token (empty, or holds spaces or control characters)",
            setting="STUDIO9_TOKEN",
        )
    return token


class StudioClient:
    """The API at ``api_base(settings)``, authenticated with ``api_token(settings)``."""

    def __init__(self, settings: Settings) -> None:
        self._base = api_base(settings)
        self._http = httpx.Client(
            base_url=self._base,
            timeout=settings.backend_timeout * 6,
            headers={"Authorization": f"Bearer {api_token(settings)}"},
        )

    def __enter__(self) -> StudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request to ``/api/v1{path}``; its JSON answer, or None when it has no body.

        Raises:
            ApiError: the server is unreachable or answered 4xx/5xx (its problem detail).
            ConfigError: the server refused the token (401).
        """
        try:
            response = self._http.request(method, "/api/v1" + path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(f"the server at {redact(self._base)} did not answer in time") from None
        except httpx.TransportError as exc:
            reason = _ERRNO.sub("", str(exc)).strip() or type(exc).__name__
            raise ApiError(
                f"cannot reach the server at {redact(self._base)}: {_one_line(reason)} (STUDIO9_API_URL)"
            ) from None
        if response.status_code == 401:
            raise ConfigError(f"the server refused the token: {_detail(response)}", setting="STUDIO9_TOKEN")
        if response.status_code >= 400:
            raise ApiError(f"{response.status_code} {_detail(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            base = redact(self._base)
            raise ApiError(
                f"the server at {base} did not answer JSON (is STUDIO9_API_URL a Studio9 server?)"
            ) from None

    def upload(self, path: Path) -> Any:
        return self.request(
            "POST",
            "/files",
            params={"name": path.name},
            content=_chunks(path),
            headers={"Content-Type": "application/octet-stream"},
        )


def _detail(response: httpx.Response) -> str:
    """The problem's detail and the fields at fault, or the start of whatever else came back."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return _one_line(response.text) or response.reason_phrase
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    errors = problem.get("errors") or []
    fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    return _one_line(detail + (f" ({fields})" if fields else ""))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
