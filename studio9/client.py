"""A small HTTP client of the Studio9 API, for the ``studio9 jobs`` and ``studio9 files`` commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from studio9.config.settings import Settings
from studio9.errors import ConfigError, Studio9Error

CHUNK = 1024 * 1024


class ApiError(Studio9Error):
    """The server answered with a problem; ``message`` is its detail."""


def api_base(settings: Settings) -> str:
    if settings.api_url:
        return settings.api_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - a bind-all address
    return f"http://{host}:{settings.port}"


def api_token(settings: Settings) -> str:
    if settings.token:
        return settings.token
    path = settings.data_dir / "admin-token"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        raise ConfigError(
            f"no token: set STUDIO9_TOKEN (or run where {path} is readable)", setting="STUDIO9_TOKEN"
        ) from None


class StudioClient:
    def __init__(self, settings: Settings) -> None:
        self._http = httpx.Client(
            base_url=api_base(settings),
            timeout=settings.backend_timeout * 6,
            headers={"Authorization": f"Bearer {api_token(settings)}"},
        )

    def __enter__(self) -> StudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, "/api/v1" + path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach {self._http.base_url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
                errors = response.json().get("errors") or []
            except ValueError:
                detail, errors = response.text, []
            fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
            raise ApiError(f"{response.status_code} {detail}" + (f" ({fields})" if fields else ""))
        return response.json() if response.content else None

    def upload(self, path: Path) -> Any:
        return self.request(
            "POST",
            "/files",
            params={"name": path.name},
            content=_chunks(path),
            headers={"Content-Type": "application/octet-stream"},
        )


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
