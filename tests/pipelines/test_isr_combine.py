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

"""Numpy ISR and combine against the simulated truth (no butler): noise, dark current, bands."""

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.calib_types import PhotonTransferCurve
from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.pipelines.combine import (
    Band,
    band_height,
    combine_exposures,
    combined_metadata,
    input_scale,
)
from lsst.ts.makecalibrations.pipelines.isr import IsrSettings, run_isr
from lsst.ts.makecalibrations.pipelines.tasks.isr_task import IsrTask, IsrTaskConfig
from lsst.ts.makecalibrations.sim.truth import TruthModel

TRUTH = TruthModel(size=(64, 100))
DETECTOR = 3


def isr_frames(kind: str, n: int, exposure_time: float, settings: IsrSettings, **calibs) -> list:
    detector = get_camera()[DETECTOR]
    results = []
    for i in range(n):
        exposure_id = 2026112500100 + i + (1000 if kind == "DARK" else 0)
        amps = TRUTH.make_raw_amps(DETECTOR, exposure_id, kind, exposure_time, exposure_time)
        metadata = {"EXPTIME": exposure_time, "DARKTIME": exposure_time, "IMGTYPE": kind}
        results.append(run_isr(amps, metadata, detector, settings, exposure_id=exposure_id, **calibs))
    return results


def sources(images: list[np.ndarray]) -> list:
    def make(image: np.ndarray):
        def read(start: int, stop: int, with_variance: bool) -> Band:
            return Band(
                image=image[start:stop].copy(), excluded=np.zeros((stop - start, image.shape[1]), bool)
            )

        return read

    return [make(image) for image in images]


@pytest.fixture(scope="module")
def biases() -> list:
    return isr_frames("BIAS", 20, 0.0, IsrSettings())


def test_overscan_noise_and_gain(biases: list) -> None:
    detector = get_camera()[DETECTOR]
    reference = TRUTH.reference_bias(DETECTOR)
    first = biases[0]
    assert first.metadata["LSST ISR UNITS"] == "electron"
    for amp in detector:
        box = amp.bbox_slices(TRUTH.geometry)
        overscan_adu = first.metadata[f"LSST ISR OVERSCAN RESIDUAL SERIAL STDEV {amp.name}"]
        # 3-sigma clipping removes ~1.3% of a Gaussian's stdev; dithering/rounding add a little.
        assert overscan_adu * amp.gain == pytest.approx(amp.read_noise, rel=0.04)
        assert first.metadata[f"LSST ISR GAIN {amp.name}"] == amp.gain
        residual = first.image[box] - reference[box]
        assert abs(residual.mean()) < 5 * amp.read_noise / np.sqrt(residual.size) + 0.5
        # Overscan-corrected pixels carry the read noise plus the noise of the overscan fits (~3%).
        assert 1.0 < residual.std() / amp.read_noise < 1.07
        assert first.variance[box].mean() == pytest.approx(amp.read_noise**2, rel=0.05)


def test_read_noise_from_the_ptc() -> None:
    """With a PTC the ISR records its noise (e-) as READNOISE and in the variance, as cp_pipe; amps the
    PTC lacks keep the camera's; in bootstrap mode the overscan noise (ADU) stays."""
    detector = get_camera()[DETECTOR]
    amps = TRUTH.make_raw_amps(DETECTOR, 2026112500999, "BIAS", 0.0, 0.0)
    ptc_noise = {amp.name: amp.read_noise * 1.031 for amp in detector if amp.name != "C10"}
    result = run_isr(amps, {}, detector, IsrSettings(), exposure_id=1, read_noise=ptc_noise)
    for amp in detector:
        noise = result.metadata[f"LSST ISR READNOISE {amp.name}"]
        source = result.metadata[f"LSST ISR READNOISE SOURCE {amp.name}"]
        expected = ptc_noise.get(amp.name, amp.read_noise)
        assert (noise, source) == (expected, "CAMERA" if amp.name == "C10" else "PTC")
        box = amp.bbox_slices(TRUTH.geometry)
        read_variance = float(np.mean(result.variance[box] - result.image[box]))
        assert read_variance == pytest.approx(expected**2, rel=1e-5)
    bootstrap = run_isr(
        amps, {}, detector, IsrSettings(doBootstrap=True), exposure_id=1, read_noise=ptc_noise
    )
    key = "LSST ISR OVERSCAN RESIDUAL SERIAL STDEV C00"
    assert bootstrap.metadata["LSST ISR READNOISE C00"] == bootstrap.metadata[key]


def test_gains_from_the_ptc() -> None:
    """With a PTC the ISR converts to electrons with the PTC's gains (header GAIN SOURCE PTC); amps the
    PTC lacks or has no usable gain for keep the camera's; bootstrap stays in ADU."""
    detector = get_camera()[DETECTOR]
    amps = TRUTH.make_raw_amps(DETECTOR, 2026112500998, "FLAT", 1.0, 1.0)
    ptc_gains = {amp.name: amp.gain * 1.05 for amp in detector if amp.name not in ("C10", "C11")}
    ptc_gains["C11"] = float("nan")
    nominal = run_isr(amps, {}, detector, IsrSettings(), exposure_id=2)
    result = run_isr(amps, {}, detector, IsrSettings(), exposure_id=2, gains=ptc_gains)
    for amp in detector:
        from_ptc = amp.name not in ("C10", "C11")
        expected = amp.gain * 1.05 if from_ptc else amp.gain
        assert result.metadata[f"LSST ISR GAIN {amp.name}"] == expected
        assert result.metadata[f"LSST ISR GAIN SOURCE {amp.name}"] == ("PTC" if from_ptc else "CAMERA")
        assert nominal.metadata[f"LSST ISR GAIN SOURCE {amp.name}"] == "CAMERA"
        box = amp.bbox_slices(TRUTH.geometry)
        ratio = float(np.median(result.image[box] / nominal.image[box]))
        assert ratio == pytest.approx(1.05 if from_ptc else 1.0, rel=1e-6)
    bootstrap = run_isr(amps, {}, detector, IsrSettings(doBootstrap=True), exposure_id=2, gains=ptc_gains)
    assert bootstrap.metadata["LSST ISR GAIN C00"] == 1.0


def test_combined_bias_noise_is_read_noise_over_sqrt_n(biases: list) -> None:
    detector = get_camera()[DETECTOR]
    reference = TRUTH.reference_bias(DETECTOR)
    images = [frame.image for frame in biases]
    n = len(images)
    result = combine_exposures(sources(images), images[0].shape, [1.0] * n, detector=detector)
    assert not result.bad.any()
    for amp in detector:
        box = amp.bbox_slices(TRUTH.geometry)
        single = np.mean([np.std(image[box] - reference[box]) for image in images])
        combined = np.std(result.image[box] - reference[box])
        # MEANCLIP(3, 3) of 20 frames is 3.3% noisier than a mean (the efficiency of a 3-sigma clip).
        assert combined == pytest.approx(single / np.sqrt(n) * 1.033, rel=0.04)
        assert combined / (amp.read_noise / np.sqrt(n)) < 1.12
        assert np.median(result.variance[box]) == pytest.approx((single / np.sqrt(n)) ** 2, rel=0.15)


def test_band_height_does_not_change_the_result(biases: list) -> None:
    images = [frame.image for frame in biases[:6]]
    shape = images[0].shape
    whole = combine_exposures(sources(images), shape, [1.0] * 6, memory_budget_bytes=1e12)
    banded = combine_exposures(sources(images), shape, [1.0] * 6, memory_budget_bytes=6 * shape[1] * 24 * 7)
    assert whole.n_bands == 1 and banded.band_rows == 7 and banded.n_bands == -(-shape[0] // 7)
    np.testing.assert_array_equal(whole.image, banded.image)


def test_band_shrinks_with_inputs() -> None:
    budget = 256 * 2**20
    heights = [band_height(n, 4072, 4000, budget) for n in (10, 20, 40)]
    assert heights[0] > heights[1] > heights[2] >= 1
    for n, rows in zip((10, 20, 40), heights, strict=True):
        assert n * rows * 4072 * 24 <= budget


def test_combined_dark_matches_truth_dark_current() -> None:
    detector = get_camera()[DETECTOR]
    bias = TRUTH.reference_bias(DETECTOR)
    t, n = 30.0, 10
    settings = IsrSettings(doBias=True)
    frames = isr_frames("DARK", n, t, settings, bias=bias)
    scales = [input_scale("DarkTime", frame.metadata) for frame in frames]
    assert scales == [t] * n
    result = combine_exposures(sources([f.image for f in frames]), bias.shape, scales, detector=detector)
    truth = TRUTH.reference_dark(DETECTOR)
    defects = TRUTH.detector(DETECTOR).defect_mask(TRUTH.geometry, border=0)
    for amp in detector:
        box = amp.bbox_slices(TRUTH.geometry)
        good = ~defects[box]
        residual = (result.image[box] - truth[box])[good]
        expected = 1.04 * amp.read_noise / (t * np.sqrt(n))  # overscan-fit noise included
        assert residual.std() < 1.12 * expected
        # The amp mean also carries the noise of the per-row and per-column overscan medians
        # (variance pi/2 sigma^2 / n_overscan each), shared by whole rows / columns.
        geometry = TRUTH.geometry
        mean_error = expected * np.sqrt(
            1 / residual.size + np.pi / 2 / (58 * geometry.ny) + np.pi / 2 / (42 * geometry.nx)
        )
        assert abs(residual.mean()) < 4.5 * mean_error
    for x, y in TRUTH.detector(DETECTOR).hot_pixels:
        rate = truth[y, x]
        assert result.image[y, x] == pytest.approx(rate, abs=5 * np.sqrt(rate * t) / (t * np.sqrt(n)) + 0.05)


def test_per_amp_scales_and_headers(biases: list) -> None:
    detector = get_camera()[DETECTOR]
    images = [frame.image + 100.0 for frame in biases[:5]]
    scales = [{amp.name: 2.0 if amp.iy == 1 else 4.0 for amp in detector}] * 5
    result = combine_exposures(sources(images), images[0].shape, scales, detector=detector)
    ny = TRUTH.geometry.ny
    assert np.median(result.image[ny:]) == pytest.approx(50.0, abs=1.0)
    assert np.median(result.image[:ny]) == pytest.approx(25.0, abs=1.0)
    md = combined_metadata(
        "dark",
        [frame.metadata for frame in biases[:5]],
        [11, 12, 13, 14, 15],
        [30.0] * 5,
        image=result.image,
        bad=result.bad,
        detector=detector,
    )
    assert md["OBSTYPE"] == "DARK" and md["EXPTIME"] == 1.0 and md["DARKTIME"] == 1.0
    assert md["IMGTYPE"] == "BIAS"  # common to every input
    assert [md[f"CPP_INPUT_{i}"] for i in range(5)] == [11, 12, 13, 14, 15]
    assert md["CPP_INPUT_SCALE_2"] == 30.0
    assert "LSST CALIB DARK C17 DISTRIBUTION 50-PCT" in md and md["LSST CALIB DARK C17 BADPIX-NUM"] == 0
    assert combined_metadata("bias", [], [], [])["EXPTIME"] == 0.0
    with pytest.raises(ValueError, match="invalid scale"):
        input_scale("ExposureTime", {"EXPTIME": 0.0})


def test_no_good_input_is_bad() -> None:
    image = np.ones((4, 8), dtype=np.float32)

    def read(start: int, stop: int, with_variance: bool) -> Band:
        excluded = np.zeros((stop - start, 8), bool)
        excluded[:, 3] = True
        return Band(image=image[start:stop].copy(), excluded=excluded, variance=np.ones((stop - start, 8)))

    result = combine_exposures([read, read], (4, 8), [1.0, 1.0])
    assert result.bad[:, 3].all() and not result.bad[:, :3].any()
    assert result.n_used[0, 0] == 2 and np.all(result.image == 1.0)
    # Fewer than 5 inputs: the variance comes from the inputs, sum(var) / n^2.
    assert result.variance[0, 0] == pytest.approx(0.5)


def test_isr_task_takes_gains_and_noise_from_the_ptc_good_amps() -> None:
    """The ISR task hands the PTC's gains and noise of its good amps to the ISR; a bad amp keeps the
    camera's values; bootstrap mode ignores the PTC."""
    detector = get_camera()[DETECTOR]
    names = detector.amp_names
    ptc = PhotonTransferCurve(
        detector=DETECTOR,
        detector_name=detector.name,
        fit_type="FULLCOVARIANCE",
        amp_names=names,
        gain={name: 1.5 for name in names},
        noise={name: 6.0 for name in names},
        bad_amps=["C03"],
    )
    shape = TRUTH.geometry.detector_shape
    calibs = IsrTask(config=IsrTaskConfig()).prepare_calibrations(ptc=[ptc], shape=shape)
    assert calibs.arrays["gains"] == {name: 1.5 for name in names if name != "C03"}
    assert calibs.arrays["read_noise"] == {name: 6.0 for name in names if name != "C03"}
    config = IsrTaskConfig()
    config.doBootstrap = True
    assert "gains" not in IsrTask(config=config).prepare_calibrations(ptc=[ptc], shape=shape).arrays


def _interpolate_each_row(image: np.ndarray, bad: np.ndarray) -> None:
    """The row-by-row numpy.interp that interpolate_rows replaces (the reference)."""
    fallback = float(np.median(image[~bad])) if (~bad).any() else 0.0
    columns = np.arange(image.shape[1])
    for row in np.flatnonzero(bad.any(axis=1)):
        good = ~bad[row]
        if good.any():
            image[row, bad[row]] = np.interp(columns[bad[row]], columns[good], image[row, good])
        else:
            image[row, :] = fallback


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_interpolate_rows_is_numpy_interp_per_row(seed: int) -> None:
    """Every bad pixel (runs inside a row, at its ends, whole bad rows and columns) gets exactly the
    value numpy.interp gives on its row's good pixels."""
    from lsst.ts.makecalibrations.pipelines.isr import interpolate_rows

    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 30.0, (37, 29)).astype(np.float32)
    bad = rng.random(image.shape) < [0.02, 0.2, 0.6, 0.95][seed - 1]
    bad[:, [0, 7, 8, 28]] = True
    bad[5] = True
    expected, result = image.copy(), image.copy()
    _interpolate_each_row(expected, bad)
    changed = interpolate_rows(result, bad)
    assert np.array_equal(changed, bad)
    assert np.array_equal(result, expected)


def test_interpolate_rows_reuses_the_runs_of_an_equal_mask_only() -> None:
    """The runs found for a mask are used again for an equal mask (every image of a job) and not for
    a different one: the values stay numpy.interp's per row either way."""
    from lsst.ts.makecalibrations.pipelines import isr

    rng = np.random.default_rng(5)
    bad = rng.random((23, 31)) < 0.1
    bad[4] = True
    other = bad.copy()
    other[10, 3] = not other[10, 3]
    for mask in (bad, bad.copy(), other, bad):
        image = rng.normal(0.0, 5.0, mask.shape).astype(np.float32)
        expected, result = image.copy(), image.copy()
        _interpolate_each_row(expected, mask)
        assert np.array_equal(isr.interpolate_rows(result, mask), mask)
        assert np.array_equal(result, expected)
        assert np.array_equal(isr._LAST_ROW_RUNS[0].mask, mask)


def test_dither_is_rng_uniform_bit_for_bit() -> None:
    """run_isr draws the dither as rng.random() - 0.5 into the working array and adds the raw: the
    same float64 values as the raw plus rng.uniform(-0.5, 0.5) of the same seed."""
    from lsst.ts.makecalibrations.pipelines.isr import dither_seed

    raw = np.random.default_rng(1).integers(10_000, 30_000, (64, 48)).astype(np.int32)
    seed = dither_seed(2026120100002, 0, "C10")
    expected = raw.astype(np.float64)
    expected += np.random.default_rng(seed).uniform(-0.5, 0.5, size=raw.shape)
    work = np.random.default_rng(seed).random(size=raw.shape)
    work -= 0.5
    work += raw
    assert work.tobytes() == expected.tobytes()
