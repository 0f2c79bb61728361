"""PostgreSQL's binary ``COPY`` format for prediction rows, built a column at a time.

The rows of a ``PredictionBatch`` become one buffer of binary COPY tuples without a Python
loop over rows: numpy writes the fixed-width parts (field counts, lengths, the confidence as
a big-endian double) and one ``binary_join_element_wise`` interleaves them with the text of
each column. The server then parses no CSV, no numbers and no quoting; it only checks the
text's encoding and the JSON.

Row layout (``predictions`` of ``adapters/prediction_sink/postgresql.py``): ``key`` int8
(``adapters/prediction_sink/keys.py``), ``item_key`` and ``label`` text, ``confidence`` float8,
``probabilities`` and ``extra`` json (whose binary form is the text). The frame around the
tuples (columns, header, trailer) is ``adapters/prediction_sink/pgformat.py``; this module, which loads
numpy and pyarrow, is imported by a load only.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.prediction_sink.keys import row_keys
from adapters.prediction_sink.pgformat import COLUMNS
from studio9.predictions.arrow import ARROW_POOL as POOL

__all__ = ["copy_rows"]

_NULL_FIELD = pa.scalar(struct.pack(">i", -1), pa.binary())
_EMPTY = pa.scalar(b"", pa.binary())


def copy_rows(batch: pa.RecordBatch, import_no: int) -> memoryview:
    """The tuples of ``batch`` (``BATCH_SCHEMA``) for ``COPY predictions (COLUMNS) … (FORMAT binary)``."""
    n = batch.num_rows
    if not n:
        return memoryview(b"")
    source_row, item_key, label, confidence, probabilities, extra = batch.columns
    head = np.empty(n, dtype=[("fields", ">i2"), ("key_length", ">i4"), ("key", ">i8")])
    head["fields"] = len(COLUMNS)
    head["key_length"] = 8
    head["key"] = row_keys(import_no, source_row).to_numpy()
    joined = pc.binary_join_element_wise(
        _fixed(head),
        *_text(item_key),
        *_text(label),
        _float8(confidence),
        *_text(probabilities),
        *_text(extra),
        _EMPTY,
        null_handling="replace",  # a null field's -1 length is its header: nothing follows it
        null_replacement=b"",
        memory_pool=POOL,
    )
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1)
    data = joined.buffers()[2]
    return memoryview(data)[offsets[0] : offsets[n]]


def _lengths(values: pa.Array) -> np.ndarray:
    lengths: np.ndarray = pc.binary_length(values).to_numpy(zero_copy_only=False)  # NaN for nulls
    return np.nan_to_num(lengths).astype(np.int64) if values.null_count else lengths


def _fixed(values: np.ndarray) -> pa.Array:
    """Rows of a numpy structured array as binary values, one per row (no copy: the offsets
    are a multiple of the width)."""
    width, n = values.dtype.itemsize, len(values)
    offsets = pa.py_buffer(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    return pa.Array.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(values)])


def _binary(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.binary(), memory_pool=POOL)  # no copy: the same bytes


def _header(values: pa.Array, lengths: np.ndarray) -> pa.Array:
    """Each field's length word; -1 for a null."""
    words = _fixed(lengths.astype(">i4"))
    return (
        pc.if_else(pc.is_null(values), _NULL_FIELD, words, memory_pool=POOL) if values.null_count else words
    )


def _text(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    return _header(values, _lengths(values)), _binary(values)


def _float8(values: pa.Array) -> pa.Array:
    fields = np.empty(len(values), dtype=[("length", ">i4"), ("value", ">f8")])
    fields["length"] = 8
    fields["value"] = values.to_numpy(zero_copy_only=False)  # NaN for nulls: replaced below
    words = _fixed(fields)
    return (
        pc.if_else(pc.is_null(values), _NULL_FIELD, words, memory_pool=POOL) if values.null_count else words
    )
