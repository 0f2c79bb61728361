"""SearchIndex on OpenSearch (or an Elasticsearch-compatible server) through AsyncOpenSearch.

URL:      opensearch://host:9200/?index=studio9-search
          opensearch+https://user:password@host:9200/?index=studio9-search&verify_certs=true
          options: ``index`` (the alias, default studio9-search), ``verify_certs`` (true),
          ``ca_certs`` (a CA bundle path), ``refresh`` (wait_for | true: how a write waits
          until searches see it); a URL path is a prefix for a reverse proxy. The URL's
          ``user:password`` is sent as basic auth; it is never logged nor put in an error.
Features: AND-of-words full text · exact field and term filters · owner and reader scoping ·
          four orders with keyset paging (search_after) · facets (terms aggregations) ·
          relevance equal to the other adapters' (occurrence counts, not BM25) · newer-wins
          bulk upserts · strict, versioned mapping behind an alias, upgraded by reindex and
          an atomic alias swap
Extra:    cloud (opensearch-py[async])

Documents live in ``<index>-v<N>``; reads and writes only ever name the alias ``<index>``
(bulk writes with ``require_alias``, so that a missing alias fails instead of creating a
dynamically mapped index). ``ensure_schema()``, run by ``studio9 migrate``, creates the
current version and moves documents out of an older one: writes to the old index are
blocked, ``_reindex`` copies it, one ``_aliases`` call swaps the alias and the old index is
deleted. Readers never see a gap; writers get BackendUnavailable meanwhile and retry.

Newer wins by optimistic concurrency, not external versions: a delete leaves a tombstone
(``index.gc_deletes``, 60 s) that keeps its version, so with ``version_type=external_gte``
a ``clear()`` followed by a full reindex would silently drop every document. Each batch
reads the stored ``updated_at`` with a real-time ``_mget`` and writes with
``if_seq_no``/``if_primary_term`` (``create`` for new ids); a document changed in between
is a version conflict and is decided again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn, Self

import attrs
import opensearchpy
import structlog
from opensearchpy import AsyncOpenSearch

from adapters.search_index.opensearch_mapping import (
    SCHEMA_VERSION,
    aliased_indices,
    check_alias,
    facets,
    hit,
    index_body,
    index_name,
    migrate_schema,
    search_body,
    source,
)
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.metadata.domain import SearchDocument, SearchPage, SearchQuery
from studio9.urls import AdapterURL, redact

log = structlog.get_logger()

DEFAULT_INDEX = "studio9-search"
DEFAULT_PORT = 9200
#: Reindexing and delete-by-query walk a whole index: they may take this long at least.
MAINTENANCE_TIMEOUT = 600.0
_SETTING = "STUDIO9_INDEX_URL"
_SCHEMES = {"opensearch": "http", "opensearch+https": "https"}
_OPTIONS = frozenset({"index", "verify_certs", "ca_certs", "refresh"})
_REFRESH = frozenset({"wait_for", "true"})
_BATCH = 500
_ATTEMPTS = 10  # each round settles at least one contended write


@attrs.frozen
class _Stored:
    seq_no: int
    primary_term: int
    updated_at: datetime


class OpenSearchSearchIndex:
    """Search documents in the index behind one alias; owns (and closes) its client."""

    def __init__(
        self,
        client: AsyncOpenSearch,
        *,
        alias: str = DEFAULT_INDEX,
        refresh: str = "wait_for",
        maintenance_timeout: float = MAINTENANCE_TIMEOUT,
    ) -> None:
        self.alias = check_alias(alias)
        self._client = client
        self._refresh = refresh
        self._maintenance_timeout = maintenance_timeout
        self._closed = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the index from ``opensearch[+https]://…``; raise ConfigError for a bad URL."""
        scheme = _SCHEMES.get(url.scheme)
        if scheme is None:
            raise ConfigError(f"{url} is not an opensearch:// or opensearch+https:// URL", setting=_SETTING)
        query = url.query
        unknown = sorted(set(query) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"unknown opensearch option(s) {unknown}; expected {sorted(_OPTIONS)}", setting=_SETTING
            )
        if url.password is not None and not url.username:
            raise ConfigError("opensearch://USER:PASSWORD@host needs a user name", setting=_SETTING)
        refresh = query.get("refresh", "wait_for")
        if refresh not in _REFRESH:
            raise ConfigError(
                f"opensearch option refresh must be one of {sorted(_REFRESH)}", setting=_SETTING
            )
        try:
            alias = check_alias(query.get("index", DEFAULT_INDEX))
        except ValueError as exc:
            raise ConfigError(str(exc), setting=_SETTING) from None
        host = {"host": url.host or "localhost", "port": url.port or DEFAULT_PORT, "scheme": scheme}
        if url.path.strip("/"):
            host["url_prefix"] = url.path.strip("/")
        client_options: dict[str, Any] = {
            "timeout": options.timeout,
            # Callers retry (the indexer's outbox): a retry here would only stretch the timeout.
            "max_retries": 0,
        }
        if url.username:
            client_options["http_auth"] = (url.username, url.password or "")
        if scheme == "https":
            verify = _bool(query, "verify_certs", default=True)
            client_options.update(verify_certs=verify, ca_certs=query.get("ca_certs"), ssl_show_warn=False)
            if not verify:
                log.warning("search_index_tls_unverified", url=str(url))
        try:
            client = AsyncOpenSearch(hosts=[host], **client_options)
        except opensearchpy.ImproperlyConfigured as exc:
            raise ConfigError(f"{url}: {redact(str(exc))}", setting=_SETTING) from None
        return cls(
            client,
            alias=alias,
            refresh=refresh,
            maintenance_timeout=max(options.timeout, MAINTENANCE_TIMEOUT),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alias={self.alias!r})"

    # -- SearchIndex ---------------------------------------------------------------------

    async def upsert(self, docs: Sequence[SearchDocument]) -> None:
        # Within a batch the rule applies in order: keep, per id, the later of equal times.
        latest: dict[str, SearchDocument] = {}
        for doc in docs:
            kept = latest.get(doc.id)
            if kept is None or doc.updated_at >= kept.updated_at:
                latest[doc.id] = doc
        unique = list(latest.values())
        for start in range(0, len(unique), _BATCH):
            await self._upsert_batch({doc.id: doc for doc in unique[start : start + _BATCH]})

    async def delete(self, ids: Sequence[str]) -> None:
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH):
            actions = [{"delete": {"_id": doc_id}} for doc_id in unique[start : start + _BATCH]]
            # An unknown id answers 404 "not_found" without an error: nothing to do.
            self._conflicts(await self._bulk(actions))

    async def search(self, query: SearchQuery) -> SearchPage:
        body = search_body(query, query.position())
        with _translated(self.alias):
            response = await self._client.search(index=self.alias, body=body)
        scored = query.ranked
        hits = [hit(raw, scored=scored) for raw in response["hits"]["hits"]]
        return SearchPage.of(query, hits, facets(query, response))

    async def clear(self, kind: str) -> None:
        with _translated(self.alias):
            response = await self._client.delete_by_query(
                index=self.alias,
                body={"query": {"term": {"kind": kind}}},
                refresh=True,
                conflicts="proceed",  # a document rewritten meanwhile stays: it came after the clear
                request_timeout=self._maintenance_timeout,
            )
        if response.get("failures") or response.get("timed_out"):
            raise BackendUnavailable(f"search index: clearing {kind!r} did not complete; retry")

    async def ping(self) -> None:
        with _translated(self.alias):
            await self._client.info()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()

    # -- schema --------------------------------------------------------------------------

    async def ensure_schema(self) -> None:
        """Bring the alias to ``SCHEMA_VERSION``, reindexing an older version (``studio9 migrate``)."""
        with _translated(self.alias):
            await migrate_schema(
                self._client,
                self.alias,
                version=SCHEMA_VERSION,
                body=index_body(),
                timeout=self._maintenance_timeout,
            )

    async def check_schema(self) -> None:
        """Raise ConfigError unless the alias points at the current schema version."""
        with _translated(self.alias):
            current = await aliased_indices(self._client, self.alias)
        expected = index_name(self.alias, SCHEMA_VERSION)
        if current != [expected]:
            found = ", ".join(current) or "nothing"
            raise ConfigError(
                f"search index {self.alias!r} points at {found}, not {expected}: run `studio9 migrate`",
                setting=_SETTING,
            )

    # -- internals -----------------------------------------------------------------------

    async def _upsert_batch(self, pending: dict[str, SearchDocument]) -> None:
        for _ in range(_ATTEMPTS):
            stored = await self._stored(list(pending))
            actions: list[dict[str, Any]] = []
            for doc_id, doc in pending.items():
                current = stored.get(doc_id)
                if current is None:
                    actions += [{"create": {"_id": doc_id}}, source(doc)]
                elif doc.updated_at >= current.updated_at:
                    guard = {"if_seq_no": current.seq_no, "if_primary_term": current.primary_term}
                    actions += [{"index": {"_id": doc_id, **guard}}, source(doc)]
            if not actions:
                return
            # A conflict means another writer got there between our read and write: decide again.
            pending = {doc_id: pending[doc_id] for doc_id in self._conflicts(await self._bulk(actions))}
            if not pending:
                return
        raise BackendUnavailable("search index: documents kept changing under concurrent writers; retry")

    async def _stored(self, ids: list[str]) -> dict[str, _Stored]:
        with _translated(self.alias):
            response = await self._client.mget(
                index=self.alias, body={"ids": ids}, _source_includes="updated_at", realtime=True
            )
        stored: dict[str, _Stored] = {}
        for doc in response["docs"]:
            if "error" in doc:
                _raise_item_error(self.alias, doc["error"], 500)
            if doc.get("found"):
                stored[doc["_id"]] = _Stored(
                    seq_no=doc["_seq_no"],
                    primary_term=doc["_primary_term"],
                    updated_at=datetime.fromisoformat(doc["_source"]["updated_at"]),
                )
        return stored

    async def _bulk(self, actions: list[dict[str, Any]]) -> Any:
        with _translated(self.alias):
            return await self._client.bulk(
                body=actions, index=self.alias, refresh=self._refresh, require_alias=True
            )

    def _conflicts(self, response: Mapping[str, Any]) -> list[str]:
        """The ids whose write met a version conflict; any other failure raises."""
        if not response.get("errors"):
            return []
        conflicts: list[str] = []
        for item in response["items"]:
            [result] = item.values()
            error = result.get("error")
            if error is None:
                continue
            if result.get("status") == 409:
                conflicts.append(result["_id"])
            else:
                _raise_item_error(self.alias, error, result.get("status", 500))
        return conflicts


# -- errors ------------------------------------------------------------------------------


@contextlib.contextmanager
def _translated(alias: str) -> Iterator[None]:
    """Translate the client's errors into BackendUnavailable, without credentials."""
    try:
        yield
    except opensearchpy.NotFoundError as exc:
        raise _missing(alias) from exc
    except opensearchpy.ConnectionTimeout as exc:
        raise BackendUnavailable("search index did not answer in time") from exc
    except opensearchpy.ConnectionError as exc:
        reason = redact(str(exc.error)).splitlines()[0] if exc.error else type(exc.info).__name__
        raise BackendUnavailable(f"search index unreachable: {reason}") from exc
    except opensearchpy.TransportError as exc:
        raise BackendUnavailable(
            f"search index refused the request: {exc.status_code} {_error_type(exc.info)}"
        ) from exc


def _raise_item_error(alias: str, error: Any, status: int) -> NoReturn:
    kind = _error_type({"error": error})
    if kind == "index_not_found_exception":
        raise _missing(alias)
    if kind == "cluster_block_exception":
        raise BackendUnavailable("search index is read-only for now (a schema migration?); retry")
    raise BackendUnavailable(f"search index refused a write: {status} {kind}")


def _missing(alias: str) -> BackendUnavailable:
    return BackendUnavailable(f"search index {alias!r} does not exist: run `studio9 migrate`")


def _error_type(info: Any) -> str:
    error = info.get("error") if isinstance(info, Mapping) else None
    if isinstance(error, Mapping):
        return str(error.get("type", "error"))
    return "error"


def _bool(query: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
        raise ConfigError(f"opensearch option {name} must be true or false", setting=_SETTING)
    return raw.lower() in {"true", "1", "yes"}
