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

"""cpPtcAdjustGainRatios (`pipelines.ptc_gain_ratios`, `pipelines.tasks.ptc_gain_ratio_task`) on
synthetic flats, and cpPtcSolve's fallback when a PTC has too few pairs for the covariance fit."""

import math

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.calib_types import PhotonTransferCurve
from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.butler.images import make_masked_image
from lsst.ts.makecalibrations.pipelines import ptc_gain_ratios
from lsst.ts.makecalibrations.pipelines.tasks.ptc_gain_ratio_task import (
    PTC_GAIN_RATIO_CORRECTIONS_KEY,
    PtcAdjustGainRatiosConfig,
    adjust_gain_ratios,
)
from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import (
    PTC_FIT_FALLBACK_KEY,
    PTC_FIT_TYPE_REQUESTED_KEY,
    PtcSolveConfig,
    solve_ptc,
)

SHAPE = (2 * 120, 8 * 100)
"""Detector image (rows, columns): 16 amps of 120 x 100 px."""


def _flat(true_gains: dict[str, float], level: float, seed: int) -> np.ndarray:
    """A flat in ADU: vignetting-like illumination in electrons, Poisson noise, 1 % PRNU, per-amp gain."""
    rng = np.random.default_rng(seed)
    rows, cols = SHAPE
    y, x = np.mgrid[0:rows, 0:cols]
    r2 = ((x - 1.3 * cols) ** 2 + (y + 0.4 * rows) ** 2) / (2.0 * cols) ** 2
    electrons = level * (1.0 - 0.3 * r2) * (1.0 + 0.01 * rng.standard_normal(SHAPE))
    electrons = rng.poisson(electrons).astype(np.float64)
    det = get_camera()[0]
    ny, nx = rows // 2, cols // 8
    image = np.empty(SHAPE)
    for amp in det:
        box = (slice(amp.iy * ny, (amp.iy + 1) * ny), slice(amp.ix * nx, (amp.ix + 1) * nx))
        image[box] = electrons[box] / true_gains[amp.name]
    return image


def _ptc(names: list[str], gains: dict[str, float], n_pairs: int = 3) -> PhotonTransferCurve:
    ptc = PhotonTransferCurve(0, "R22_S00", "FULLCOVARIANCE", names)
    for k, amp in enumerate(names):
        ptc.gain[amp] = gains[amp]
        ptc.noise[amp] = 6.0 + 0.1 * k
        ptc.turnoff[amp] = 70000.0
        ptc.input_exp_id_pairs[amp] = [[10 + 2 * i, 11 + 2 * i] for i in range(n_pairs)]
        ptc.raw_means[amp] = [5000.0 * (i + 1) for i in range(n_pairs)]
        ptc.exp_id_mask[amp] = [True] * n_pairs
    return ptc


def test_gain_ratios_correct_per_amp_gain_errors() -> None:
    """PTC gains off by up to +-1 % per amp: the adjusted gains keep only the common (median) error."""
    det = get_camera()[0]
    names = list(det.amp_names)
    rng = np.random.default_rng(3)
    truth = {amp: 1.4 + 0.05 * rng.standard_normal() for amp in names}
    errors = {amp: 0.01 * (2 * rng.random() - 1) for amp in names}
    fitted = {amp: truth[amp] * (1 + errors[amp]) for amp in names}
    ptc = _ptc(names, fitted)
    images = {
        10 + 2 * i: make_masked_image(_flat(truth, 10000.0 * (i + 1), i).astype(np.float32)) for i in range(3)
    }
    config = PtcAdjustGainRatiosConfig()
    adjusted, note = adjust_gain_ratios(ptc, {k: (lambda v=v: v) for k, v in images.items()}, config)
    assert "gains adjusted" in note
    assert adjusted.gain_unadjusted == fitted
    residual = np.array([adjusted.gain[amp] / truth[amp] - 1.0 for amp in names])
    before = np.array([errors[amp] for amp in names])
    # One common factor is left (the median amp's error), the amp-to-amp scatter is gone.
    assert np.std(residual) < 0.0005 < 0.003 < np.std(before)
    assert abs(np.median(residual)) < 0.01
    corrections = adjusted.metadata[PTC_GAIN_RATIO_CORRECTIONS_KEY]
    assert set(corrections) == set(names)
    # The noise (measured in ADU) follows the gain into electrons.
    for amp in names:
        assert adjusted.noise[amp] == pytest.approx(ptc.noise[amp] / corrections[amp], rel=1e-12)
    # The input is untouched.
    assert ptc.gain == fitted


def test_gain_ratios_leave_a_far_off_amp_uncorrected() -> None:
    """An amp 8 % off (beyond max_fractional_gain_ratio) is left out and not corrected."""
    det = get_camera()[0]
    names = list(det.amp_names)
    truth = dict.fromkeys(names, 1.4)
    fitted = dict(truth)
    fitted["C03"] = 1.4 * 1.08
    ratios_input = _flat(truth, 10000.0, 1)
    ptc = _ptc(names, fitted, n_pairs=1)
    adjusted, _ = adjust_gain_ratios(
        ptc, {10: lambda: make_masked_image(ratios_input.astype(np.float32))}, PtcAdjustGainRatiosConfig()
    )
    assert adjusted.gain["C03"] == pytest.approx(fitted["C03"], rel=1e-3)
    others = [adjusted.gain[amp] / 1.4 - 1.0 for amp in names if amp != "C03"]
    assert np.max(np.abs(others)) < 0.002


def test_no_reference_amp_leaves_the_gains() -> None:
    names = list(get_camera()[0].amp_names)
    ptc = _ptc(names, dict.fromkeys(names, 1.4))
    for amp in names:
        ptc.noise[amp] = 20.0  # every amp too noisy to be the reference
    adjusted, note = adjust_gain_ratios(ptc, {}, PtcAdjustGainRatiosConfig())
    assert "not adjusted" in note and adjusted.gain == ptc.gain
    assert ptc_gain_ratios.choose_reference_amp([1.0, 2.0, 3.0], [5, 5, 5], [1, 1, 1]) == 1


def _partials(n_pairs: int) -> list[PhotonTransferCurve]:
    """Noise-free Eq. 16 points of 2 amps without covariances (enough for EXPAPPROXIMATION)."""
    partials = []
    for i in range(n_pairs):
        partial = PhotonTransferCurve(0, "R22_S00", "PARTIAL", ["C00", "C01"])
        mean = 50.0 * 3.0**i
        for amp in partial.amp_names:
            partial.input_exp_id_pairs[amp] = [[2 * i, 2 * i + 1]]
            partial.raw_means[amp] = [mean]
            partial.raw_vars[amp] = [
                mean / 1.4 * math.expm1(2 * -2e-6 * 1.4 * mean) / (2 * -2e-6 * 1.4 * mean) + 25.0 / 1.96
            ]
            partial.exp_id_mask[amp] = [True]
        partials.append(partial)
    return partials


def test_too_few_pairs_for_the_covariance_fit() -> None:
    """6 pairs for 8 lags: EXPAPPROXIMATION with the fallback recorded, or (no fallback) every amp bad."""
    config = PtcSolveConfig()
    config.ptcFitType = "FULLCOVARIANCE"
    config.flagUnconstrainedAmps = False
    ptc = solve_ptc(_partials(6), config)
    assert ptc.fit_type == "EXPAPPROXIMATION" and ptc.metadata["PTC_FIT_TYPE"] == "EXPAPPROXIMATION"
    assert ptc.metadata[PTC_FIT_TYPE_REQUESTED_KEY] == "FULLCOVARIANCE"
    assert "6 flat pairs, fewer than the 8" in ptc.metadata[PTC_FIT_FALLBACK_KEY]
    assert not ptc.bad_amps and ptc.gain["C00"] == pytest.approx(1.4, rel=1e-3)
    assert ptc.gain_unadjusted == ptc.gain
    config.doFallbackToExpApproximation = False
    strict = solve_ptc(_partials(6), config)
    assert strict.fit_type == "FULLCOVARIANCE" and strict.bad_amps == ["C00", "C01"]
    assert "needs at least 8 flat pairs" in strict.metadata["PTC BAD AMP REASONS"]["C00"]
