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

"""Accuracy of the PTC kernel on simulated raws (`sim.truth`, default size, no brighter-fatter),
processed by the numpy ISR: per-amp gain from flat pairs and the EXPAPPROXIMATION PTC."""

import math

import numpy as np
import pytest

from lsst.ts.makecalibrations.pipelines import ptc
from lsst.ts.makecalibrations.sim.truth import TruthModel
from tests.pipelines.ptc_helpers import check_gain_and_noise, measure_pairs

DETECTOR = 4


@pytest.fixture(scope="module")
def model() -> TruthModel:
    return TruthModel(size="default", brighter_fatter=False)


def test_gain_from_twenty_five_second_flats(model):
    """Twenty 5 s flats: ten pairs; the per-amp mean of the ten pair gains is within 1% of truth."""
    truth = model.detector(DETECTOR)
    pairs = measure_pairs(model, DETECTOR, [5.0] * 10)
    per_pair = np.array([[m.gain / truth.gain[amp] - 1.0 for m in pairs[amp]] for amp in truth.gain])
    mean_error = per_pair.mean(axis=1)
    n_pixels = pairs["C00"][0].n_pixels
    expected_scatter = math.sqrt(2.0 / n_pixels)
    scatter = float(per_pair.std(ddof=1))
    print(
        f"\n[gain-from-pairs numpy] det {DETECTOR}: max |dg/g| mean of 10 pairs "
        f"{np.abs(mean_error).max():.4f}, "
        f"single pair {np.abs(per_pair).max():.4f}, per-pair scatter {scatter:.4f} "
        f"(sqrt(2/N) = {expected_scatter:.4f}, N = {n_pixels})"
    )
    assert np.abs(mean_error).max() < 0.01
    # The pair-to-pair scatter is what the estimator promises (about sqrt(2/N)).
    assert 0.6 * expected_scatter < scatter < 1.5 * expected_scatter
    # The pairs measure ~20 ke-: rawVar follows mu/g + sigma^2 within the measurement error.
    for amp, measurements in pairs.items():
        for m in measurements:
            assert m.mean * truth.gain[amp] == pytest.approx(20000 * truth.response.mean(), rel=0.15)


def test_ptc_fit_gain_and_noise(model):
    """Log-spaced pairs 0.005-30 s: PTC gain within 1%, read noise within 5% of truth."""
    truth = model.detector(DETECTOR)
    times = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30]
    pairs = measure_pairs(model, DETECTOR, times, first_id=5000)
    gains, noises, turnoffs = {}, {}, {}
    for amp, measurements in pairs.items():
        fit = ptc.fit_exp_approximation(
            [m.mean for m in measurements],
            [m.variance for m in measurements],
            [m.n_pixels for m in measurements],
            [m.valid for m in measurements],
        )
        assert fit.valid
        gains[amp], noises[amp], turnoffs[amp] = fit.gain, fit.noise, fit.turnoff
        # a00 = 0 in this simulation: the fit stays at (or very near) the bound.
        assert -3e-7 <= fit.a00 <= 0.0
        # Only the saturated 30 s pair may be rejected (full well 110 ke- ~ 78 kADU).
        assert fit.mask[:-1].all()
    noise_vs_processed = check_gain_and_noise(f"PTC numpy, det {DETECTOR}", [(gains, noises, truth)])
    assert abs(float(np.mean(noise_vs_processed))) < 0.01
