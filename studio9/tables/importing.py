"""Import a CSV, JSON Lines or Parquet file as a table: typed, zstd Parquet part files, streamed.

``import_table`` reads the source a block at a time (``studio9.tables.sources``), converts each
block to the table's column types (``studio9.tables.conversion``) and writes row groups of
``ImportLayout.row_group_rows`` rows into ``part-00000.parquet``, ``part-00001.parquet``…
(``part_rows`` rows each). Memory is a few blocks and one row group, never the file.

Types are fixed by the first block: declared ones (``ImportOptions.columns``) win, else they
are inferred from it (Parquet keeps its own). When a later block has a value that an inferred
type does not take, a value in a column that the first block left empty (inferred from that
block then), or a JSON key the first block lacked, the pass stops writing, reads on to the end
noting every such column, and the import starts again from the top with those columns widened
(int → float → string…), typed or added: the table has one schema and no value is lost, at the
price of reading the file once more (logged as ``table_import_restarted``).

Bad input: a row that does not split into the header's columns, a value that is not valid text
in the declared encoding (UTF-8 checked per value; other encodings are transcoded by pyarrow and
fail as a whole), a value that does not fit a *declared* type, a JSON line that is not an
object. With ``on_error="fail"`` the first such row fails the import with ``ImportFailed``
(row number and column); with ``"skip"`` those rows are left out and written to
``rejected.csv`` (``row,column,reason,text``). Unreadable files raise ``InvalidInput``.

All is written into a staging directory beside ``dest_dir`` (``.<name>.staging-<random>``)
which is renamed to ``dest_dir`` at the very end: after a failure, a cancel or an exception
from ``progress``, the staging directory is removed and ``dest_dir`` does not exist. (Only a
killed process leaves a staging directory behind; it never looks like ``dest_dir``.)
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import attrs
import numpy as np
import pyarrow as pa
import structlog

from studio9.errors import Conflict, InvalidInput
from studio9.tables.chunks import BadRow, Chunk, Retry
from studio9.tables.conversion import (
    ARROW_TYPES,
    TIMESTAMP,
    TIMESTAMP_UTC,
    arrow_type_for_source,
    column_type_of,
    convert,
    infer,
    join,
    variable_type,
    wider,
)
from studio9.tables.sources import detect_format, read_source
from studio9.tables.values import (
    ORDERED_TYPES,
    ColumnSchema,
    ImportCancelled,
    ImportFailed,
    ImportLayout,
    ImportOptions,
    ImportResult,
    SourceFormat,
)
from studio9.tables.writing import REJECTED_FILE, PartWriter, RejectsWriter

__all__ = ["REJECTED_FILE", "import_table"]

#: A pass learns every widening and JSON key of the blocks after its first surprise, so a few
#: passes settle any file; the bound is a safety net.
_MAX_PASSES: Final = 10

log = structlog.get_logger()


def import_table(
    source: Path,
    dest_dir: Path,
    options: ImportOptions,
    *,
    progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    layout: ImportLayout = ImportLayout(),  # noqa: B008 - frozen value object
) -> ImportResult:
    """Import ``source`` into the new directory ``dest_dir`` (see the module doc).

    Args:
        progress: called after each block with a non-decreasing fraction, last with 1.0; it may
            raise (a job being cancelled): the exception propagates and nothing is left.
        cancelled: asked after each block; true stops the import with ``ImportCancelled``.

    Raises:
        ImportFailed: a bad row (``on_error="fail"``).
        InvalidInput: a missing, empty or unreadable file, a declared column it lacks.
        Conflict: ``dest_dir`` exists and is not empty.
    """
    file_format = detect_format(source, options.format)
    if dest_dir.exists() and (not dest_dir.is_dir() or any(dest_dir.iterdir())):
        raise Conflict(f"{dest_dir} exists and is not an empty directory")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = dest_dir.parent / f".{dest_dir.name}.staging-{secrets.token_hex(4)}"
    reporter = _Progress(progress)
    plan = _Plan(block_size=layout.block_size)
    try:
        for _ in range(_MAX_PASSES):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            try:
                done = _Pass(source, staging, file_format, options, layout, plan, reporter, cancelled).run()
            except (_Widen, Retry) as restart:
                plan = plan.after(restart)
                log.info("table_import_restarted", file=source.name, reason=str(restart))
                continue
            break
        else:
            raise InvalidInput(f"{source.name}: the column types did not settle after {_MAX_PASSES} passes")
        reporter.report(1.0)  # the last chance to interrupt: after the rename the table exists
        if dest_dir.exists():
            dest_dir.rmdir()
        staging.rename(dest_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    parts = tuple(dest_dir / part.name for part in done.parts)
    result = ImportResult(
        format=file_format,
        schema=done.schema,
        row_count=done.rows,
        rejected_count=done.rejected,
        parts=parts,
        rejected_file=dest_dir / REJECTED_FILE if done.rejected else None,
        bytes_written=sum(part.stat().st_size for part in parts),
    )
    log.info("table_imported", file=source.name, rows=result.row_count, rejected=result.rejected_count)
    return result


class _Widen(Exception):
    """Inferred types that a later block does not fit: the next pass uses these instead."""

    def __init__(self, types: Mapping[str, pa.DataType]) -> None:
        super().__init__(", ".join(f"{name!r} → {t}" for name, t in types.items()))
        self.types = dict(types)


@attrs.frozen
class _Plan:
    """What earlier passes learnt: a block size, widened types, the JSON keys."""

    block_size: int
    types: Mapping[str, pa.DataType] = attrs.field(factory=dict)
    keys: tuple[str, ...] = ()

    def after(self, restart: _Widen | Retry) -> _Plan:
        if isinstance(restart, _Widen):
            return attrs.evolve(self, types={**self.types, **restart.types})
        block = restart.block_size or self.block_size
        typed = {name: infer(sample, quoted=quoted) for name, (sample, quoted) in restart.samples.items()}
        return attrs.evolve(
            self, block_size=block, keys=restart.keys or self.keys, types={**self.types, **typed}
        )


@attrs.frozen
class _Done:
    schema: tuple[ColumnSchema, ...]
    rows: int
    rejected: int
    parts: list[Path]


class _Progress:
    """Fractions clamped to [0, 1] and never going back (a restart does not rewind the bar)."""

    def __init__(self, callback: Callable[[float], None] | None) -> None:
        self._callback = callback
        self._last = 0.0

    def report(self, fraction: float) -> None:
        self._last = max(self._last, min(1.0, fraction))
        if self._callback is not None:
            self._callback(self._last)


@attrs.define
class _Pass:
    """One read of the source into the staging directory."""

    source: Path
    staging: Path
    format: SourceFormat
    options: ImportOptions
    layout: ImportLayout
    plan: _Plan
    reporter: _Progress
    cancelled: Callable[[], bool] | None
    schema: pa.Schema | None = None
    columns: tuple[ColumnSchema, ...] = ()
    fixed: frozenset[str] = frozenset()  # columns whose type was declared: misfits are errors
    undecided: set[str] = attrs.Factory(set)  # inferred columns without a value so far
    probing: dict[str, pa.DataType] = attrs.Factory(dict)  # widenings found: read on, write no more
    rows: int = 0
    rejected: int = 0
    parts: PartWriter | None = None
    rejects: RejectsWriter | None = None

    def run(self) -> _Done:
        chunks = read_source(
            self.source, self.format, self.options, block_size=self.plan.block_size, keys=self.plan.keys
        )
        try:
            for chunk in chunks:
                if self.schema is None:
                    self._start(chunk)
                self._take(chunk)
                self.reporter.report(chunk.fraction)
                if self.cancelled is not None and self.cancelled():
                    raise ImportCancelled("the import was cancelled")
            if self.parts is None:
                raise InvalidInput(f"{self.source.name} holds no rows and no columns", file=self.source.name)
            if self.probing:
                raise _Widen(self.probing)
            return _Done(self.columns, self.rows, self.rejected, self.parts.close())
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # the source's file closes now, not when collected
                close()
            if self.rejects is not None:
                self.rejects.close()

    # -- the first block fixes the schema ------------------------------------------------------

    def _start(self, chunk: Chunk) -> None:
        names = chunk.batch.schema.names
        if not names:  # JSON Lines without a single object with keys
            if chunk.invalid and self.options.on_error == "fail":
                raise ImportFailed(chunk.invalid[0].row, None, chunk.invalid[0].reason)
            raise InvalidInput(f"{self.source.name} has no columns", file=self.source.name)
        positional = self.format == "csv" and not self.options.header
        folded = {name.casefold() for name in names}
        if not positional and (
            missing := [c.name for c in self.options.columns if c.name.casefold() not in folded]
        ):
            raise InvalidInput(
                f"{self.source.name} has no column {missing[0]!r} (declared in columns)", field="columns"
            )
        fields, columns, fixed, undecided = [], [], set(), set()
        for name, values in zip(names, chunk.batch.columns, strict=True):
            declared = self.options.declared(name)
            text = _text(values) if self.format != "parquet" else values
            if declared is not None and declared.type is not None:
                target = self._declared_type(ARROW_TYPES[declared.type], text)
                fixed.add(name)
            elif name in self.plan.types:
                target = self.plan.types[name]
            elif self.format == "parquet":
                target = arrow_type_for_source(values.type, name)
            else:
                target = infer(text, quoted=name in chunk.quoted)
                if text.null_count == len(text):  # nothing to go by yet: text until a value says more
                    undecided.add(name)
            kind = column_type_of(target)
            if declared is not None and declared.variable_type is not None:
                if declared.variable_type == "continuous" and kind not in ORDERED_TYPES:
                    raise InvalidInput(f"column {name!r} is {kind}: it cannot be continuous", field="columns")
                variable = declared.variable_type
            else:
                variable = variable_type(kind, convert(text, target).values if kind == "integer" else None)
            fields.append(pa.field(name, target))
            columns.append(ColumnSchema(name=name, type=kind, variable_type=variable))
        self.schema = pa.schema(fields)
        self.columns, self.fixed, self.undecided = tuple(columns), frozenset(fixed), undecided
        self.parts = PartWriter(self.staging, self.schema, self.layout)

    def _declared_type(self, target: pa.DataType, values: pa.Array) -> pa.DataType:
        """A declared timestamp keeps a zone when the source has one (a zoned Parquet column,
        or text whose sample all carries an offset)."""
        if target != TIMESTAMP:
            return target
        if self.format == "parquet":
            zoned = pa.types.is_timestamp(values.type) and values.type.tz is not None
        else:
            zoned = infer(values, quoted=True) == TIMESTAMP_UTC
        return TIMESTAMP_UTC if zoned else TIMESTAMP

    # -- every block ---------------------------------------------------------------------------

    def _take(self, chunk: Chunk) -> None:
        """Convert, check and write one block. Once an inferred type proves too narrow the pass
        only *probes*: it reads on, widening as it goes, and writes nothing, so that the next
        pass knows every widening at once."""
        assert self.schema is not None
        assert self.parts is not None
        failing = self.options.on_error == "fail"
        bad: dict[int, tuple[str, str]] = {}  # batch index → (column, reason), first column wins
        arrays = []
        for field, values in zip(self.schema, chunk.batch.columns, strict=True):
            if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
                text = convert(values, pa.string(), first_only=failing)
                _note(bad, field.name, text.bad)
                values = text.values
            target = self.probing.get(field.name, field.type)
            if field.name in self.undecided and values.null_count < len(values):
                self.undecided.discard(field.name)
                if (inferred := infer(values, quoted=field.name in chunk.quoted)) != pa.string():
                    target = self.probing[field.name] = inferred
            fixed = field.name in self.fixed
            typed = convert(values, target, first_only=failing or not fixed)
            if typed.bad and fixed:
                _note(bad, field.name, typed.bad)
            elif typed.bad:
                self.probing[field.name] = join(target, wider(target, values))
            arrays.append(typed.values)
        problems = [BadRow(int(chunk.rows[i]), column, reason, "") for i, (column, reason) in bad.items()]
        problems += chunk.invalid
        if failing and problems:  # not a matter of types: the next pass would fail here too
            first = min(problems, key=lambda problem: problem.row)
            raise ImportFailed(first.row, first.column, first.reason)
        if self.probing:
            return
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        if problems:
            self._reject(chunk, bad)
            keep = np.ones(batch.num_rows, dtype=bool)
            keep[list(bad)] = False
            batch = batch.filter(pa.array(keep))
        self.parts.add(batch)
        self.rows += batch.num_rows

    def _reject(self, chunk: Chunk, bad: dict[int, tuple[str, str]]) -> None:
        if self.rejects is None:
            self.rejects = RejectsWriter(self.staging / REJECTED_FILE)
        rows = [
            BadRow(int(chunk.rows[i]), column, reason, chunk.text(i, self.options.delimiter))
            for i, (column, reason) in bad.items()
        ]
        for row in sorted([*rows, *chunk.invalid], key=lambda r: r.row):
            self.rejects.write(row)
            self.rejected += 1


def _text(values: pa.Array) -> pa.Array:
    """A CSV column's valid text (values that are not UTF-8 become null): the inference sample."""
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        return convert(values, pa.string()).values
    return values


def _note(bad: dict[int, tuple[str, str]], column: str, found: Mapping[int, str]) -> None:
    for index, reason in found.items():
        bad.setdefault(index, (column, reason))
