"""The OpenSearch shape of search documents: mappings, sources, queries, schema versions.

``adapters.search_index.opensearch`` sends what the pure functions here build; ``migrate_schema``
is the one coroutine, moving the alias from one schema version to the next.

Text is matched on ``terms``, a keyword array of the distinct ``words()`` of the
document, so that no OpenSearch analyzer takes part and every adapter agrees on what a
word is: a query word matches by a ``term`` filter, every word must match. Words longer
than a query can be (``MAX_TEXT_LENGTH``) can never match, so they are left out, which
also keeps every term under Lucene's 32 KiB limit.

Relevance is the score the other adapters compute: how often the query's words occur in
the document. ``counts`` is a ``rank_features`` field (word -> occurrences) and each query
word adds a ``rank_feature`` query with the ``linear`` function, whose score is the stored
value. Lucene keeps 9 significant bits of a feature, so a count is stored as base-512
digits (``word``, ``word~1``, ``word~2``; ``~`` is never part of a word), each digit times
its place being exact, and the linear scores add up to the count again (exactly while
the sum stays below 2**24, as Lucene scores are 32-bit floats). Corpus statistics (BM25)
never enter the score, so writes between two pages do not reorder the results that a
cursor points into.

Access and the library (schema v2): ``readers`` is a keyword array of the document's reader
keys, matched by a ``terms`` filter in the query itself (never a ``post_filter``), so that
the aggregations behind the facets only ever count readable documents. ``term_values``
holds the multi-valued terms as ``key=value`` keywords, as ``field_terms`` holds the fields;
a facet on either is a ``terms`` aggregation restricted to one key by ``include``.
``updated_at`` is a ``date_nanos`` (a ``date`` keeps milliseconds, and the ``updated`` order
is to the microsecond) and ``sort_name`` the ``name`` order's key. Documents reindexed from
v1 have no ``readers``, ``term_values`` nor ``sort_name``: they match no reader filter and
sort as an empty name, which is what v1's jobs are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import structlog
from opensearchpy import AsyncOpenSearch, NotFoundError, TransportError

from studio9.errors import BackendUnavailable, ConfigError
from studio9.metadata.domain import (
    FACET_SIZE,
    MAX_TEXT_LENGTH,
    SearchDocument,
    SearchHit,
    SearchPosition,
    SearchQuery,
    facet_source,
    name_key,
    words,
)

log = structlog.get_logger()

#: The mapping version this code writes; ``ensure_schema`` moves older indices to it.
SCHEMA_VERSION: Final = 2
#: Fields a hit carries; ``terms`` and ``counts`` only serve the query.
HIT_SOURCE: Final = ("id", "kind", "owner_id", "fields", "body", "updated_at")
_SETTING = "STUDIO9_INDEX_URL"
_FEATURE_BASE = 512
_FEATURE_DIGITS = 3
# A keyword term may be 32,766 bytes: 8,191 characters of up to 4 UTF-8 bytes each.
_MAX_KEYWORD = 8191
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,199}")

MAPPINGS: Final[Mapping[str, Any]] = {
    "dynamic": "strict",
    "_meta": {"studio9_schema": SCHEMA_VERSION},
    "properties": {
        "id": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "owner_id": {"type": "keyword"},
        # The filters as given back with hits, and as "key=value" terms to match exactly.
        "fields": {"type": "object", "enabled": False},
        "field_terms": {"type": "keyword", "ignore_above": _MAX_KEYWORD},
        "terms": {"type": "keyword", "doc_values": False},
        "counts": {"type": "rank_features"},
        "body": {"type": "object", "enabled": False},
        "updated_at": {"type": "date_nanos"},
        "readers": {"type": "keyword"},
        "term_values": {"type": "keyword", "ignore_above": _MAX_KEYWORD},
        "sort_name": {"type": "keyword"},
    },
}


def index_body(
    mappings: Mapping[str, Any] = MAPPINGS, settings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The body of the create-index request for one schema version."""
    return {"settings": dict(settings or {}), "mappings": dict(mappings)}


def check_alias(name: str) -> str:
    """``name`` if it can be an alias with versioned indices beside it, else ValueError."""
    if not _INDEX_NAME.fullmatch(name):
        raise ValueError(
            f"index name {name!r} must be 1-200 characters of a-z, 0-9, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return name


def index_name(alias: str, version: int) -> str:
    """The concrete index that holds schema ``version`` behind ``alias``."""
    return f"{alias}-v{version}"


def version_of(alias: str, index: str) -> int | None:
    """The schema version of ``index`` if it is one of ``alias``'s versioned indices."""
    match = re.fullmatch(re.escape(alias) + r"-v([1-9][0-9]{0,8})", index)
    return int(match.group(1)) if match else None


# -- documents ---------------------------------------------------------------------------


def source(doc: SearchDocument) -> dict[str, Any]:
    """The stored ``_source`` of ``doc``."""
    counts = Counter(word for word in words(doc.text) if len(word) <= MAX_TEXT_LENGTH)
    return {
        "id": doc.id,
        "kind": doc.kind,
        "owner_id": doc.owner_id,
        "fields": dict(doc.fields),
        "field_terms": [_field_term(key, value) for key, value in doc.fields.items()],
        "terms": list(counts),
        "counts": _features(counts),
        "body": dict(doc.body),
        "updated_at": doc.updated_at.isoformat(),
        "readers": sorted(doc.readers),
        "term_values": [_field_term(key, value) for key, value in doc.term_pairs()],
        "sort_name": name_key(doc.fields),
    }


def hit(raw: Mapping[str, Any], *, scored: bool) -> SearchHit:
    """A search hit from one element of ``hits.hits``; the score is the first sort value."""
    doc = raw["_source"]
    return SearchHit(
        id=doc["id"],
        kind=doc["kind"],
        owner_id=doc["owner_id"],
        fields=doc["fields"],
        body=doc["body"],
        updated_at=datetime.fromisoformat(doc["updated_at"]),
        score=float(raw["sort"][0]) if scored else None,
    )


def _field_term(key: str, value: str) -> str:
    # Keys are identifiers (no "="), so the first "=" always ends the key.
    return f"{key}={value}"


def _features(counts: Mapping[str, int]) -> dict[str, int]:
    features: dict[str, int] = {}
    for word, count in counts.items():
        for digit in range(_FEATURE_DIGITS):
            place = _FEATURE_BASE**digit
            top = digit == _FEATURE_DIGITS - 1
            value = count // place * place if top else count // place % _FEATURE_BASE * place
            if value:
                features[_feature_key(word, digit)] = value
    return features


def _feature_key(word: str, digit: int) -> str:
    return word if digit == 0 else f"{word}~{digit}"


# -- queries -----------------------------------------------------------------------------


def search_body(query: SearchQuery, position: SearchPosition | None) -> dict[str, Any]:
    """The search request for one page: ``limit + 1`` hits after ``position``, and the facets.

    Every filter, the reader filter included, is in the query, so the aggregations count
    exactly the documents the hits are drawn from; ``search_after`` leaves them alone.
    """
    query_words = query.words
    filters: list[dict[str, Any]] = [{"term": {"kind": query.kind}}]
    if query.owner_id is not None:
        filters.append({"term": {"owner_id": query.owner_id}})
    if query.readers is not None:
        filters.append({"terms": {"readers": sorted(query.readers)}})
    filters.extend({"term": {"field_terms": _field_term(k, v)}} for k, v in sorted(query.filters.items()))
    filters.extend({"term": {"term_values": _field_term(k, v)}} for k, v in sorted(query.any_terms.items()))
    filters.extend({"term": {"terms": word}} for word in query_words)
    boolean: dict[str, Any] = {"filter": filters}
    if query.not_owner_id is not None:
        boolean["must_not"] = [{"term": {"owner_id": query.not_owner_id}}]
    sort, after = _sort(query, position)
    if query.ranked:
        boolean["should"] = _score_clauses(query_words)
    body: dict[str, Any] = {
        "size": query.limit + 1,
        "query": {"bool": boolean},
        "sort": sort,
        "track_total_hits": False,
        "_source": list(HIT_SOURCE),
    }
    if after:
        body["search_after"] = after
    if query.facets:
        body["aggs"] = {f"f{i}": _facet_aggregation(name) for i, name in enumerate(query.facets)}
    return body


def facets(query: SearchQuery, response: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """The facet counts of ``query`` from the aggregations ``search_body`` asked for."""
    aggregations = response.get("aggregations", {})
    counted: dict[str, dict[str, int]] = {}
    for i, name in enumerate(query.facets):
        source, _ = facet_source(name)
        buckets = aggregations.get(f"f{i}", {}).get("buckets", [])
        keyed = source in ("fields", "terms")
        # "key=value" keywords: the value is what follows the first "=" (keys have none).
        counted[name] = {
            (str(b["key"]).partition("=")[2] if keyed else str(b["key"])): int(b["doc_count"])
            for b in buckets
        }
    return counted


def _sort(query: SearchQuery, position: SearchPosition | None) -> tuple[list[dict[str, Any]], list[Any]]:
    """The sort clauses of the query's order and the ``search_after`` values of ``position``."""
    order = query.sort
    if order == "relevance":
        sort: list[dict[str, Any]] = [{"_score": {"order": "desc"}}, {"id": {"order": "desc"}}]
        after: list[Any] = [] if position is None else [position.score or 0.0, position.id]
    elif order == "updated":
        sort = [{"updated_at": {"order": "desc"}}, {"id": {"order": "desc"}}]
        # date_nanos sort values are nanoseconds since the epoch.
        after = [] if position is None else [_int(position.key) * 1000, position.id]
    elif order == "name":
        sort = [{"sort_name": {"order": "asc", "missing": ""}}, {"id": {"order": "asc"}}]
        after = [] if position is None else [position.key, position.id]
    else:
        sort = [{"id": {"order": "desc"}}]
        after = [] if position is None else [position.id]
    return sort, after


def _int(value: int | str | None) -> int:
    assert isinstance(value, int)
    return value


def _facet_aggregation(name: str) -> dict[str, Any]:
    source, key = facet_source(name)
    terms: dict[str, Any] = {
        "size": FACET_SIZE,
        # Enough per shard for exact counts of every value a facet shows in practice.
        "shard_size": 10 * FACET_SIZE,
        "order": [{"_count": "desc"}, {"_key": "asc"}],
    }
    if source in ("kind", "owner_id"):
        terms["field"] = source
    else:
        # Keys are identifiers: nothing in them is a regular expression operator.
        terms["field"] = "field_terms" if source == "fields" else "term_values"
        terms["include"] = f"{key}=.*"
    return {"terms": terms}


def _score_clauses(query_words: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"rank_feature": {"field": "counts." + _feature_key(word, digit), "linear": {}}}
        for word in query_words
        for digit in range(_FEATURE_DIGITS)
    ]


# -- schema versions ---------------------------------------------------------------------


async def migrate_schema(
    client: AsyncOpenSearch, alias: str, *, version: int, body: Mapping[str, Any], timeout: float
) -> str:
    """Point ``alias`` at ``<alias>-v<version>`` (created from ``body``); return that index.

    An older version behind the alias is write-blocked, copied into the new index with
    ``_reindex``, swapped out of the alias in one atomic ``_aliases`` call, then deleted:
    readers see the old documents until the swap and the same ones after it. Safe to run
    again after a failure; a no-op when the alias is current. Client errors propagate.

    Raises:
        ConfigError: ``alias`` is a plain index, or points at an index that is not one of
            its versions or at a newer version (a newer Studio9 migrated it).
        BackendUnavailable: reindexing did not complete; the old index is then writable
            again and still behind the alias.
    """
    target = index_name(alias, version)
    current = await aliased_indices(client, alias)
    if not current and await client.indices.exists(index=alias):
        raise ConfigError(f"{alias!r} is an index, not an alias: remove it, then migrate", setting=_SETTING)
    for name in current:
        found = version_of(alias, name)
        if found is None or found > version:
            raise ConfigError(
                f"alias {alias!r} points at {name!r}, which schema v{version} cannot migrate",
                setting=_SETTING,
            )
    if current != [target]:
        if not await client.indices.exists(index=target):
            await client.indices.create(index=target, body=dict(body))
            log.info("search_index_created", index=target)
        old = [name for name in current if name != target]
        await _copy(client, old, target, timeout)
        moves = [{"remove": {"index": name, "alias": alias}} for name in old]
        await client.indices.update_aliases(
            body={"actions": [*moves, {"add": {"index": target, "alias": alias}}]}
        )
        log.info("search_index_alias_moved", alias=alias, index=target, previous=old)
    await _drop_older(client, alias, version)
    return target


async def aliased_indices(client: AsyncOpenSearch, alias: str) -> list[str]:
    """The indices behind ``alias``, sorted; empty when there is no such alias."""
    try:
        response = await client.indices.get_alias(name=alias)
    except NotFoundError:
        return []
    return sorted(response)


async def _copy(client: AsyncOpenSearch, old: list[str], target: str, timeout: float) -> None:
    if not old:
        return
    await client.indices.put_settings(index=",".join(old), body={"index": {"blocks": {"write": True}}})
    try:
        for name in old:
            response = await _reindex(client, name, target, timeout)
            failures = response.get("failures") or []
            if failures or response.get("timed_out"):
                first = failures[0].get("cause", {}).get("type") if failures else "timeout"
                raise BackendUnavailable(
                    f"reindexing {name} into {target} did not complete: {len(failures)} failures ({first})"
                )
            log.info("search_index_reindexed", source=name, index=target, documents=response.get("total"))
    except Exception:
        # Leave the old version as it was: behind the alias, and writable.
        await client.indices.put_settings(index=",".join(old), body={"index": {"blocks": {"write": False}}})
        raise


async def _reindex(client: AsyncOpenSearch, name: str, target: str, timeout: float) -> Mapping[str, Any]:
    body = {"source": {"index": name}, "dest": {"index": target}}
    try:
        response: Mapping[str, Any] = await client.reindex(
            body=body, refresh=True, wait_for_completion=True, request_timeout=timeout
        )
    except TransportError as exc:
        # Document failures come back with the status of the worst one, and the report as body.
        if isinstance(exc.info, Mapping) and "failures" in exc.info:
            return exc.info
        raise
    return response


async def _drop_older(client: AsyncOpenSearch, alias: str, version: int) -> None:
    # Older versions no longer behind the alias, left by an interrupted migration.
    indices = await client.indices.get_alias(index=f"{alias}-v*")
    for name, info in indices.items():
        found = version_of(alias, name)
        if found is not None and found < version and alias not in info.get("aliases", {}):
            await client.indices.delete(index=name)
            log.info("search_index_deleted", index=name)
