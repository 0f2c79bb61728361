"""Bounded-memory, mergeable sketches behind the column profiler (pure numpy, no I/O).

* ``QuantileSketch``: a randomised compactor hierarchy (the equal-capacity form of KLL /
  Manku-Rajagopalan-Lindsay) for quantiles and histograms, with a guaranteed rank-error bound.
* ``DistinctSketch``: K-minimum-values (KMV) estimate of the number of distinct values.
* ``HeavyHitters``: a Misra-Gries summary for the most frequent values.

Each takes a whole chunk at a time: the work per chunk is vectorised, and Python loops only
ever run over at most ``capacity`` items, so profiling cost stays in numpy/arrow.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
HashArray = npt.NDArray[np.uint64]
CountArray = npt.NDArray[np.int64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def mix64(bits: HashArray) -> HashArray:
    """SplitMix64 finaliser: spreads 64-bit keys (ints, float bits) uniformly for KMV.

    Identity-like keys (0, 1, 2…) would otherwise all be "minimum values"; the mixer is a
    bijection, so distinct keys keep distinct hashes.
    """
    with np.errstate(over="ignore"):
        z = bits + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def hash_strings(values: Iterable[str]) -> HashArray:
    """64-bit BLAKE2b of each string's UTF-8 bytes: stable across processes (unlike ``hash``)."""
    digests = (int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little") for v in values)
    return np.fromiter(digests, dtype=np.uint64)


class QuantileSketch:
    """Quantiles and histograms of a stream of floats in O(capacity · log2(n / capacity)) memory.

    Level ``h`` holds items of weight ``2**h``. When a level reaches ``capacity`` items it is
    sorted and every other item (starting at a random 0 or 1) moves up one level with twice
    the weight; an odd item out stays. The total weight therefore always equals the number
    of values added, so histogram counts sum exactly to the count.

    Error bound: one compaction at level ``h`` moves the rank of any value by at most
    ``2**h``. The sketch adds that up as it goes, so ``rank_error`` is a guaranteed (not
    probabilistic) bound on ``|estimated rank - true rank| / n`` for every quantile. In
    practice it is below ``log2(n / capacity) / capacity`` (≈ 0.2 % for n = 1e6,
    capacity = 4096), and because the random offsets make errors cancel, the typical error
    is far smaller (standard deviation ≤ √2 / capacity). With fewer than ``capacity``
    values nothing is compacted and every answer is exact.
    """

    def __init__(self, capacity: int = 4096, *, seed: int = 0) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self._capacity = capacity
        self._levels: list[FloatArray] = [np.empty(0, dtype=np.float64)]
        self._rng = np.random.default_rng(seed)
        self._count = 0
        self._error_weight = 0

    @property
    def count(self) -> int:
        return self._count

    @property
    def rank_error(self) -> float:
        """Guaranteed bound on the normalised rank error of any answer (0.0 = exact)."""
        return self._error_weight / self._count if self._count else 0.0

    def add(self, values: FloatArray) -> None:
        """Add a chunk of (finite) values."""
        self._count += int(values.size)
        self._levels[0] = np.concatenate((self._levels[0], values.astype(np.float64, copy=False)))
        self._compress()

    def merge(self, other: QuantileSketch) -> None:
        """Fold ``other`` in: same-level buffers concatenate, then compact as usual."""
        for level, items in enumerate(other._levels):
            if level == len(self._levels):
                self._levels.append(np.empty(0, dtype=np.float64))
            self._levels[level] = np.concatenate((self._levels[level], items))
        self._count += other._count
        self._error_weight += other._error_weight
        self._compress()

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Nearest-rank quantiles: the smallest value whose cumulative weight reaches ``ceil(q·n)``."""
        values, weights = self._weighted()
        if values.size == 0:
            raise ValueError("no values")
        cumulative = np.cumsum(weights)
        answers = []
        for q in qs:
            target = max(1.0, math.ceil(q * self._count - 1e-9))
            index = min(int(np.searchsorted(cumulative, target, side="left")), values.size - 1)
            answers.append(float(values[index]))
        return answers

    def histogram(self, edges: FloatArray) -> list[int]:
        """Weighted counts per bin (numpy semantics: the last bin includes its right edge)."""
        values, weights = self._weighted()
        counts, _ = np.histogram(values, bins=edges, weights=weights)
        return [round(float(c)) for c in counts]

    def _compress(self) -> None:
        level = 0
        while level < len(self._levels):
            if self._levels[level].size >= self._capacity:
                self._compact(level)
            level += 1

    def _compact(self, level: int) -> None:
        items = np.sort(self._levels[level])
        odd = items.size % 2
        promoted = items[int(self._rng.integers(2)) : items.size - odd : 2]
        self._levels[level] = items[items.size - odd :].copy()
        if level + 1 == len(self._levels):
            self._levels.append(np.empty(0, dtype=np.float64))
        self._levels[level + 1] = np.concatenate((self._levels[level + 1], promoted))
        self._error_weight += 2**level

    def _weighted(self) -> tuple[FloatArray, FloatArray]:
        values = np.concatenate(self._levels)
        weights = np.concatenate([np.full(items.size, 2.0**h) for h, items in enumerate(self._levels)])
        order = np.argsort(values, kind="stable")
        return values[order], weights[order]


class DistinctSketch:
    """K-minimum-values estimate of the number of distinct 64-bit hashes.

    Keeps the ``k`` smallest distinct hashes. While fewer than ``k`` were seen the answer
    is exact (up to 64-bit hash collisions); after that it is ``(k - 1) / u_k`` with ``u_k``
    the k-th smallest hash scaled to (0, 1], an unbiased estimate with relative standard
    error ≈ ``1 / sqrt(k - 2)`` (1.6 % for k = 4096; within ±5 % about 99.8 % of the time).
    """

    def __init__(self, k: int = 4096) -> None:
        if k < 3:
            raise ValueError("k must be at least 3")
        self._k = k
        self._minimums: HashArray = np.empty(0, dtype=np.uint64)

    @property
    def is_exact(self) -> bool:
        return self._minimums.size < self._k

    def add(self, hashes: HashArray) -> None:
        if self._minimums.size == self._k:
            hashes = hashes[hashes < self._minimums[-1]]
        self._minimums = np.union1d(self._minimums, hashes)[: self._k]

    def estimate(self) -> int:
        if self.is_exact:
            return int(self._minimums.size)
        kth = (float(self._minimums[-1]) + 1.0) / 2.0**64
        return round((self._k - 1) / kth)


class HeavyHitters:
    """Misra-Gries summary with ``capacity`` counters, fed a chunk's exact counts at a time.

    Merging (Agarwal et al., "Mergeable summaries", 2012): add the counts up, then if more
    than ``capacity`` counters remain subtract the (capacity+1)-th largest count from all and
    drop those left at zero. Each reported count is a lower bound that is at most
    ``max_error`` (the sum of the amounts subtracted, itself ≤ n / (capacity + 1)) below the
    true count, and every value occurring more than ``max_error`` times is kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.max_error = 0
        self._counts: dict[Hashable, int] = {}

    @staticmethod
    def cut(counts: CountArray, capacity: int) -> tuple[npt.NDArray[np.intp], int]:
        """Which of a chunk's counts survive a Misra-Gries reduction, and the amount subtracted.

        Lets the caller prune a large chunk in numpy before turning values into Python objects.
        """
        if counts.size <= capacity:
            return np.arange(counts.size), 0
        threshold = int(np.partition(counts, counts.size - capacity - 1)[counts.size - capacity - 1])
        return np.flatnonzero(counts > threshold), threshold

    def add(self, counts: Iterable[tuple[Hashable, int]], *, error: int = 0) -> None:
        """Add (value, count) pairs; ``error`` is what the caller already cut from them."""
        for value, count in counts:
            self._counts[value] = self._counts.get(value, 0) + count
        self.max_error += error
        if len(self._counts) > self.capacity:
            threshold = sorted(self._counts.values(), reverse=True)[self.capacity]
            self._counts = {v: c - threshold for v, c in self._counts.items() if c > threshold}
            self.max_error += threshold

    def items(self) -> list[tuple[Hashable, int]]:
        return list(self._counts.items())
