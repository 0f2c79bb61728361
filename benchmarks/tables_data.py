"""The generated data of ``tables.py`` and ``tables_http.py``: endless batches of mixed columns,
a CSV of a given size, and a table's part files laid out as an import writes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

BATCH_ROWS = 262_144  # rows generated at a time
ROW_GROUP_ROWS, PART_GROUPS = 65_536, 64  # studio9.tables.values.ImportLayout's defaults
CITIES = [f"city{i:02d}" for i in range(50)]
NAMES = [f"name-{i:05d}" for i in range(5000)]


def batches(first_id: int = 0, seed: int = 13) -> Iterator[Any]:
    """Endless record batches of mixed columns, ids counting up from ``first_id``."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    cities, names = pa.array(CITIES), pa.array(NAMES)
    start = first_id
    while True:
        n = BATCH_ROWS
        yield pa.RecordBatch.from_pydict(
            {
                "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "qty": pa.array(rng.integers(0, 10_000, n)),
                "price": pa.array(np.round(rng.random(n) * 1000, 2)),
                "score": pa.array(rng.standard_normal(n)),
                "name": names.take(pa.array(rng.integers(0, len(NAMES), n))),
                "city": cities.take(pa.array(rng.integers(0, len(CITIES), n))),
                "day": pa.array(rng.integers(18_000, 20_000, n).astype("int32")).cast(pa.date32()),
                "at": pa.array(rng.integers(1_500_000_000, 1_800_000_000, n)).cast(pa.timestamp("s")),
            }
        )
        start += n


def write_csv(path: Path, megabytes: int) -> int:
    import pyarrow.csv as pcsv

    target, writer = megabytes * 1_000_000, None
    with path.open("wb") as sink:
        for batch in batches():
            writer = writer or pcsv.CSVWriter(sink, batch.schema)
            writer.write_batch(batch)
            if sink.tell() >= target:
                break
        assert writer is not None
        writer.close()
    return path.stat().st_size


def write_table(directory: Path, rows: int, part_groups: int = PART_GROUPS) -> list[Path]:
    """``rows`` rows as part files laid out as an import writes them (``part_groups`` row groups a
    part; a large one gives one file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir()
    parts: list[Path] = []
    written, writer, in_part = 0, None, 0
    part_rows = ROW_GROUP_ROWS * part_groups
    for batch in batches():
        table = pa.Table.from_batches([batch]).slice(0, rows - written)
        while table.num_rows:
            if writer is None:
                parts.append(directory / f"part-{len(parts):05d}.parquet")
                writer, in_part = pq.ParquetWriter(parts[-1], table.schema, compression="zstd"), 0
            piece = table.slice(0, part_rows - in_part)
            writer.write_table(piece, row_group_size=ROW_GROUP_ROWS)
            in_part, written, table = (
                in_part + piece.num_rows,
                written + piece.num_rows,
                table.slice(piece.num_rows),
            )
            if in_part == part_rows:
                writer.close()
                writer = None
        if written >= rows:
            break
    if writer is not None:
        writer.close()
    return parts
