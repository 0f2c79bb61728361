"""Opening adapters: the scheme tables of every port, and the one way an adapter is imported,
opened, checked and closed (production and the contract suites alike).

The tables are each port folder's ``SCHEMES`` (``adapters/<port>/__init__.py``); adapter modules are
imported lazily, when a URL names them, so the edge install never imports a cloud SDK it does not have.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import anyio
import structlog

import adapters.blob_store as blob_store_adapters
import adapters.database as database_adapters
import adapters.event_publisher as event_publisher_adapters
import adapters.job_broker as job_broker_adapters
import adapters.prediction_sink as prediction_sink_adapters
import adapters.search_index as search_index_adapters
import adapters.stream_source as stream_source_adapters
from studio9.backends import AdapterOptions, Backend
from studio9.config.settings import Settings
from studio9.errors import BackendUnavailable, ConfigError
from studio9.messaging.streams.ports import StreamSource
from studio9.urls import AdapterURL

log = structlog.get_logger()

DATABASES: Final = database_adapters.SCHEMES


BROKERS: Final = job_broker_adapters.SCHEMES


INDEXES: Final = search_index_adapters.SCHEMES


BLOB_STORES: Final = blob_store_adapters.SCHEMES


SINKS: Final = prediction_sink_adapters.SCHEMES


EVENTS: Final = event_publisher_adapters.SCHEMES


STREAM_SOURCES: Final = stream_source_adapters.SCHEMES


# setting name -> (scheme table, field of Settings), in opening order.
BACKENDS: Final = {
    "database": (DATABASES, "database_url"),
    "broker": (BROKERS, "broker_url"),
    "index": (INDEXES, "index_url"),
    "blobs": (BLOB_STORES, "blob_url"),
    "sink": (SINKS, "sink_url"),
    "events": (EVENTS, "events_url"),
}


def adapter_class(table: Mapping[str, str], url: AdapterURL, *, setting: str) -> Any:
    """The adapter class for ``url``'s scheme, imported now.

    Raises:
        ConfigError: unknown scheme, or the adapter needs an extra that is not installed.
    """
    try:
        target = table[url.scheme]
    except KeyError:
        expected = ", ".join(f"{s}://" for s in sorted(table))
        raise ConfigError(
            f"unknown scheme {url.scheme!r} in {url}; expected one of {expected}", setting=setting
        ) from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{url.scheme}:// needs the optional dependency {exc.name!r}; install studio9[cloud]",
            setting=setting,
        ) from exc
    return getattr(module, class_name)


@contextlib.asynccontextmanager
async def open_adapter(
    table: Mapping[str, str], raw_url: str, *, setting: str, options: AdapterOptions, check: bool = True
) -> AsyncIterator[Any]:
    """Open, check and (on exit) close one adapter, exactly as production does."""
    url = AdapterURL.parse(raw_url, setting=setting)
    adapter = adapter_class(table, url, setting=setting).from_url(url, options)
    try:
        if check:
            await _check(adapter, url, setting=setting, timeout=options.timeout)
        yield adapter
    finally:
        await adapter.aclose()


async def _check(adapter: Backend, url: AdapterURL, *, setting: str, timeout: float) -> None:
    try:
        with anyio.fail_after(timeout):
            await adapter.ping()
    except TimeoutError:
        raise ConfigError(f"{url} did not answer within {timeout:g}s", setting=setting) from None
    except BackendUnavailable as exc:
        raise ConfigError(f"cannot reach {url}: {exc.message}", setting=setting) from None


def open_stream_source(raw_url: str, *, timeout: float) -> StreamSource:
    """The source adapter a stream's ``source`` URL names (no I/O yet). Raises ConfigError."""
    url = AdapterURL.parse(raw_url, setting="source")
    source: StreamSource = adapter_class(STREAM_SOURCES, url, setting="source").from_url(
        url, AdapterOptions(timeout=timeout)
    )
    return source


def scheme_of(settings: Settings, field: str) -> str:
    """The scheme of the URL in ``settings``' ``field`` (for logs: never the URL itself)."""
    return str(AdapterURL.parse(getattr(settings, field)).scheme)
