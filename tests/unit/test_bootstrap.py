from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings
from studio9.errors import BackendUnavailable, ConfigError
from studio9.urls import AdapterURL


class RecordingBackend:
    """Records its opening and closing; the host ``down`` does not answer."""

    events: ClassVar[list[str]] = []

    def __init__(self, *, up: bool) -> None:
        self.up = up

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        cls.events.append(f"open {url.host}")
        return cls(up=url.host != "down")

    async def ping(self) -> None:
        if not self.up:
            raise BackendUnavailable("connection refused")

    async def aclose(self) -> None:
        self.events.append("close")


TABLE = {"rec": "tests.unit.test_bootstrap:RecordingBackend", "gone": "studio9_not_installed.driver:Driver"}


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        bootstrap.adapter_class(TABLE, AdapterURL.parse("nope://x"), setting="STUDIO9_X_URL")
    assert (
        str(info.value) == "STUDIO9_X_URL: unknown scheme 'nope' in nope://x; expected one of gone://, rec://"
    )


def test_missing_optional_dependency_names_the_module() -> None:
    with pytest.raises(ConfigError, match="needs the optional dependency 'studio9_not_installed'"):
        bootstrap.adapter_class(TABLE, AdapterURL.parse("gone://x"), setting="STUDIO9_X_URL")


async def test_open_adapter_checks_then_closes() -> None:
    RecordingBackend.events.clear()
    async with bootstrap.open_adapter(TABLE, "rec://one", setting="S", options=AdapterOptions()):
        assert RecordingBackend.events == ["open one"]
    assert RecordingBackend.events == ["open one", "close"]


async def test_unreachable_backend_becomes_a_config_error_and_is_closed() -> None:
    RecordingBackend.events.clear()
    with pytest.raises(ConfigError, match="S: cannot reach rec://u:\\*\\*\\*@down: connection refused"):
        async with bootstrap.open_adapter(TABLE, "rec://u:pw@down", setting="S", options=AdapterOptions()):
            pass
    assert RecordingBackend.events == ["open down", "close"]


async def test_build_opens_every_backend_and_wires_services(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="memory://",
        index_url="memory://",
        blob_url="memory://",
        sink_url="memory://",
    )
    async with bootstrap.build(settings) as container:
        assert set(container.backends) == {"database", "broker", "index", "blobs", "sink", "events"}
        assert container.broker is container.backends["broker"]
        assert await container.auth.ensure_first_admin() is not None


def test_admin_token_file_is_owner_only(tmp_path: Path) -> None:
    path = bootstrap.write_admin_token(tmp_path / "new", "s9_secret")
    assert path.read_text() == "s9_secret\n"
    assert path.stat().st_mode & 0o777 == 0o600
