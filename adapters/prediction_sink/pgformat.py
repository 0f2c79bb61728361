"""The frame of PostgreSQL's binary ``COPY`` of prediction rows: the columns, header and trailer.

Apart from the tuples' encoder (``adapters/prediction_sink/pgcopy.py``, numpy and pyarrow) so that the
PostgreSQL sink can name its columns without loading either: only a load needs them.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["COLUMNS", "HEADER", "TRAILER"]

#: The fields of each tuple, in order: the ``predictions`` table of
#: ``adapters/prediction_sink/postgresql.py``.
COLUMNS: Final = ("key", "item_key", "label", "confidence", "probabilities", "extra")
#: Signature, flags, header extension length (PostgreSQL docs, "Binary Format").
HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: A field count of -1 ends the data.
TRAILER: Final = struct.pack(">h", -1)
