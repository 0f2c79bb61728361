"""JSON Lines for the import: one object per line, a block of lines at a time.

Lines are decoded with msgspec; values become text (numbers as written, booleans
``true``/``false``, objects and arrays as JSON text, null as null) and go through the same type
inference as CSV cells, except that a column of JSON strings is never read as numbers. The
row number is the line number (blank lines are no row). The columns are the keys of the first
block, in order; a key first seen later makes the reader gather every such key (and a sample of
its values) to the end of the file and ask for another pass (``Retry``).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import pyarrow as pa

from studio9.errors import InvalidInput
from studio9.tables.chunks import MAX_BLOCK, BadRow, Chunk, Retry
from studio9.tables.values import ImportOptions, column_names

__all__ = ["read_jsonl"]

_Record = tuple[int, dict[str, Any], str]  # line number, object, text
#: Lines kept while no object has told the columns yet.
_HELD: Final = 1000


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return msgspec.json.encode(value).decode()


def read_jsonl(path: Path, options: ImportOptions, block_size: int, keys: Sequence[str]) -> Iterator[Chunk]:
    """Lines a block at a time; the first block's keys (or ``keys``) are the columns."""
    known: list[str] | None = list(keys) or None
    new: dict[str, tuple[list[str | None], bool] | None] = {}  # keys the first block lacked: a sample
    held: list[BadRow] = []  # lines before the first object with keys
    held_records: list[_Record] = []
    decoder = msgspec.json.Decoder()
    utf8 = codecs.lookup(options.encoding).name == "utf-8"
    with path.open("rb") as handle:
        size = max(1, path.stat().st_size)
        line_number, rest = 0, b""
        while True:
            data = handle.read(block_size)
            buffer = rest + data
            if not data:  # the end: the last line may lack its newline
                lines, rest = [buffer] if buffer else [], b""
            elif (cut := buffer.rfind(b"\n")) < 0:
                if len(buffer) > MAX_BLOCK:
                    raise InvalidInput(
                        f"{path.name} has a line longer than {MAX_BLOCK >> 20} MiB", file=path.name
                    )
                rest = buffer
                continue
            else:
                lines, rest = buffer[:cut].split(b"\n"), buffer[cut + 1 :]
            records: list[_Record] = []
            invalid: list[BadRow] = []
            for raw in lines:
                line_number += 1
                _parse_line(raw, line_number, decoder, utf8, options.encoding, records, invalid)
            seen = dict.fromkeys(key for _, record, _ in records for key in record)
            if known is None:  # the columns come with the first object that has keys
                held_records += records
                held += invalid
                if not seen and data and len(held) + len(held_records) < _HELD:
                    continue
                known, records, invalid, held, held_records = list(seen), held_records, held, [], []
            new.update((key, None) for key in seen if key not in known and key not in new)
            _sample(new, records)
            if (records or invalid) and not new:  # after a new key: only gather the keys to come
                yield _json_chunk(records, invalid, known, handle.tell() / size)
            if not data:
                if new:
                    raise _retry(known, new)
                return


def _sample(new: dict[str, tuple[list[str | None], bool] | None], records: list[_Record]) -> None:
    """The first values seen of each new key (as text), so the next pass can type its column."""
    for key, sample in new.items():
        values = (
            [record[key] for _, record, _ in records if record.get(key) is not None] if sample is None else []
        )
        if values:
            new[key] = ([_json_text(v) for v in values], any(isinstance(v, str) for v in values))


def _retry(known: list[str], new: dict[str, tuple[list[str | None], bool] | None]) -> Retry:
    keys = [*known, *new]
    names = dict(zip(keys, column_names(keys), strict=True))
    samples = {names[k]: (pa.array(s[0], pa.string()), s[1]) for k, s in new.items() if s is not None}
    return Retry(f"new keys {list(new)[:5]}", keys=keys, samples=samples)


def _parse_line(
    raw: bytes,
    number: int,
    decoder: msgspec.json.Decoder[Any],
    utf8: bool,
    encoding: str,
    records: list[_Record],
    invalid: list[BadRow],
) -> None:
    if not raw.strip():
        return
    text = raw.decode("utf-8" if utf8 else encoding, "backslashreplace").rstrip("\r")
    try:
        value = decoder.decode(raw if utf8 else raw.decode(encoding).encode())
    except UnicodeDecodeError:
        invalid.append(BadRow(number, None, f"the line is not valid {encoding} text", text))
        return
    except msgspec.DecodeError as exc:
        reason = (
            "the line is not valid UTF-8 text"
            if "UTF-8" in str(exc)
            else f"the line is not valid JSON: {exc}"
        )
        invalid.append(BadRow(number, None, reason, text))
        return
    if not isinstance(value, dict):
        invalid.append(BadRow(number, None, "the line is not a JSON object", text))
        return
    records.append((number, value, text))


def _json_chunk(records: list[_Record], invalid: list[BadRow], keys: list[str], fraction: float) -> Chunk:
    names = column_names(keys)
    columns, quoted = [], set()
    for key, name in zip(keys, names, strict=True):
        values = [record.get(key) for _, record, _ in records]
        if any(isinstance(v, str) for v in values):
            quoted.add(name)
        columns.append(pa.array([_json_text(v) for v in values], type=pa.string()))
    batch = pa.RecordBatch.from_arrays(columns, names=names)
    rows = np.array([number for number, _, _ in records], dtype=np.int64)
    lines = [text for _, _, text in records]
    return Chunk(batch, rows, invalid, fraction, frozenset(quoted), lines)
