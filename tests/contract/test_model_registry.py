"""ModelRegistryStore contract on every system-of-record adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from studio9.catalog.domain import Asset, AssetKind, AssetStatus, AssetVersion
from studio9.errors import InvalidInput
from studio9.ids import new_id
from studio9.ml.domain import (
    AliasInUse,
    AliasNotFound,
    ModelNotFound,
    ModelSource,
    ModelVersionInfo,
    ModelVersionNotFound,
)
from studio9.ml.ports import ModelRegistryStore

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
_ID_MILLIS = itertools.count(int(NOW.timestamp() * 1000))
_NAMES = itertools.count(1)


@pytest.fixture
def store(database: Any) -> ModelRegistryStore:
    registry: ModelRegistryStore = database.model_registry
    return registry


async def _model(database: Any) -> str:
    """A catalog asset of kind model (the registry's rows need it) with a first version."""
    asset = Asset(
        id=new_id(next(_ID_MILLIS)),
        kind=AssetKind.MODEL,
        owner_id="owner-a",
        name=f"churn {next(_NAMES)}",
        description="",
        tags=(),
        status=AssetStatus.ACTIVE,
        in_library=True,
        latest_version=1,
        created_at=NOW,
        updated_at=NOW,
    )
    first = AssetVersion(
        asset_id=asset.id, version=1, created_at=NOW, job_id="job-1", content={"format": "skops"}
    )
    await database.catalog.add(asset, first=first)
    return asset.id


def _info(asset_id: str, version: int, **changes: Any) -> ModelVersionInfo:
    values: dict[str, Any] = {
        "asset_id": asset_id,
        "version": version,
        "description": f"version {version}",
        "tags": {"team": "risk"},
        "run_id": f"run-{version}",
        "source": ModelSource.TRAINING,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return ModelVersionInfo(**values)


async def _with_versions(database: Any, store: ModelRegistryStore, count: int) -> str:
    asset_id = await _model(database)
    for version in range(1, count + 1):
        await store.put_version(_info(asset_id, version))
    return asset_id


async def test_put_get_and_list_versions(database: Any, store: ModelRegistryStore) -> None:
    asset_id = await _model(database)
    await store.put_version(_info(asset_id, 2, source=ModelSource.MLFLOW, run_id=None, tags={}))
    await store.put_version(_info(asset_id, 1, tags={"team": "risk", "stage": "é"}))
    got = await store.version(asset_id, 1)
    assert got == _info(asset_id, 1, tags={"team": "risk", "stage": "é"})
    second = await store.version(asset_id, 2)
    assert (second.source, second.run_id, dict(second.tags), second.deleted) == ("mlflow", None, {}, False)
    assert [v.version for v in await store.versions(asset_id)] == [1, 2]
    assert await store.versions("no-such-asset") == []
    with pytest.raises(ModelVersionNotFound):
        await store.version(asset_id, 3)


async def test_put_version_is_idempotent_and_keeps_the_first(
    database: Any, store: ModelRegistryStore
) -> None:
    asset_id = await _model(database)
    await store.put_version(_info(asset_id, 1, description="first"))
    await store.put_version(_info(asset_id, 1, description="second", tags={"x": "y"}))
    got = await store.version(asset_id, 1)
    assert (got.description, dict(got.tags)) == ("first", {"team": "risk"})
    assert len(await store.versions(asset_id)) == 1


async def test_put_version_of_an_unknown_asset_is_refused(store: ModelRegistryStore) -> None:
    with pytest.raises(ModelNotFound):
        await store.put_version(_info(new_id(), 1))


async def test_update_version_replaces_what_is_given(database: Any, store: ModelRegistryStore) -> None:
    asset_id = await _with_versions(database, store, 1)
    changed = await store.update_version(asset_id, 1, description="retrained on May", at=LATER)
    assert (changed.description, dict(changed.tags), changed.updated_at) == (
        "retrained on May",
        {"team": "risk"},
        LATER,
    )
    changed = await store.update_version(asset_id, 1, tags={"stage": "prod"}, at=LATER)
    assert (changed.description, dict(changed.tags)) == ("retrained on May", {"stage": "prod"})
    assert await store.version(asset_id, 1) == changed
    assert changed.created_at == NOW
    with pytest.raises(ModelVersionNotFound):
        await store.update_version(asset_id, 9, description="x", at=LATER)


async def test_set_alias_creates_moves_and_returns_the_previous_version(
    database: Any, store: ModelRegistryStore
) -> None:
    asset_id = await _with_versions(database, store, 3)
    first = await store.set_alias(asset_id, "champion", 1, at=NOW, by="u1")
    assert (first.asset_id, first.alias, first.version, first.previous) == (asset_id, "champion", 1, None)
    moved = await store.set_alias(asset_id, "champion", 3, at=LATER, by="u2")
    assert (moved.version, moved.previous) == (3, 1)
    await store.set_alias(asset_id, "challenger", 3, at=LATER, by="u2")
    await store.set_alias(asset_id, "baseline", 2, at=LATER, by="u2")
    assert await store.alias(asset_id, "champion") == 3
    assert dict(await store.aliases(asset_id)) == {"baseline": 2, "challenger": 3, "champion": 3}
    assert await store.version_aliases(asset_id, 3) == ("challenger", "champion")
    assert await store.version_aliases(asset_id, 1) == ()
    with pytest.raises(AliasNotFound):
        await store.alias(asset_id, "staging")


async def test_concurrent_moves_of_one_alias_form_one_chain(database: Any, store: ModelRegistryStore) -> None:
    asset_id = await _with_versions(database, store, 10)
    moves = await asyncio.gather(
        *(store.set_alias(asset_id, "champion", v, at=NOW, by="u1") for v in range(1, 11))
    )
    final = await store.alias(asset_id, "champion")
    assert dict(await store.aliases(asset_id)) == {"champion": final}
    # Each move saw what the one before it left: following ``previous`` back from the final
    # value visits every move once and ends at the one that created the alias.
    previous_of = {m.version: m.previous for m in moves}
    assert sorted(previous_of) == list(range(1, 11))
    chain: list[int] = []
    at: int | None = final
    while at is not None:
        chain.append(at)
        at = previous_of[at]
    assert sorted(chain) == list(range(1, 11))
    assert [m.previous for m in moves].count(None) == 1


async def test_alias_to_a_missing_or_deleted_version_is_refused(
    database: Any, store: ModelRegistryStore
) -> None:
    asset_id = await _with_versions(database, store, 2)
    with pytest.raises(ModelVersionNotFound):
        await store.set_alias(asset_id, "champion", 7, at=NOW, by="u1")
    await store.delete_version(asset_id, 2, at=LATER)
    with pytest.raises(ModelVersionNotFound):
        await store.set_alias(asset_id, "champion", 2, at=NOW, by="u1")
    with pytest.raises(InvalidInput):
        await store.set_alias(asset_id, "latest", 1, at=NOW, by="u1")
    assert dict(await store.aliases(asset_id)) == {}


async def test_delete_version_is_refused_while_aliased(database: Any, store: ModelRegistryStore) -> None:
    asset_id = await _with_versions(database, store, 3)
    await store.set_alias(asset_id, "champion", 3, at=NOW, by="u1")
    await store.set_alias(asset_id, "challenger", 3, at=NOW, by="u1")
    with pytest.raises(AliasInUse) as info:
        await store.delete_version(asset_id, 3, at=LATER)
    assert info.value.aliases == ("challenger", "champion")
    assert "challenger, champion" in info.value.message
    assert (await store.version(asset_id, 3)).deleted is False

    await store.delete_alias(asset_id, "champion")
    await store.set_alias(asset_id, "challenger", 1, at=NOW, by="u1")
    await store.delete_version(asset_id, 3, at=LATER)
    with pytest.raises(ModelVersionNotFound):
        await store.version(asset_id, 3)
    with pytest.raises(ModelVersionNotFound):
        await store.delete_version(asset_id, 3, at=LATER)
    assert [v.version for v in await store.versions(asset_id)] == [1, 2]
    kept = await store.versions(asset_id, include_deleted=True)
    assert [(v.version, v.deleted) for v in kept] == [(1, False), (2, False), (3, True)]
    assert kept[2].updated_at == LATER


async def test_delete_alias_of_an_unknown_alias_is_refused(database: Any, store: ModelRegistryStore) -> None:
    asset_id = await _with_versions(database, store, 1)
    with pytest.raises(AliasNotFound):
        await store.delete_alias(asset_id, "champion")


async def test_delete_version_and_set_alias_racing_end_consistent(
    database: Any, store: ModelRegistryStore
) -> None:
    """Whichever wins, a deleted version never keeps an alias."""
    for _ in range(5):
        asset_id = await _with_versions(database, store, 2)
        results = await asyncio.gather(
            store.set_alias(asset_id, "champion", 2, at=NOW, by="u1"),
            store.delete_version(asset_id, 2, at=LATER),
            return_exceptions=True,
        )
        moved, deleted = results
        if isinstance(moved, BaseException):
            assert isinstance(moved, ModelVersionNotFound), moved
            assert deleted is None
            assert dict(await store.aliases(asset_id)) == {}
            assert [v.version for v in await store.versions(asset_id)] == [1]
        else:
            assert isinstance(deleted, AliasInUse), deleted
            assert dict(await store.aliases(asset_id)) == {"champion": 2}
            assert (await store.version(asset_id, 2)).deleted is False


async def test_delete_model_is_refused_while_aliased(database: Any, store: ModelRegistryStore) -> None:
    asset_id = await _with_versions(database, store, 2)
    await store.set_alias(asset_id, "champion", 1, at=NOW, by="u1")
    await store.set_alias(asset_id, "challenger", 2, at=NOW, by="u1")
    with pytest.raises(AliasInUse) as info:
        await store.delete_model(asset_id)
    assert info.value.aliases == ("challenger", "champion")
    assert info.value.version is None
    assert len(await store.versions(asset_id)) == 2

    await store.delete_alias(asset_id, "champion")
    await store.delete_alias(asset_id, "challenger")
    await store.delete_model(asset_id)
    assert await store.versions(asset_id, include_deleted=True) == []


async def test_forget_model_removes_every_row(database: Any, store: ModelRegistryStore) -> None:
    asset_id = await _with_versions(database, store, 2)
    other = await _with_versions(database, store, 1)
    await store.set_alias(asset_id, "champion", 1, at=NOW, by="u1")
    await store.set_alias(other, "champion", 1, at=NOW, by="u1")
    await store.forget_model(asset_id)
    assert await store.versions(asset_id, include_deleted=True) == []
    assert dict(await store.aliases(asset_id)) == {}
    assert dict(await store.aliases(other)) == {"champion": 1}
    assert len(await store.versions(other)) == 1


async def test_aliases_of_several_models(database: Any, store: ModelRegistryStore) -> None:
    first = await _with_versions(database, store, 2)
    second = await _with_versions(database, store, 1)
    bare = await _with_versions(database, store, 1)
    await store.set_alias(first, "champion", 2, at=NOW, by="u1")
    await store.set_alias(first, "challenger", 1, at=NOW, by="u1")
    await store.set_alias(second, "champion", 1, at=NOW, by="u1")
    found = await store.aliases_of([first, second, bare])
    assert {k: dict(v) for k, v in found.items()} == {
        first: {"challenger": 1, "champion": 2},
        second: {"champion": 1},
        bare: {},
    }
    assert await store.aliases_of([]) == {}


async def test_deleting_the_catalog_asset_takes_its_registry_rows(
    database: Any, store: ModelRegistryStore
) -> None:
    asset_id = await _with_versions(database, store, 2)
    kept = await _with_versions(database, store, 1)
    await store.set_alias(asset_id, "champion", 2, at=NOW, by="u1")
    await database.catalog.delete(asset_id)
    assert await store.versions(asset_id, include_deleted=True) == []
    assert dict(await store.aliases(asset_id)) == {}
    assert len(await store.versions(kept)) == 1
