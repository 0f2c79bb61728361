"""The Arrow side of predictions: the batch and export schemas, and the memory pool.

Kept apart from ``domain`` because building them imports pyarrow: only the import path (reader,
checks, sink encoders) and exports import this module, so a server that never runs either does
not load pyarrow (docs/decisions.md, *Processes*).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

__all__ = ["ARROW_POOL", "BATCH_SCHEMA", "EXPORT_SCHEMA"]

#: What the importer hands a sink: the source row number (1-based, header not counted) and
#: the validated columns; JSON columns are UTF-8 JSON object text.
BATCH_SCHEMA: Final = pa.schema(
    [
        pa.field("source_row", pa.int64(), nullable=False),
        pa.field("item_key", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("confidence", pa.float64()),
        pa.field("probabilities", pa.string()),
        pa.field("extra", pa.string()),
    ]
)

#: Columns of an export, in order; JSON columns are JSON text.
EXPORT_SCHEMA: Final = pa.schema(
    [
        ("id", pa.string()),
        ("import_id", pa.string()),
        ("source_job_id", pa.string()),
        ("model_id", pa.string()),
        ("model_version", pa.string()),
        ("stream_id", pa.string()),
        ("owner_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("item_key", pa.string()),
        ("label", pa.string()),
        ("confidence", pa.float64()),
        ("probabilities", pa.string()),
        ("extra", pa.string()),
    ]
)

#: Where the import path (reader, checks, sink encoders) allocates its Arrow buffers: the system
#: allocator. Arrow's default, mimalloc, commits its arenas eagerly, as transparent huge pages
#: where the kernel allows them (``madvise`` mode, common): a streamed 1,000,000-row import
#: peaked ~40 MB higher with it (``benchmarks/README.md``). Passed explicitly, call by call,
#: because the default pool is process-wide and belongs to whoever embeds Studio9.
ARROW_POOL: Final = pa.system_memory_pool()
