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

"""Statistics of the simulated truth: noise, gain, brighter-fatter, defects, references, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.camera import AMP_NAMES, DETECTOR_IDS, get_camera
from lsst.ts.makecalibrations.sim.truth import (
    DEFAULT_A00,
    TruthModel,
    bf_noise_kernel,
    bf_variance,
    valid_convolution,
)

EXPOSURE = 2024112600010


def overscan_corrected(model: TruthModel, amps: dict[str, np.ndarray], detector: int) -> np.ndarray:
    """Assembled data minus the per-row median of the serial overscan (3 leading/trailing skipped)."""
    geom = model.geometry
    det = get_camera()[detector]
    out = np.empty(geom.detector_shape, dtype=np.float64)
    for name, raw in amps.items():
        overscan = raw[geom.serial_overscan_slice][:, 3:-3]
        level = np.median(overscan, axis=1)[: geom.ny, np.newaxis]
        out[det[name].bbox_slices(geom)] = raw[geom.data_slice] - level
    return out


def pair_variances(model: TruthModel, detector: int, exptime: float) -> dict[str, tuple[float, float]]:
    """Per amp (mean, var) of a flat pair as cp_pipe measures them: var = var(I1 - I2) / 2."""
    a = overscan_corrected(
        model, model.make_raw_amps(detector, EXPOSURE, "FLAT", exptime, exptime, "r_03"), 0
    )
    b = overscan_corrected(
        model, model.make_raw_amps(detector, EXPOSURE + 1, "FLAT", exptime, exptime, "r_03"), 0
    )
    result = {}
    for amp in get_camera()[detector]:
        box = amp.bbox_slices(model.geometry)
        result[amp.name] = ((a[box].mean() + b[box].mean()) / 2, np.var(a[box] - b[box]) / 2)
    return result


def test_flat_pair_variance_is_poisson_plus_read_noise_without_bf() -> None:
    model = TruthModel(size="default", brighter_fatter=False)
    det = get_camera()[0]
    ratios = []
    for name, (mean, var) in pair_variances(model, 0, 5.0).items():
        gain, rn_adu = det[name].gain, det[name].read_noise / det[name].gain
        expected = mean / gain + rn_adu**2
        ratios.append(var / expected)
        assert var == pytest.approx(expected, rel=0.03), name
        # Gain from this single pair (no read-noise bias at 20 ke-): within ~1%, as the size preset promises.
        assert mean / (var - rn_adu**2) == pytest.approx(gain, rel=0.03), name
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.01)


def test_brighter_fatter_suppresses_the_flat_variance_as_eq16() -> None:
    model = TruthModel(size="default")
    assert model.effective_a00 == DEFAULT_A00
    det = get_camera()[0]
    truth = model.detector(0)
    mu_e = truth.response * model.flat_rate("r_03") * 5.0
    ratios_model, ratios_poisson = [], []
    for name, (mean, var) in pair_variances(model, 0, 5.0).items():
        amp = det[name]
        box = amp.bbox_slices(model.geometry)
        rn_adu2 = (amp.read_noise / amp.gain) ** 2
        ratios_model.append(var / (np.mean(bf_variance(mu_e[box], DEFAULT_A00)) / amp.gain**2 + rn_adu2))
        ratios_poisson.append(var / (mean / amp.gain + rn_adu2))
    assert np.mean(ratios_model) == pytest.approx(1.0, abs=0.01)
    # At ~20 ke- the single-pixel variance is ~4% sub-Poisson (Astier et al. 2019, https://arxiv.org/abs/1905.08677).
    assert 0.94 < np.mean(ratios_poisson) < 0.975


def test_flat_level_and_read_noise() -> None:
    model = TruthModel(size="tiny")
    amps = model.make_raw_amps(0, EXPOSURE, "FLAT", 5.0, 5.0, "r_03")
    det = get_camera()[0]
    signal_e = overscan_corrected(model, amps, 0) * model.detector(0).gain_map
    assert 17000 < np.median(signal_e) < 23000  # a 5 s flat gives ~20 ke-
    geom = model.geometry
    for name in AMP_NAMES:
        overscan = amps[name][geom.serial_overscan_slice][:, 3:-3].astype(float)
        overscan -= np.median(overscan, axis=1)[:, np.newaxis]
        assert overscan.std() == pytest.approx(det[name].read_noise / det[name].gain, rel=0.06), name
    u_flat = model.make_raw_amps(0, EXPOSURE, "FLAT", 5.0, 5.0, "u_02")
    assert np.median(overscan_corrected(model, u_flat, 0)) < 0.6 * np.median(
        overscan_corrected(model, amps, 0)
    )


def test_bias_frames_average_to_the_bias_structure() -> None:
    model = TruthModel(size="tiny")
    frames = [
        overscan_corrected(model, model.make_raw_amps(3, EXPOSURE + i, "BIAS", 0.0, 0.0), 3) for i in range(8)
    ]
    residual = np.mean(frames, axis=0) - model.detector(3).bias_structure
    assert abs(residual.mean()) < 0.3
    assert np.ptp(model.detector(3).bias_structure) > 1.0  # there is structure to find
    np.testing.assert_allclose(
        model.reference_bias(3), model.detector(3).bias_structure * model.detector(3).gain_map
    )


def test_hot_and_dead_pixels_are_where_the_truth_says() -> None:
    model = TruthModel(size="tiny")
    truth = model.detector(2)
    dark = overscan_corrected(model, model.make_raw_amps(2, EXPOSURE, "DARK", 30.0, 30.0), 2)
    dark -= truth.bias_structure
    noise = np.median(np.abs(dark - np.median(dark))) * 1.4826
    hot = np.array([dark[y, x] for x, y in truth.hot_pixels])
    assert np.all(hot > np.median(dark) + 20 * noise)
    amp_name, column = truth.hot_column
    rows, _ = get_camera()[2][amp_name].bbox_slices(model.geometry)
    assert np.median(dark[rows, column]) > np.median(dark) + 10 * noise

    flat = overscan_corrected(model, model.make_raw_amps(2, EXPOSURE, "FLAT", 5.0, 5.0, "r_03"), 2)
    level = np.median(flat)
    assert all(flat[y, x] < 0.4 * level for x, y in truth.dead_pixels)
    amp_name, column = truth.cold_column
    rows, _ = get_camera()[2][amp_name].bbox_slices(model.geometry)
    assert np.median(flat[rows, column]) / np.median(flat[rows, column + 1]) == pytest.approx(0.6, abs=0.04)

    mask = model.reference_defect_mask(2)
    assert all(mask[y, x] for x, y in truth.hot_pixels + truth.dead_pixels)
    assert mask[rows, column].all() and mask[:5, :].all() and mask[:, -5:].all()
    # Nothing else: border + listed pixels + two amp-height columns.
    inner = mask[5:-5, 5:-5].sum()
    n_listed = len(truth.hot_pixels) + len(truth.dead_pixels) + 2 * model.geometry.ny
    assert inner <= n_listed


def test_reference_flats_are_normalised_over_the_focal_plane() -> None:
    model = TruthModel(size="tiny")
    means = [model.reference_flat(det).mean(dtype=np.float64) for det in DETECTOR_IDS]
    assert np.mean(means) == pytest.approx(1.0, abs=1e-5)
    assert np.std(means) > 0.005  # detectors differ in throughput/vignetting, as cp_pipe flats keep
    np.testing.assert_array_equal(model.reference_flat(4, "u_02"), model.reference_flat(4, "y_04"))


def test_images_are_deterministic_from_the_seed() -> None:
    one, two, other = TruthModel(size="tiny"), TruthModel(size="tiny"), TruthModel(seed=7, size="tiny")
    a = one.make_raw_amps(5, EXPOSURE, "FLAT", 1.0, 1.0)
    b = two.make_raw_amps(5, EXPOSURE, "FLAT", 1.0, 1.0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = one.make_raw_amps(5, EXPOSURE + 1, "FLAT", 1.0, 1.0)
    assert not np.array_equal(a["C00"], c["C00"])
    assert one.detector(5).hot_pixels != other.detector(5).hot_pixels
    again = TruthModel.from_simulation_config(one.summary())
    assert again == one


def test_bf_variance_limits() -> None:
    assert bf_variance(1000.0, 0.0) == 1000.0
    assert float(bf_variance(1.0, DEFAULT_A00)) == pytest.approx(1.0, rel=1e-5)
    assert float(bf_variance(20000.0, DEFAULT_A00)) == pytest.approx(19220.0, rel=1e-3)


def test_valid_convolution_is_scipy_signal_fftconvolve_value_for_value() -> None:
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(5)
    kernel = bf_noise_kernel(np.full((8, 8), 1e-7) * np.exp(-np.arange(8))[:, None], 20000.0)
    for shape in [(298 + kernel.shape[0] - 1, 267 + kernel.shape[1] - 1), (61, 40), kernel.shape]:
        white = rng.standard_normal(shape)
        expected = fftconvolve(white, kernel, mode="valid")
        np.testing.assert_array_equal(valid_convolution(white, kernel), expected)
    with pytest.raises(ValueError, match="larger than the image"):
        valid_convolution(np.ones((3, 3)), kernel)
