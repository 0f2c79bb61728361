"""TrackingStore contract on every system-of-record adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from studio9.catalog.domain import Asset, AssetKind
from studio9.ids import new_id
from studio9.tracking.domain import (
    DATASET_CONTEXT_TAG,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    DatasetInput,
    ExperimentNotFound,
    InvalidTrackingInput,
    LifecycleStage,
    LoggedModel,
    LoggedModelAlreadyExists,
    LoggedModelNotFound,
    LoggedModelStatus,
    Metric,
    ModelOutput,
    Param,
    ParamChanged,
    Run,
    RunAlreadyExists,
    RunNotActive,
    RunNotFound,
    RunStatus,
    RunTag,
    TagNotFound,
    ViewType,
    new_logged_model_id,
    new_run_id,
)
from studio9.tracking.ports import TrackingStore
from studio9.tracking.search import parse_filter, parse_order_by

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
T0 = 1_777_000_000_000
INF = float("inf")
NAN = float("nan")
_ID_MILLIS = itertools.count(int(NOW.timestamp() * 1000))
_NAMES = itertools.count(1)


@pytest.fixture
def store(database: Any) -> TrackingStore:
    tracking: TrackingStore = database.tracking
    return tracking


async def _experiment(database: Any) -> str:
    """A catalog asset of kind experiment (the store's rows need it)."""
    asset = Asset(
        id=new_id(next(_ID_MILLIS)),
        kind=AssetKind.EXPERIMENT,
        owner_id="owner-a",
        name=f"experiment {next(_NAMES)}",
        latest_version=0,
        created_at=NOW,
        updated_at=NOW,
    )
    await database.catalog.add(asset, None)
    return asset.id


def _run(experiment_id: str, **changes: Any) -> Run:
    values: dict[str, Any] = {
        "id": new_run_id(),
        "experiment_id": experiment_id,
        "name": "run",
        "owner_id": "owner-a",
        "user_name": "ada",
        "start_time": T0,
        "artifact_uri": "mlflow-artifacts:/e/r/artifacts",
    }
    values.update(changes)
    return Run(**values)


async def _new_run(store: TrackingStore, experiment_id: str, **changes: Any) -> str:
    run = _run(experiment_id, **changes)
    await store.create_run(run)
    return run.id


# -- runs -------------------------------------------------------------------------------------------


async def test_create_and_get_a_run(database: Any, store: TrackingStore) -> None:
    experiment = await _experiment(database)
    parent = await _new_run(store, experiment)
    run = _run(experiment, name="child", parent_run_id=parent)
    created = await store.create_run(run, [RunTag("mlflow.user", "ada"), RunTag(RUN_NAME_TAG, "other")])
    assert created.run == run
    got = await store.get_run(run.id)
    assert got.run == run
    assert dict(got.data.tags) == {"mlflow.user": "ada", RUN_NAME_TAG: "child", PARENT_RUN_TAG: parent}
    assert (dict(got.data.params), dict(got.data.metrics), got.inputs, got.outputs) == ({}, {}, (), ())
    assert (got.run.status, got.run.lifecycle_stage, got.run.end_time) == (
        RunStatus.RUNNING,
        LifecycleStage.ACTIVE,
        None,
    )


async def test_create_run_refusals(database: Any, store: TrackingStore) -> None:
    experiment = await _experiment(database)
    run = _run(experiment)
    await store.create_run(run)
    with pytest.raises(RunAlreadyExists):
        await store.create_run(run)
    with pytest.raises(ExperimentNotFound):
        await store.create_run(_run(new_id()))
    with pytest.raises(InvalidTrackingInput):
        await store.create_run(_run(experiment, id="NOT-A-RUN-ID"))
    with pytest.raises(RunNotFound) as info:
        await store.get_run(new_run_id())
    assert info.value.code == "RESOURCE_DOES_NOT_EXIST"


async def test_update_run(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    changed = await store.update_run(run_id, status=RunStatus.FINISHED, end_time=T0 + 5)
    assert (changed.status, changed.end_time, changed.name) == (RunStatus.FINISHED, T0 + 5, "run")
    renamed = await store.update_run(run_id, name="better")
    assert (renamed.name, renamed.status) == ("better", RunStatus.FINISHED)
    got = await store.get_run(run_id)
    assert (got.run.name, got.data.tags[RUN_NAME_TAG], got.run.end_time) == ("better", "better", T0 + 5)
    with pytest.raises(RunNotFound):
        await store.update_run(new_run_id(), status=RunStatus.FAILED)


async def test_a_deleted_run_refuses_changes_until_restored(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.set_lifecycle(run_id, LifecycleStage.DELETED)
    assert (await store.get_run(run_id)).run.lifecycle_stage is LifecycleStage.DELETED
    with pytest.raises(RunNotActive) as info:
        await store.log_batch(run_id, params=[Param("p", "1")])
    assert info.value.message == f"The run {run_id} must be in the 'active' state. Current state is deleted."
    with pytest.raises(RunNotActive):
        await store.update_run(run_id, status=RunStatus.KILLED)
    assert (await store.get_run(run_id)).run.status is RunStatus.RUNNING
    await store.set_lifecycle(run_id, LifecycleStage.ACTIVE)
    await store.log_batch(run_id, params=[Param("p", "1")])
    assert dict((await store.get_run(run_id)).data.params) == {"p": "1"}
    with pytest.raises(RunNotFound):
        await store.set_lifecycle(new_run_id(), LifecycleStage.DELETED)


# -- params, tags -----------------------------------------------------------------------------------


async def test_params_are_immutable_and_tags_overwrite(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.log_batch(run_id, params=[Param("alpha", "0.5")], tags=[RunTag("team", "a")])
    await store.log_batch(run_id, params=[Param("alpha", "0.5")], tags=[RunTag("team", "b")])
    with pytest.raises(ParamChanged) as info:
        await store.log_batch(run_id, params=[Param("alpha", "0.7")])
    assert info.value.message == (
        f"Changing param values is not allowed. Param with key='alpha' was already logged with "
        f"value='0.5' for run ID='{run_id}'. Attempted logging new value '0.7'."
    )
    assert info.value.code == "INVALID_PARAMETER_VALUE"
    got = await store.get_run(run_id)
    assert (got.data.params["alpha"], got.data.tags["team"]) == ("0.5", "b")


async def test_a_batch_with_a_changed_param_records_nothing(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.log_batch(run_id, params=[Param("p", "1")])
    with pytest.raises(ParamChanged):
        await store.log_batch(
            run_id,
            metrics=[Metric("loss", 0.5, T0, 0)],
            params=[Param("new", "x"), Param("p", "2")],
            tags=[RunTag("t", "v"), RunTag(RUN_NAME_TAG, "renamed")],
        )
    got = await store.get_run(run_id)
    assert (dict(got.data.params), dict(got.data.metrics), got.run.name) == ({"p": "1"}, {}, "run")
    assert "t" not in got.data.tags
    assert await store.metric_history(run_id, "loss", max_results=10) == ((), None)


async def test_concurrent_batches_with_one_param_keep_one_value(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    results = await asyncio.gather(
        *(store.log_batch(run_id, params=[Param("seed", str(i))]) for i in range(4)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ParamChanged) for r in results if r is not None)
    winner = next(i for i, r in enumerate(results) if r is None)
    assert dict((await store.get_run(run_id)).data.params) == {"seed": str(winner)}


async def test_the_run_name_tag_renames_the_run(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.log_batch(run_id, tags=[RunTag(RUN_NAME_TAG, "renamed")])
    assert (await store.get_run(run_id)).run.name == "renamed"


async def test_batch_validation(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    with pytest.raises(InvalidTrackingInput, match="Duplicate parameter keys"):
        await store.log_batch(run_id, params=[Param("a", "1"), Param("a", "1")])
    with pytest.raises(InvalidTrackingInput, match=r"at most 100 params\. Got 101"):
        await store.log_batch(run_id, params=[Param(f"p{i}", "v") for i in range(101)])
    with pytest.raises(InvalidTrackingInput, match="at most 1000 metrics"):
        await store.log_batch(run_id, metrics=[Metric("m", 1.0, T0, i) for i in range(1001)])
    with pytest.raises(InvalidTrackingInput, match="Names may only contain"):
        await store.log_batch(run_id, params=[Param("bad*key", "1")])
    with pytest.raises(InvalidTrackingInput, match="must not resolve to other names"):
        await store.log_batch(run_id, tags=[RunTag("a/../b", "1")])
    with pytest.raises(InvalidTrackingInput, match="Timestamp"):
        await store.log_batch(run_id, metrics=[Metric("m", 1.0, -1, 0)])
    assert dict((await store.get_run(run_id)).data.params) == {}


async def test_long_values_are_truncated(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.log_batch(run_id, params=[Param("p", "x" * 8001)], tags=[RunTag("t", "é" * 9000)])
    got = await store.get_run(run_id)
    assert (got.data.params["p"], got.data.tags["t"]) == ("x" * 6000, "é" * 8000)


async def test_delete_tag(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.log_batch(run_id, tags=[RunTag("t", "v"), RunTag("u", "w")])
    await store.delete_tag(run_id, "t")
    assert "t" not in (await store.get_run(run_id)).data.tags
    with pytest.raises(TagNotFound):
        await store.delete_tag(run_id, "t")
    with pytest.raises(RunNotFound):
        await store.delete_tag(new_run_id(), "u")


# -- metrics ----------------------------------------------------------------------------------------


async def test_metric_history_order_and_paging(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    points = [
        Metric("loss", 0.3, T0 + 9, 2),
        Metric("loss", 0.9, T0 + 5, 0),
        Metric("loss", 0.5, T0 + 2, 1),
        Metric("loss", 0.4, T0 + 1, 1),
        Metric("loss", 0.8, T0 + 5, 0),
        Metric("acc", 0.1, T0, 0),
    ]
    await store.log_batch(run_id, metrics=points)
    expected = [(0, T0 + 5, 0.8), (0, T0 + 5, 0.9), (1, T0 + 1, 0.4), (1, T0 + 2, 0.5), (2, T0 + 9, 0.3)]
    history, token = await store.metric_history(run_id, "loss", max_results=100)
    assert [(m.step, m.timestamp, m.value) for m in history] == expected
    assert token is None
    paged: list[tuple[int, int, float]] = []
    token = None
    for _ in range(3):
        page, token = await store.metric_history(run_id, "loss", max_results=2, page_token=token)
        paged += [(m.step, m.timestamp, m.value) for m in page]
        if token is None:
            break
    assert paged == expected
    assert token is None
    assert await store.metric_history(run_id, "nope", max_results=10) == ((), None)
    with pytest.raises(RunNotFound):
        await store.metric_history(new_run_id(), "loss", max_results=10)
    with pytest.raises(InvalidTrackingInput):
        await store.metric_history(run_id, "loss", max_results=0)


async def test_nan_and_infinities_round_trip(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.log_batch(
        run_id,
        metrics=[
            *(Metric("v", NAN, T0, 0), Metric("v", INF, T0, 1), Metric("v", -INF, T0, 2)),
            *(Metric("w", -INF, T0, 0), Metric("x", NAN, T0, 0), Metric("y", INF, T0, 0)),
        ],
    )
    history, _ = await store.metric_history(run_id, "v", max_results=10)
    values = [m.value for m in history]
    assert math.isnan(values[0])
    assert values[1:] == [INF, -INF]
    latest = (await store.get_run(run_id)).data.metrics
    assert (latest["v"].value, latest["w"].value, latest["y"].value) == (-INF, -INF, INF)
    assert math.isnan(latest["x"].value)


async def test_identical_points_are_recorded_once(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    point = Metric("loss", 0.5, T0, 3)
    await store.log_batch(
        run_id, metrics=[point, point, Metric("loss", NAN, T0, 3), Metric("loss", NAN, T0, 3)]
    )
    await store.log_batch(run_id, metrics=[point])
    model_id = new_logged_model_id()
    await store.log_batch(run_id, metrics=[Metric("loss", 0.5, T0, 3, model_id)])
    history, _ = await store.metric_history(run_id, "loss", max_results=10)
    assert len(history) == 2
    assert (history[0].value, history[0].model_id) == (0.5, model_id)
    assert math.isnan(history[1].value)


async def test_the_latest_metric_is_the_largest_step_timestamp_value(
    database: Any, store: TrackingStore
) -> None:
    run_id = await _new_run(store, await _experiment(database))
    await store.log_batch(run_id, metrics=[Metric("a", 1.0, T0 + 9, 0), Metric("a", 2.0, T0, 2)])
    await store.log_batch(run_id, metrics=[Metric("a", 3.0, T0 + 50, 1)])  # older step: not latest
    await store.log_batch(run_id, metrics=[Metric("b", 5.0, T0, 0), Metric("b", 4.0, T0 + 1, 0)])
    await store.log_batch(run_id, metrics=[Metric("c", 7.0, T0, 0), Metric("c", 6.0, T0, 0)])
    await store.log_batch(run_id, metrics=[Metric("d", 1.0, T0, 0)])
    await store.log_batch(run_id, metrics=[Metric("d", NAN, T0, 0)])  # NaN below every number
    latest = (await store.get_run(run_id)).data.metrics
    assert latest["a"] == Metric("a", 2.0, T0, 2)
    assert latest["b"] == Metric("b", 4.0, T0 + 1, 0)
    assert latest["c"] == Metric("c", 7.0, T0, 0)
    assert latest["d"] == Metric("d", 1.0, T0, 0)


# -- inputs, outputs --------------------------------------------------------------------------------


async def test_inputs_and_outputs(database: Any, store: TrackingStore) -> None:
    run_id = await _new_run(store, await _experiment(database))
    train = DatasetInput(
        name="train",
        digest="abc",
        source_type="local",
        source='{"uri": "x"}',
        schema='{"a": "int"}',
        tags={DATASET_CONTEXT_TAG: "training"},
    )
    evaluation = DatasetInput(name="eval", digest="def", profile='{"rows": 3}')
    await store.log_inputs(run_id, [train, evaluation])
    await store.log_inputs(run_id, [DatasetInput(name="train", digest="abc", source="changed")])
    first, second = new_logged_model_id(), new_logged_model_id()
    await store.log_outputs(run_id, [ModelOutput(first, 2), ModelOutput(second, 0)])
    await store.log_outputs(run_id, [ModelOutput(first, 2)])
    got = await store.get_run(run_id)
    assert got.inputs == (evaluation, train)
    assert got.inputs[1].context == "training"
    assert got.outputs == (ModelOutput(second, 0), ModelOutput(first, 2))


# -- search -----------------------------------------------------------------------------------------


async def _searched(database: Any, store: TrackingStore) -> tuple[str, dict[str, str]]:
    """An experiment of five active runs, a deleted one, and a run elsewhere; name -> run id."""
    experiment, other = await _experiment(database), await _experiment(database)
    ids: dict[str, str] = {}

    async def add(name: str, start: int, **changes: Any) -> str:
        uri = f"mlflow-artifacts:/{experiment}/{name}/artifacts"
        run = _run(experiment, name=name, start_time=T0 + start, artifact_uri=uri, **changes)
        await store.create_run(run)
        ids[name] = run.id
        return run.id

    alpha = await add("alpha-One", 1, status=RunStatus.FINISHED, end_time=T0 + 10)
    await store.log_batch(
        alpha,
        metrics=[Metric("loss", 0.5, T0, 0), Metric("acc", 0.9, T0, 0)],
        params=[Param("model", "tree"), Param("lr", "0.1")],
        tags=[RunTag("team", "Risk")],
    )
    training = DatasetInput(name="train", digest="d1", tags={DATASET_CONTEXT_TAG: "training"})
    await store.log_inputs(alpha, [training])
    beta = await add("beta", 2, user_name="bob")
    await store.log_batch(
        beta,
        metrics=[Metric("loss", NAN, T0, 0), Metric("acc", 0.8, T0, 0)],
        params=[Param("model", "Tree")],
        tags=[RunTag("team", "risk"), RunTag("extra", "x")],
    )
    gamma = await add("gamma", 3, status=RunStatus.FAILED, end_time=T0 + 4)
    await store.log_batch(
        gamma, metrics=[Metric("loss", INF, T0, 0)], params=[Param("model", "forest"), Param("lr", "0.01")]
    )
    evaluation = DatasetInput(name="eval", digest="d2", tags={DATASET_CONTEXT_TAG: "eval"})
    await store.log_inputs(gamma, [evaluation, DatasetInput(name="extra", digest="d3")])
    delta = await add("delta_1", 3, status=RunStatus.FINISHED, end_time=T0 + 20, user_name="cy")
    await store.log_batch(
        delta,
        metrics=[Metric("loss", 5.0, T0, 0), Metric("loss", -1.0, T0, 1)],
        params=[Param("glob", "a*b?[c]"), Param("path", "x\\y")],
    )
    await add("epsilon", 0)
    deleted = await add("deleted", 5)
    await store.log_batch(deleted, params=[Param("model", "tree")], metrics=[Metric("loss", 0.5, T0, 0)])
    await store.set_lifecycle(deleted, LifecycleStage.DELETED)
    elsewhere = _run(other, name="elsewhere")
    await store.create_run(elsewhere)
    await store.log_batch(elsewhere.id, params=[Param("model", "tree")], metrics=[Metric("loss", 0.5, T0, 0)])
    return experiment, ids


async def _names(
    store: TrackingStore, experiment: str, text: str = "", order: tuple[str, ...] = (), **options: Any
) -> list[str]:
    found, token = await store.search_runs(
        [experiment], parse_filter(text), parse_order_by(list(order)), max_results=100, **options
    )
    assert token is None
    return [r.run.name for r in found]


FILTERS = [
    ("metrics.loss < 1", {"alpha-One", "delta_1"}),
    ("metrics.loss >= 0.5", {"alpha-One", "gamma"}),
    ("metrics.loss != 0.5", {"beta", "gamma", "delta_1"}),
    ("metric.loss = 0.5", {"alpha-One"}),
    ("metrics.acc > 0.85", {"alpha-One"}),
    ("metrics.loss > 1e308", {"gamma"}),
    ("params.model = 'tree'", {"alpha-One"}),
    ("params.model != 'tree'", {"beta", "gamma"}),
    ("params.model LIKE 'T%'", {"beta"}),
    ("params.model LIKE 'tr_e'", {"alpha-One"}),
    ("param.model ILIKE 't%'", {"alpha-One", "beta"}),
    ("parameters.lr IS NULL", {"beta", "delta_1", "epsilon"}),
    ("params.lr is not null", {"alpha-One", "gamma"}),
    ("params.glob LIKE 'a*b?[c]'", {"delta_1"}),
    ("params.glob LIKE 'a*b_[c]'", {"delta_1"}),
    ("params.glob LIKE 'a%[d]'", set()),
    ("params.path LIKE 'x\\\\%'", {"delta_1"}),
    ("tags.team = 'risk'", {"beta"}),
    ("tags.team ILIKE 'RISK'", {"alpha-One", "beta"}),
    ("tags.`extra` IS NOT NULL", {"beta"}),
    ("tags.\"team\" != 'Risk'", {"beta"}),
    ("attributes.status = 'FINISHED'", {"alpha-One", "delta_1"}),
    ("status != 'FINISHED'", {"beta", "gamma", "epsilon"}),
    ("run_name LIKE '%-%'", {"alpha-One"}),
    ("run_name LIKE 'Alpha%'", set()),
    ("`Run name` ILIKE 'ALPHA%'", {"alpha-One"}),
    ("attr.user_id = 'ada'", {"alpha-One", "gamma", "epsilon"}),
    (f"attributes.start_time > {T0 + 2}", {"gamma", "delta_1"}),
    (f"created <= {T0 + 1}", {"alpha-One", "epsilon"}),
    (f"end_time < {T0 + 5}", {"gamma"}),
    (f"end_time != {T0 + 4}", {"alpha-One", "delta_1"}),
    ("artifact_uri LIKE '%/gamma/%'", {"gamma"}),
    ("dataset.name = 'train'", {"alpha-One"}),
    ("datasets.context = 'eval'", {"gamma"}),
    ("dataset.context != 'training'", {"gamma"}),
    ("dataset.digest IN ('d1', 'd3')", {"alpha-One", "gamma"}),
    ("dataset.name NOT IN ('train')", {"gamma"}),
    ("metrics.loss < 1 and params.lr IS NULL", {"delta_1"}),
]


async def test_search_filters(database: Any, store: TrackingStore) -> None:
    # Every filter of FILTERS over one searched world (a database per filter cost ~40 s of the suite).
    experiment, _ = await _searched(database, store)
    for text, expected in FILTERS:
        assert set(await _names(store, experiment, text)) == expected, text


async def test_search_by_run_ids(database: Any, store: TrackingStore) -> None:
    experiment, ids = await _searched(database, store)
    listed = f"run_id IN ('{ids['alpha-One']}', '{ids['beta']}', '{ids['deleted']}')"
    assert set(await _names(store, experiment, listed)) == {"alpha-One", "beta"}
    excluded = f"attributes.run_id NOT IN ('{ids['alpha-One']}')"
    assert set(await _names(store, experiment, excluded)) == {"beta", "gamma", "delta_1", "epsilon"}
    assert await _names(store, experiment, f"run_id = '{ids['gamma']}'") == ["gamma"]


#: gamma and delta_1 start at the same time: where nothing else orders them, the run id does.
TIED = "gamma|delta_1"
ORDERS = [
    ((), [TIED, "beta", "alpha-One", "epsilon"]),
    (("metrics.loss ASC",), ["delta_1", "alpha-One", "gamma", "beta", "epsilon"]),
    (("metrics.loss DESC",), ["gamma", "alpha-One", "delta_1", "beta", "epsilon"]),
    (("params.model DESC",), ["alpha-One", "gamma", "beta", "delta_1", "epsilon"]),
    (("params.model",), ["beta", "gamma", "alpha-One", "delta_1", "epsilon"]),
    (("attributes.end_time ASC",), ["gamma", "alpha-One", "delta_1", "beta", "epsilon"]),
    (("attributes.end_time DESC",), ["delta_1", "alpha-One", "gamma", "beta", "epsilon"]),
    (("status ASC", "start_time ASC"), ["gamma", "alpha-One", "delta_1", "epsilon", "beta"]),
    (("tags.team",), ["alpha-One", "beta", TIED, "epsilon"]),
    (("tags.team DESC",), ["beta", "alpha-One", TIED, "epsilon"]),
    (("run_name DESC",), ["gamma", "epsilon", "delta_1", "beta", "alpha-One"]),
    (("metrics.acc DESC", "params.model"), ["alpha-One", "beta", "gamma", "delta_1", "epsilon"]),
]


async def test_search_order(database: Any, store: TrackingStore) -> None:
    experiment, ids = await _searched(database, store)
    tied = sorted(TIED.split("|"), key=lambda name: ids[name])
    for order, expected in ORDERS:
        resolved = [name for entry in expected for name in (tied if entry == TIED else [entry])]
        assert await _names(store, experiment, order=order) == resolved, order


async def test_search_results_carry_their_data(database: Any, store: TrackingStore) -> None:
    experiment, _ = await _searched(database, store)
    found, _ = await store.search_runs([experiment], parse_filter("run_name = 'alpha-One'"), max_results=10)
    (record,) = found
    assert dict(record.data.params) == {"model": "tree", "lr": "0.1"}
    assert dict(record.data.tags) == {"team": "Risk", RUN_NAME_TAG: "alpha-One"}
    assert record.data.metrics == {"loss": Metric("loss", 0.5, T0, 0), "acc": Metric("acc", 0.9, T0, 0)}
    assert [d.name for d in record.inputs] == ["train"]


async def test_search_views(database: Any, store: TrackingStore) -> None:
    experiment, _ = await _searched(database, store)
    assert "deleted" not in await _names(store, experiment)
    assert await _names(store, experiment, view=ViewType.DELETED_ONLY) == ["deleted"]
    everything = await _names(store, experiment, view=ViewType.ALL)
    assert set(everything) == {"alpha-One", "beta", "gamma", "delta_1", "epsilon", "deleted"}
    assert everything[0] == "deleted"  # the latest start


async def test_search_of_no_or_unknown_experiments(database: Any, store: TrackingStore) -> None:
    await _searched(database, store)
    assert await store.search_runs([], max_results=10) == ((), None)
    assert await store.search_runs([new_id()], max_results=10) == ((), None)


async def test_search_refusals(database: Any, store: TrackingStore) -> None:
    experiment = await _experiment(database)
    with pytest.raises(InvalidTrackingInput):
        await store.search_runs([experiment], max_results=50_001)
    with pytest.raises(InvalidTrackingInput, match="could not base64-decode"):
        await store.search_runs([experiment], max_results=10, page_token="not a token!")


@pytest.mark.parametrize("order", [(), ("metrics.m ASC",)])
async def test_paging_through_250_runs(database: Any, store: TrackingStore, order: tuple[str, ...]) -> None:
    experiment = await _experiment(database)
    created = set()
    for i in range(250):
        run = _run(experiment, name=f"r{i}", start_time=T0 + i // 3)  # ties: the id orders them
        await store.create_run(run)
        if i % 5:  # some runs lack the metric and the param
            await store.log_batch(
                run.id, metrics=[Metric("m", float(i % 7), T0, 0)], params=[Param("p", str(i % 4))]
            )
        created.add(run.id)
    whole, token = await store.search_runs([experiment], (), parse_order_by(list(order)), max_results=1000)
    assert token is None
    seen: list[str] = []
    token = None
    for page_number in range(4):
        page, token = await store.search_runs(
            [experiment], (), parse_order_by(list(order)), max_results=100, page_token=token
        )
        assert len(page) == (100 if page_number < 2 else 50)
        seen += [r.run.id for r in page]
        if token is None:
            break
    assert token is None
    assert seen == [r.run.id for r in whole]
    assert set(seen) == created
    assert len(seen) == 250


# -- experiment tags --------------------------------------------------------------------------------


async def test_experiment_tags(database: Any, store: TrackingStore) -> None:
    first, second = await _experiment(database), await _experiment(database)
    await store.set_experiment_tags(first, {"team": "risk", "mlflow.note.content": "é" * 20_000})
    await store.set_experiment_tags(first, {"team": "ops"})
    await store.set_experiment_tags(second, {"a": "1"})
    tags = await store.experiment_tags([first, second, new_id()])
    assert dict(tags[first]) == {"team": "ops", "mlflow.note.content": "é" * 20_000}
    assert dict(tags[second]) == {"a": "1"}
    assert len(tags) == 3
    await store.delete_experiment_tag(first, "team")
    assert dict((await store.experiment_tags([first]))[first]) == {"mlflow.note.content": "é" * 20_000}
    with pytest.raises(TagNotFound):
        await store.delete_experiment_tag(first, "team")
    with pytest.raises(ExperimentNotFound):
        await store.set_experiment_tags(new_id(), {"a": "1"})
    with pytest.raises(InvalidTrackingInput, match="exceeds the maximum length of 20000"):
        await store.set_experiment_tags(first, {"long": "x" * 20_001})


# -- logged models ----------------------------------------------------------------------------------


def _model(experiment_id: str, **changes: Any) -> LoggedModel:
    model_id = new_logged_model_id()
    values: dict[str, Any] = {
        "id": model_id,
        "experiment_id": experiment_id,
        "name": "model",
        "artifact_location": f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts",
        "creation_timestamp": T0,
        "last_updated_timestamp": T0,
        "tags": {"mlflow.user": "ada"},
        "params": {"alpha": "0.5"},
    }
    values.update(changes)
    return LoggedModel(**values)


async def test_logged_models(database: Any, store: TrackingStore) -> None:
    experiment = await _experiment(database)
    run_id = await _new_run(store, experiment)
    model = _model(experiment, source_run_id=run_id, model_type="sklearn")
    assert await store.create_logged_model(model) == model
    assert await store.get_logged_model(model.id) == model
    with pytest.raises(LoggedModelAlreadyExists):
        await store.create_logged_model(model)
    ready = await store.finalize_logged_model(model.id, LoggedModelStatus.READY, at=T0 + 7)
    assert (ready.status, ready.last_updated_timestamp, ready.creation_timestamp) == (
        LoggedModelStatus.READY,
        T0 + 7,
        T0,
    )
    await store.set_logged_model_tags(model.id, {"mlflow.modelVersions": "[]", "mlflow.user": "bob"})
    await store.log_logged_model_params(model.id, [Param("beta", "2"), Param("alpha", "0.6")])
    got = await store.get_logged_model(model.id)
    assert dict(got.tags) == {"mlflow.user": "bob", "mlflow.modelVersions": "[]"}
    assert dict(got.params) == {"alpha": "0.6", "beta": "2"}
    await store.delete_logged_model_tag(model.id, "mlflow.user")
    assert dict((await store.get_logged_model(model.id)).tags) == {"mlflow.modelVersions": "[]"}
    with pytest.raises(TagNotFound):
        await store.delete_logged_model_tag(model.id, "mlflow.user")


async def test_logged_model_refusals(database: Any, store: TrackingStore) -> None:
    unknown = new_logged_model_id()
    with pytest.raises(LoggedModelNotFound) as info:
        await store.get_logged_model(unknown)
    assert info.value.message == f"Logged model with ID '{unknown}' not found."
    with pytest.raises(LoggedModelNotFound):
        await store.finalize_logged_model(unknown, LoggedModelStatus.READY, at=T0)
    with pytest.raises(LoggedModelNotFound):
        await store.set_logged_model_tags(unknown, {"a": "b"})
    with pytest.raises(LoggedModelNotFound):
        await store.delete_logged_model_tag(unknown, "a")
    with pytest.raises(LoggedModelNotFound):
        await store.log_logged_model_params(unknown, [Param("a", "b")])
    with pytest.raises(ExperimentNotFound):
        await store.create_logged_model(_model(new_id()))
    experiment = await _experiment(database)
    with pytest.raises(InvalidTrackingInput):
        await store.create_logged_model(_model(experiment, id="m-nope"))
    with pytest.raises(InvalidTrackingInput, match="cannot contain the following characters"):
        await store.create_logged_model(_model(experiment, name="a/b"))
    assert await store.search_logged_models([experiment], max_results=10) == ((), None)


async def test_search_logged_models(database: Any, store: TrackingStore) -> None:
    experiment, other = await _experiment(database), await _experiment(database)
    run_id = await _new_run(store, experiment)
    made = [
        _model(
            experiment,
            name="model" if i % 2 else "other",
            creation_timestamp=T0 + i // 2,
            source_run_id=run_id if i < 3 else None,
        )
        for i in range(7)
    ]
    for model in made:
        await store.create_logged_model(model)
    await store.create_logged_model(_model(other))
    newest_first = sorted(made, key=lambda m: m.id)
    newest_first.sort(key=lambda m: m.creation_timestamp, reverse=True)
    seen: list[str] = []
    token = None
    for _ in range(4):
        page, token = await store.search_logged_models([experiment], max_results=3, page_token=token)
        seen += [m.id for m in page]
        if token is None:
            break
    assert seen == [m.id for m in newest_first]
    named, _ = await store.search_logged_models([experiment], name="model", max_results=10)
    assert [m.id for m in named] == [m.id for m in newest_first if m.name == "model"]
    from_run, _ = await store.search_logged_models(
        [experiment, other], name="model", source_run_id=run_id, max_results=10
    )
    assert {m.id for m in from_run} == {m.id for m in made[:3] if m.name == "model"}
    assert await store.search_logged_models([], max_results=10) == ((), None)


# -- forgetting -------------------------------------------------------------------------------------


async def _filled(database: Any, store: TrackingStore) -> tuple[str, str, str]:
    """An experiment with a run that has every kind of row, tags and a logged model."""
    experiment = await _experiment(database)
    run_id = await _new_run(store, experiment)
    model = _model(experiment, source_run_id=run_id)
    await store.create_logged_model(model)
    await store.log_batch(run_id, metrics=[Metric("m", 1.0, T0, 0, model.id)], params=[Param("p", "1")])
    await store.log_inputs(run_id, [DatasetInput(name="d", digest="x")])
    await store.log_outputs(run_id, [ModelOutput(model.id, 0)])
    await store.set_experiment_tags(experiment, {"t": "v"})
    return experiment, run_id, model.id


async def _assert_gone(store: TrackingStore, experiment: str, run_id: str, model_id: str) -> None:
    with pytest.raises(RunNotFound):
        await store.get_run(run_id)
    with pytest.raises(LoggedModelNotFound):
        await store.get_logged_model(model_id)
    assert dict((await store.experiment_tags([experiment]))[experiment]) == {}
    assert await store.search_runs([experiment], max_results=10, view=ViewType.ALL) == ((), None)


async def test_forget_experiment(database: Any, store: TrackingStore) -> None:
    experiment, run_id, model_id = await _filled(database, store)
    kept, kept_run, kept_model = await _filled(database, store)
    await store.forget_experiment(experiment)
    await _assert_gone(store, experiment, run_id, model_id)
    assert (await store.get_run(kept_run)).data.params == {"p": "1"}
    assert (await store.get_logged_model(kept_model)).experiment_id == kept
    assert dict((await store.experiment_tags([kept]))[kept]) == {"t": "v"}


async def test_deleting_the_catalog_asset_takes_the_experiment(database: Any, store: TrackingStore) -> None:
    experiment, run_id, model_id = await _filled(database, store)
    await database.catalog.delete(experiment)
    await _assert_gone(store, experiment, run_id, model_id)
