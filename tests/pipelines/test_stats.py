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
