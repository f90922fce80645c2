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

"""The full-covariance PTC (`pipelines.ptc_covariance`, cpPtcSolve ``ptcFitType=FULLCOVARIANCE``):
the Eq. 20 model and its derivatives, the fit on synthetic covariances, and a00 recovered from the
simulated (correlated, brighter-fatter) flats through the PTC ISR."""

import math

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.calib_types import PhotonTransferCurve
from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.pipelines import ptc, ptc_covariance
from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import PtcSolveConfig, solve_ptc
from lsst.ts.makecalibrations.sim.truth import TruthModel, bf_a_matrix

from .ptc_helpers import OVERSCAN_NOISE_FACTOR, isr_flat

N_LAGS = 8


def _model_from_parameters(means, params, n, fit_b):
    a = params[: n * n].reshape(n, n)
    if fit_b:
        c, noise = params[n * n : 2 * n * n].reshape(n, n), params[2 * n * n : 3 * n * n].reshape(n, n)
    else:
        c, noise = np.zeros((n, n)), params[n * n : 2 * n * n].reshape(n, n)
    return ptc_covariance.covariance_model(means, a, c, noise, params[-1])


@pytest.mark.parametrize("fit_b", [True, False])
def test_analytic_jacobian_matches_finite_differences(fit_b: bool) -> None:
    n = 4
    rng = np.random.default_rng(1)
    a = bf_a_matrix(-2e-6, n) + rng.normal(0.0, 2e-8, (n, n))
    c = rng.normal(0.0, 1e-13, (n, n)) if fit_b else np.zeros((n, n))
    noise = rng.normal(0.0, 1.0, (n, n))
    noise[0, 0] = 50.0
    means = np.array([1e3, 2e4, 5e4])
    params = np.concatenate([a.ravel()] + ([c.ravel()] if fit_b else []) + [noise.ravel(), [1.4]])
    analytic = ptc_covariance._model_jacobian(means, a, c, noise, 1.4, fit_b)
    for index in range(len(params)):
        step = max(abs(params[index]) * 1e-5, 1e-18)
        up, down = params.copy(), params.copy()
        up[index] += step
        down[index] -= step
        numeric = (
            _model_from_parameters(means, up, n, fit_b) - _model_from_parameters(means, down, n, fit_b)
        ) / (2 * step)
        scale = np.abs(numeric).max() or 1.0
        assert np.abs(analytic[..., index] - numeric).max() < 1e-5 * scale, index


def test_model_reduces_to_eq16_for_a_lone_a00() -> None:
    """With only a00 the lag-0 model is Eq. 16 up to the fourth order in a00 mu."""
    a = np.zeros((N_LAGS, N_LAGS))
    a[0, 0] = -2e-6
    zeros = np.zeros_like(a)
    means = np.array([1e3, 1e4, 4e4])
    model = ptc_covariance.covariance_model(means, a, zeros, zeros, 1.4)
    eq16 = ptc.exp_approximation_model([-2e-6, 1.4, 0.0], means)
    assert model[:, 0, 0] == pytest.approx(eq16, rel=2e-4)
    assert np.all(model[:, 1:, :] == 0) and np.all(model[:, 0, 1:] == 0)


def test_fit_recovers_synthetic_covariances() -> None:
    """Covariances drawn around Eq. 20 with the errors of 2e5-pixel amps: a, gain, noise recovered."""
    rng = np.random.default_rng(7)
    gain, n = 1.4, N_LAGS
    a = bf_a_matrix(-2.2e-6, n)
    noise = np.zeros((n, n))
    noise[0, 0] = 49.0
    means = np.geomspace(30.0, 60000.0, 20)
    truth = ptc_covariance.covariance_model(means, a, np.zeros((n, n)), noise, gain)
    sqrt_weights = np.sqrt(2e5) / truth[:, :1, :1] * np.ones((1, n, n))
    sqrt_weights[:, 0, 0] /= math.sqrt(2.0)
    measured = truth + rng.standard_normal(truth.shape) / sqrt_weights
    mask = np.ones(len(means), dtype=bool)
    fit = ptc_covariance.fit_full_covariance(means, measured, sqrt_weights, mask, n, 1.45, fit_b=False)
    assert fit.valid
    assert fit.gain == pytest.approx(gain, rel=2e-3)
    assert fit.noise == pytest.approx(7.0, rel=0.03)
    assert fit.a00 == pytest.approx(a[0, 0], rel=0.03)
    assert fit.a_matrix[0, 1] == pytest.approx(a[0, 1], rel=0.15)
    assert fit.model.shape == (len(means), n, n)
    # Too few pairs for the number of lags: not fitted, the amp is bad.
    few = ptc_covariance.fit_full_covariance(means[:5], measured[:5], sqrt_weights[:5], mask[:5], n, 1.45)
    assert not few.valid and math.isnan(few.gain)


AMPS = ("C00", "C05", "C11", "C16")
PAIR_TIMES = np.geomspace(0.05, 24.0, 14)
"""14 pairs from ~200 e- (the read noise) to ~95 ke- (a00 mu ~ 0.2)."""


@pytest.fixture(scope="module")
def simulated_partials() -> tuple[TruthModel, list[PhotonTransferCurve]]:
    """Partials of detector 0 (four amps) measured on ISR-processed simulated flats at the default size."""
    model = TruthModel(size="default")
    det = get_camera()[0]
    geometry = model.geometry
    settings = ptc.PairSettings(max_lag=N_LAGS, min_pixels_covariance=50)
    edges = ptc.amp_edge_mask(
        geometry.data_shape, ptc.scaled_edge_width(geometry.data_shape, settings.num_edge_suspect)
    )
    partials = []
    for index, exp_time in enumerate(PAIR_TIMES):
        first_id = 5000 + 2 * index
        first = isr_flat(model, 0, first_id, float(exp_time))
        second = isr_flat(model, 0, first_id + 1, float(exp_time))
        partial = PhotonTransferCurve(0, det.name, "PARTIAL", list(AMPS))
        n_pixels = {}
        for name in AMPS:
            box = det[name].bbox_slices(geometry)
            key = f"LSST ISR OVERSCAN RESIDUAL SERIAL STDEV {name}"
            read_noise = 0.5 * (first.metadata[key] + second.metadata[key])
            measured = ptc.measure_pair(first.image[box], second.image[box], read_noise, edges, settings)
            partial.input_exp_id_pairs[name] = [[first_id, first_id + 1]]
            partial.raw_means[name] = [measured.mean]
            partial.raw_vars[name] = [measured.variance]
            partial.exp_id_mask[name] = [measured.valid]
            partial.covariances[name] = [measured.covariances.tolist()]
            partial.covariances_sqrt_weights[name] = [measured.covariances_sqrt_weights.tolist()]
            n_pixels[name] = measured.n_pixels
        partial.metadata["PTC N PIXELS"] = n_pixels
        partials.append(partial)
    return model, partials


def test_simulated_flats_have_the_truth_covariances(simulated_partials) -> None:
    """The measured lag (0, 1) and (1, 0) covariances of the brightest pairs follow the truth's a matrix."""
    model, partials = simulated_partials
    det = get_camera()[0]
    for name in AMPS:
        a = model.a_matrix(0, name)
        gain = det[name].gain
        bright = partials[-4:]
        means = np.array([p.raw_means[name][0] for p in bright])
        cov = np.array([p.covariances[name][0] for p in bright])
        for lag in ((0, 1), (1, 0)):
            expected = a[lag] * means**2  # first order of Eq. 20 (ADU^2)
            ratio = float(np.sum(cov[:, lag[0], lag[1]]) / np.sum(expected))
            assert 0.6 < ratio < 1.4, (name, lag, ratio)
        # Far lags are consistent with zero (the kernel has decayed).
        assert np.abs(cov[:, 7, 7]).max() < 0.01 * means.max() / gain


def test_full_covariance_ptc_recovers_a00_and_gain(simulated_partials) -> None:
    """cpPtcSolve FULLCOVARIANCE_NO_B: a00 within 10% of the simulated truth on every amp; both fit
    types give the gain within 1% and the noise within 5%; the ptc carries the matrices and model.

    (FULLCOVARIANCE's own a00 is not tested: on 5e4-pixel amps ``b`` is not constrained and trades
    with a00.)"""
    model, partials = simulated_partials
    det = get_camera()[0]
    figures = []
    for fit_type in ("FULLCOVARIANCE_NO_B", "FULLCOVARIANCE"):
        config = PtcSolveConfig()
        config.ptcFitType = fit_type
        config.flagUnconstrainedAmps = False
        result = solve_ptc(partials, config)
        assert result.fit_type == fit_type and not result.bad_amps
        for name in AMPS:
            a_truth = model.a_matrix(0, name)[0, 0]
            a00 = result.a_matrix[name][0][0]
            gain_error = result.gain[name] / det[name].gain - 1.0
            # The processed pixels carry the overscan medians' noise too (as the EXPAPPROXIMATION tests).
            noise_error = result.noise[name] / (det[name].read_noise * OVERSCAN_NOISE_FACTOR) - 1.0
            figures.append(
                f"{fit_type} {name}: a00 {a00:.3g} vs {a_truth:.3g}, "
                f"dg/g {gain_error:+.4f}, dn/n {noise_error:+.3f}"
            )
            assert np.shape(result.covariances_model[name]) == (len(PAIR_TIMES), N_LAGS, N_LAGS)
            assert np.shape(result.b_matrix[name]) == (N_LAGS, N_LAGS)
            assert abs(gain_error) < 0.01
            assert abs(noise_error) < 0.05
            if fit_type == "FULLCOVARIANCE_NO_B":
                assert a00 == pytest.approx(a_truth, rel=0.10), name
    print("\n[full-covariance PTC, default size, 14 pairs]\n" + "\n".join(figures))


def test_full_covariance_needs_the_covariances(simulated_partials) -> None:
    _, partials = simulated_partials
    stripped = []
    for partial in partials:
        copy = PhotonTransferCurve.from_dict(partial.to_dict())
        copy.covariances = {name: [] for name in copy.amp_names}
        stripped.append(copy)
    config = PtcSolveConfig()
    config.ptcFitType = "FULLCOVARIANCE"
    with pytest.raises(ValueError, match="maximumRangeCovariancesAstier"):
        solve_ptc(stripped, config)


def test_covariance_plot_of_a_full_covariance_ptc(simulated_partials, tmp_path, monkeypatch) -> None:
    """The covariance plot draws, in each of its first-lag panels, the measured points and the Eq. 20
    fit (a line) of every amp; a PTC without the model gets the points only."""
    from matplotlib.axes import Axes

    from lsst.ts.makecalibrations.report.ptc_covariance_plot import (
        PLOTTED_LAGS,
        has_covariances,
        plot_ptc_covariances,
    )

    drawn: list[tuple[int, str]] = []
    plot = Axes.plot

    def recording_plot(ax, *args, **kwargs):
        drawn.append((id(ax), next((a for a in args if isinstance(a, str)), "")))
        return plot(ax, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", recording_plot)

    _, partials = simulated_partials
    config = PtcSolveConfig()
    config.ptcFitType = "FULLCOVARIANCE"
    config.flagUnconstrainedAmps = False
    result = solve_ptc(partials, config)
    assert has_covariances({0: result})
    plain = PhotonTransferCurve(0, "R22_S00", "EXPAPPROXIMATION", list(AMPS))
    assert not has_covariances({0: plain})
    path = plot_ptc_covariances(
        {0: PhotonTransferCurve.from_dict(result.to_dict())}, tmp_path / "ptc_covariances.png", "test run"
    )
    assert path.stat().st_size > 20000
    assert PLOTTED_LAGS == ((0, 0), (0, 1), (1, 0), (1, 1))
    fits: dict[int, int] = {}
    for ax, fmt in drawn:
        fits[ax] = fits.get(ax, 0) + (fmt == "-")
    good = len(AMPS) - len(result.bad_amps)
    assert good > 0 and sorted(fits.values()) == [good] * len(PLOTTED_LAGS)
    drawn.clear()
    no_model = PhotonTransferCurve.from_dict(result.to_dict())
    no_model.covariances_model = {}
    plot_ptc_covariances({0: no_model}, tmp_path / "points_only.png", "test run")
    assert [fmt for _, fmt in drawn if fmt == "-"] == []
    assert sum(fmt == "o" for _, fmt in drawn) == len(AMPS) * len(PLOTTED_LAGS)


def test_measured_covariances_are_the_lag_sums() -> None:
    """measure_covariances (FFTs of scipy.fft's fast lengths) gives the covariance of the weighted pixel
    pairs at each lag written out directly, both signs of dy averaged, halved."""
    rng = np.random.default_rng(8)
    rows, cols, lags = 23, 17, 4
    image = rng.normal(0.0, 10.0, (rows, cols))
    weights = rng.random((rows, cols)) > 0.1

    def lag(dx: int, dy: int) -> tuple[float, int]:
        # pairs (y, x) and (y + dy, x + dx), both weighted
        y0, y1 = max(0, -dy), min(rows, rows - dy)
        a, b = image[y0:y1, : cols - dx], image[y0 + dy : y1 + dy, dx:]
        wa, wb = weights[y0:y1, : cols - dx], weights[y0 + dy : y1 + dy, dx:]
        both = wa & wb
        n = int(both.sum())
        first = np.where(both, a, 0.0)
        second = np.where(both, b, 0.0)
        return float((first * second).sum() / n - first.sum() * second.sum() / n**2), n

    covariances, n_pairs = ptc_covariance.measure_covariances(image, weights, lags)
    for dx in range(lags):
        for dy in range(lags):
            cov, n = lag(dx, dy)
            if dx and dy:
                cov2, n2 = lag(dx, -dy)
                cov, n = (cov * n + cov2 * n2) / (n + n2), n + n2
            assert n_pairs[dx, dy] == n
            assert covariances[dx, dy] == pytest.approx(0.5 * cov, rel=1e-9, abs=1e-9)
