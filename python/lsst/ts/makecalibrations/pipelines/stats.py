# This file is part of ts_makecalibrations.
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU
# General Public License as published by the Free Software Foundation, either version 3 of the
# License, or (at your option) any later version.
#
# This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; without
# even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU
# General Public License for more details.
#
# You should have received a copy of the GNU General Public License along with this program (the
# LICENSE file at the top of the repository). If not, see <https://www.gnu.org/licenses/>.
#
# SPDX-License-Identifier: GPL-3.0-or-later

"""afw-compatible image statistics in numpy: clipped mean / stdev / variance and plain statistics.

The calibration tasks (ISR overscan residuals, combine, flat measurement, cp_verify statistics, PTC and
defects) all need the same statistics that afw's ``Statistics.cc`` computes. This module reproduces
them (``MEANCLIP``, ``STDEVCLIP``, ``VARIANCECLIP``, ``MEAN``, ``STDEV``, ``MEDIAN``) on numpy
arrays, both for one set of pixels (`clipped_stats`) and vectorised pixel by pixel across a stack of
images (`clipped_stats_stack`), which is what the calibration combine needs. `border_mask` is the
frame of edge pixels the PTC (per amp) and the defects (per detector) leave out.

Clipped statistics, as afw defines them, with ``nsigma`` and ``niter``:

* only finite values that are not masked take part;
* iteration 0 clips around the median with half-width ``nsigma * 0.741301109252802 * IQR``
  (quartiles with linear interpolation);
* each later iteration clips around the previous clipped mean with half-width
  ``nsigma * sqrt(previous clipped variance)``;
* an iteration keeps values with ``|x - center| < half-width`` and computes their mean and their
  variance with ``n - 1`` in the denominator; if nothing survives, the previous estimate is kept
  (the median and the plain variance before the first clip).

May import: numpy only.
"""

from __future__ import annotations

__all__ = [
    "IQR_TO_STDEV",
    "STACK_CHUNK_PIXELS",
    "ClippedStats",
    "border_mask",
    "clipped_stats",
    "clipped_stats_of_usable",
    "clipped_stats_stack",
    "linear_percentiles",
    "mean_clip",
    "median_of",
    "order_statistics",
    "plain_moments",
    "plain_moments_of_usable",
    "plain_stats",
    "stdev_clip",
    "stack_quantiles",
    "usable_pixels",
    "usable_values",
]

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

IQR_TO_STDEV = 0.741301109252802
"""Conversion from the inter-quartile range to a Gaussian standard deviation (afw's constant)."""


@dataclasses.dataclass(frozen=True)
class ClippedStats:
    """Result of a clipped-statistics computation.

    For `clipped_stats` every attribute is a scalar; for `clipped_stats_stack` every attribute is an
    array with the stack axis removed.

    Attributes
    ----------
    mean : `float` or `numpy.ndarray`
        Clipped mean (afw ``MEANCLIP``).
    variance : `float` or `numpy.ndarray`
        Clipped variance with ``n - 1`` in the denominator (afw ``VARIANCECLIP``).
    n : `int` or `numpy.ndarray`
        Number of values kept by the last iteration.
    median : `float` or `numpy.ndarray`
        Median of the usable (finite, unmasked) values.
    n_input : `int` or `numpy.ndarray`
        Number of usable values before clipping.
    """

    mean: float | np.ndarray
    variance: float | np.ndarray
    n: int | np.ndarray
    median: float | np.ndarray
    n_input: int | np.ndarray

    @property
    def stdev(self) -> float | np.ndarray:
        """Clipped standard deviation (afw ``STDEVCLIP``)."""
        return np.sqrt(self.variance)


def _usable(values: np.ndarray, bad: npt.ArrayLike | None) -> np.ndarray:
    """Return the boolean array of values that are finite and not flagged in ``bad``."""
    usable = np.isfinite(values)
    if bad is not None:
        usable &= ~np.asarray(bad, dtype=bool)
    return usable


def _mean_var(x: np.ndarray) -> tuple[float, float]:
    """Mean and ``n - 1`` variance of a 1-d float64 array (NaN where undefined)."""
    n = x.size
    if n == 0:
        return np.nan, np.nan
    mean = float(x.mean())
    if n < 2:
        return mean, np.nan
    deviation = x - mean
    np.square(deviation, out=deviation)
    return mean, float(np.sum(deviation) / (n - 1))


def clipped_stats(
    values: npt.ArrayLike,
    bad: npt.ArrayLike | None = None,
    nsigma: float = 3.0,
    niter: int = 3,
) -> ClippedStats:
    """Compute afw-style clipped statistics of one set of pixels.

    Parameters
    ----------
    values : array-like
        Pixel values (any shape; flattened).
    bad : array-like of `bool`, optional
        True for pixels to ignore (afw's ``andMask``); same shape as ``values``.
    nsigma : `float`, optional
        Clipping threshold in standard deviations.
    niter : `int`, optional
        Number of clipping iterations.

    Returns
    -------
    stats : `ClippedStats`
        Scalar statistics; NaN when no usable pixel exists.
    """
    source = usable_pixels(values, bad)
    return clipped_stats_of_usable(source.astype(np.float64, copy=False), nsigma, niter, source=source)


def clipped_stats_of_usable(
    x: np.ndarray, nsigma: float = 3.0, niter: int = 3, source: np.ndarray | None = None
) -> ClippedStats:
    """`clipped_stats` of pixels already reduced to the usable ones, for callers that also need other
    statistics of the same pixels.

    ``x`` is the 1-d float64 array of the usable (finite, unmasked) pixels (`usable_values`);
    ``source``, if given, the same pixels in their own float type (``x`` is their exact widening).

    The values are those of the plain formulation (``numpy.percentile`` quartiles of ``x``, each pass
    keeping ``x[abs(x - centre) < half_width]``), bit for bit: the pixels are sorted once in their own
    type (numpy's SIMD sort; the quartiles read from it with numpy's formula), the values each pass
    keeps, an interval, are found on the sorted copy with the same float64 test, and the kept pixels
    are picked from ``x`` in its own order by comparing with that interval's end values, so every mean
    and variance sums the same values in the same order.
    """
    n_input = x.size
    if n_input == 0:
        return ClippedStats(mean=np.nan, variance=np.nan, n=0, median=np.nan, n_input=0)
    source = x if source is None else source
    ordered = np.sort(source)
    q25, median, q75 = linear_percentiles(ordered, (25.0, 50.0, 75.0), is_sorted=True, dtype=np.float64)
    within = np.empty(source.shape, dtype=bool)
    upper_ok = np.empty(source.shape, dtype=bool)
    # The plain variance is the estimate only if no iteration keeps anything: computed then.
    mean, var, clipped = median, np.nan, False
    n = n_input
    for iteration in range(niter):
        if iteration == 0:
            center, half_width = median, nsigma * IQR_TO_STDEV * (q75 - q25)
        else:
            if not np.isfinite(var):
                break
            center, half_width = mean, nsigma * np.sqrt(var)
        bounds = _kept_interval(ordered, float(center), float(half_width))
        if bounds is None:
            kept = x[np.abs(x - center) < half_width]
        else:
            np.greater_equal(source, bounds[0], out=within)
            np.less_equal(source, bounds[1], out=upper_ok)
            kept = x[np.logical_and(within, upper_ok, out=within)]
        if kept.size == 0:
            break
        n = kept.size
        mean, var = _mean_var(kept)
        clipped = True
    if not clipped:
        var = _mean_var(x)[1]
    return ClippedStats(
        mean=float(mean), variance=float(var), n=int(n), median=float(median), n_input=n_input
    )


def _kept_interval(ordered: np.ndarray, center: float, half_width: float) -> tuple[Any, Any] | None:
    """The smallest and largest of the sorted values ``v`` with ``abs(v - center) < half_width`` (in
    float64), or None when none is (or the bounds cannot be proven: the caller then tests every value).

    The kept values are an interval (the rounded ``v - center`` is monotonic in ``v``), so its ends,
    found by binary search from ``center -/+ half_width`` and checked against their outer neighbours,
    decide exactly which values it holds.
    """
    if not (math.isfinite(center) and math.isfinite(half_width)) or half_width <= 0:
        return None
    n = ordered.size
    kind = ordered.dtype.type

    def keep(value: Any) -> bool:
        return abs(float(value) - center) < half_width

    low = int(np.searchsorted(ordered, kind(center - half_width), "left"))
    while low > 0 and keep(ordered[low - 1]):
        low = int(np.searchsorted(ordered, ordered[low - 1], "left"))
    while low < n and not keep(ordered[low]) and ordered[low] < center:
        low = int(np.searchsorted(ordered, ordered[low], "right"))
    high = int(np.searchsorted(ordered, kind(center + half_width), "right"))
    while high < n and keep(ordered[high]):
        high = int(np.searchsorted(ordered, ordered[high], "right"))
    while high > 0 and not keep(ordered[high - 1]) and ordered[high - 1] > center:
        high = int(np.searchsorted(ordered, ordered[high - 1], "left"))
    proven = (
        low < high
        and keep(ordered[low])
        and keep(ordered[high - 1])
        and (low == 0 or not keep(ordered[low - 1]))
        and (high == n or not keep(ordered[high]))
    )
    return (ordered[low], ordered[high - 1]) if proven else None


def mean_clip(
    values: npt.ArrayLike, bad: npt.ArrayLike | None = None, nsigma: float = 3.0, niter: int = 3
) -> float:
    """Return afw ``MEANCLIP`` of ``values`` (see `clipped_stats`)."""
    return float(clipped_stats(values, bad, nsigma, niter).mean)


def stdev_clip(
    values: npt.ArrayLike, bad: npt.ArrayLike | None = None, nsigma: float = 3.0, niter: int = 3
) -> float:
    """Return afw ``STDEVCLIP`` of ``values`` (see `clipped_stats`)."""
    return float(clipped_stats(values, bad, nsigma, niter).stdev)


def plain_stats(values: npt.ArrayLike, bad: npt.ArrayLike | None = None) -> dict[str, float]:
    """Return afw ``MEAN``, ``STDEV`` (``n - 1``), ``MEDIAN`` and ``NPOINT`` of the usable pixels.

    Parameters
    ----------
    values : array-like
        Pixel values.
    bad : array-like of `bool`, optional
        True for pixels to ignore.

    Returns
    -------
    stats : `dict` [`str`, `float`]
        Keys ``MEAN``, ``STDEV``, ``MEDIAN``, ``NPOINT``.
    """
    source = usable_pixels(values, bad)
    x = source.astype(np.float64, copy=False)
    if x.size == 0:
        return {"MEAN": np.nan, "STDEV": np.nan, "MEDIAN": np.nan, "NPOINT": 0}
    mean, var = _mean_var(x)
    median = float(median_of(source, dtype=np.float64))
    return {"MEAN": mean, "STDEV": float(np.sqrt(var)), "MEDIAN": median, "NPOINT": x.size}


def plain_moments(values: npt.ArrayLike, bad: npt.ArrayLike | None = None) -> tuple[float, float]:
    """Return afw ``MEAN`` and ``STDEV`` (``n - 1``) of the usable pixels: `plain_stats` without the
    median (a partition of every value, the dearest part), for callers that need only these two.

    The values are `plain_stats`'s, bit for bit (NaN when undefined).
    """
    return plain_moments_of_usable(usable_values(values, bad))


def plain_moments_of_usable(x: np.ndarray) -> tuple[float, float]:
    """`plain_moments` of pixels already reduced to the usable ones (1-d float64, `usable_values`)."""
    mean, var = _mean_var(x)
    return mean, float(np.sqrt(var))


def usable_pixels(values: npt.ArrayLike, bad: npt.ArrayLike | None = None) -> np.ndarray:
    """The usable pixels of ``values`` (finite and not flagged in ``bad``), in their order, as a flat
    array of their own type (`usable_values` is its float64 widening)."""
    array = np.asarray(values)
    return array[_usable(array, bad)].ravel()


def usable_values(values: npt.ArrayLike, bad: npt.ArrayLike | None = None) -> np.ndarray:
    """The usable pixels of ``values`` (finite and not flagged in ``bad``), in their order, as a flat
    float64 array: what `clipped_stats` and `plain_stats` measure."""
    return usable_pixels(values, bad).astype(np.float64, copy=False)


SELECT_DIRECT_BELOW = 1 << 16
"""`order_statistics` partitions arrays of fewer values than this directly."""


def order_statistics(values: np.ndarray, ranks: npt.ArrayLike) -> np.ndarray:
    """The values of the given 0-based ``ranks`` in ascending order: ``numpy.sort(values)[ranks]``,
    without sorting or partitioning every value (the median of a full-size detector's 16 million
    pixels: about a third of ``numpy.median``'s CPU).

    A systematic sample (every k-th value, 1/64 of them, at least 16384) is sorted and brackets each
    rank between two sample values ``lo <= hi`` (8 sample standard deviations either side); one pass
    counts the values below ``lo`` and picks those in ``[lo, hi]``, which are partitioned. The counts
    prove that the bracket holds the rank, so the value is exact whatever the sample; when they show
    it does not (a sample unlike the whole), every value is partitioned, as ``numpy.partition`` does.

    Parameters
    ----------
    values : `numpy.ndarray`
        1-d values without NaN (NaN makes the counts meaningless; ``numpy.median`` returns NaN).
    ranks : array-like of `int`
        Ranks, ``0 <= rank < values.size``.

    Returns
    -------
    selected : `numpy.ndarray`
        The values of those ranks (``values.dtype``), in the order of ``ranks``.
    """
    x = np.asarray(values).ravel()
    wanted = np.asarray(ranks, dtype=np.intp).ravel()
    n = x.size
    if wanted.size and (wanted.min() < 0 or wanted.max() >= n):
        raise IndexError(f"ranks {wanted.tolist()} out of range for {n} values.")
    if n < SELECT_DIRECT_BELOW or wanted.size == 0:
        return np.partition(x, wanted)[wanted] if wanted.size else x[:0].copy()
    step = max(1, n // max(n >> 6, 1 << 14))
    sample = np.sort(x[::step])
    m = sample.size
    margin = int(4.0 * math.sqrt(m)) + 2
    order = np.argsort(wanted, kind="stable")
    ascending = wanted[order]
    centres = ascending.astype(np.int64) * m // n
    result = np.empty(wanted.size, dtype=x.dtype)
    start = 0
    while start < ascending.size:
        stop = start + 1
        while stop < ascending.size and centres[stop] - margin <= centres[stop - 1] + margin:
            stop += 1
        group = ascending[start:stop]
        low, high = int(centres[start]) - margin, int(centres[stop - 1]) + margin
        inside_mask = None
        below = 0
        if low > 0:
            inside_mask = x >= sample[low]
            below = n - int(np.count_nonzero(inside_mask))
        if high < m - 1:
            under = x <= sample[high]
            inside_mask = under if inside_mask is None else np.logical_and(inside_mask, under, out=under)
        local = group - below
        inside = x if inside_mask is None else x[inside_mask]
        if inside_mask is not None and local[0] >= 0 and local[-1] < inside.size:
            result[order[start:stop]] = np.partition(inside, local)[local]
        else:
            result[order[start:stop]] = np.partition(x, group)[group]
        start = stop
    return result


def median_of(values: np.ndarray, dtype: npt.DTypeLike | None = None) -> Any:
    """``numpy.median(values.astype(dtype))`` of 1-d values, bit for bit, from `order_statistics` (NaN if
    any value is NaN, or there is none); the result has numpy's type.

    The middle values are selected in the values' own type and widened to ``dtype`` (default: their
    own) before numpy's mean of them: widening a float type is exact and keeps the order, so the
    middle values are the widened array's.
    """
    x = np.asarray(values).ravel()
    n = x.size
    if n == 0:
        return math.nan
    if x.dtype.kind == "f" and np.isnan(x).any():
        return np.full((), np.nan, dtype=dtype or x.dtype)[()]
    half = n // 2
    middle = order_statistics(x, [half] if n % 2 else [half - 1, half])
    if dtype is not None:
        middle = middle.astype(dtype)
    # numpy.median is the mean of the middle one or two values of the partitioned array.
    return np.mean(middle, axis=0)


def linear_percentiles(
    values: np.ndarray, percents: Sequence[float], is_sorted: bool = False, dtype: npt.DTypeLike | None = None
) -> np.ndarray:
    """``numpy.percentile(values.astype(dtype), percents)`` (linear interpolation) of 1-d values
    without NaN, bit for bit: the same virtual indexes, neighbours and interpolation formula (numpy's
    ``_lerp``), the neighbours read from ``values`` if ``is_sorted`` (ascending), else found with
    `order_statistics`, and widened to ``dtype`` (default: the values' own) before interpolating."""
    x = np.asarray(values).ravel()
    n = x.size
    quantiles = np.true_divide(np.asarray(percents, dtype=np.float64), 100)
    virtual = (n - 1) * quantiles
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    following[above] = -1
    below = virtual < 0
    previous[below] = 0
    following[below] = 0
    previous_index = previous.astype(np.intp)
    following_index = following.astype(np.intp)
    if is_sorted:
        lower, upper = x[previous_index], x[following_index]
    else:
        ranks = np.unique(np.concatenate([previous_index, following_index]) % n)
        found = dict(zip(ranks.tolist(), order_statistics(x, ranks), strict=True))
        lower = np.array([found[int(i) % n] for i in previous_index], dtype=x.dtype)
        upper = np.array([found[int(i) % n] for i in following_index], dtype=x.dtype)
    if dtype is not None:
        lower, upper = lower.astype(dtype), upper.astype(dtype)
    gamma = np.asarray(virtual - previous_index, dtype=virtual.dtype)
    difference = upper - lower
    result = np.add(lower, difference * gamma)
    np.subtract(upper, difference * (1 - gamma), out=result, where=gamma >= 0.5, casting="unsafe")
    return result


STACK_CHUNK_PIXELS = 16384
"""Pixels per chunk of the stack statistics: ``N x 16384`` float32 values stay in the CPU cache."""


@functools.cache
def _sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchange pairs ``(i, j)``, ``i < j``, that sort ``n`` values (Batcher's odd-even merge sort).

    The network of the next power of two is built and every pair with ``j >= n`` dropped: those
    positions hold +inf padding, which a compare-exchange never moves, so the pruned network sorts
    ``n`` values (103 pairs for 20 values).
    """
    size = 1 << max(0, n - 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def _sort_columns(work: np.ndarray) -> None:
    """Sort a 2-d ``(N, pixels)`` array along axis 0 in place (no NaN), with a sorting network.

    Each compare-exchange is a vectorised ``minimum``/``maximum`` of two rows; on a cache-sized chunk
    this is about twice as fast as ``numpy.sort(axis=0)`` and gives the same values.
    """
    tmp = np.empty(work.shape[1:], dtype=work.dtype)
    for i, j in _sorting_network(work.shape[0]):
        np.minimum(work[i], work[j], out=tmp)
        np.maximum(work[i], work[j], out=work[j])
        work[i] = tmp


def _column_counts(flags: np.ndarray) -> np.ndarray:
    """Number of True values in each column of a 2-d boolean array (summed as bytes: fast)."""
    n_rows = flags.shape[0]
    dtype = np.uint8 if n_rows < 256 else np.uint16 if n_rows < 65536 else np.intp
    return flags.view(np.uint8).sum(axis=0, dtype=dtype).astype(np.intp)


def _sorted_quantiles(
    ordered: np.ndarray, count: np.ndarray, quantiles: tuple[float, ...], full: bool = False
) -> list[np.ndarray]:
    """Quantiles (linear interpolation) of the first ``count`` values of each sorted column.

    ``ordered`` is a C-contiguous ``(N, pixels)`` array. ``full`` says that every column counts all
    ``N`` values: the interpolation rows are then the same for every pixel and are read as whole
    rows (the same arithmetic as the per-pixel gather of the general case).
    """
    n_rows, n_pixels = ordered.shape
    results = []
    if full:
        for q in quantiles:
            position = q * (n_rows - 1)
            lower = int(np.floor(position))
            upper = min(lower + 1, n_rows - 1)
            lo = ordered[lower].astype(np.float64)
            hi = ordered[upper].astype(np.float64)
            results.append(lo + (position - lower) * (hi - lo))
        return results
    last = np.maximum(count - 1, 0)
    flat = ordered.reshape(-1)
    columns = np.arange(n_pixels)
    for q in quantiles:
        position = q * last
        lower = np.floor(position).astype(np.intp)
        upper = np.minimum(lower + 1, last)
        frac = position - lower
        lo = flat.take(lower * n_pixels + columns).astype(np.float64)
        hi = flat.take(upper * n_pixels + columns).astype(np.float64)
        with np.errstate(invalid="ignore"):
            value = lo + frac * (hi - lo)
        value[count == 0] = np.nan
        results.append(value)
    return results


def stack_quantiles(
    stack: np.ndarray, usable: np.ndarray, quantiles: tuple[float, ...]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-pixel quantiles (linear interpolation) of the usable values along axis 0.

    Parameters
    ----------
    stack : `numpy.ndarray`
        Values, shape ``(N, ...)``.
    usable : `numpy.ndarray` of `bool`
        Same shape; False values are ignored.
    quantiles : `tuple` [`float`, ...]
        Quantiles in [0, 1].

    Returns
    -------
    values : `list` [`numpy.ndarray`]
        One array of shape ``stack.shape[1:]`` per quantile (NaN where no value is usable).
    count : `numpy.ndarray`
        Number of usable values per pixel.
    """
    n_in = stack.shape[0]
    shape = stack.shape[1:]
    ordered = np.where(usable, stack, np.inf).reshape(n_in, -1)  # unusable values sort last
    _sort_columns(ordered)
    count = _column_counts(usable.reshape(n_in, -1))
    values = _sorted_quantiles(ordered, count, quantiles)
    return [value.reshape(shape) for value in values], count.reshape(shape)


def clipped_stats_stack(
    stack: np.ndarray,
    bad: np.ndarray | None = None,
    nsigma: float = 3.0,
    niter: int = 3,
    chunk_pixels: int = STACK_CHUNK_PIXELS,
) -> ClippedStats:
    """Compute afw-style clipped statistics pixel by pixel across the first axis of a stack.

    This is what afw's ``statisticsStack`` does for ``MEANCLIP``: for each pixel the values of the
    ``N`` inputs are clipped exactly as `clipped_stats` clips one set of pixels. The work is done on
    chunks of ``chunk_pixels`` pixels (all ``N`` values of each), so that the sort, the quartiles and
    the clipping passes of a chunk run in the CPU cache; each pixel's arithmetic is the same whatever
    the chunk size.

    Parameters
    ----------
    stack : `numpy.ndarray`
        Values, shape ``(N, ...)``.
    bad : `numpy.ndarray` of `bool`, optional
        Same shape; True for values to ignore.
    nsigma : `float`, optional
        Clipping threshold in standard deviations.
    niter : `int`, optional
        Number of clipping iterations.
    chunk_pixels : `int`, optional
        Pixels processed together.

    Returns
    -------
    stats : `ClippedStats`
        Arrays of shape ``stack.shape[1:]`` (``mean`` and ``variance`` in float64).
    """
    n_in = stack.shape[0]
    shape = stack.shape[1:]
    values = stack.reshape(n_in, -1)
    flags = None if bad is None else np.asarray(bad, dtype=bool).reshape(n_in, -1)
    n_pixels = values.shape[1]
    out = {
        "mean": np.empty(n_pixels),
        "variance": np.empty(n_pixels),
        "n": np.empty(n_pixels, dtype=np.intp),
        "median": np.empty(n_pixels),
        "n_input": np.empty(n_pixels, dtype=np.intp),
    }
    step = max(1, chunk_pixels)
    scratch = _Scratch(n_in, min(step, n_pixels))
    for start in range(0, n_pixels, step):
        chunk = slice(start, min(n_pixels, start + step))
        result = _clipped_chunk(
            values[:, chunk], None if flags is None else flags[:, chunk], nsigma, niter, scratch
        )
        for name, array in out.items():
            array[chunk] = getattr(result, name)
    return ClippedStats(**{name: array.reshape(shape) for name, array in out.items()})


class _Scratch:
    """Working arrays of the chunk statistics, made once per `clipped_stats_stack` call."""

    def __init__(self, n_rows: int, n_pixels: int) -> None:
        self.sorted = np.empty((n_rows, n_pixels), dtype=np.float32)
        self.deviation = np.empty((n_rows, n_pixels), dtype=np.float32)
        self.magnitude = np.empty((n_rows, n_pixels), dtype=np.float32)
        self.kept = np.empty((n_rows, n_pixels), dtype=bool)

    def views(self, n_pixels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The arrays for a chunk of ``n_pixels`` (the last chunk may be narrower)."""
        if n_pixels == self.sorted.shape[1]:
            return self.sorted, self.deviation, self.magnitude, self.kept
        n_rows = self.sorted.shape[0]
        return tuple(  # type: ignore[return-value]
            array.reshape(-1)[: n_rows * n_pixels].reshape(n_rows, n_pixels)
            for array in (self.sorted, self.deviation, self.magnitude, self.kept)
        )


def _clipped_chunk(
    values: np.ndarray, bad: np.ndarray | None, nsigma: float, niter: int, scratch: _Scratch | None = None
) -> ClippedStats:
    """`clipped_stats_stack` of one ``(N, pixels)`` chunk.

    When every value of the chunk is usable (the common case: masked pixels are rare) the clipping
    passes read ``values`` as they are and the quartiles come from whole rows of the sorted copy;
    otherwise the unusable values are replaced by +inf for the sort and by 0 (never kept) for the
    passes. The arithmetic of each pixel is the same either way.
    """
    n_rows, n_pixels = values.shape
    scratch = scratch or _Scratch(n_rows, n_pixels)
    ordered, deviation, magnitude, kept = scratch.views(n_pixels)
    usable = _usable(values, bad)
    full = bool(usable.all())
    if full:
        np.copyto(ordered, values)
        n_input = np.full(n_pixels, n_rows, dtype=np.intp)
        work, flags = values, None
    else:
        np.copyto(ordered, np.inf)
        np.copyto(ordered, values, where=usable)  # unusable values sort last
        n_input = _column_counts(usable)
        work, flags = np.where(usable, values, np.float32(0.0)), usable
    _sort_columns(ordered)
    q25, median, q75 = _sorted_quantiles(ordered, n_input, (0.25, 0.5, 0.75), full)
    mean = median.copy()
    var = np.full(median.shape, np.nan)
    n = n_input.copy()
    center = median
    half_width = nsigma * IQR_TO_STDEV * (q75 - q25)
    for iteration in range(niter):
        if iteration > 0:
            center = mean
            half_width = nsigma * np.sqrt(var)
        new_mean, new_var, new_n = _clipped_pass(work, flags, center, half_width, deviation, magnitude, kept)
        # afw stops for a pixel when nothing survives; the previous estimate stays.
        update = new_n > 0
        if iteration == 0:
            stuck = ~update & (n_input > 1)
            if stuck.any():
                # Before the first clip the estimate is the median and the plain variance (as in
                # `clipped_stats`); only these rare pixels need that variance.
                rare = np.where(usable[:, stuck], values[:, stuck], np.nan).astype(np.float64)
                var[stuck] = np.nanvar(rare, axis=0, ddof=1)
        mean = np.where(update, new_mean, mean)
        var = np.where(update, new_var, var)
        n = np.where(update, new_n, n)
    return ClippedStats(mean=mean, variance=var, n=n, median=median, n_input=n_input)


def _float32_bound(limit: np.ndarray) -> np.ndarray:
    """The smallest float32 values at or above ``limit`` (float64; NaN stays NaN).

    For a float32 ``x``, ``x < limit`` exactly when ``x < _float32_bound(limit)``: the comparison can
    then run in float32 (4x faster than promoting every value to float64) and decide the same.
    """
    bound = np.asarray(limit, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        below = bound < limit
    return np.nextafter(bound, np.float32(np.inf), where=below, out=bound)


def _clipped_pass(
    work: np.ndarray,
    usable: np.ndarray | None,
    center: np.ndarray,
    half_width: np.ndarray,
    deviation: np.ndarray,
    magnitude: np.ndarray,
    kept: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clipping pass: mean and ``n - 1`` variance of the usable values with ``|x - c| < w``.

    ``work`` holds the values (0 where ``usable`` is False; ``usable`` None: all usable);
    ``deviation``, ``magnitude`` and ``kept`` are scratch arrays of its shape, overwritten. The sums
    are taken of ``x - c`` (float32 differences, float64 accumulation), which keeps the variance
    exact without a second pass: the kept values are within a few sigma of ``c``.
    """
    center32 = np.asarray(center, dtype=work.dtype)
    np.subtract(work, center32, out=deviation)
    np.abs(deviation, out=magnitude)
    np.less(magnitude, _float32_bound(half_width), out=kept)
    if usable is not None:
        kept &= usable
    # Zero the values not kept (a product with False; NaN only where the centre is NaN, whose pixels
    # keep nothing and are not updated).
    np.multiply(deviation, kept, out=deviation)
    n = _column_counts(kept)
    s1 = deviation.sum(axis=0, dtype=np.float64)
    np.square(deviation, out=deviation)
    s2 = deviation.sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = s1 / n
        mean = np.where(n > 0, center32.astype(np.float64) + offset, np.nan)
        var = np.where(n > 1, (s2 - s1 * offset) / np.maximum(n - 1, 1), np.nan)
    return mean, np.maximum(var, 0.0, where=np.isfinite(var), out=var), n


def border_mask(shape: Sequence[int], rows: int, cols: int) -> np.ndarray:
    """Boolean mask (True = masked) of the frame of an image of ``shape``: ``rows`` rows at the bottom
    and at the top, ``cols`` columns at the left and at the right (none for a width <= 0)."""
    mask = np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
    if rows > 0:
        mask[:rows, :] = True
        mask[-rows:, :] = True
    if cols > 0:
        mask[:, :cols] = True
        mask[:, -cols:] = True
    return mask
