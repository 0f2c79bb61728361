"""Predictions in Amazon Redshift: batches staged to S3, loaded with COPY through the Data API.

URL:      redshift://<workgroup>@<region>/<database>?s3_staging=s3://bucket/prefix
          &iam_role=arn:aws:iam::123456789012:role/RedshiftCopy   (or ``iam_role=default``)
          &endpoint_url=http://127.0.0.1:5000&poll_timeout=900
          ``<workgroup>`` names a Redshift Serverless workgroup; with ``cluster=true`` it is a
          provisioned cluster's identifier and ``db_user=`` or ``secret_arn=`` says who connects.
          AWS credentials come from the standard chain; none belong in the URL.
Features: each batch is written to S3 as one Parquet object (memory ~ one batch) · one
          ``BatchExecuteStatement`` — a single transaction — creates a TEMP staging table,
          ``COPY``s the objects into it (``IAM_ROLE``, ``FORMAT AS PARQUET``), takes ``LOCK
          predictions`` (concurrent swaps serialize), deletes the import key's rows and inserts
          the staged ones · staged objects are deleted afterwards, success or not · the sink
          owns its DDL (created on first use)
Extra:    cloud (aioboto3)

The batch API takes no parameters, so the import's values are SQL literals: the domain allows
no quote or backslash in them (``studio9.predictions.domain.IDENTIFIER``) and quotes are
doubled anyway. Queries use ``ExecuteStatement`` with named parameters.

Testing: moto's ``redshift-data`` only records statements and answers canned results — it
cannot run Redshift SQL (and moto 5.2.5 lacks ``BatchExecuteStatement`` and never finishes a
statement, which the tests add to its in-process server). The tests check the SQL sent and the
staging objects in moto's S3; the SQL semantics (staging, the delete + insert swap in one
transaction, filters, paging) are covered by the PostgreSQL adapter's contract tests.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import AsyncIterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, Self
from urllib.parse import urlsplit

import aioboto3
import aiohttp
import anyio
import anyio.to_thread
import msgspec
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.predictions.domain import (
    DailyCount,
    ImportMeta,
    LoadResult,
    Prediction,
    PredictionBatch,
    PredictionFilter,
    PredictionPage,
    check_page,
)
from studio9.urls import AdapterURL, redact

log = structlog.get_logger()

_SETTING: Final = "STUDIO9_SINK_URL"
_OPTIONS: Final = frozenset(
    ["s3_staging", "iam_role", "endpoint_url", "poll_timeout", "cluster", "db_user", "secret_arn"]
)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{2,63}")
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,126}")
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9._/=-]*")
_UNREACHABLE = (BotoCoreError, aiohttp.ClientError)
_COLUMNS: Final = (
    "id, import_id, source_job_id, model_id, model_version, stream_id, owner_id, created_at,"
    " item_key, label, confidence, probabilities, extra"
)
SCHEMA: Final = """CREATE TABLE IF NOT EXISTS predictions (
    id VARCHAR(80) NOT NULL, import_id VARCHAR(64) NOT NULL, import_key VARCHAR(1024) NOT NULL,
    source_job_id VARCHAR(128), model_id VARCHAR(128) NOT NULL, model_version VARCHAR(128),
    stream_id VARCHAR(128), owner_id VARCHAR(128) NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    item_key VARCHAR(1024) NOT NULL, label VARCHAR(1024) NOT NULL, confidence DOUBLE PRECISION,
    probabilities VARCHAR(65535), extra VARCHAR(65535), PRIMARY KEY (id)
) DISTSTYLE AUTO SORTKEY (model_id, created_at)"""
_STAGING: Final = """CREATE TEMP TABLE predictions_staging (
    source_row BIGINT NOT NULL, item_key VARCHAR(1024) NOT NULL, label VARCHAR(1024) NOT NULL,
    confidence DOUBLE PRECISION, probabilities VARCHAR(65535), extra VARCHAR(65535))"""
_DONE, _FAILED = "FINISHED", frozenset({"FAILED", "ABORTED"})
_OBJECT = msgspec.json.Decoder(dict[str, Any])


class RedshiftPredictionSink:
    """``PredictionSink`` in Redshift via S3 and the Data API (contract: ``studio9.predictions.ports``)."""

    def __init__(
        self,
        session: Any,
        *,
        target: dict[str, str],
        staging: tuple[str, str],
        iam_role: str,
        client_args: dict[str, Any],
        poll_timeout: float,
    ) -> None:
        self.target, (self.bucket, self.prefix) = target, staging  # prefix: "" or "some/prefix/"
        self._iam_role = "default" if iam_role == "default" else _literal(iam_role)
        self._session, self._client_args, self._poll_timeout = session, client_args, poll_timeout
        self._clients: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock = anyio.Lock()
        self._schema_ready = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the sink from ``redshift://workgroup@region/database?…``; raise ConfigError for a bad URL."""
        query, database, role = url.query, url.path.strip("/"), url.query.get("iam_role", "")
        checks = [
            (url.username is not None and _NAME.fullmatch(url.username), "a workgroup or cluster name"),
            (url.password is None, "no password (credentials come from the AWS chain)"),
            (url.host and _REGION.fullmatch(url.host), "a region as host"),
            (_DATABASE.fullmatch(database), "a database name as path"),
            (not set(query) - _OPTIONS, f"only the options {sorted(_OPTIONS)}"),
            (_ROLE.fullmatch(role) or role == "default", "iam_role=arn:… or iam_role=default"),
        ]
        staging = urlsplit(query.get("s3_staging", ""))
        checks.append(
            (staging.scheme == "s3" and _BUCKET.fullmatch(staging.netloc or ""), "s3_staging=s3://…")
        )
        checks.append((_PREFIX.fullmatch(staging.path), "a plain s3_staging prefix"))
        if failed := [need for ok, need in checks if not ok]:
            raise ConfigError(f"{url} needs {'; '.join(failed)}", setting=_SETTING)
        target = {"Database": database}
        if query.get("cluster", "false").lower() == "true":
            target["ClusterIdentifier"] = str(url.username)
            who = {"DbUser": query.get("db_user"), "SecretArn": query.get("secret_arn")}
            target.update({name: value for name, value in who.items() if value})
        else:
            target["WorkgroupName"] = str(url.username)
        try:
            poll_timeout = float(query.get("poll_timeout", "900"))
        except ValueError:
            raise ConfigError("poll_timeout must be a number of seconds", setting=_SETTING) from None
        endpoint = query.get("endpoint_url")
        timeouts = {"connect_timeout": options.timeout, "read_timeout": max(options.timeout, 60.0)}
        config = Config(retries={"mode": "standard", "max_attempts": 3}, **timeouts)
        prefix = staging.path.strip("/")
        return cls(
            aioboto3.Session(),
            target=target,
            staging=(staging.netloc, prefix + "/" if prefix else ""),
            iam_role=query["iam_role"],
            client_args={"region_name": url.host, "endpoint_url": endpoint, "config": config},
            poll_timeout=poll_timeout,
        )

    async def ping(self) -> None:
        """HeadBucket on the staging bucket; submit ``SELECT 1`` and check it was not refused."""
        s3, data = await self._client("s3"), await self._client("redshift-data")
        with self._boundary():
            await s3.head_bucket(Bucket=self.bucket)
            submitted = await data.execute_statement(Sql="SELECT 1", **self.target)
            status = await data.describe_statement(Id=submitted["Id"])
        if status.get("Status") in _FAILED:
            raise BackendUnavailable(f"Redshift refused a query: {_error(status)}")

    async def aclose(self) -> None:
        self._clients.clear()
        await self._stack.aclose()

    async def ensure_schema(self) -> None:
        await self._execute(SCHEMA)
        self._schema_ready = True

    async def load(self, batches: AsyncIterable[PredictionBatch], meta: ImportMeta) -> LoadResult:
        if not self._schema_ready:
            await self.ensure_schema()
        s3, prefix = await self._client("s3"), f"{self.prefix}{meta.import_id}/"
        keys: list[str] = []
        rows = 0
        try:
            async for batch in batches:
                body = await anyio.to_thread.run_sync(_parquet, batch)
                keys.append(f"{prefix}part-{len(keys):05d}.parquet")
                with self._boundary():
                    await s3.put_object(Bucket=self.bucket, Key=keys[-1], Body=body)
                rows += batch.num_rows
            source = f"s3://{self.bucket}/{prefix}" if keys else None
            done = await self._execute(*swap_sql(meta, source, self._iam_role))
        finally:
            with anyio.CancelScope(shield=True):
                await self._unstage(s3, keys)
        deleted = [
            s for s in done.get("SubStatements", []) if str(s.get("QueryString", "")).startswith("DELETE")
        ]
        return LoadResult(rows=rows, replaced=any(int(s.get("ResultRows", 0)) > 0 for s in deleted))

    async def query(
        self, filters: PredictionFilter, *, limit: int = 100, cursor: str | None = None
    ) -> PredictionPage:
        check_page(limit, cursor)
        where, params = _where(filters, cursor)
        records = await self._select(
            f"SELECT {_COLUMNS} FROM predictions{where} ORDER BY id LIMIT {limit + 1}",  # noqa: S608
            params,
        )
        items = tuple(_prediction(row) for row in records[:limit])
        return PredictionPage(items, items[-1].id if len(records) > limit else None)

    async def daily_counts(self, filters: PredictionFilter) -> Sequence[DailyCount]:
        where, params = _where(filters, None)
        records = await self._select(
            "SELECT TRUNC(CONVERT_TIMEZONE('UTC', created_at)) AS day, model_id, COUNT(*)"  # noqa: S608
            f" FROM predictions{where} GROUP BY 1, 2 ORDER BY 1, 2",
            params,
        )
        return [DailyCount(date.fromisoformat(str(day)[:10]), model, int(n)) for day, model, n in records]

    # -- the Data API ----------------------------------------------------------------------------

    async def _execute(self, *sqls: str, params: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
        """Run one statement (with ``params``) or a batch of them (one transaction); wait for it."""
        data = await self._client("redshift-data")
        with self._boundary():
            if len(sqls) == 1:
                extra = {"Parameters": list(params)} if params else {}
                submitted = await data.execute_statement(Sql=sqls[0], **self.target, **extra)
            else:
                submitted = await data.batch_execute_statement(Sqls=list(sqls), **self.target)
            return await self._wait(data, submitted["Id"])

    async def _wait(self, data: Any, statement_id: str) -> dict[str, Any]:
        delay = 0.05
        with anyio.move_on_after(self._poll_timeout):
            while True:
                status: dict[str, Any] = await data.describe_statement(Id=statement_id)
                if status.get("Status") == _DONE:
                    return status
                if status.get("Status") in _FAILED:
                    raise BackendUnavailable(f"Redshift statement failed: {_error(status)}")
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)
        with anyio.CancelScope(shield=True), contextlib.suppress(ClientError, *_UNREACHABLE):
            await data.cancel_statement(Id=statement_id)
        raise BackendUnavailable(f"Redshift statement did not finish in {self._poll_timeout:g}s")

    async def _select(self, sql: str, params: Sequence[dict[str, str]]) -> list[list[Any]]:
        data = await self._client("redshift-data")
        statement_id = (await self._execute(sql, params=params))["Id"]
        records: list[list[Any]] = []
        token: dict[str, str] = {}
        with self._boundary():
            while True:
                page = await data.get_statement_result(Id=statement_id, **token)
                records += [[_value(field) for field in record] for record in page.get("Records", [])]
                if not page.get("NextToken"):
                    return records
                token = {"NextToken": page["NextToken"]}

    async def _unstage(self, s3: Any, keys: list[str]) -> None:
        """Delete the staged objects; a failure is logged, never raised (a bucket rule may expire them)."""
        try:
            for start in range(0, len(keys), 1000):
                batch = [{"Key": key} for key in keys[start : start + 1000]]
                await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        except (ClientError, *_UNREACHABLE) as exc:
            log.warning(
                "redshift_staging_left", bucket=self.bucket, objects=len(keys), error=type(exc).__name__
            )

    async def _client(self, service: str) -> Any:
        """The service's client, created on first use, on the running loop."""
        if service not in self._clients:
            async with self._lock:
                if service not in self._clients:
                    with self._boundary():
                        creator = self._session.client(service, **self._client_args)
                        self._clients[service] = await self._stack.enter_async_context(creator)
        return self._clients[service]

    @contextlib.contextmanager
    def _boundary(self) -> Iterator[None]:
        """Translate botocore/aiohttp errors (code and operation only: messages may echo requests)."""
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            raise BackendUnavailable(
                f"Redshift sink: {exc.operation_name} failed: {code}", code=code
            ) from exc
        except _UNREACHABLE as exc:
            raise BackendUnavailable(f"Redshift sink unreachable: {redact(str(exc))}") from exc


def swap_sql(meta: ImportMeta, source: str | None, iam_role: str) -> list[str]:
    """The statements of one load's transaction; without ``source`` (no rows) only the delete."""
    key = _literal(meta.key.value)
    values = ", ".join(
        _literal(value)
        for value in (meta.import_id, meta.source_job_id, meta.model_id, meta.model_version, meta.stream_id)
    )
    created = _literal(meta.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00"))
    move = (
        "INSERT INTO predictions (import_key, id, import_id, source_job_id, model_id, model_version,"  # noqa: S608
        " stream_id, owner_id, created_at, item_key, label, confidence, probabilities, extra)"
        f" SELECT {key}, {_literal(meta.import_id)} || '-' || LPAD(source_row::VARCHAR, 10, '0'),"
        f" {values}, {_literal(meta.owner_id)}, {created}::TIMESTAMPTZ,"
        " item_key, label, confidence, probabilities, extra"
        " FROM predictions_staging"
    )
    swap = ["LOCK predictions", f"DELETE FROM predictions WHERE import_key = {key}"]  # noqa: S608
    if source is None:
        return swap
    copy = f"COPY predictions_staging FROM {_literal(source)} IAM_ROLE {iam_role} FORMAT AS PARQUET"
    return [_STAGING, copy, *swap, move, "DROP TABLE predictions_staging"]


def _literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    if "\\" in value:  # Redshift reads backslash escapes in literals; the domain never allows one
        raise ValueError("a backslash cannot be sent as a Redshift literal")
    return "'" + value.replace("'", "''") + "'"


def _parquet(batch: PredictionBatch) -> bytes:
    """The batch as one Parquet object, columns in the staging table's order."""
    import pyarrow as pa  # here, not at the top: only loads need Arrow (docs/decisions.md)
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_batches([batch.data]), buffer)
    return buffer.getvalue()


def _error(status: dict[str, Any]) -> str:
    return redact(str(status.get("Error") or status.get("Status") or "unknown error"))[:500]


def _where(f: PredictionFilter, cursor: str | None) -> tuple[str, list[dict[str, str]]]:
    clauses: list[str] = []
    params: list[dict[str, str]] = []
    since, until = (moment.isoformat() if moment else None for moment in (f.time_from, f.time_to))
    for name, clause, value in (
        ("model_id", "model_id = :model_id", f.model_id),
        ("stream_id", "stream_id = :stream_id", f.stream_id),
        ("source_job_id", "source_job_id = :source_job_id", f.source_job_id),
        ("owner_id", "owner_id = :owner_id", f.owner_id),
        ("time_from", "created_at >= CAST(:time_from AS TIMESTAMPTZ)", since),
        ("time_to", "created_at < CAST(:time_to AS TIMESTAMPTZ)", until),
        ("cursor", "id > :cursor", cursor),
    ):
        if value is not None:
            clauses.append(clause)
            params.append({"name": name, "value": value})
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _value(field: dict[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    for kind in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        if kind in field:
            return field[kind]
    return None


def _timestamp(text: str) -> datetime:
    """Redshift's ``2026-03-01 12:00:00.5+00`` as an aware datetime."""
    text = text.replace(" ", "T", 1)
    if re.search(r"[+-]\d\d$", text):
        text += ":00"
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _prediction(row: Sequence[Any]) -> Prediction:
    (pid, import_id, source_job_id, model_id, model_version, stream_id, owner_id, created_at) = row[:8]
    item_key, label, confidence, probabilities, extra = row[8:]
    return Prediction(
        id=pid,
        import_id=import_id,
        source_job_id=source_job_id,
        model_id=model_id,
        model_version=model_version,
        stream_id=stream_id,
        owner_id=owner_id,
        created_at=_timestamp(created_at),
        item_key=item_key,
        label=label,
        confidence=None if confidence is None else float(confidence),
        probabilities=None if probabilities is None else _OBJECT.decode(probabilities),
        extra=None if extra is None else _OBJECT.decode(extra),
    )
