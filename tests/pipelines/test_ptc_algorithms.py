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

"""Unit tests of the numpy PTC kernel (`pipelines.ptc`) on synthetic draws with known truth."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lsst.ts.makecalibrations.pipelines import ptc

GAIN = 1.4
READ_NOISE_E = 7.0
SHAPE = (2000, 509)
MEANS_ONLY = ptc.PairSettings(max_lag=0)
"""cpPtcExtract's pair measurement without the covariances (not looked at here)."""
UNWEIGHTED = ptc.ExpApproxSettings(use_measurement_errors=False)
"""cpPtcSolve's point selection with cp_pipe's unweighted outlier rejection (full-size amps)."""


def _flat(rng: np.random.Generator, signal_e: float, shape=SHAPE) -> np.ndarray:
    """Poisson flat in ADU with Gaussian read noise (no bias, no BF)."""
    return rng.poisson(signal_e, shape) / GAIN + rng.normal(0.0, READ_NOISE_E / GAIN, shape)


def test_pairs_twenty_equal_times_give_ten_pairs():
    ids = [2024112600100 + i for i in range(20)]
    pairs = ptc.match_pairs_by_time([(i, 5.0) for i in ids])
    assert pairs == [(ids[2 * k], ids[2 * k + 1]) for k in range(10)]


def test_pairs_seed_example_and_unsorted_input():
    # The seed procedure: [0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 1, 1.5, 1.7, 2.1, 2.3] gives three pairs.
    times = [0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 1, 1.5, 1.7, 2.1, 2.3]
    exposures = [(1000 + i, t) for i, t in enumerate(times)]
    rng = np.random.default_rng(3)
    shuffled = [exposures[i] for i in rng.permutation(len(exposures))]
    assert ptc.match_pairs_by_time(shuffled) == [(1000, 1001), (1002, 1003), (1004, 1005)]


def test_pairs_odd_one_out_and_tolerance():
    # 5, 5, 5, 10, 10: the third 5 s has no partner; 10 s pair still forms.
    exposures = [(1, 5.0), (2, 5.0), (3, 5.0), (4, 10.0), (5, 10.004)]
    assert ptc.match_pairs_by_time(exposures) == [(1, 2), (4, 5)]
    assert ptc.match_pairs_by_time(exposures, tolerance=1e-3) == [(1, 2)]
    # Equal times that are not consecutive in id order do not pair.
    assert ptc.match_pairs_by_time([(1, 1.0), (2, 2.0), (3, 1.0)]) == []


def test_sigma_clip_correction_matches_truncated_normal():
    for n in (3.0, 5.5):
        truncated_var = scipy_stats.truncnorm(-n, n).var()
        assert ptc.sigma_clip_correction(n) == pytest.approx(1.0 / truncated_var, rel=1e-9)
    assert ptc.sigma_clip_correction(5.5) == pytest.approx(1.0000012, abs=1e-7)


def test_scaled_edge_width_keeps_full_size_fraction():
    edge = ptc.PairSettings().num_edge_suspect
    assert ptc.scaled_edge_width((2000, 509), edge) == (20, 20)
    wy, wx = ptc.scaled_edge_width((250, 200), edge)
    assert (wy, wx) == (2, 8)
    mask = ptc.amp_edge_mask((250, 200), (wy, wx))
    full_fraction = 1 - (1960 * 469) / (2000 * 509)
    assert mask.mean() == pytest.approx(full_fraction, abs=0.02)
    assert mask[:wy].all() and mask[-wy:].all() and mask[:, :wx].all() and mask[:, -wx:].all()
    assert not mask[wy:-wy, wx:-wx].any()
    assert ptc.scaled_edge_width((250, 200), edge=0) == (0, 0)


@pytest.mark.parametrize("signal_e", [1000.0, 5000.0, 20000.0])
def test_pair_mean_variance_and_gain_estimators(signal_e):
    rng = np.random.default_rng(int(signal_e))
    im1, im2 = _flat(rng, signal_e), _flat(rng, signal_e)
    rn_adu = READ_NOISE_E / GAIN
    mu_true = signal_e / GAIN
    var_true = mu_true / GAIN + rn_adu**2
    full = ptc.measure_pair(im1, im2, rn_adu, settings=MEANS_ONLY)
    assert MEANS_ONLY.gain_correction_type == "FULL"
    assert full.valid
    assert full.n_pixels == im1.size
    # cp_pipe's own acceptance: |mean - mu| < 1 ADU and |sigma - sqrt(var)| < 1 ADU.
    assert abs(full.mean - mu_true) < 1.0
    assert abs(math.sqrt(full.variance) - math.sqrt(var_true)) < 1.0
    # rawVar scatter is sqrt(2/N) = 0.14%: allow 4 sigma.
    assert full.variance == pytest.approx(var_true, rel=4 * math.sqrt(2 / im1.size))
    # FULL is unbiased within 1% for S >= 1000 e- (the bias of the SIMPLE and NONE corrections grows below
    # that).
    assert full.gain == pytest.approx(GAIN, rel=0.01)
    none = ptc.measure_pair(
        im1, im2, rn_adu, settings=dataclasses.replace(MEANS_ONLY, gain_correction_type="NONE")
    )
    simple = ptc.measure_pair(
        im1, im2, rn_adu, settings=dataclasses.replace(MEANS_ONLY, gain_correction_type="SIMPLE")
    )
    # NONE is biased low by ~ 1 / (1 + g sigma^2 / mu); the expected bias must be seen.
    expected_none = GAIN / (1.0 + GAIN * rn_adu**2 / mu_true)
    assert none.gain == pytest.approx(expected_none, rel=0.005)
    assert simple.gain == pytest.approx(GAIN, rel=0.015)
    assert none.mean == full.mean and none.variance == full.variance


def test_gain_full_without_read_noise_falls_back_to_none():
    rng = np.random.default_rng(5)
    im1, im2 = _flat(rng, 5000.0, (200, 200)), _flat(rng, 5000.0, (200, 200))
    no_noise = ptc.gain_from_flat_pair(im1.ravel(), im2.ravel(), 5000 / GAIN, math.nan, "FULL")
    none = ptc.gain_from_flat_pair(im1.ravel(), im2.ravel(), 5000 / GAIN, 5.0, "NONE")
    assert no_noise == none
    with pytest.raises(ValueError):
        ptc.gain_from_flat_pair(im1.ravel(), im2.ravel(), 1.0, 1.0, "BOGUS")


def test_pair_mask_and_invalid_pairs():
    rng = np.random.default_rng(6)
    im1, im2 = _flat(rng, 5000.0, (300, 200)), _flat(rng, 5000.0, (300, 200))
    im1[10:20, 10:20] = 1e6  # garbage, masked
    mask = np.zeros(im1.shape, dtype=bool)
    mask[10:20, 10:20] = True
    measured = ptc.measure_pair(im1, im2, READ_NOISE_E / GAIN, mask=mask, settings=MEANS_ONLY)
    assert measured.n_pixels == im1.size - 100
    assert measured.gain == pytest.approx(GAIN, rel=0.03)
    # A dark "flat" has a non-positive mean: the pair is flagged, not fitted.
    zeros = rng.normal(0.0, 5.0, (100, 100))
    bad = ptc.measure_pair(zeros - 50, zeros + 1, 5.0, settings=MEANS_ONLY)
    assert not bad.valid


def _ptc_points(rng, means, truth, n_pix):
    model = ptc.exp_approximation_model(truth, means)
    return model * (1.0 + rng.normal(0.0, math.sqrt(2.0 / n_pix), means.size))


def test_exp_approximation_model_limits():
    mu = np.array([0.0, 100.0, 1e4])
    assert ptc.exp_approximation_model((0.0, 1.4, 49.0), mu) == pytest.approx(mu / 1.4 + 49 / 1.4**2)
    a00 = -2e-6
    expected = np.expm1(2 * a00 * 1.4 * mu) / (2 * a00 * 1.4**2) + 49 / 1.4**2
    assert ptc.exp_approximation_model((a00, 1.4, 49.0), mu) == pytest.approx(expected, rel=1e-12)


def test_exp_approximation_fit_recovers_truth():
    # 25 log-spaced means 200-60000 ADU, (a00, g, n) = (-2e-6, 1.4, 7 e-).
    rng = np.random.default_rng(12345)
    truth = (-2e-6, 1.4, 49.0)
    means = np.geomspace(200, 60000, 25)
    n_pix = 1.02e6
    gains, a00s, noises = [], [], []
    for _ in range(5):
        variances = _ptc_points(rng, means, truth, n_pix)
        fit = ptc.fit_exp_approximation(means, variances, [n_pix] * 25, settings=UNWEIGHTED)
        assert fit.valid and fit.mask.all()
        assert fit.turnoff == pytest.approx(60000.0)
        gains.append(fit.gain)
        a00s.append(fit.a00)
        noises.append(fit.noise)
        # The reported uncertainty describes the actual error.
        assert abs(fit.gain - 1.4) < 5 * fit.gain_err
    assert np.mean(gains) == pytest.approx(1.4, rel=1e-3)
    assert np.mean(a00s) == pytest.approx(-2e-6, rel=0.02)
    assert np.mean(noises) == pytest.approx(7.0, rel=0.02)


def test_exp_approximation_rejects_outliers_and_finds_turnoff():
    rng = np.random.default_rng(7)
    truth = (-2e-6, 1.4, 49.0)
    means = np.geomspace(200, 80000, 30)
    variances = _ptc_points(rng, means, truth, 1e6)
    saturated = means > 60000
    variances[saturated] *= np.linspace(0.6, 0.05, saturated.sum())  # roll-off past the full well
    variances[5] *= 1.3  # one wild point
    fit = ptc.fit_exp_approximation(means, variances, [1e6] * means.size, settings=UNWEIGHTED)
    assert not fit.mask[5]
    assert not fit.mask[saturated].any()
    assert fit.mask[~saturated].sum() == (~saturated).sum() - 1
    assert fit.turnoff == pytest.approx(means[~saturated].max())
    assert fit.gain == pytest.approx(1.4, rel=3e-3)
    assert fit.noise == pytest.approx(7.0, rel=0.05)


def test_exp_approximation_input_mask_and_too_few_points():
    rng = np.random.default_rng(8)
    means = np.geomspace(200, 50000, 10)
    variances = _ptc_points(rng, means, (0.0, 1.2, 36.0), 1e6)
    valid = np.ones(10, dtype=bool)
    valid[3] = False
    variances[3] = -1.0
    fit = ptc.fit_exp_approximation(means, variances, [1e6] * 10, valid=valid, settings=UNWEIGHTED)
    assert fit.valid and not fit.mask[3]
    assert fit.gain == pytest.approx(1.2, rel=3e-3)
    bad = ptc.fit_exp_approximation(means[:2], variances[:2])
    assert not bad.valid and math.isnan(bad.gain)


def test_exp_approximation_with_measurement_errors_on_small_amps():
    """Small amps (4.5e4 px, 0.67% per point): good low-flux points are kept, saturation is rejected."""
    truth = (0.0, 1.4, 49.0 * 1.06)
    times = [5.0] * 10 + [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 4, 6, 8, 10, 13, 16, 20, 30]
    means = np.array(times) * 4000 / 1.4
    n_pix = 45_000
    gains = []
    for seed in range(50):
        rng = np.random.default_rng(100 + seed)
        variances = _ptc_points(rng, means, truth, n_pix)
        variances[-1] *= 0.9  # the 30 s pair is past the full well
        fit = ptc.fit_exp_approximation(means, variances, [n_pix] * means.size)
        assert ptc.ExpApproxSettings().use_measurement_errors
        assert not fit.mask[-1]
        assert fit.mask[:-1].all()
        gains.append(fit.gain)
    assert np.std(gains) / 1.4 < 0.005
    assert abs(np.mean(gains) / 1.4 - 1) < 0.002


def test_unconstrained_or_bounded_noise_makes_a_bad_amp():
    """Pairs at 4-32 ke- only do not constrain the read noise; a low-flux pair does."""
    from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import PtcSolveConfig, ptc_amp_problem

    config = PtcSolveConfig()
    truth = (-2e-6, 1.4, 49.0)
    n_pix = 45_000
    high_only = np.array([1, 2, 4, 8]) * 4000 / 1.4
    with_low = np.array([0.1, 0.5, 1, 2.5, 5, 5]) * 4000 / 1.4
    problems = []
    for seed in range(20):
        rng = np.random.default_rng(300 + seed)
        fit = ptc.fit_exp_approximation(high_only, _ptc_points(rng, high_only, truth, n_pix), [n_pix] * 4)
        problems.append(ptc_amp_problem(fit, config))
        good = ptc.fit_exp_approximation(with_low, _ptc_points(rng, with_low, truth, n_pix), [n_pix] * 6)
        assert ptc_amp_problem(good, config) is None, (good.noise, good.noise_err, good.at_bound)
    # Most realisations are flagged (the rest happen to land near the truth, within 20 %).
    assert sum(p is not None for p in problems) >= 15, problems
    assert any("not constrained" in p or "at a bound" in p for p in problems)
    # n00 = 0 sits at the bound of the fit: named as such.
    zero_noise = ptc.fit_exp_approximation(high_only, high_only / 1.4 * (1 - 2e-6 * 1.4 * high_only))
    assert zero_noise.valid and zero_noise.at_bound == ("n00",)
    assert ptc_amp_problem(zero_noise, config) == (
        f"read noise {zero_noise.noise:.3g} e- at a bound of the fit (n00 = {zero_noise.n00:.4g} e^2)"
    )
    failed = ptc.fit_exp_approximation(high_only[:2], high_only[:2] / 1.4)
    assert ptc_amp_problem(failed, config) == "fit failed (fewer than 3 usable points)"
