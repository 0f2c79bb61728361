"""Searches ordered by a metric, paged, on every store: the SQL stores read the metric's values in
index order when a scope is large (``adapters.tracking_store.sql_search.by_metric``) and must give
the pages the whole sort gives (``studio9.tracking.matching.sort_key``)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.tracking_store import sql as sql_store
from adapters.tracking_store import sql_search
from studio9.tracking.domain import LifecycleStage, Metric, Param
from studio9.tracking.matching import sort_key
from studio9.tracking.ports import TrackingStore
from studio9.tracking.search import parse_filter, parse_order_by
from tests.contract.test_tracking_store import NAN, T0, _experiment, _run


@pytest.fixture
def store(database: Any) -> TrackingStore:
    tracking: TrackingStore = database.tracking
    return tracking


@pytest.fixture
def read_in_order(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Small reads, so that a few hundred runs are a scope the SQL stores read in order; the list
    says, per search, whether they did (or sorted the scope)."""
    monkeypatch.setattr(sql_search, "MIN_VALUES", 1)
    monkeypatch.setattr(sql_search, "VALUES_PER_RUN", 2)
    engaged: list[bool] = []

    async def spied(*args: Any, **kwargs: Any) -> Any:
        rows = await sql_search.by_metric(*args, **kwargs)
        engaged.append(rows is not None)
        return rows

    monkeypatch.setattr(sql_store, "by_metric", spied)
    return engaged


async def _pages(
    store: TrackingStore, experiment: str, text: str, order: tuple[str, ...], size: int
) -> list[str]:
    seen: list[str] = []
    token = None
    while True:
        page, token = await store.search_runs(
            [experiment], parse_filter(text), parse_order_by(list(order)), max_results=size, page_token=token
        )
        seen += [r.run.id for r in page]
        if token is None:
            return seen


async def test_a_metric_order_read_in_order_keeps_ties_in_order(
    database: Any, store: TrackingStore, read_in_order: list[bool]
) -> None:
    # 5 runs above a tie of 35 at the bound of the values read: a page must order the tie by start
    # time (then id), not as the index holds it (by run id).
    experiment = await _experiment(database)
    for i in range(40):
        run = _run(experiment, start_time=T0 + i)
        await store.create_run(run)
        await store.log_batch(run.id, metrics=[Metric("m", 100.0 + i if i >= 35 else 50.0, T0, 0)])
    whole, _ = await store.search_runs([experiment], (), parse_order_by(["metrics.m DESC"]), max_results=100)
    expected = sorted(whole, key=lambda r: sort_key(r, parse_order_by(["metrics.m DESC"])))
    assert [r.run.id for r in whole] == [r.run.id for r in expected]
    assert await _pages(store, experiment, "", ("metrics.m DESC",), 10) == [r.run.id for r in whole]


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("metrics.m >= 3", ("metrics.m DESC",)),
        ("params.p != '0' and metrics.m < 40", ("metrics.m ASC", "params.p")),
    ],
)
async def test_paging_by_a_metric_read_in_order(
    database: Any, store: TrackingStore, read_in_order: list[bool], text: str, order: tuple[str, ...]
) -> None:
    experiment, elsewhere = await _experiment(database), await _experiment(database)
    for i in range(250):
        run = _run(experiment, name=f"r{i}", start_time=T0 + i // 3)
        await store.create_run(run)
        if i % 11:  # ties of four values, NaN, runs without the metric, deleted runs
            value = NAN if i % 23 == 0 else float(i // 4)
            await store.log_batch(
                run.id, metrics=[Metric("m", value, T0, 0)], params=[Param("p", str(i % 4))]
            )
        if i % 37 == 0:
            await store.set_lifecycle(run.id, LifecycleStage.DELETED)
        if i % 5 == 0:  # values of the key in another experiment
            other = _run(elsewhere, start_time=T0)
            await store.create_run(other)
            await store.log_batch(other.id, metrics=[Metric("m", float(i * 7 % 250 // 4), T0, 0)])
    order_by = parse_order_by(list(order))
    whole, _ = await store.search_runs([experiment], parse_filter(text), order_by, max_results=2000)
    expected = sorted(whole, key=lambda r: sort_key(r, order_by))
    assert [r.run.id for r in whole] == [r.run.id for r in expected]
    for size in (1, 7, 40):
        assert await _pages(store, experiment, text, order, size) == [r.run.id for r in whole], size
    if type(store).__name__ == "SqlTrackingStore":
        assert any(read_in_order)  # some pages were read in order
        assert not all(read_in_order)  # and others sorted whole
