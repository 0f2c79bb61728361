"""PredictionSink contract, run against memory://, sqlite:// and postgresql:// (a real server).

Then what only the Redshift sink does, against moto's server: the staging objects in S3 and the
Data API statements it records. moto cannot run Redshift SQL (and 5.2.5 lacks
``BatchExecuteStatement`` and never finishes a statement), so ``moto_redshift`` below completes
moto's in-process ``redshift-data`` service; the SQL semantics are the PostgreSQL runs' job.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import anyio.lowlevel
import attrs
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.prediction_sink.redshift import RedshiftPredictionSink, swap_sql
from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError, InvalidInput
from studio9.ids import new_id
from studio9.predictions import (
    BATCH_SCHEMA,
    DailyCount,
    ImportKey,
    ImportMeta,
    LoadResult,
    Prediction,
    PredictionBatch,
    PredictionFilter,
    PredictionSink,
)
from studio9.predictions.domain import MAX_PAGE
from studio9.urls import AdapterURL

# The composition root's scheme table with the sinks of this issue (see the report for the wiring).
SINKS = {
    **bootstrap.SINKS,
    "memory": "adapters.prediction_sink.memory:MemoryPredictionSink",
    "sqlite": "adapters.prediction_sink.sqlite:SqlitePredictionSink",
    "postgresql": "adapters.prediction_sink.postgresql:PostgresPredictionSink",
    "postgresql+psycopg": "adapters.prediction_sink.postgresql:PostgresPredictionSink",
    "redshift": "adapters.prediction_sink.redshift:RedshiftPredictionSink",
}
DAY = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DIGEST = "a" * 64


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def sink(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PredictionSink]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/predictions.db"
    else:
        url = request.getfixturevalue("postgres_url")
    options = AdapterOptions(data_dir=tmp_path)
    async with bootstrap.open_adapter(SINKS, url, setting="STUDIO9_SINK_URL", options=options) as adapter:
        yield adapter


def meta(source: str = "job1", digest: str = DIGEST, **changes: Any) -> ImportMeta:
    values: dict[str, Any] = {"import_id": new_id(), "model_id": "m1", "owner_id": "u1", "created_at": DAY}
    values.update(changes)
    values["key"] = ImportKey(
        owner_id=values["owner_id"], model_id=values["model_id"], source_job_id=source, file_digest=digest
    )
    return ImportMeta(**values)


def batch(first: int, count: int, *, label: str = "cat") -> PredictionBatch:
    rows = range(first, first + count)
    return PredictionBatch(
        pa.record_batch(
            [
                pa.array(list(rows), pa.int64()),
                pa.array([f"item-{i}" for i in rows]),
                pa.array([label] * count),
                pa.array([None if i % 5 == 0 else i % 1000 / 1000 for i in rows], pa.float64()),
                pa.array([None if i % 5 == 0 else '{"cat": 0.75, "dog": [0.25]}' for i in rows]),
                pa.array([f'{{"camera": "c-{i}", "note": "été"}}' for i in rows]),
            ],
            schema=BATCH_SCHEMA,
        )
    )


async def source(*batches: PredictionBatch, fail: bool = False) -> AsyncIterator[PredictionBatch]:
    for item in batches:
        await anyio.lowlevel.checkpoint()
        yield item
    if fail:
        raise RuntimeError("the file went away")


async def everything(sink: PredictionSink, filters: PredictionFilter | None = None) -> list[Prediction]:
    page = await sink.query(filters or PredictionFilter(), limit=MAX_PAGE)
    assert page.next_cursor is None
    return list(page.items)


# -- loads -----------------------------------------------------------------------------------


async def test_loaded_rows_read_back_with_their_import(sink: PredictionSink) -> None:
    m = meta(model_version="v2", stream_id="cam-stream")
    assert await sink.load(source(batch(1, 3), batch(4, 2)), m) == LoadResult(rows=5, replaced=False)
    rows = await everything(sink)
    assert [p.id for p in rows] == [m.prediction_id(i) for i in range(1, 6)]
    assert rows[0] == Prediction(
        id=f"{m.import_id}-0000000001",
        import_id=m.import_id,
        source_job_id="job1",
        model_id="m1",
        model_version="v2",
        stream_id="cam-stream",
        owner_id="u1",
        created_at=DAY,
        item_key="item-1",
        label="cat",
        confidence=0.001,
        probabilities={"cat": 0.75, "dog": [0.25]},
        extra={"camera": "c-1", "note": "été"},
    )
    assert (rows[4].confidence, rows[4].probabilities) == (None, None)
    assert rows[0].created_at.tzinfo is not None


async def test_loading_a_key_again_leaves_exactly_one_copy(sink: PredictionSink) -> None:
    await sink.load(source(batch(1, 5)), meta())
    again = meta()
    assert await sink.load(source(batch(1, 2), batch(3, 1)), again) == LoadResult(rows=3, replaced=True)
    assert {p.import_id for p in await everything(sink)} == {again.import_id}
    assert len(await everything(sink)) == 3
    assert await sink.daily_counts(PredictionFilter()) == [DailyCount(DAY.date(), "m1", 3)]


async def test_a_load_failing_halfway_leaves_the_previous_copy_whole(sink: PredictionSink) -> None:
    first = meta()
    await sink.load(source(batch(1, 5)), first)
    before = await everything(sink)
    with pytest.raises(RuntimeError, match="went away"):
        await sink.load(source(batch(1, 4), batch(5, 4), fail=True), meta())
    assert await everything(sink) == before
    third = meta()
    assert await sink.load(source(batch(1, 2)), third) == LoadResult(rows=2, replaced=True)
    assert [p.id for p in await everything(sink)] == [third.prediction_id(1), third.prediction_id(2)]


async def test_a_first_load_failing_leaves_nothing(sink: PredictionSink) -> None:
    with pytest.raises(RuntimeError):
        await sink.load(source(batch(1, 4), fail=True), meta())
    assert await everything(sink) == []
    assert await sink.daily_counts(PredictionFilter()) == []


async def test_a_cancelled_load_changes_nothing(sink: PredictionSink) -> None:
    await sink.load(source(batch(1, 2)), meta(source="kept"))
    started, never = anyio.Event(), anyio.Event()

    async def stalls() -> AsyncIterator[PredictionBatch]:
        yield batch(1, 3)
        started.set()
        await never.wait()
        yield batch(4, 1)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sink.load, stalls(), meta())
        await started.wait()
        tasks.cancel_scope.cancel()
    assert [p.source_job_id for p in await everything(sink)] == ["kept", "kept"]
    assert (await sink.load(source(batch(1, 1)), meta())).rows == 1


async def test_other_keys_are_left_alone(sink: PredictionSink) -> None:
    await sink.load(source(batch(1, 2)), meta(source="job1"))
    await sink.load(source(batch(1, 2)), meta(source="job2"))
    await sink.load(source(batch(1, 2)), meta(source="job1", digest="b" * 64))
    await sink.load(source(batch(1, 2)), meta(source=""))
    assert len(await everything(sink)) == 8
    assert len(await everything(sink, PredictionFilter(source_job_id="job1"))) == 4


async def test_concurrent_loads_of_one_key_leave_one_copy(sink: PredictionSink) -> None:
    first, second = meta(), meta()
    results = await asyncio.gather(
        sink.load(source(batch(1, 3), batch(4, 3)), first),
        sink.load(source(batch(1, 4), batch(5, 4)), second),
    )
    rows = await everything(sink)
    assert len({p.import_id for p in rows}) == 1
    assert len(rows) == (6 if rows[0].import_id == first.import_id else 8)
    assert sorted(result.replaced for result in results) == [False, True]


async def test_an_empty_load_replaces_the_key_with_nothing(sink: PredictionSink) -> None:
    await sink.load(source(batch(1, 3)), meta())
    assert await sink.load(source(), meta()) == LoadResult(rows=0, replaced=True)
    assert await everything(sink) == []


async def test_schema_can_be_ensured_again(sink: PredictionSink) -> None:
    await sink.ensure_schema()
    await sink.load(source(batch(1, 1)), meta())
    await sink.ensure_schema()
    assert len(await everything(sink)) == 1


LAST_ROW = 2**32 - 1  # the SQL sinks key a row by import number * 2**32 + row


async def test_rows_numbered_up_to_the_last_read_back_in_order(sink: PredictionSink) -> None:
    m = meta()
    await sink.load(source(batch(LAST_ROW - 3, 2), batch(LAST_ROW - 1, 2)), m)
    first = await sink.query(PredictionFilter(), limit=3)
    assert [p.id for p in first.items] == [m.prediction_id(LAST_ROW - i) for i in (3, 2, 1)]
    assert first.items[0].id == f"{m.import_id}-4294967292"
    rest = await sink.query(PredictionFilter(), limit=3, cursor=first.next_cursor)
    assert [(p.id, p.item_key) for p in rest.items] == [(m.prediction_id(LAST_ROW), f"item-{LAST_ROW}")]
    assert rest.next_cursor is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sql_sinks_refuse_rows_past_the_last(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path}/p.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    async with bootstrap.open_adapter(
        SINKS, url, setting="STUDIO9_SINK_URL", options=AdapterOptions()
    ) as sql:
        kept = meta()
        await sql.load(source(batch(1, 2)), kept)
        with pytest.raises(InvalidInput, match="at most 4294967295 rows"):
            await sql.load(source(batch(1, 2), batch(LAST_ROW, 2)), meta())
        assert [p.id for p in await everything(sql)] == [kept.prediction_id(1), kept.prediction_id(2)]


async def test_a_cursor_into_a_replaced_import_goes_on_with_the_later_ones(sink: PredictionSink) -> None:
    first, other = meta(source="a", import_id="imp1"), meta(source="b", import_id="imp2")  # id order
    await sink.load(source(batch(1, 2)), first)
    await sink.load(source(batch(1, 2)), other)
    page = await sink.query(PredictionFilter(), limit=1)
    assert [p.id for p in page.items] == [first.prediction_id(1)]
    again = meta(source="a", import_id="imp3")  # replaces ``first``, the cursor's import
    await sink.load(source(batch(1, 1)), again)
    after = await sink.query(PredictionFilter(), limit=10, cursor=page.next_cursor)
    assert [p.id for p in after.items] == [
        other.prediction_id(1),
        other.prediction_id(2),
        again.prediction_id(1),
    ]


# -- queries ---------------------------------------------------------------------------------


async def test_filters_select_by_every_attribute(sink: PredictionSink) -> None:
    a = meta(source="job-a", stream_id="s1", created_at=DAY)
    b = meta(source="job-b", model_id="m2", owner_id="u2", created_at=DAY + timedelta(days=1))
    c = meta(source="", stream_id="s1", created_at=DAY + timedelta(days=2))
    for m in (a, b, c):
        await sink.load(source(batch(1, 2)), m)

    async def imports(**filters: Any) -> list[str]:
        return sorted({p.import_id for p in await everything(sink, PredictionFilter(**filters))})

    assert await imports() == sorted([a.import_id, b.import_id, c.import_id])
    assert await imports(model_id="m2") == [b.import_id]
    assert await imports(stream_id="s1") == sorted([a.import_id, c.import_id])
    assert await imports(source_job_id="job-a") == [a.import_id]
    assert await imports(owner_id="u2") == [b.import_id]
    assert await imports(time_from=DAY + timedelta(days=1)) == sorted([b.import_id, c.import_id])
    assert await imports(time_to=DAY + timedelta(days=1)) == [a.import_id]
    assert await imports(model_id="m1", stream_id="s1", time_from=DAY + timedelta(hours=1)) == [c.import_id]
    assert await imports(model_id="nope") == []
    # A range that ends where, or before, it starts covers nothing; it is no error.
    assert await imports(time_from=DAY + timedelta(days=1), time_to=DAY) == []


async def test_pages_follow_id_order_across_imports(sink: PredictionSink) -> None:
    metas = [meta(source=f"job{i}") for i in range(3)]
    for m in metas:
        await sink.load(source(batch(1, 2), batch(3, 2)), m)
    expected = sorted(m.prediction_id(row) for m in metas for row in range(1, 5))
    for limit in (1, 3, 4, 5, 12):
        seen, cursor = [], None
        while True:
            page = await sink.query(PredictionFilter(), limit=limit, cursor=cursor)
            assert len(page.items) <= limit
            seen += [p.id for p in page.items]
            if (cursor := page.next_cursor) is None:
                break
            assert cursor == page.items[-1].id
        assert seen == expected, limit
    middle = sorted(metas, key=lambda m: m.import_id)[1]  # ids made in one millisecond sort randomly
    after = await sink.query(
        PredictionFilter(source_job_id=middle.source_job_id), limit=3, cursor=expected[5]
    )
    assert [p.id for p in after.items] == [middle.prediction_id(3), middle.prediction_id(4)]


@pytest.mark.parametrize(("limit", "cursor"), [(0, None), (MAX_PAGE + 1, None), (10, "not-a-cursor")])
async def test_bad_pages_are_invalid_input(sink: PredictionSink, limit: int, cursor: str | None) -> None:
    with pytest.raises(InvalidInput):
        await sink.query(PredictionFilter(), limit=limit, cursor=cursor)


async def test_daily_counts_per_model_and_day(sink: PredictionSink) -> None:
    await sink.load(source(batch(1, 3)), meta(source="j1", created_at=DAY))
    await sink.load(source(batch(1, 2)), meta(source="j2", created_at=DAY + timedelta(hours=11)))
    await sink.load(
        source(batch(1, 4)), meta(source="j3", model_id="m0", created_at=DAY + timedelta(hours=1))
    )
    await sink.load(source(batch(1, 1)), meta(source="j4", owner_id="u2", created_at=DAY + timedelta(days=1)))
    await sink.load(source(), meta(source="j5", created_at=DAY + timedelta(days=2)))
    day1, day2 = DAY.date(), date(2026, 3, 2)
    assert await sink.daily_counts(PredictionFilter()) == [
        DailyCount(day1, "m0", 4),
        DailyCount(day1, "m1", 5),
        DailyCount(day2, "m1", 1),
    ]
    assert await sink.daily_counts(PredictionFilter(model_id="m1", owner_id="u1")) == [
        DailyCount(day1, "m1", 5)
    ]
    since = PredictionFilter(time_from=DAY + timedelta(hours=5), time_to=DAY + timedelta(days=3))
    assert await sink.daily_counts(since) == [DailyCount(day1, "m1", 2), DailyCount(day2, "m1", 1)]


def test_filters_and_imports_validate_their_values() -> None:
    with pytest.raises(InvalidInput):
        PredictionFilter(time_from=datetime(2026, 3, 1))
    with pytest.raises(InvalidInput):
        meta(model_id="it's")
    with pytest.raises(InvalidInput):
        meta(import_id="with-dash")
    assert meta(created_at=DAY.astimezone(UTC)).created_at == DAY


# -- Redshift, on moto -------------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/RedshiftCopy"


@attrs.define
class MotoRedshift:
    """moto's redshift-data, completed for one test: statements finish (or fail) at once,
    ``BatchExecuteStatement`` exists, results can be canned, and the staging objects a COPY
    would read are captured when the batch arrives."""

    bucket: str
    calls: list[tuple[str, Any]] = attrs.Factory(list)
    staged: dict[str, bytes] = attrs.Factory(dict)
    fail: str | None = None  # a statement containing this fails
    deleted_rows: int = 0
    records: list[list[dict[str, Any]]] | None = None

    def statements(self, kind: str) -> list[Any]:
        return [args for call, args in self.calls if call == kind]


@pytest.fixture
def moto_redshift(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> MotoRedshift:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.redshiftdata import models, responses
    from moto.s3.models import s3_backends

    state = MotoRedshift(bucket=f"studio9-test-{uuid.uuid4().hex[:12]}")
    execute = models.RedshiftDataAPIServiceBackend.execute_statement
    results = models.RedshiftDataAPIServiceBackend.get_statement_result

    def finish(statement: Any, sqls: list[str]) -> Any:
        failed = state.fail is not None and any(state.fail in sql for sql in sqls)
        statement.status = "FAILED" if failed else "FINISHED"
        return statement

    def execute_statement(backend: Any, **kwargs: Any) -> Any:
        state.calls.append(("execute", (kwargs["sql"], kwargs["parameters"])))
        return finish(execute(backend, **kwargs), [kwargs["sql"]])

    def batch_execute_statement(response: Any) -> tuple[int, dict[str, str], str]:
        sqls = response._get_param("Sqls")
        state.calls.append(("batch", sqls))
        s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for sql in sqls:
            if found := re.search(r"FROM 's3://([^/]+)/([^']*)'", sql):
                keys, *_ = s3.list_objects(s3.get_bucket(found[1]), found[2], None, None, 1000)
                state.staged.update({key.name: bytes(key.value) for key in keys})
        statement = execute(
            response.redshiftdata_backend, **_target(response), parameters=None, sql="; ".join(sqls)
        )
        statement.sub_statements = [
            {
                "Id": f"{statement.id}:{n}",
                "QueryString": sql,
                "Status": "FINISHED",
                "ResultRows": state.deleted_rows,
            }
            for n, sql in enumerate(sqls, start=1)
        ]
        finish(statement, sqls)
        return 200, {}, json.dumps({"Id": statement.id, "Database": statement.database})

    def get_statement_result(backend: Any, statement_id: str) -> Any:
        if state.records is None:
            return results(backend, statement_id)
        return models.StatementResult([], state.records, len(state.records))

    monkeypatch.setattr(models.RedshiftDataAPIServiceBackend, "execute_statement", execute_statement)
    monkeypatch.setattr(models.RedshiftDataAPIServiceBackend, "get_statement_result", get_statement_result)
    monkeypatch.setattr(
        responses.RedshiftDataAPIServiceResponse,
        "batch_execute_statement",
        batch_execute_statement,
        raising=False,
    )
    return state


def _target(response: Any) -> dict[str, Any]:
    return {
        "cluster_identifier": response._get_param("ClusterIdentifier"),
        "database": response._get_param("Database"),
        "db_user": response._get_param("DbUser"),
        "secret_arn": response._get_param("SecretArn"),
    }


@pytest.fixture
async def redshift(moto_endpoint: str, moto_redshift: MotoRedshift) -> AsyncIterator[RedshiftPredictionSink]:
    async with aioboto3.Session().client("s3", endpoint_url=moto_endpoint, region_name="us-east-1") as s3:
        await s3.create_bucket(Bucket=moto_redshift.bucket)
    url = (
        f"redshift://studio9-wg@us-east-1/dev?s3_staging=s3://{moto_redshift.bucket}/staging/"
        f"&iam_role={ROLE}&endpoint_url={moto_endpoint}&poll_timeout=5"
    )
    async with bootstrap.open_adapter(
        SINKS, url, setting="STUDIO9_SINK_URL", options=AdapterOptions()
    ) as adapter:
        yield adapter


async def _objects(endpoint: str, bucket: str) -> list[str]:
    async with aioboto3.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1") as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


async def test_redshift_stages_parquet_then_copies_and_swaps_in_one_batch(
    redshift: RedshiftPredictionSink, moto_redshift: MotoRedshift, moto_endpoint: str
) -> None:
    m = meta(model_version="v1")
    assert await redshift.load(source(batch(1, 3), batch(4, 2)), m) == LoadResult(rows=5, replaced=False)
    ddl = [sql for sql, _ in moto_redshift.statements("execute") if "CREATE TABLE" in sql]
    assert ddl and "CREATE TABLE IF NOT EXISTS predictions" in ddl[0]
    [sqls] = moto_redshift.statements("batch")
    assert [sql.split()[0] for sql in sqls] == ["CREATE", "COPY", "LOCK", "DELETE", "INSERT", "DROP"]
    prefix = f"staging/{m.import_id}/"
    assert sqls[1] == (
        f"COPY predictions_staging FROM 's3://{moto_redshift.bucket}/{prefix}'"
        f" IAM_ROLE '{ROLE}' FORMAT AS PARQUET"
    )
    assert sqls[3] == f"DELETE FROM predictions WHERE import_key = 'u1|m1|job1|{DIGEST}'"
    assert f"'{m.import_id}' || '-' || LPAD(source_row::VARCHAR, 10, '0')" in sqls[4]
    assert "'2026-03-01 12:00:00.000000+00'::TIMESTAMPTZ" in sqls[4] and "FROM predictions_staging" in sqls[4]
    # The staging objects were in S3 when the COPY ran: one Parquet object per batch, the rows.
    assert sorted(moto_redshift.staged) == [f"{prefix}part-00000.parquet", f"{prefix}part-00001.parquet"]
    staged = pa.concat_tables(pq.read_table(io.BytesIO(body)) for body in moto_redshift.staged.values())
    assert staged.schema.names == BATCH_SCHEMA.names and staged.num_rows == 5
    assert sorted(staged.column("item_key").to_pylist()) == sorted(f"item-{i}" for i in range(1, 6))
    assert await _objects(moto_endpoint, moto_redshift.bucket) == []  # and deleted afterwards


async def test_redshift_reports_a_replaced_import(
    redshift: RedshiftPredictionSink, moto_redshift: MotoRedshift
) -> None:
    moto_redshift.deleted_rows = 7
    assert (await redshift.load(source(batch(1, 1)), meta())).replaced is True


async def test_redshift_empty_import_only_deletes(
    redshift: RedshiftPredictionSink, moto_redshift: MotoRedshift
) -> None:
    assert await redshift.load(source(), meta()) == LoadResult(rows=0, replaced=False)
    [sqls] = moto_redshift.statements("batch")
    assert sqls == ["LOCK predictions", f"DELETE FROM predictions WHERE import_key = 'u1|m1|job1|{DIGEST}'"]


async def test_redshift_failed_swap_raises_and_cleans_up(
    redshift: RedshiftPredictionSink, moto_redshift: MotoRedshift, moto_endpoint: str
) -> None:
    moto_redshift.fail = "COPY predictions_staging"
    with pytest.raises(BackendUnavailable, match="Redshift statement failed"):
        await redshift.load(source(batch(1, 2)), meta())
    assert len(moto_redshift.staged) == 1
    assert await _objects(moto_endpoint, moto_redshift.bucket) == []


async def test_redshift_source_failing_sends_no_swap(
    redshift: RedshiftPredictionSink, moto_redshift: MotoRedshift, moto_endpoint: str
) -> None:
    with pytest.raises(RuntimeError):
        await redshift.load(source(batch(1, 2), batch(3, 2), fail=True), meta())
    assert moto_redshift.statements("batch") == []
    assert await _objects(moto_endpoint, moto_redshift.bucket) == []


async def test_redshift_queries_send_parameters_and_parse_records(
    redshift: RedshiftPredictionSink, moto_redshift: MotoRedshift
) -> None:
    m = meta()
    moto_redshift.records = [
        [
            {"stringValue": m.prediction_id(1)},
            {"stringValue": m.import_id},
            {"isNull": True},
            {"stringValue": "m1"},
            {"isNull": True},
            {"stringValue": "s1"},
            {"stringValue": "u1"},
            {"stringValue": "2026-03-01 12:00:00+00"},
            {"stringValue": "item-1"},
            {"stringValue": "cat"},
            {"doubleValue": 0.5},
            {"stringValue": '{"cat": 0.5}'},
            {"isNull": True},
        ]
    ]
    page = await redshift.query(
        PredictionFilter(model_id="m1", time_from=DAY), limit=1, cursor=m.prediction_id(0)
    )
    sql, parameters = moto_redshift.statements("execute")[-1]
    assert (
        "WHERE model_id = :model_id AND created_at >= CAST(:time_from AS TIMESTAMPTZ) AND id > :cursor" in sql
    )
    assert sql.endswith("ORDER BY id LIMIT 2")
    assert parameters == [
        {"name": "model_id", "value": "m1"},
        {"name": "time_from", "value": DAY.isoformat()},
        {"name": "cursor", "value": m.prediction_id(0)},
    ]
    assert page.next_cursor is None
    [found] = page.items
    assert (found.id, found.created_at, found.confidence, found.probabilities) == (
        m.prediction_id(1),
        DAY,
        0.5,
        {"cat": 0.5},
    )
    moto_redshift.records = [[{"stringValue": "2026-03-01"}, {"stringValue": "m1"}, {"longValue": 3}]]
    assert await redshift.daily_counts(PredictionFilter()) == [DailyCount(DAY.date(), "m1", 3)]
    assert "GROUP BY 1, 2" in moto_redshift.statements("execute")[-1][0]


@pytest.mark.parametrize(
    "url",
    [
        "redshift://wg@us-east-1/dev?iam_role=" + ROLE,  # no s3_staging
        "redshift://wg1@us-east-1/dev?s3_staging=s3://bucket/p",  # no iam_role
        "redshift://wg1@nowhere/dev?s3_staging=s3://bucket/p&iam_role=" + ROLE,
        "redshift://wg1@us-east-1/dev?s3_staging=s3://bucket/p&iam_role=" + ROLE + "&colour=red",
        "redshift://wg1:hunter2secret@us-east-1/dev?s3_staging=s3://bucket/p&iam_role=" + ROLE,
        "redshift://wg1@us-east-1/dev?s3_staging=s3://bucket/it's&iam_role=" + ROLE,
    ],
)
def test_redshift_urls_are_checked(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RedshiftPredictionSink.from_url(AdapterURL.parse(url), AdapterOptions())
    assert "hunter2secret" not in str(caught.value)


def test_redshift_cluster_target() -> None:
    url = "redshift://prod-cluster@eu-west-1/analytics?s3_staging=s3://bucket&iam_role=default&cluster=true"
    url += "&db_user=loader"
    sink = RedshiftPredictionSink.from_url(AdapterURL.parse(url), AdapterOptions())
    assert sink.target == {"Database": "analytics", "ClusterIdentifier": "prod-cluster", "DbUser": "loader"}
    assert (sink.bucket, sink.prefix) == ("bucket", "")
    assert "IAM_ROLE default FORMAT AS PARQUET" in swap_sql(meta(), "s3://bucket/x/", "default")[1]


async def test_postgresql_password_never_reaches_messages(tmp_path: Path) -> None:
    url = "postgresql://studio9:hunter2secret@127.0.0.1:1/predictions"
    with pytest.raises(ConfigError) as caught:
        async with bootstrap.open_adapter(
            SINKS, url, setting="STUDIO9_SINK_URL", options=AdapterOptions(timeout=1)
        ):
            pass
    assert "hunter2secret" not in str(caught.value)


async def test_sqlite_load_waits_for_another_writer_and_can_be_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    async with bootstrap.open_adapter(
        SINKS, f"sqlite:///{path}", setting="STUDIO9_SINK_URL", options=AdapterOptions(timeout=0.1)
    ) as sql:
        await sql.ensure_schema()
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer: a load inserts nothing before it ends
            with anyio.move_on_after(0.5) as waited:  # well past the 0.1 s timeout: still waiting
                await sql.load(source(batch(1, 2)), meta())
            assert waited.cancelled_caught
            loading = meta()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(sql.load, source(batch(1, 2)), loading)
                await anyio.sleep(0.2)
                other.execute("COMMIT")  # the waiting load goes on
        finally:
            other.close()
        assert [p.id for p in await everything(sql)] == [loading.prediction_id(1), loading.prediction_id(2)]
        page_size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
        assert page_size == 16384


async def test_sqlite_needs_a_path(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///", f"sqlite:///{tmp_path}/p.db?mode=ro"):
        with pytest.raises(ConfigError):
            async with bootstrap.open_adapter(
                SINKS, url, setting="STUDIO9_SINK_URL", options=AdapterOptions()
            ):
                pass
