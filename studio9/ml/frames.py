"""Tables to pandas frames and back, for the ML jobs (pyarrow and pandas load here, in the job).

A table version's Parquet parts become one frame; a scored frame (the rows, then the model's
``prediction`` and ``probability_<class>`` columns) becomes one Parquet file that
``TableFiles.write`` stores as a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Prefix of the columns a scored table adds; a table's own column of that name is renamed.
PREDICTION: str = "prediction"


def read_frame(paths: Sequence[Path]) -> Any:
    """The rows of a table version's Parquet parts, as one pandas DataFrame."""
    import pyarrow.parquet as pq

    return pq.read_table([str(p) for p in paths]).to_pandas()


def write_scored(frame: Any, predictions: Mapping[str, Sequence[Any]], path: Path) -> int:
    """``frame`` with the ``predictions`` columns after its own, written to ``path`` as Parquet.

    A column of ``frame`` with a prediction column's name keeps its values under ``<name>_input``.
    Returns the rows written."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    scored = frame.copy()
    for name in predictions:
        if name in scored.columns:
            scored = scored.rename(columns={name: f"{name}_input"})
    added = pd.DataFrame({name: list(values) for name, values in predictions.items()}, index=scored.index)
    table = pa.Table.from_pandas(pd.concat([scored, added], axis=1), preserve_index=False)
    pq.write_table(table, str(path))
    return int(table.num_rows)
