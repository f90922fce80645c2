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

"""Tests of the run-report plots with synthetic inputs: each product is a readable, non-blank PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from lsst.ts.makecalibrations.butler.calib_types import PhotonTransferCurve
from lsst.ts.makecalibrations.butler.camera import AMP_NAMES, DETECTOR_NAMES
from lsst.ts.makecalibrations.butler.images import make_masked_image
from lsst.ts.makecalibrations.calib.report import GainRecord
from lsst.ts.makecalibrations.report import amp_maps, mosaic, plots, verification_plot

RUN = "MakeComCamCalibrations index 1 (2026-11-25)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_bytes: int = 10_000) -> np.ndarray:
    """Check that ``path`` is a non-blank PNG; return its pixels."""
    assert path.exists(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > min_bytes
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert float(np.var(pixels[..., :3])) > 1e-4, "image is blank"
    return pixels


def make_ptc(det: int, bad_amps: tuple[str, ...] = ()) -> PhotonTransferCurve:
    """A solved PTC with 7 pairs per amp that follows the Eq. 16 model, last point masked."""
    rng = np.random.default_rng(det)
    times = [5, 10, 15, 20, 25, 30, 35]
    ptc = PhotonTransferCurve(
        detector=det,
        detector_name=DETECTOR_NAMES[det],
        fit_type="EXPAPPROXIMATION",
        amp_names=list(AMP_NAMES),
    )
    for i, amp in enumerate(AMP_NAMES):
        gain = 1.4 + 0.02 * i + 0.01 * det
        a00, n00 = -2e-6, 49.0
        means = np.array([1500.0 * t for t in times])
        variances = plots.ptc_model(means, a00, gain, n00) * (1 + rng.normal(0, 0.005, means.size))
        ptc.raw_means[amp] = means.tolist()
        ptc.raw_vars[amp] = variances.tolist()
        ptc.raw_exp_times[amp] = [float(t) for t in times]
        ptc.exp_id_mask[amp] = [True] * (len(times) - 1) + [False]
        ptc.fit_pars[amp] = [a00, gain, n00]
        ptc.gain[amp] = gain
        ptc.noise[amp] = math.sqrt(n00)
    ptc.bad_amps = list(bad_amps)
    return ptc


def test_ptc_model_limits() -> None:
    mu = np.array([0.0, 1000.0, 50000.0])
    # a00 -> 0 gives the Poisson line plus the read-noise floor.
    np.testing.assert_allclose(plots.ptc_model(mu, 0.0, 1.5, 36.0), mu / 1.5 + 36.0 / 1.5**2)
    np.testing.assert_allclose(plots.ptc_model(mu, -1e-12, 1.5, 36.0), mu / 1.5 + 16.0, rtol=1e-6)
    # Brighter-fatter (a00 < 0) makes the variance sub-Poisson at high signal.
    bf = plots.ptc_model(mu, -2e-6, 1.5, 36.0)
    assert bf[0] == pytest.approx(16.0)
    assert bf[2] < mu[2] / 1.5 + 16.0


def test_plot_ptc(tmp_path: Path) -> None:
    ptcs = {det: make_ptc(det, bad_amps=("C03",) if det == 4 else ()) for det in range(9) if det != 7}
    path = plots.plot_ptc(ptcs, tmp_path / "ptc.png", RUN)
    assert path == tmp_path / "ptc.png"
    assert_png(path, min_bytes=50_000)


def test_plot_ptc_read_back_from_json_and_log_scale(tmp_path: Path) -> None:
    # A plot takes one input type: PTCs saved as JSON are read back as PhotonTransferCurve first.
    ptcs = {det: PhotonTransferCurve.from_dict(make_ptc(det).to_dict()) for det in (0, 1)}
    path = plots.plot_ptc(ptcs, tmp_path / "sub" / "ptc_log.png", RUN, log_scale=True)
    assert_png(path)
    # Only the two processed detectors are drawn, side by side: no empty raft panels.
    from matplotlib.image import imread

    height, width = imread(path).shape[:2]
    assert width > 1.5 * height


def test_ptc_panels_only_for_processed_detectors() -> None:
    from lsst.ts.makecalibrations.report.ptc_plot import ptc_panel_layout

    assert ptc_panel_layout([1, 0]) == ({0: (0, 0), 1: (0, 1)}, (1, 2))
    assert ptc_panel_layout([5]) == ({5: (0, 0)}, (1, 1))
    slots, shape = ptc_panel_layout([0, 2, 4, 6, 8])
    assert shape == (2, 3) and slots[6] == (1, 0) and len(slots) == 5
    # All nine: the focal-plane layout (detector 0 bottom left, detector 8 top right).
    slots, shape = ptc_panel_layout(range(9))
    assert shape == (3, 3) and slots[0] == (2, 0) and slots[8] == (0, 2)


def test_amp_values_from_ptcs_skips_bad_amps() -> None:
    gains, noises = plots.amp_values_from_ptcs({0: make_ptc(0, bad_amps=("C10",)), 5: make_ptc(5)})
    assert set(gains) == {0, 5}
    assert "C10" not in gains[0] and len(gains[0]) == 15
    assert gains[5]["C10"] == pytest.approx(1.45)
    assert noises[5]["C00"] == pytest.approx(7.0)


def test_amp_values_from_pair_gains_median_and_noise_in_electrons() -> None:
    rows = [
        GainRecord([101, 102], 0, "C00", 1.40, 5.0),
        GainRecord([103, 104], 0, "C00", 1.50, 5.0),
        GainRecord([105, 106], 0, "C00", 1.45, 4.0),
        GainRecord([101, 102], "R22_S11", "C17", 1.30, float("nan")),  # type: ignore[arg-type]
    ]
    gains, noises = plots.amp_values_from_pair_gains(rows)
    assert gains[0]["C00"] == pytest.approx(1.45)
    assert noises[0]["C00"] == pytest.approx(7.0)  # median of 7.0, 7.5, 5.8 e-
    assert gains[4]["C17"] == pytest.approx(1.30)
    assert "C17" not in noises.get(4, {})


def test_plot_gain_noise_maps(tmp_path: Path) -> None:
    gains, noises = plots.amp_values_from_ptcs({det: make_ptc(det) for det in range(9)})
    del gains[8]["C05"]  # a missing amp is drawn grey, not an error
    path = plots.plot_gain_noise_maps(gains, noises, tmp_path / "maps.png", RUN, source="PTC")
    assert_png(path, min_bytes=50_000)


def test_plot_gain_noise_maps_from_flat_pairs(tmp_path: Path) -> None:
    rows = [
        GainRecord([101, 102], det, amp, 1.5, 6.0 / 1.5 + (det == 4)) for det in range(9) for amp in AMP_NAMES
    ]
    gains, noises = plots.amp_values_from_pair_gains(rows)
    assert noises[4]["C00"] == pytest.approx(7.5) and noises[0]["C00"] == pytest.approx(6.0)
    path = plots.plot_gain_noise_maps(gains, noises, tmp_path / "maps.png", RUN, source="flat pairs")
    assert_png(path)


def test_focal_plane_layout() -> None:
    """S00 is bottom-left, S22 top-right; C0x is the bottom amp row, C1x the top one."""
    grid = amp_maps._focal_plane_grid({0: {"C00": 1.0, "C17": 2.0}, 8: {"C07": 3.0}, 2: {"C10": 4.0}})
    assert grid[0, 0] == 1.0  # R22_S00 C00: bottom-left amp of the raft
    assert grid[1, 7] == 2.0  # R22_S00 C17: top row of the bottom-left detector, right end
    assert grid[4, 23] == 3.0  # R22_S22 C07: bottom amp row of the top-right detector
    assert grid[1, 16] == 4.0  # R22_S02 C10: bottom-right detector, top row, left end
    assert np.isfinite(grid).sum() == 4


RUN_LEVEL_BIAS = {
    2026112500001: {"SUCCESS": True},
    2026112500002: {
        "SUCCESS": False,
        "FAILURES": ["R22_S21 C17 NOISE", "R22_S21 C17 READ_NOISE_CONSISTENT", "R22_S21 C16 NOISE"],
    },
    2026112500003: {"SUCCESS": False, "FAILURES": ["R22_S21 C17 NOISE", "R22_S00 C00 MEAN"]},
    "SUCCESS": False,
}
RUN_LEVEL_FLAT = {
    2026112500041: {"SUCCESS": False, "FAILURES": ["SCATTER"]},
    2026112500042: {"SUCCESS": True},
    "SUCCESS": False,
}
EXP_LEVEL_DARK = {
    "R22_S00": {"SUCCESS": True},
    "R22_S12": {"SUCCESS": False, "FAILURES": ["C03 CR_NOISE", "C04 CR_NOISE"]},
    "SUCCESS": False,
}


def run_level(stats: dict) -> plots.VerificationStats:
    """Statistics of a run whose exposure-level stats are not there."""
    return plots.VerificationStats(run=stats)


def test_count_verification_failures_run_and_exposure_level() -> None:
    assert plots.count_verification_failures(run_level(RUN_LEVEL_BIAS)) == {
        ("R22_S21", "NOISE"): 3,
        ("R22_S21", "READ_NOISE_CONSISTENT"): 1,
        ("R22_S00", "MEAN"): 1,
    }
    assert plots.count_verification_failures(run_level(RUN_LEVEL_FLAT)) == {("exposure level", "SCATTER"): 1}
    one = plots.VerificationStats(exposures={2026112500021: EXP_LEVEL_DARK})
    assert plots.count_verification_failures(one) == {("R22_S12", "CR_NOISE"): 2}
    # Where there are exposure-level stats they are counted, not the run-level ones.
    both = plots.VerificationStats(
        exposures={2026112500021: EXP_LEVEL_DARK, 2026112500022: EXP_LEVEL_DARK}, run=RUN_LEVEL_BIAS
    )
    assert plots.count_verification_failures(both) == {("R22_S12", "CR_NOISE"): 4}
    assert both.success is False and plots.VerificationStats().success is None
    assert verification_plot._exposure_summary(both) == "2/2 exposures flagged"
    assert (
        plots.count_verification_failures(run_level({2026112500001: {"SUCCESS": True}, "SUCCESS": True}))
        == {}
    )


def test_plot_verification_failures(tmp_path: Path) -> None:
    stats = {
        "bias": run_level(RUN_LEVEL_BIAS),
        "dark": plots.VerificationStats(exposures={2026112500021: EXP_LEVEL_DARK}, run={"SUCCESS": False}),
        "flat": run_level(RUN_LEVEL_FLAT),
    }
    path = plots.plot_verification_failures(stats, tmp_path / "verify.png", RUN)
    assert_png(path)


def test_plot_verification_failures_clean_run(tmp_path: Path) -> None:
    clean = run_level({2026112500001: {"SUCCESS": True}, "SUCCESS": True})
    path = plots.plot_verification_failures({"bias": clean}, tmp_path / "verify.png", RUN)
    assert_png(path)


@pytest.mark.parametrize("calib_type", ["bias", "dark", "flat"])
def test_plot_calibration_mosaic(tmp_path: Path, calib_type: str) -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:200, 0:640]
    images = {}
    for det in range(9):
        if calib_type == "flat":
            image = 1 - 0.1 * ((xx - 320) ** 2 + (yy - 100) ** 2) / 320**2 + rng.normal(0, 0.01, xx.shape)
        else:
            image = rng.normal(0.0, 3.0, xx.shape)
            image[:, 160] += 500.0  # a hot column must not wreck the stretch
        image[10, 10] = np.nan
        images[det] = make_masked_image(image.astype(np.float32))
    del images[3]
    path = plots.plot_calibration_mosaic(images, calib_type, tmp_path / f"mosaic_{calib_type}.png", RUN)
    assert_png(path, min_bytes=50_000)


def test_plot_calibration_mosaic_one_detector(tmp_path: Path) -> None:
    masked = make_masked_image(np.arange(200 * 300, dtype=np.float32).reshape(200, 300))
    path = plots.plot_calibration_mosaic({0: masked}, "bias", tmp_path / "m.png", RUN)
    assert_png(path)


def test_bin_keeps_nan_aware_means() -> None:
    array = np.arange(16, dtype=float).reshape(4, 4)
    array[0, 0] = np.nan
    binned = mosaic._bin(array, 2)
    assert binned.shape == (2, 2)
    assert binned[0, 0] == pytest.approx((1 + 4 + 5) / 3)
    assert binned[1, 1] == pytest.approx((10 + 11 + 14 + 15) / 4)


def test_make_run_plots_skips_what_does_not_exist(tmp_path: Path) -> None:
    report = {
        "jobs": [{"kind": "ptc", "product": "ptc", "status": "succeeded", "output_collection": "u/ocps/a"}]
    }
    assert plots.make_run_plots(report, tmp_path / "no-repo", tmp_path / "out") == []
    assert plots.make_run_plots({}, tmp_path, tmp_path / "out") == []
    assert not (tmp_path / "out").exists()


def test_make_run_plots_gain_map_from_report(tmp_path: Path) -> None:
    from lsst.ts.makecalibrations.calib.report import GainRecord, RunReport

    report = RunReport(script="MakeComCamCalibrations", script_index=7, final_state="DONE")
    report.report_path = str(tmp_path / "make_comcam_calibrations_7.json")
    for det in range(9):
        for i, amp in enumerate(AMP_NAMES):
            report.gains.append(GainRecord([2026112500050, 2026112500051], det, amp, 1.4 + 0.01 * i, 4.5))
    paths = plots.make_run_plots(report.to_dict(), tmp_path / "repo", tmp_path)
    assert paths == [tmp_path / "make_comcam_calibrations_7_gain_noise_flat_pairs.png"]
    assert_png(paths[0])


def test_exposure_level_flat_stats_count_amp_and_exposure_failures() -> None:
    """Flat exposure-level stats carry the amp failures that the run-level flat stats drop."""
    flat_exp = {
        2026112400012: {
            "EXP": {"SCATTER": 0.08},
            "VERIFY": {"EXP": {"SCATTER": False}},
            "R22_S00": {"SUCCESS": False, "FAILURES": ["C14 NOISE", "C03 NOISE"]},
            "R22_S11": {"SUCCESS": True},
            "SUCCESS": False,
        },
    }
    flat_stats = plots.VerificationStats(exposures=flat_exp, run={"SUCCESS": False})
    assert plots.count_verification_failures(flat_stats) == {
        ("R22_S00", "NOISE"): 2,
        ("exposure level", "SCATTER"): 1,
    }
    assert verification_plot._processed_detectors(flat_stats) == {"R22_S00", "R22_S11"}
    assert verification_plot._processed_detectors(run_level(RUN_LEVEL_BIAS)) is None


def test_plot_verification_failures_with_rule_verdicts(tmp_path: Path) -> None:
    from lsst.ts.makecalibrations.report._loaders import rule_verdicts

    report = {
        "verifications": [
            {
                "image_type": "BIAS",
                "status": "failed",
                "decision": {
                    "n_failed_exposures": 2,
                    "n_exposures": 3,
                    "failure_limit": 40,
                    "max_failed_exposures": 2,
                },
            },
            {"image_type": "DARK", "status": "passed", "decision": None},
        ]
    }
    verdicts = rule_verdicts(report)
    assert verdicts == {
        "bias": "failed, 2/3 exposures with >= 40 failures of one test (2 refuse)",
        "dark": "passed",
    }
    stats = {
        "bias": run_level(RUN_LEVEL_BIAS),
        "dark": plots.VerificationStats(exposures={1: EXP_LEVEL_DARK}),
    }
    assert_png(plots.plot_verification_failures(stats, tmp_path / "v.png", RUN, verdicts=verdicts))


def test_plots_need_no_font_beyond_the_default_family(tmp_path: Path, monkeypatch, caplog) -> None:
    """The plots draw with DejaVu Sans alone: with a font list holding none of matplotlib's mathtext
    fonts (STIX, Computer Modern), as the font cache of the machine that ran ``make run``, no
    ``findfont`` warning is logged (mathtext labels gave 21 per run)."""
    from matplotlib import font_manager

    from lsst.ts.makecalibrations.report.ptc_covariance_plot import plot_ptc_covariances

    manager = font_manager.fontManager
    dejavu_only = [font for font in manager.ttflist if font.name == "DejaVu Sans"]
    assert dejavu_only, "DejaVu Sans (matplotlib's default family) is not installed"
    monkeypatch.setattr(manager, "ttflist", dejavu_only)
    manager._findfont_cached.cache_clear()
    ptcs = {0: make_ptc(0)}
    for ptc in ptcs.values():
        for amp in AMP_NAMES:
            means = np.asarray(ptc.raw_means[amp])
            ptc.covariances[amp] = [np.diag([m / 1.5, 0.01 * m, 0.0]).tolist() for m in means]
    try:
        with caplog.at_level("WARNING", logger="matplotlib.font_manager"):
            plots.plot_ptc(ptcs, tmp_path / "ptc.png", RUN)
            plots.plot_ptc(ptcs, tmp_path / "ptc_log.png", RUN, log_scale=True)
            assert_png(plot_ptc_covariances(ptcs, tmp_path / "cov.png", RUN))
    finally:
        manager._findfont_cached.cache_clear()
    assert [r.getMessage() for r in caplog.records if "findfont" in r.getMessage()] == []
