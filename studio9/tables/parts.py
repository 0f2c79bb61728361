"""A table's Parquet part files as one sequence of rows: footers, row groups, positions.

A row's *position* is its index in the table's natural order (part after part, row group after
row group, from 0). ``TableParts`` maps positions to row groups with the footers alone, so a
read at any position decodes only the row groups it returns. Footers are cached per file
(path, size and modification time: part files are immutable), so a page read parses none.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import pyarrow as pa
import pyarrow.parquet as pq

from studio9.errors import InvalidInput

__all__ = ["PartsArg", "RowGroup", "TableParts"]

PartsArg = Path | Sequence[Path]
_FOOTER_CACHE: Final = 512


@functools.lru_cache(maxsize=_FOOTER_CACHE)
def _footer(path: str, size: int, mtime_ns: int) -> Any:
    return pq.read_metadata(path)


@attrs.frozen
class RowGroup:
    """One row group: which part and group it is, its first position and its row count."""

    part: int
    index: int
    first: int
    rows: int


class TableParts:
    """The part files of one table (in order), read through their cached footers."""

    def __init__(self, parts: PartsArg) -> None:
        paths = sorted(parts.glob("part-*.parquet")) if isinstance(parts, Path) else [Path(p) for p in parts]
        if not paths:
            raise InvalidInput("the table has no part files")
        self.paths = paths
        self._footers = [self._read_footer(path) for path in paths]
        self.schema: pa.Schema = self._footers[0].schema.to_arrow_schema()
        for path, footer in zip(paths[1:], self._footers[1:], strict=True):
            if not footer.schema.to_arrow_schema().equals(self.schema):
                raise InvalidInput(f"the part {path.name} has another schema than {paths[0].name}")
        self.groups = [
            RowGroup(part, index, 0, footer.row_group(index).num_rows)
            for part, footer in enumerate(self._footers)
            for index in range(footer.num_row_groups)
        ]
        firsts = list(itertools.accumulate((g.rows for g in self.groups), initial=0))
        self.groups = [attrs.evolve(g, first=first) for g, first in zip(self.groups, firsts, strict=False)]
        self.total_rows = firsts[-1]
        self._firsts = firsts[:-1]
        self._files: dict[int, Any] = {}

    @staticmethod
    def _read_footer(path: Path) -> Any:
        try:
            stat = path.stat()
            return _footer(str(path), stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError as exc:
            raise InvalidInput(f"the part {path.name} does not exist") from exc
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"the part {path.name} is not a readable Parquet file: {exc}") from exc

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)

    def column(self, name: str, field: str) -> str:
        """The table's name for ``name`` (exact, else ignoring case: names are unique so)."""
        names: list[str] = self.schema.names
        if name in names:
            return name
        folded = [n for n in names if n.casefold() == name.casefold()]
        if len(folded) == 1:
            return folded[0]
        raise InvalidInput(f"{field}: the table has no column {name!r}", field=field, column=name)

    def columns(self, names: Sequence[str] | None, field: str = "columns") -> list[str]:
        """``names`` checked (all columns when ``None``), in the given order, each once."""
        if names is None:
            return self.names
        chosen = [self.column(name, field) for name in names]
        if not chosen:
            raise InvalidInput(f"{field}: name at least one column", field=field)
        return list(dict.fromkeys(chosen))

    def from_position(self, position: int) -> Iterator[RowGroup]:
        """The row groups from the one holding ``position`` on."""
        start = max(0, bisect.bisect_right(self._firsts, position) - 1)
        return iter(self.groups[start:])

    def read(self, group: RowGroup, columns: Sequence[str]) -> pa.Table:
        """One row group's ``columns``, decoded."""
        return self._file(group.part).read_row_group(group.index, columns=list(columns))

    def _file(self, part: int) -> Any:
        if part not in self._files:
            self._files[part] = pq.ParquetFile(str(self.paths[part]), metadata=self._footers[part])
        return self._files[part]

    def batches(self, columns: Sequence[str], batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Every row of ``columns`` in natural order, a batch at a time (one row group in memory)."""
        for part in range(len(self.paths)):
            yield from self._file(part).iter_batches(batch_size=batch_rows, columns=list(columns))

    def close(self) -> None:
        for parquet in self._files.values():
            parquet.close()
        self._files.clear()

    def __enter__(self) -> TableParts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
