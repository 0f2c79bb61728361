"""The prediction importer: column mapping, validation (fail / skip), progress, idempotent
re-imports through the service, export, and a 1,000,000-row CSV streamed into SQLite and
PostgreSQL in bounded memory."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.errors import InvalidInput
from studio9.ids import new_id
from studio9.predictions import (
    ImportKey,
    ImportMeta,
    MalformedPredictions,
    Prediction,
    PredictionFilter,
    PredictionService,
    PredictionSink,
    import_predictions,
    rejected_csv,
)
from studio9.predictions.arrow import ARROW_POOL
from studio9.predictions.checks import check_columns
from studio9.predictions.domain import MAX_PAGE
from tests.contract.test_prediction_sink import SINKS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER = "item_key,label,confidence,probabilities,camera\n"


@pytest.fixture(params=["memory", "sqlite"])
async def sink(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PredictionSink]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/predictions.db"
    async with bootstrap.open_adapter(
        SINKS, url, setting="STUDIO9_SINK_URL", options=AdapterOptions()
    ) as opened:
        yield opened


def write(tmp_path: Path, text: str, name: str = "predictions.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def meta(**changes: Any) -> ImportMeta:
    values: dict[str, Any] = {"import_id": new_id(), "model_id": "m1", "owner_id": "u1", "created_at": NOW}
    values.update(changes)
    values["key"] = ImportKey(
        owner_id=values["owner_id"], model_id=values["model_id"], source_job_id="job1", file_digest="f" * 64
    )
    return ImportMeta(**values)


async def stored(sink: PredictionSink) -> list[Prediction]:
    return list((await sink.query(PredictionFilter(), limit=MAX_PAGE)).items)


def good_rows(count: int, first: int = 1) -> str:
    return "".join(
        f'k{i},cat,0.{i % 10},"{{""cat"": 0.{i % 10}}}",c{i}\n' for i in range(first, first + count)
    )


# -- mapping ---------------------------------------------------------------------------------


async def test_csv_columns_map_to_predictions(sink: PredictionSink, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "item_key,label,confidence,probabilities,camera,score\n"
        'a.jpg,cat,0.75,"{""cat"": 0.75, ""dog"": 0.25}",north,1.5\n'
        '"multi\nline.jpg",dog, ,,"south, west",\n'
        "c.jpg,été,1,{},,NA\n",
    )
    m = meta()
    result = await import_predictions(sink, path, m)
    assert (result.rows, result.replaced, result.rejected, result.import_id) == (3, False, (), m.import_id)
    first, second, third = await stored(sink)
    assert (first.id, first.item_key, first.label, first.confidence) == (
        m.prediction_id(1),
        "a.jpg",
        "cat",
        0.75,
    )
    assert first.probabilities == {"cat": 0.75, "dog": 0.25}
    assert first.extra == {"camera": "north", "score": "1.5"}  # CSV extras stay text
    assert (second.item_key, second.confidence, second.probabilities) == ("multi\nline.jpg", None, None)
    assert second.extra == {"camera": "south, west", "score": ""}
    assert (third.label, third.confidence, third.probabilities, third.extra) == (
        "été",
        1.0,
        {},
        {"camera": "", "score": "NA"},
    )
    assert (first.model_id, first.owner_id, first.source_job_id, first.created_at) == (
        "m1",
        "u1",
        "job1",
        NOW,
    )


async def test_only_the_required_columns(sink: PredictionSink, tmp_path: Path) -> None:
    await import_predictions(sink, write(tmp_path, "label,item_key\ncat,k1\n"), meta())
    [only] = await stored(sink)
    assert (only.item_key, only.label, only.confidence, only.probabilities, only.extra) == (
        "k1",
        "cat",
        None,
        None,
        None,
    )


async def test_parquet_keeps_its_types(sink: PredictionSink, tmp_path: Path) -> None:
    path = tmp_path / "predictions.parquet"
    table = pa.table(
        {
            "item_key": pa.array([101, 102]),
            "label": ["cat", "dog"],
            "confidence": pa.array([0.5, None], pa.float32()),
            "probabilities": pa.array(
                [{"cat": 0.5, "dog": 0.5}, None], pa.struct([("cat", pa.float64()), ("dog", pa.float64())])
            ),
            "frame": pa.array([7, 8], pa.int32()),
            "seen": pa.array([NOW, NOW], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path, row_group_size=1)
    await import_predictions(sink, path, meta())
    first, second = await stored(sink)
    assert (first.item_key, first.confidence, first.probabilities) == ("101", 0.5, {"cat": 0.5, "dog": 0.5})
    assert first.extra == {"frame": 7, "seen": "2026-03-01T12:00:00Z"}
    assert (second.confidence, second.probabilities, second.extra["frame"]) == (None, None, 8)


async def test_parquet_map_probabilities(sink: PredictionSink, tmp_path: Path) -> None:
    path = tmp_path / "predictions.bin"  # no suffix needed: the magic bytes tell
    probabilities = pa.array([[("cat", 0.9), ("dog", 0.1)]], pa.map_(pa.string(), pa.float64()))
    pq.write_table(pa.table({"item_key": ["k"], "label": ["cat"], "probabilities": probabilities}), path)
    await import_predictions(sink, path, meta())
    assert (await stored(sink))[0].probabilities == {"cat": 0.9, "dog": 0.1}


# -- validation ------------------------------------------------------------------------------

BAD_ROWS = [
    ("k5,cat,abc,,x\n", "confidence 'abc' is not a number"),
    ("k5,cat,1.5,,x\n", "confidence 1.5 is not between 0 and 1"),
    ("k5,cat,-0.1,,x\n", "confidence -0.1 is not between 0 and 1"),
    ("k5,,0.5,,x\n", "label is empty"),
    (",cat,0.5,,x\n", "item_key is empty"),
    ("k5,cat,0.5,[1],x\n", "probabilities is not a JSON object"),
    ('k5,cat,0.5,"{""a"":",x\n', "probabilities is not a JSON object"),
    ("k5,cat,0.5\n", "expected 5 columns, got 3 (line 6)"),
    (f"k5,{'x' * 1025},0.5,,x\n", "label is longer than 1024 bytes"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_ROWS)
async def test_a_malformed_row_fails_the_import_and_loads_nothing(
    sink: PredictionSink, tmp_path: Path, bad: str, reason: str
) -> None:
    path = write(tmp_path, HEADER + good_rows(4) + bad + good_rows(6, first=6))
    with pytest.raises(MalformedPredictions) as caught:
        await import_predictions(sink, path, meta(), chunk_rows=2)  # earlier chunks were staged
    assert (caught.value.row, caught.value.reason) == (5, reason)
    assert str(caught.value) == f"row 5: {reason}"
    assert await stored(sink) == []


async def test_a_failed_reimport_keeps_the_previous_one(sink: PredictionSink, tmp_path: Path) -> None:
    await import_predictions(sink, write(tmp_path, HEADER + good_rows(3)), meta())
    before = await stored(sink)
    with pytest.raises(MalformedPredictions):
        await import_predictions(sink, write(tmp_path, HEADER + good_rows(3) + "k,cat,9,,x\n"), meta())
    assert await stored(sink) == before


async def test_skip_mode_loads_the_good_rows_and_returns_the_bad(
    sink: PredictionSink, tmp_path: Path
) -> None:
    text = (
        HEADER
        + good_rows(2)
        + "k3,cat,2,,x\n"
        + good_rows(1, first=4)
        + "k5,cat\n"
        + ",dog,0.1,,y\n"
        + good_rows(2, first=7)
    )
    m = meta()
    result = await import_predictions(sink, write(tmp_path, text), m, on_error="skip", chunk_rows=3)
    assert result.rows == 5
    assert [(r.row, r.reason) for r in result.rejected] == [
        (3, "confidence 2.0 is not between 0 and 1"),
        (5, "expected 5 columns, got 2 (line 6)"),
        (6, "item_key is empty"),
    ]
    assert result.rejected[0].values == {
        "item_key": "k3",
        "label": "cat",
        "confidence": "2",
        "probabilities": "",
        "camera": "x",
    }
    assert result.rejected[1].values == {"_text": "k5,cat"}
    assert [p.id for p in await stored(sink)] == [m.prediction_id(row) for row in (1, 2, 4, 7, 8)]
    written = list(csv.reader(io.StringIO(rejected_csv(result.rejected).decode())))
    assert written[0] == ["row", "reason", "values"]
    assert (
        written[1][:2] == ["3", "confidence 2.0 is not between 0 and 1"] and '"camera":"x"' in written[1][2]
    )


async def test_too_many_rejects_fail_the_import(sink: PredictionSink, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + good_rows(2) + "a,,,,\nb,,,,\n")
    with pytest.raises(InvalidInput, match="more than 1 rows were rejected"):
        await import_predictions(sink, path, meta(), on_error="skip", max_rejected=1)
    assert await stored(sink) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item_key,confidence\nk,0.5\n", "lacks the required columns ['label']"),
        ("item_key,label,label\nk,a,b\n", "repeats columns ['label']"),
        ("", "is empty"),
    ],
)
async def test_unusable_files_are_invalid_input(
    sink: PredictionSink, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        await import_predictions(sink, write(tmp_path, text), meta())


async def test_a_row_longer_than_a_block_fails_in_either_mode(sink: PredictionSink, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + good_rows(2) + f"k,cat,0.5,,{'x' * (1 << 20)}\n" + good_rows(2, first=4))
    for mode in ("fail", "skip"):
        with pytest.raises(InvalidInput, match="has a row longer than 256 KiB"):
            await import_predictions(sink, path, meta(), on_error=mode)  # type: ignore[arg-type]
    assert await stored(sink) == []


async def test_formats_are_checked(sink: PredictionSink, tmp_path: Path) -> None:
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"item_key": ["k"], "label": ["cat"]}), parquet)
    with pytest.raises(InvalidInput, match="is a Parquet file, not CSV"):
        await import_predictions(sink, parquet, meta(), file_format="csv")
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        await import_predictions(sink, write(tmp_path, HEADER + good_rows(1)), meta(), file_format="parquet")
    with pytest.raises(InvalidInput, match="no such file"):
        await import_predictions(sink, tmp_path / "missing.csv", meta())
    with pytest.raises(InvalidInput):
        await import_predictions(sink, parquet, meta(), on_error="ignore")  # type: ignore[arg-type]


# Values on both sides of every shortcut the column checks take (one msgspec pass over a chunk's
# objects, no regex for plain numbers or for text without quotes, backslashes or control bytes).
PROBABILITIES = [
    '{"a": 1}', "{}", ' {"a": 1}', '{"a": 1} ', "", "   ", "\u00a0", "\x1c", "[1]", '{"a": [1', "2]}",
    '{"a": 1},{"b": 2}', '{"a": 1e999}', '{"a": 1e99}', '{"a": 1.5e-999}', '{"a": 17976931348623159e292}',
    '{"a": "\\ud800"}', '{"a": "été"}', '{"a": ' + "1" * 250 + ".0}", '{"a": ' + "1" * 250 + "}",
    '{"a": 1x}', '{"a": "}"}', "{", "}", '{"a": {"b": []}}', "null",
]  # fmt: skip
EXTRAS = [
    "",
    "plain",
    'with "quote"',
    "back\\slash",
    "tab\there",
    "new\nline",
    "\x00",
    "été",
    "\u2028",
    '\\"',
]
CONFIDENCES = [
    "0.5",
    "",
    " 0.25 ",
    "1e-3",
    "1.",
    ".5",
    "+.5",
    "-0",
    "1",
    "1.5",
    "abc",
    "nan",
    "inf",
    ".",
    "1e",
    "--1",
]


def _expected(probabilities: list[str], extras: list[str], confidences: list[str]) -> tuple[list[Any], ...]:
    """The rules one value at a time, as the checks were first written (first problem wins:
    confidence is checked before probabilities)."""
    problems: dict[int, str] = {}
    numbers: list[float | None] = []
    for index, text in enumerate(confidences):
        if not text.strip():
            numbers.append(None)
        elif not re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", text):
            problems.setdefault(index, f"confidence {text!r} is not a number")
            numbers.append(None)
        elif not 0 <= float(text) <= 1:
            problems.setdefault(index, f"confidence {float(text)} is not between 0 and 1")
            numbers.append(None)
        else:
            numbers.append(float(text))
    objects: list[str | None] = []
    for index, text in enumerate(probabilities):
        objects.append(text if text.strip() else None)
        try:
            valid = not text.strip() or isinstance(json.loads(text, parse_constant=_no_constant), dict)
        except ValueError:
            valid = False
        if not valid or re.search(r"1e999|e292|ud800", text):  # JSON that msgspec refuses too
            problems.setdefault(index, "probabilities is not a JSON object")
    texts = [
        json.dumps({"camera": value, 'o"dd\\': value}, ensure_ascii=False, separators=(",", ":"))
        for value in extras
    ]
    return objects, texts, numbers, [problems.get(i) for i in range(len(probabilities))]


def _no_constant(name: str) -> None:
    raise ValueError(name)


@pytest.mark.parametrize("seed", range(40))
def test_column_checks_decide_as_row_by_row(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 12)
    probabilities = [rng.choice(PROBABILITIES) for _ in range(n)]
    if seed % 4 == 0:  # mostly clean chunks: the shortcuts must carry them
        probabilities = [rng.choice(PROBABILITIES[:2]) for _ in range(n)]
    extras = [rng.choice(EXTRAS) + rng.choice(EXTRAS) for _ in range(n)]
    confidences = [rng.choice(CONFIDENCES[: 8 if seed % 3 else None]) for _ in range(n)]
    chunk = pa.record_batch(
        {
            "item_key": ["k"] * n,
            "label": ["cat"] * n,
            "confidence": confidences,
            "probabilities": probabilities,
            "camera": extras,
            'o"dd\\': extras,
        }
    )
    problems: dict[int, str] = {}
    _, _, confidence, objects, extra = check_columns(chunk, problems)
    want_objects, want_extra, want_numbers, want_problems = _expected(probabilities, extras, confidences)
    assert objects.to_pylist() == want_objects
    assert extra.to_pylist() == want_extra
    assert [problems.get(i) for i in range(n)] == want_problems
    got = confidence.to_pylist()
    assert [got[i] for i in range(n) if i not in problems] == [
        want_numbers[i] for i in range(n) if i not in problems
    ]


# -- progress, cancellation ------------------------------------------------------------------


async def test_progress_rises_to_one(sink: PredictionSink, tmp_path: Path) -> None:
    seen: list[float] = []
    await import_predictions(
        sink, write(tmp_path, HEADER + good_rows(50)), meta(), on_progress=seen.append, chunk_rows=8
    )
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3


async def test_a_progress_callback_raising_cancels_and_loads_nothing(
    sink: PredictionSink, tmp_path: Path
) -> None:
    class Cancelled(Exception):
        pass

    calls = 0

    def cancel_on_third(_: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        await import_predictions(
            sink, write(tmp_path, HEADER + good_rows(50)), meta(), on_progress=cancel_on_third, chunk_rows=8
        )
    assert await stored(sink) == []


# -- the service: idempotent re-imports, export ----------------------------------------------


async def test_reimporting_a_file_for_a_source_job_keeps_one_copy(
    sink: PredictionSink, tmp_path: Path
) -> None:
    service = PredictionService(sink)
    path = write(tmp_path, HEADER + good_rows(4))
    first = await service.import_file(path, model_id="m1", owner_id="u1", source_job_id="job-7")
    again = await service.import_file(path, model_id="m1", owner_id="u1", source_job_id="job-7")
    assert (first.replaced, again.replaced, again.key) == (False, True, first.key)
    copy = write(tmp_path, path.read_text(), name="same-bytes.csv")
    await service.import_file(copy, model_id="m1", owner_id="u1", source_job_id="job-7")
    assert len(await stored(sink)) == 4
    await service.import_file(path, model_id="m1", owner_id="u1", source_job_id="job-8")
    await service.import_file(path, model_id="m1", owner_id="u1")
    assert len(await stored(sink)) == 12
    counts = await service.daily_counts(PredictionFilter(model_id="m1"))
    assert sum(count.count for count in counts) == 12


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
async def test_export_streams_every_matching_prediction(
    sink: PredictionSink, tmp_path: Path, file_format: str
) -> None:
    service = PredictionService(sink, export_page=3)  # several pages
    await service.import_file(
        write(tmp_path, HEADER + good_rows(7)), model_id="m1", owner_id="u1", source_job_id="j1"
    )
    await service.import_file(
        write(tmp_path, HEADER + good_rows(2), name="b.csv"), model_id="m2", owner_id="u1"
    )
    chunks = [chunk async for chunk in service.export(PredictionFilter(model_id="m1"), file_format)]  # type: ignore[arg-type]
    assert len(chunks) > 2
    data = b"".join(chunks)
    table = pq.read_table(io.BytesIO(data)) if file_format == "parquet" else pcsv.read_csv(io.BytesIO(data))
    assert table.num_rows == 7
    assert table.column("item_key").to_pylist() == [f"k{i}" for i in range(1, 8)]
    assert table.column("extra").to_pylist()[0] == '{"camera":"c1"}'
    assert set(table.column("model_id").to_pylist()) == {"m1"}


# -- a million rows, bounded memory ----------------------------------------------------------

MILLION = 1_000_000


@pytest.fixture(scope="module")
def million_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000,000 predictions (~110 MB of CSV), written by pyarrow in slices."""
    path = tmp_path_factory.mktemp("million") / "predictions.csv"
    labels = pa.array(["cat", "dog", "cow"])
    with pcsv.CSVWriter(str(path), _million_slice(0, 1, labels).schema) as writer:
        for start in range(0, MILLION, 200_000):
            writer.write_table(_million_slice(start, 200_000, labels))
    return path


def _million_slice(start: int, count: int, labels: pa.Array) -> pa.Table:
    index = np.arange(start, start + count)
    confidence = pa.array(np.random.default_rng(start).random(count))
    label = pc.take(labels, pa.array(index % 3))
    text = pa.array(index).cast(pa.string())
    return pa.table(
        {
            "item_key": pc.binary_join_element_wise("images/2026/03/01/item-", text, ".jpg", ""),
            "label": label,
            "confidence": confidence,
            "probabilities": pc.binary_join_element_wise(
                '{"', label, '": ', confidence.cast(pa.string()), "}", ""
            ),
            "camera": pc.binary_join_element_wise("cam-", pa.array(index % 7).cast(pa.string()), ""),
        }
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_million_rows_stream_in_bounded_memory(
    backend: str, million_csv: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path}/million.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    size = million_csv.stat().st_size  # noqa: ASYNC240 - a stat, once
    arrow_peak = 0

    def sample(_: float) -> None:
        nonlocal arrow_peak
        arrow_peak = max(arrow_peak, pa.total_allocated_bytes() + ARROW_POOL.bytes_allocated())

    async with bootstrap.open_adapter(
        SINKS, url, setting="STUDIO9_SINK_URL", options=AdapterOptions()
    ) as opened:
        tracemalloc.start()
        try:
            result = await PredictionService(opened).import_file(
                million_csv, model_id="m1", owner_id="u1", source_job_id="big", on_progress=sample
            )
            _, traced_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.rows == MILLION and result.rejected == ()
        assert sum(c.count for c in await opened.daily_counts(PredictionFilter(model_id="m1"))) == MILLION
        last = await opened.query(
            PredictionFilter(), limit=1, cursor=f"{result.import_id}-{MILLION - 1:010d}"
        )
        assert [p.item_key for p in last.items] == ["images/2026/03/01/item-999999.jpg"]
    # Python objects and Arrow buffers both stay far below the file: it was never loaded whole.
    assert size > 100_000_000
    assert traced_peak < size / 5, (traced_peak, size)
    assert arrow_peak < size / 2, (arrow_peak, size)
