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

"""Clipped statistics of `pipelines.stats` against a direct transcription of afw's definition."""

import numpy as np
import pytest

from lsst.ts.makecalibrations.pipelines import stats


def reference_clip(values: np.ndarray, nsigma: float = 3.0, niter: int = 3) -> tuple[float, float, int]:
    """afw MEANCLIP/VARIANCECLIP written out literally, one loop per iteration (slow, obvious)."""
    x = [float(v) for v in values if np.isfinite(v)]
    ordered = sorted(x)

    def quantile(q: float) -> float:
        pos = q * (len(ordered) - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])

    mean, var, n = quantile(0.5), float("nan"), len(x)
    for iteration in range(niter):
        if iteration == 0:
            center, width = quantile(0.5), nsigma * 0.741301109252802 * (quantile(0.75) - quantile(0.25))
        else:
            center, width = mean, nsigma * np.sqrt(var)
        kept = [v for v in x if abs(v - center) < width]
        if not kept:
            break
        n = len(kept)
        mean = sum(kept) / n
        var = sum((v - mean) ** 2 for v in kept) / (n - 1)
    return mean, var, n


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_single_set_matches_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 5.0, size=501)
    values[:7] += rng.uniform(40.0, 400.0, size=7)  # outliers
    values[10] = np.nan
    mean, var, n = reference_clip(values)
    result = stats.clipped_stats(values)
    assert result.mean == pytest.approx(mean, rel=1e-12)
    assert result.variance == pytest.approx(var, rel=1e-10)
    assert result.n == n
    assert result.n_input == 500
    # The outliers were rejected, so the clipped mean is close to the true centre; the plain one is not.
    assert abs(result.mean - 100.0) < 1.0 < abs(np.nanmean(values) - 100.0)


def test_mask_excludes_values() -> None:
    values = np.array([1.0, 2.0, 3.0, 1000.0, 2.5, 1.5])
    bad = np.array([False, False, False, True, False, False])
    assert stats.clipped_stats(values, bad).n_input == 5
    assert stats.mean_clip(values, bad) == pytest.approx(2.0)
    assert stats.plain_stats(values, bad)["MEAN"] == pytest.approx(2.0)
    assert stats.plain_stats(values)["MEAN"] == pytest.approx(np.mean(values))


def test_plain_moments_are_plain_stats_mean_and_stdev_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(50.0, 4.0, (30, 40)).astype(np.float32)
    values[2, 3] = np.nan
    bad = rng.random(values.shape) < 0.2
    everything = np.ones(values.shape, bool)
    for args in ((values, bad), (values, None), (values[:1, :1], None), (values, everything)):
        full = stats.plain_stats(*args)
        mean, stdev = stats.plain_moments(*args)
        np.testing.assert_array_equal([mean, stdev], [full["MEAN"], full["STDEV"]])
    assert np.isfinite(stats.plain_moments(values, bad)).all()


def test_stack_matches_single_set_per_pixel() -> None:
    rng = np.random.default_rng(7)
    stack = rng.normal(0.0, 1.0, size=(15, 6, 9)).astype(np.float32)
    stack[3, 2, 4] = 50.0
    stack[:, 0, 0] = 5.0  # constant pixel: IQR 0, nothing survives the first clip
    bad = rng.random(stack.shape) < 0.1
    result = stats.clipped_stats_stack(stack, bad)
    for row in range(6):
        for col in range(9):
            single = stats.clipped_stats(stack[:, row, col].astype(np.float64), bad[:, row, col])
            assert result.mean[row, col] == pytest.approx(single.mean, rel=1e-5, abs=1e-6)
            assert result.n[row, col] == single.n
            if np.isfinite(single.variance):
                assert result.variance[row, col] == pytest.approx(single.variance, rel=1e-4)


def test_clipped_mean_noise_penalty() -> None:
    """MEANCLIP(3, 3) of 20 unit-variance frames has sigma 0.2310 vs 0.2236."""
    rng = np.random.default_rng(12345)
    stack = rng.normal(0.0, 1.0, size=(20, 200, 250)).astype(np.float32)
    result = stats.clipped_stats_stack(stack)
    assert np.std(result.mean) == pytest.approx(0.2310, rel=0.01)
    assert np.std(stack.mean(axis=0)) == pytest.approx(1 / np.sqrt(20), rel=0.01)


def test_stack_quantiles_ignore_unusable() -> None:
    stack = np.array([[1.0], [2.0], [3.0], [100.0]])
    usable = np.array([[True], [True], [True], [False]])
    (median, upper), count = stats.stack_quantiles(stack, usable, (0.5, 1.0))
    assert count[0] == 3 and median[0] == 2.0 and upper[0] == 3.0


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 20, 33])
def test_sorting_network_sorts(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(0.0, 1.0, size=(n, 500)).astype(np.float32)
    values[:, :50] = np.round(values[:, :50])  # ties
    values[0, 60] = np.inf  # unusable values are +inf
    work = values.copy()
    stats._sort_columns(work)
    assert np.array_equal(work, np.sort(values, axis=0))


def test_stack_statistics_do_not_depend_on_the_chunk() -> None:
    """The combine's chunked statistics: every pixel's arithmetic is the same, bit for bit."""
    rng = np.random.default_rng(11)
    stack = rng.normal(0.0, 8.0, size=(20, 13, 17)).astype(np.float32)
    stack[rng.integers(0, 20, 30), rng.integers(0, 13, 30), rng.integers(0, 17, 30)] += 2000.0
    stack[:, 0, :3] = 5.0
    stack[2, 1, 1] = np.nan
    bad = rng.random(stack.shape) < 0.05
    bad[:, 4, 4] = True  # no usable input
    whole = stats.clipped_stats_stack(stack, bad, chunk_pixels=10**9)
    chunked = stats.clipped_stats_stack(stack, bad, chunk_pixels=7)
    for name in ("mean", "variance", "n", "median", "n_input"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name), equal_nan=True), name
    assert whole.n_input[4, 4] == 0 and np.isnan(whole.mean[4, 4])
    # The quartiles are those of the sorted usable values (linear interpolation).
    usable = np.isfinite(stack) & ~bad
    (q25,), count = stats.stack_quantiles(stack, usable, (0.25,))
    ordered = np.sort(np.where(usable, stack, np.nan), axis=0)
    for row, col in [(0, 0), (1, 1), (5, 9), (12, 16)]:
        kept = ordered[: count[row, col], row, col].astype(np.float64)
        position = 0.25 * (kept.size - 1)
        lower = int(np.floor(position))
        upper = min(lower + 1, kept.size - 1)
        expected = kept[lower] + (position - lower) * (kept[upper] - kept[lower])
        assert q25[row, col] == expected


def test_nothing_kept_gives_the_median_and_the_plain_variance() -> None:
    """With a zero inter-quartile range the first clip keeps nothing: the median and the plain variance
    (computed only then) are the estimate."""
    values = np.array([5.0] * 9 + [7.0, 9.0])
    result = stats.clipped_stats(values)
    assert result.mean == 5.0 and result.n == 11
    assert result.variance == pytest.approx(np.var(values, ddof=1), rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quartiles_and_median_are_numpys_bit_for_bit(dtype: type) -> None:
    """The quartiles come from a sorted copy (float32 pixels sorted as float32): the clip's median and
    plain_stats' MEDIAN are numpy's percentile and median of the usable float64 values exactly."""
    rng = np.random.default_rng(11)
    values = (rng.normal(1000.0, 7.0, 4001) * [1.0, 1.0, 1e-3][rng.integers(0, 3)]).astype(dtype)
    values[:3] = np.nan
    bad = rng.random(values.size) < 0.05
    usable = values[np.isfinite(values) & ~bad].astype(np.float64)
    assert stats.clipped_stats(values, bad, 5.0, 3).median == np.percentile(usable, 50.0)
    assert stats.plain_stats(values, bad)["MEDIAN"] == np.median(usable)
    assert stats.plain_stats(values[:-1], bad[:-1])["MEDIAN"] == np.median(
        values[:-1][np.isfinite(values[:-1]) & ~bad[:-1]].astype(np.float64)
    )


def _plain_clipped(values: np.ndarray, bad: np.ndarray, nsigma: float, niter: int) -> tuple:
    """The clipped statistics as first written (numpy.percentile quartiles, each pass a boolean pick
    of ``|x - centre| < half-width``): the computation `stats.clipped_stats` must equal bit for bit."""
    usable = np.isfinite(values) & ~bad
    x = values[usable].astype(np.float64)
    if x.size == 0:
        return (np.nan, np.nan, 0, np.nan, 0)
    q25, median, q75 = np.percentile(x, [25.0, 50.0, 75.0])

    def mean_var(kept: np.ndarray) -> tuple[float, float]:
        mean = float(kept.mean())
        return mean, float(np.sum((kept - mean) ** 2) / (kept.size - 1)) if kept.size > 1 else np.nan

    mean, var, clipped, n = median, np.nan, False, x.size
    for iteration in range(niter):
        if iteration == 0:
            center, half_width = median, nsigma * stats.IQR_TO_STDEV * (q75 - q25)
        else:
            if not np.isfinite(var):
                break
            center, half_width = mean, nsigma * np.sqrt(var)
        kept = x[np.abs(x - center) < half_width]
        if kept.size == 0:
            break
        n, (mean, var), clipped = kept.size, mean_var(kept), True
    if not clipped:
        var = mean_var(x)[1]
    return (float(mean), float(var), int(n), float(median), x.size)


@pytest.mark.parametrize("seed", range(6))
def test_clipped_stats_equal_the_plain_formulation_bit_for_bit(seed: int) -> None:
    """Quartiles read from the sorted pixels and each pass's kept interval found on them give exactly
    the statistics of numpy.percentile and boolean picks (ties, outliers, tiny and large sets)."""
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 10, 211, 70_001):
        for dtype in (np.float32, np.float64):
            draws = [
                rng.normal(1000.0, 7.0, n),
                rng.integers(0, 4, n).astype(float),
                np.concatenate([rng.normal(0.0, 1.0, n), 1e3 * rng.normal(0.0, 1.0, n // 10 + 1)]),
                rng.standard_cauchy(n),
            ]
            for values in draws:
                values = values.astype(dtype)
                values[rng.integers(0, values.size)] = np.nan
                bad = rng.random(values.size) < 0.05
                for nsigma, niter in ((3.0, 3), (5.0, 3), (2.0, 6), (1e-9, 2)):
                    result = stats.clipped_stats(values, bad, nsigma, niter)
                    got = (result.mean, result.variance, result.n, result.median, result.n_input)
                    expected = _plain_clipped(values, bad, nsigma, niter)
                    assert np.array_equal(np.array(got), np.array(expected), equal_nan=True), (
                        n,
                        dtype,
                        nsigma,
                    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 65_535, 65_536, 65_537, 300_001, 1_000_000])
def test_median_and_percentiles_without_sorting_are_numpys(n: int) -> None:
    """order_statistics (a sample's bracket, proven by counts) gives numpy's median and percentiles
    bit for bit, also for sorted, constant, many-tie and skewed values and for float32."""
    rng = np.random.default_rng(n)
    for values in (
        rng.normal(5.0, 3.0, n),
        np.sort(rng.normal(0.0, 1.0, n)),
        np.full(n, 2.5),
        rng.integers(-3, 4, n).astype(float),
        rng.exponential(1.0, n) ** 3,
    ):
        for dtype in (np.float32, np.float64):
            x = values.astype(dtype)
            expected_median, got_median = np.median(x), stats.median_of(x)
            assert np.asarray(got_median).dtype == np.asarray(expected_median).dtype
            assert np.asarray(got_median).tobytes() == np.asarray(expected_median).tobytes()
            wide_median = stats.median_of(x, dtype=np.float64)
            assert np.asarray(wide_median).tobytes() == np.median(x.astype(np.float64)).tobytes()
            expected = np.percentile(x, [0.0, 25.0, 50.0, 75.0, 100.0])
            got = stats.linear_percentiles(x, (0.0, 25.0, 50.0, 75.0, 100.0))
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
            ranks = rng.integers(0, n, 5)
            assert np.array_equal(stats.order_statistics(x, ranks), np.sort(x)[ranks])
    assert np.isnan(stats.median_of(np.array([1.0, np.nan, 2.0])))
