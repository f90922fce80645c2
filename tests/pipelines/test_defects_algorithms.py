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

"""Unit and truth tests of the numpy defect finder (`pipelines.defects`)."""

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.calib_types import Defects
from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.pipelines import defects
from lsst.ts.makecalibrations.sim.truth import TruthModel


def _amp_boxes(model: TruthModel, detector: int) -> dict[str, tuple[slice, slice]]:
    return {amp.name: amp.bbox_slices(model.geometry) for amp in get_camera()[detector]}


def test_column_thresholds_scale_with_amp_height():
    full = defects.ColumnThresholds().for_amp_rows(2000)
    assert (full.bad_on_off, full.good_gap, full.fill_column) == (50, 30, 1000)
    default = defects.ColumnThresholds().for_amp_rows(250)
    assert (default.bad_on_off, default.good_gap, default.fill_column) == (6, 4, 125)
    tiny = defects.ColumnThresholds().for_amp_rows(40)
    assert (tiny.bad_on_off, tiny.good_gap, tiny.fill_column) == (3, 2, 20)
    assert defects.ColumnThresholds(fill_column=-1).for_amp_rows(250).fill_column == -1


def test_blinking_and_full_columns():
    mask = np.zeros((2000, 10), dtype=bool)
    rows = np.arange(100, 1100, 10)  # 100 flagged pixels, gaps of 9 good pixels
    mask[rows, 3] = True
    mask[1500:1510, 3] = True  # a block after a gap of 400: the gap stays open
    mask[[5, 900], 7] = True  # only two pixels: not a blinking column
    filled = defects.fill_blinking_columns(mask, bad_on_off=50, good_gap=30)
    assert filled[100:1091, 3].all()
    assert not filled[1091:1500, 3].any()
    assert filled[1500:1510, 3].all()
    assert filled[:, 7].sum() == 2
    full = defects.fill_bad_columns(filled, fill_column=1000)
    assert full[:, 3].all() and full[:, 7].sum() == 2
    assert defects.fill_bad_columns(filled, fill_column=0).sum() == filled.sum()


def test_amp_thresholds_value_and_stdev():
    rng = np.random.default_rng(1)
    amp = rng.normal(1000.0, 0.1, (100, 100))
    amp[10, 10] = 1000 + 3.1 / 1.5  # just above the dark threshold in ADU (3 e-/s at g = 1.5)
    amp[20, 20] = 1000 + 2.9 / 1.5  # just below
    amp[30, 30] = 0.895 * 1000  # cold (<= 0.9 m)
    amp[40, 40] = 0.905 * 1000  # not cold
    thresholds = defects.DefectThresholds()
    hot, cold = defects.find_amp_defects(amp, "dark", thresholds, gain=1.5, units="adu")
    assert hot[10, 10] and hot.sum() == 1 and not cold.any()
    hot_e, _ = defects.find_amp_defects(amp, "dark", thresholds, gain=1.5, units="electron")
    assert not hot_e.any()  # 2.07 e-/s is below 3 e-/s when the image is in electrons
    hot, cold = defects.find_amp_defects(amp, "flat", thresholds)
    assert not hot.any() and cold[30, 30] and cold[40, 40] == 0 and cold.sum() == 1
    stdev = defects.DefectThresholds(threshold_type="STDEV")
    hot, cold = defects.find_amp_defects(amp, "flat", stdev)
    assert hot[10, 10] and hot[20, 20] and cold[30, 30] and cold[40, 40]
    hot, cold = defects.find_amp_defects(amp, "bias", thresholds)
    assert not hot.any()
    with pytest.raises(ValueError):
        defects.find_amp_defects(amp, "science", thresholds)
    with pytest.raises(ValueError):
        defects.DefectThresholds(threshold_type="MEDIAN")


def test_footprint_boxes_cover_footprints_exactly():
    mask = np.zeros((30, 30), dtype=bool)
    mask[5, 5] = True
    mask[10:13, 10] = True
    mask[12, 11:14] = True  # an L shape: one footprint, two boxes
    mask[20, 20] = mask[21, 21] = True  # diagonal neighbours: one 8-connected footprint
    boxes = defects.footprint_boxes(mask)
    rebuilt = Defects(detector=0, boxes=boxes).to_mask(mask.shape)
    assert np.array_equal(rebuilt, mask)
    assert (5, 5, 1, 1) in boxes


def test_edge_frame_and_merge():
    frame = defects.edge_frame_mask((50, 80), 5)
    assert frame.sum() == 50 * 80 - 40 * 70
    frame2 = defects.edge_frame_mask((50, 80), 2, 3)
    assert frame2[:2].all() and frame2[:, :3].all() and not frame2[2:-2, 3:-3].any()
    a = np.zeros((50, 80), dtype=bool)
    b = np.zeros((50, 80), dtype=bool)
    a[20, 30] = b[25, 40] = True
    merged = defects.merge_defect_masks([a, b], (50, 80), 5)
    assert merged[20, 30] and merged[25, 40] and merged.sum() == frame.sum() + 2
    with pytest.raises(ValueError):
        defects.merge_defect_masks([np.zeros((10, 10), dtype=bool)], (50, 80), 5)
    result = defects.mask_to_defects(merged, 3, {"X": 1})
    assert result.detector == 3 and result.metadata["OBSTYPE"] == "defects"
    assert np.array_equal(result.to_mask((50, 80)), merged)


@pytest.mark.parametrize("detector", [0, 7])
def test_truth_defects_found_from_simulated_combined_calibs(detector):
    """Combined dark/flat with the noise of 20 x 5 s exposures: every injected defect, no false ones."""
    model = TruthModel(size="default")
    truth = model.detector(detector)
    rng = np.random.default_rng(detector)
    n_frames, exp_time = 20, 5.0
    # Combined dark in e-/s: dark current + read noise and shot noise of 20 frames of 5 s.
    noise = np.sqrt((np.asarray([truth.read_noise[a] for a in truth.read_noise]) ** 2).max())
    sigma = np.sqrt(noise**2 + truth.dark_rate * exp_time) / (exp_time * np.sqrt(n_frames))
    dark = truth.dark_rate + sigma * rng.standard_normal(truth.dark_rate.shape)
    # Combined flat (per second): response x 4000 e-/s with the Poisson noise of 20 frames of 20 ke-.
    signal = truth.response * model.flat_rate("empty") * exp_time
    shot = np.sqrt(np.maximum(signal, 1.0) / n_frames) * rng.standard_normal(signal.shape)
    flat = (signal + shot) / exp_time
    boxes = _amp_boxes(model, detector)
    dark_mask, dark_md = defects.measure_defects(dark, "dark", boxes, units="electron")
    flat_mask, flat_md = defects.measure_defects(flat, "flat", boxes, units="electron")
    merged = defects.merge_defect_masks([dark_mask, flat_mask], dark.shape, 5)
    expected = model.reference_defect_mask(detector)
    missed = expected & ~merged
    false = merged & ~expected
    print(
        f"\n[defects numpy] det {detector}: {int(expected.sum())} true defect pixels, "
        f"missed {int(missed.sum())}, false {int(false.sum())} ({false.mean():.2e})"
    )
    assert not missed.any()
    assert false.mean() <= 1e-3
    assert dark_md["LSST CALIB DEFECTS N_BAD_COLUMNS"] >= 1
    assert flat_md["LSST CALIB DEFECTS N_BAD_COLUMNS"] >= 1
    n_hot = sum(v for k, v in dark_md.items() if k.endswith("N_HOT"))
    assert n_hot >= len(truth.hot_pixels)
