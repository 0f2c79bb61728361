"""Per-column statistics for the profiler: a ``ColumnProfile`` folds in one arrow chunk at a time.

Per chunk, every aggregate comes from ``pyarrow.compute`` (min/max, mean/variance,
value_counts) or numpy (sketches); Python only loops over a chunk's *distinct* values while
they are counted exactly, and over at most ``heavy_hitters`` of them after that. State per
column is bounded by the limits, never by the number of rows.

Conventions (documented in the profile's contract, see ``studio9.tables.profiling``):

* ``count`` is the number of non-null values; ``nulls`` the nulls. For float columns NaN and
  ±inf are counted in ``count`` and in ``non_finite``, and left out of every other statistic.
* ``std`` is the *sample* standard deviation (ddof = 1; ``None`` below two values), from
  per-chunk mean/variance merged with Chan et al.'s parallel formula (Welford's, chunked).
* Quantiles are nearest-rank (the smallest value with at least ``ceil(q·n)`` values ≤ it);
  ``quantile_rank_error`` is their guaranteed normalised rank error (0.0 = exact).
* Histograms have equal-width bins from min to max; counts come from the quantile sketch,
  so they are exact when ``quantile_rank_error`` is 0 and always sum to the finite count.
* Timestamps are counted and compared as epoch ints in their own unit (exact at ns) and
  rendered as ISO 8601 to the microsecond; dates as ISO 8601 too.
"""

from __future__ import annotations

import datetime
import enum
import heapq
import math
from collections.abc import Hashable
from typing import Any, Final

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from studio9.tables.sketches import (
    DistinctSketch,
    HashArray,
    HeavyHitters,
    QuantileSketch,
    hash_strings,
    mix64,
)

#: Quantile names of the profile and the fraction each stands for.
QUANTILES: Final = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}


class Kind(enum.StrEnum):
    """The profile's column types."""

    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"
    DATETIME = "datetime"
    DATE = "date"


NUMERIC: Final = frozenset({Kind.INTEGER, Kind.FLOAT})


@attrs.frozen(kw_only=True)
class ProfileLimits:
    """Knobs that bound a column's memory; the defaults suit files of any size."""

    top_k: int = 10
    histogram_bins: int = 20
    max_exact_distinct: int = 100_000
    quantile_capacity: int = 4096
    distinct_k: int = 4096
    heavy_hitters: int = 1024


def kind_of(arrow_type: pa.DataType) -> Kind | None:
    """The profile type of an arrow type; ``None`` for types profiled by count only (nested)."""
    t = pa.types
    if t.is_dictionary(arrow_type):
        return kind_of(arrow_type.value_type)
    checks = (
        (t.is_integer, Kind.INTEGER),
        (t.is_floating, Kind.FLOAT),
        (t.is_decimal, Kind.FLOAT),
        (t.is_boolean, Kind.BOOLEAN),
        (t.is_timestamp, Kind.DATETIME),
        (t.is_date, Kind.DATE),
    )
    for check, kind in checks:
        if check(arrow_type):
            return kind
    textual = (t.is_string, t.is_large_string, t.is_binary, t.is_large_binary, t.is_time, t.is_null)
    textual += tuple(getattr(t, name) for name in ("is_string_view", "is_binary_view") if hasattr(t, name))
    return Kind.STRING if any(check(arrow_type) for check in textual) else None


@attrs.define
class Moments:
    """Count, mean and sum of squared deviations, merged chunk by chunk (Chan et al. 1979)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def merge(self, n: int, mean: float, m2: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None


class ColumnProfile:
    """Streaming statistics of one column; ``update`` per chunk, ``result`` once at the end."""

    def __init__(self, name: str, arrow_type: pa.DataType, limits: ProfileLimits) -> None:
        self.name = name
        self.kind = kind_of(arrow_type)
        self.count = 0
        self.nulls = 0
        self.non_finite = 0
        self._limits = limits
        self._min: Any = None
        self._max: Any = None
        self._moments = Moments()
        self._quantiles = QuantileSketch(limits.quantile_capacity) if self.kind in NUMERIC else None
        self._exact: dict[Hashable, int] | None = {}
        self._value_type: pa.DataType | None = None
        self._timestamp_type: pa.DataType | None = None
        self._distinct: DistinctSketch | None = None
        self._heavy: HeavyHitters | None = None

    def update(self, column: pa.Array) -> None:
        """Fold in one chunk of this column."""
        self.nulls += column.null_count
        values = column.drop_null()
        self.count += len(values)
        if self.kind is None or len(values) == 0:
            return
        values = self._canonical(values)
        if values is None or len(values) == 0:
            return
        self._update_range(values)
        if self.kind in NUMERIC:
            self._update_moments(values)
        self._update_frequencies(values)

    def result(self) -> dict[str, Any]:
        """The column's JSON-serialisable profile."""
        numeric = self.kind in NUMERIC and self._moments.n > 0
        return {
            "name": self.name,
            "type": (self.kind or Kind.STRING).value,
            "count": self.count,
            "nulls": self.nulls,
            "non_finite": self.non_finite,
            **self._distinct_result(),
            "min": self._render(self._min),
            "max": self._render(self._max),
            "mean": self._moments.mean if numeric else None,
            "std": self._moments.std if numeric else None,
            **self._quantile_result(),
            **self._top_values_result(),
            "histogram": self._histogram() if numeric else None,
        }

    # -- per chunk -------------------------------------------------------------------------

    def _canonical(self, values: pa.Array) -> pa.Array | None:
        """One arrow type per kind (float64, epoch int64, date32, utf8); ``None`` if unusable."""
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if self.kind is Kind.FLOAT:
            values = values.cast(pa.float64())
            finite = values.filter(pc.is_finite(values))
            self.non_finite += len(values) - len(finite)
            values = finite
        elif self.kind is Kind.DATETIME:  # epoch ints in the column's unit: exact at any precision
            self._timestamp_type = values.type
            values = values.cast(pa.int64())
        elif self.kind is Kind.DATE:
            values = values.cast(pa.date32())
        elif self.kind is Kind.STRING and not pa.types.is_string(values.type):
            try:
                values = values.cast(pa.string())
            except pa.ArrowInvalid:  # binary that is not UTF-8 text: keep counting, drop the rest
                self._drop_value_stats()
                return None
        self._value_type = values.type
        return values

    def _update_range(self, values: pa.Array) -> None:
        extremes = pc.min_max(values)
        low, high = extremes["min"].as_py(), extremes["max"].as_py()
        if self._min is None or low < self._min:
            self._min = low
        if self._max is None or high > self._max:
            self._max = high

    def _update_moments(self, values: pa.Array) -> None:
        floats = values.cast(pa.float64(), safe=False)
        n = len(floats)
        mean: float = pc.mean(floats).as_py()
        variance: float = pc.variance(floats, ddof=0).as_py()
        self._moments.merge(n, mean, variance * n)
        assert self._quantiles is not None
        self._quantiles.add(floats.to_numpy(zero_copy_only=False))

    def _update_frequencies(self, values: pa.Array) -> None:
        counted = pc.value_counts(values)
        uniques, counts = counted.field("values"), counted.field("counts").to_numpy()
        if self._exact is not None:
            for value, count in zip(uniques.to_pylist(), counts.tolist(), strict=True):
                self._exact[value] = self._exact.get(value, 0) + count
            if len(self._exact) > self._limits.max_exact_distinct:
                self._go_approximate()
            return
        assert self._distinct is not None
        assert self._heavy is not None
        self._distinct.add(_hashes(uniques))
        keep, cut = HeavyHitters.cut(counts, self._heavy.capacity)
        survivors = uniques.take(pa.array(keep, type=pa.int64())).to_pylist()
        self._heavy.add(zip(survivors, (counts[keep] - cut).tolist(), strict=True), error=cut)

    def _go_approximate(self) -> None:
        """Past ``max_exact_distinct``: hand the exact counts to the sketches and drop them."""
        assert self._exact is not None
        self._distinct = DistinctSketch(self._limits.distinct_k)
        self._distinct.add(_hashes(pa.array(list(self._exact), type=self._value_type)))
        self._heavy = HeavyHitters(max(self._limits.heavy_hitters, self._limits.top_k))
        self._heavy.add(self._exact.items())
        self._exact = None

    def _drop_value_stats(self) -> None:
        self.kind = None
        self._min = self._max = self._quantiles = self._distinct = self._heavy = None
        self._exact = {}

    # -- results ---------------------------------------------------------------------------

    def _distinct_result(self) -> dict[str, Any]:
        if self.kind is None:
            return {"distinct": None, "distinct_approximate": False}
        if self._exact is not None:
            return {"distinct": len(self._exact), "distinct_approximate": False}
        assert self._distinct is not None
        return {"distinct": self._distinct.estimate(), "distinct_approximate": True}

    def _quantile_result(self) -> dict[str, Any]:
        sketch = self._quantiles
        if sketch is None or sketch.count == 0:
            return {"quantiles": None, "quantile_rank_error": None}
        answers = sketch.quantiles(list(QUANTILES.values()))
        if self.kind is Kind.INTEGER:  # nearest-rank answers are data values: keep them integers
            return {
                "quantiles": {name: int(v) for name, v in zip(QUANTILES, answers, strict=True)},
                "quantile_rank_error": sketch.rank_error,
            }
        return {
            "quantiles": dict(zip(QUANTILES, answers, strict=True)),
            "quantile_rank_error": sketch.rank_error,
        }

    def _top_values_result(self) -> dict[str, Any]:
        if self.kind is None:
            return {"top_values": None, "top_values_approximate": False, "top_values_max_error": 0}
        approximate = self._exact is None
        if self._exact is not None:
            items, error = list(self._exact.items()), 0
        else:
            assert self._heavy is not None
            items, error = self._heavy.items(), self._heavy.max_error
        top = heapq.nsmallest(self._limits.top_k, items, key=lambda item: (-item[1], item[0]))
        return {
            "top_values": [{"value": self._render(value), "count": count} for value, count in top],
            "top_values_approximate": approximate,
            "top_values_max_error": error,
        }

    def _render(self, value: Any) -> Any:
        """A value as JSON: timestamps and dates in ISO 8601, the rest is JSON-native already."""
        if value is None:
            return None
        if self._timestamp_type is not None:
            return _timestamp_iso(value, self._timestamp_type)
        return value.isoformat() if isinstance(value, datetime.date) else value

    def _histogram(self) -> dict[str, Any]:
        assert self._quantiles is not None
        low, high = float(self._min), float(self._max)
        if low == high:
            return {"edges": [low, high], "counts": [self._quantiles.count]}
        edges = np.linspace(low, high, self._limits.histogram_bins + 1)
        return {"edges": [float(e) for e in edges], "counts": self._quantiles.histogram(edges)}


def _hashes(values: pa.Array) -> HashArray:
    """64-bit hashes of a canonical array, consistent between chunks and the exact counts."""
    if pa.types.is_string(values.type):
        return hash_strings(values.to_pylist())
    if pa.types.is_floating(values.type):
        bits = pc.add(values, 0.0).to_numpy(zero_copy_only=False).view(np.uint64)  # -0.0 → 0.0
    elif pa.types.is_date32(values.type):
        bits = values.view(pa.int32()).cast(pa.int64()).to_numpy(zero_copy_only=False).view(np.uint64)
    else:  # integers, booleans, timestamps
        bits = values.cast(pa.int64(), safe=False).to_numpy(zero_copy_only=False).view(np.uint64)
    return mix64(bits)


def _timestamp_iso(epoch: int, arrow_type: pa.DataType) -> str:
    """ISO 8601 of an epoch int in ``arrow_type``'s unit (shown to the microsecond)."""
    stamp = pa.array([epoch], pa.int64()).cast(arrow_type)
    micros: datetime.datetime = stamp.cast(pa.timestamp("us", arrow_type.tz), safe=False)[0].as_py()
    return micros.isoformat()
