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

"""Camera geometry, RawImage, calibration types and MaskedImage helpers (no repository needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from lsst.ts.makecalibrations.butler import camera
from lsst.ts.makecalibrations.butler.calib_types import Defects, PhotonTransferCurve
from lsst.ts.makecalibrations.butler.images import (
    JSON_KEYS_KEY,
    make_masked_image,
    masked_image_arrays,
    masked_image_mask,
)
from lsst.ts.makecalibrations.butler.raw_image import RawImage


def test_detectors_and_amps_follow_obs_lsst_names() -> None:
    cam = camera.get_camera()
    assert [det.name for det in cam] == [f"R22_S{r}{c}" for r in range(3) for c in range(3)]
    assert cam["R22_S21"].id == 7
    assert camera.AMP_NAMES[:2] == ("C10", "C11") and camera.AMP_NAMES[-1] == "C00"
    assert sorted(camera.AMP_NAMES) == sorted(f"C{y}{x}" for y in range(2) for x in range(8))
    with pytest.raises(KeyError):
        cam["R22_S33"]


def test_nominal_gains_come_from_the_amplifier_table() -> None:
    with open(camera._AMPLIFIERS_YAML) as stream:
        raft = yaml.safe_load(stream)["R22"]
    cam = camera.get_camera()
    for det in cam:
        slot = det.name.split("_")[1]
        assert det.serial == raft["ccdSerials"][slot]
        for amp in det:
            assert amp.gain == raft["amplifiers"][slot][amp.name]["gain"]
            assert amp.read_noise == raft["amplifiers"][slot][amp.name]["readNoise"]
    gains = [amp.gain for det in cam for amp in det]
    # The amplifier gains of comcam-R22-amplifiers: min 1.1728 (S21 C07), max 1.4497.
    assert min(gains) == cam["R22_S21"]["C07"].gain == 1.1728
    assert max(gains) == 1.4497


def test_raw_layout_of_the_size_presets() -> None:
    full = camera.amp_geometry("full")
    assert full.raw_shape == (2048, 576)
    assert full.detector_shape == (4000, 4072)
    tiny = camera.amp_geometry("tiny")
    assert camera.AmpGeometry.from_raw_shape(tiny.raw_shape) == tiny
    raw = np.zeros(tiny.raw_shape)
    # Every raw pixel is in exactly one of prescan, data, serial overscan, parallel overscan, or the
    # corner where the parallel-overscan rows meet the prescan/serial overscan (counted in the serial ones).
    count = np.zeros(tiny.raw_shape, dtype=int)
    for region in (
        tiny.prescan_slice,
        tiny.data_slice,
        tiny.serial_overscan_slice,
        tiny.parallel_overscan_slice,
    ):
        count[region] += 1
    assert np.all(count == 1)
    assert raw[tiny.serial_overscan_slice].shape == (tiny.ny + 48, 64)
    with pytest.raises(ValueError):
        camera.amp_geometry("huge")


def test_assemble_puts_each_amp_data_section_in_its_box() -> None:
    geom = camera.amp_geometry("tiny")
    amps = {}
    for i, name in enumerate(camera.AMP_NAMES):
        raw = np.full(geom.raw_shape, -1, dtype=np.int32)
        raw[geom.data_slice] = i
        amps[name] = raw
    image = RawImage(amps=amps, metadata={"DETECTOR": 3}).assembled()
    assert image.shape == geom.detector_shape
    det = camera.get_camera()[3]
    for i, name in enumerate(camera.AMP_NAMES):
        assert np.all(image[det[name].bbox_slices(geom)] == i)
    # C00 is bottom-left, C17 top-right.
    assert image[0, 0] == camera.AMP_NAMES.index("C00")
    assert image[-1, -1] == camera.AMP_NAMES.index("C17")
    corner_rows, corner_cols = det["C17"].corner_slices(geom, size=10)
    assert (corner_rows.stop, corner_cols.stop) == geom.detector_shape


def test_raw_image_refuses_mixed_shapes() -> None:
    with pytest.raises(ValueError):
        RawImage(amps={"C00": np.zeros((88, 99)), "C01": np.zeros((88, 98))})


def test_defects_mask_round_trip_is_exact() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((40, 60)) < 0.1
    mask[:, 7] = True
    defects = Defects.from_mask(mask, detector=2, metadata={"OBSTYPE": "defects"})
    assert np.array_equal(defects.to_mask(mask.shape), mask)
    # Boxes do not overlap: their areas add up to the number of masked pixels.
    assert sum(w * h for _, _, w, h in defects.boxes) == mask.sum()
    table = defects.to_table()
    assert table.colnames == ["x0", "y0", "width", "height"]
    again = Defects.from_table(table)
    assert again.detector == 2 and again.boxes == defects.boxes and again.metadata["OBSTYPE"] == "defects"


def test_defects_boxes_are_x_y_width_height() -> None:
    defects = Defects(detector=0, boxes=[(2, 1, 3, 2)])
    mask = defects.to_mask((5, 6))
    assert mask.sum() == 6
    assert mask[1:3, 2:5].all()
    with pytest.raises(ValueError):
        Defects(detector=0, boxes=[(0, 0, 0, 1)])


def test_ptc_json_round_trip_and_partial_concatenation() -> None:
    amps = ["C10", "C11"]
    partials = []
    for k, (e1, e2) in enumerate([(101, 102), (103, 104)]):
        ptc = PhotonTransferCurve(detector=1, detector_name="R22_S01", fit_type="PARTIAL", amp_names=amps)
        for amp in amps:
            ptc.input_exp_id_pairs[amp] = [[e1, e2]]
            ptc.raw_means[amp] = [1000.0 * (k + 1)]
            ptc.raw_vars[amp] = [700.0 * (k + 1)]
            ptc.gain[amp] = 1.4 + k
            ptc.noise[amp] = 5.0
        partials.append(ptc)
    text = partials[0].to_json()
    again = PhotonTransferCurve.from_json(text)
    assert again.to_json() == text
    assert again.input_exp_id_pairs["C11"] == [[101, 102]]
    assert math.isnan(again.turnoff["C10"])
    merged = PhotonTransferCurve.from_partials(partials)
    assert merged.raw_means["C10"] == [1000.0, 2000.0]
    assert merged.input_exp_id_pairs["C11"] == [[101, 102], [103, 104]]
    assert math.isnan(merged.gain["C10"])
    with pytest.raises(ValueError):
        PhotonTransferCurve.from_dict(json.loads(text) | {"bogus": 1})


def test_masked_image_keeps_planes_and_non_scalar_metadata() -> None:
    image = np.arange(20, dtype=np.float64).reshape(4, 5)
    bad = np.zeros((4, 5), dtype=bool)
    bad[1, 2] = True
    cr = np.zeros((4, 5), dtype=bool)
    cr[3, 4] = True
    metadata = {"EXPTIME": np.float64(5.0), "IMGTYPE": "FLAT", "CPP_INPUTS": [1, 2, 3], "QA": {"C00": 1.5}}
    mi = make_masked_image(image, bad=bad, variance=image * 2, metadata=metadata, masks={"CR": cr})
    assert mi.metadata[JSON_KEYS_KEY] == "CPP_INPUTS,QA"
    out_image, out_bad, out_var, out_md = masked_image_arrays(mi)
    assert out_image.dtype == np.float32 and np.array_equal(out_image, image)
    assert np.array_equal(out_bad, bad) and np.array_equal(out_var, image * 2)
    assert out_md == {"EXPTIME": 5.0, "IMGTYPE": "FLAT", "CPP_INPUTS": [1, 2, 3], "QA": {"C00": 1.5}}
    assert np.array_equal(masked_image_mask(mi, "CR"), cr)
    assert not masked_image_mask(mi, "SAT").any()
    with pytest.raises(ValueError):
        make_masked_image(image, masks={"NOT_A_PLANE": bad})
    with pytest.raises(ValueError):
        make_masked_image(image, bad=np.zeros((3, 3), dtype=bool))


def test_masked_image_planes_are_the_bits_mask_set_gives() -> None:
    """make_masked_image sets its planes in one vectorised pass: the mask array is byte for byte the one
    lsst.images' Mask.set builds."""
    from lsst.images import Image, MaskedImage

    from lsst.ts.makecalibrations.butler.images import MASK_SCHEMA

    rng = np.random.default_rng(5)
    image = rng.normal(0.0, 1.0, (30, 40)).astype(np.float32)
    planes = {name: rng.random(image.shape) < 0.2 for name in ("BAD", "SAT", "INTRP", "UNMASKEDNAN")}
    made = make_masked_image(image, masks=planes)
    reference = MaskedImage(Image(image), mask_schema=MASK_SCHEMA)
    for name, plane in planes.items():
        reference.mask.set(name, plane)
    assert made.mask.array.dtype == reference.mask.array.dtype
    assert np.array_equal(made.mask.array, reference.mask.array)
