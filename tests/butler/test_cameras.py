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

"""The camera descriptions of LSSTCam and LATISS: detectors, ITL/e2v raw layouts, nominal amplifiers,
and that raws made with them go through the numpy ISR with the right geometry."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.camera import (
    AMP_NAMES,
    E2V_LAYOUT,
    ITL_LAYOUT,
    LSSTCAM_ITL_RAFTS,
    get_camera,
)
from lsst.ts.makecalibrations.butler.instrument import INSTRUMENT_CLASSES, LATISS_FILTERS
from lsst.ts.makecalibrations.butler.raw_image import RawImage
from lsst.ts.makecalibrations.calib.instrument import INSTRUMENTS
from lsst.ts.makecalibrations.pipelines.isr import IsrSettings, run_isr
from lsst.ts.makecalibrations.sim.truth import TruthModel


def test_lsstcam_has_189_science_detectors_numbered_as_obs_lsst() -> None:
    camera = get_camera("LSSTCam")
    assert len(camera) == 189 and camera.detector_ids == tuple(range(189))
    assert camera["R01_S00"].id == 0 and camera["R22_S11"].id == 94 and camera["R43_S22"].id == 188
    assert camera[94].position_mm == (0.0, 0.0)
    vendors = {det.raft: det.vendor for det in camera}
    assert sorted(r for r, v in vendors.items() if v == "ITL") == sorted(LSSTCAM_ITL_RAFTS)
    assert sum(v == "E2V" for v in vendors.values()) == 13
    # The calib room's instrument and the camera agree on the detectors.
    assert INSTRUMENTS["LSSTCam"].detector_ids == camera.detector_ids


def test_one_shared_camera_per_instrument_however_it_is_asked_for() -> None:
    # Tasks pass the instrument name, module-level code asks for the default: one camera for both.
    assert get_camera() is get_camera("LSSTComCam")
    assert get_camera("LATISS") is get_camera("LATISS") is not get_camera()
    with pytest.raises(KeyError, match="No camera description for instrument 'HSC'"):
        get_camera("HSC")


def test_latiss_is_one_itl_detector() -> None:
    camera = get_camera("LATISS")
    assert [(det.id, det.name, det.vendor) for det in camera] == [(0, "RXX_S00", "ITL")]
    assert INSTRUMENTS["LATISS"].detector_ids == camera.detector_ids
    assert "SDSSr_65mm~holo4_003" in LATISS_FILTERS


def test_itl_and_e2v_raw_layouts_differ_and_full_amps_are_576_by_2048() -> None:
    itl, e2v = ITL_LAYOUT.geometry("full"), E2V_LAYOUT.geometry("full")
    assert (itl.nx, itl.ny, itl.prescan) == (509, 2000, 3)
    assert (e2v.nx, e2v.ny, e2v.prescan) == (512, 2002, 10)
    assert itl.raw_shape == e2v.raw_shape == (2048, 576)
    assert ITL_LAYOUT.geometry("tiny").raw_shape != E2V_LAYOUT.geometry("tiny").raw_shape


def test_nominal_amplifiers_are_typical_values_and_repeatable() -> None:
    camera = get_camera("LSSTCam")
    itl, e2v = camera[0], camera[94]
    assert itl.amp_names == e2v.amp_names == list(AMP_NAMES)
    assert 1.4 < np.mean(list(itl.gains.values())) < 2.0 and 1.3 < np.mean(list(e2v.gains.values())) < 1.7
    assert e2v.gains != itl.gains
    # e2v bottom amps read out from their low corner, ITL ones from high x.
    assert not e2v["C00"].flip_x and itl["C00"].flip_x


@pytest.mark.parametrize("detector", [0, 94])
def test_lsstcam_raw_goes_through_isr_with_its_vendor_layout(detector: int) -> None:
    truth = TruthModel(size="tiny", instrument="LSSTCam", seed=5)
    det = truth.camera[detector]
    amps = truth.make_raw_amps(detector, 1, "BIAS", 0.0, 0.0)
    raw = RawImage(amps=amps, metadata={"CCD_MANU": det.vendor, "DETECTOR": detector})
    geometry = det.geometry("tiny")
    assert next(iter(amps.values())).shape == geometry.raw_shape
    assert raw.geometry == geometry
    result = run_isr(amps, raw.metadata, det, IsrSettings(doApplyGains=True))
    assert result.image.shape == geometry.detector_shape
    # Overscan-corrected bias in electrons: the level is gone, the read noise is what is left.
    assert abs(float(np.median(result.image))) < 5.0


def test_every_instrument_class_registers_its_camera(tmp_path) -> None:
    from lsst.ts.makecalibrations.butler.repository import create_repo, repo_instrument

    butler = create_repo(tmp_path / "repo", "LSSTCam")
    records = list(butler.registry.queryDimensionRecords("detector", instrument="LSSTCam"))
    assert len(records) == 189
    assert {r.full_name for r in records if r.id == 94} == {"R22_S11"}
    assert repo_instrument(tmp_path / "repo") == "LSSTCam"
    assert set(INSTRUMENT_CLASSES) == {"LSSTComCam", "LSSTCam", "LATISS"}


def test_latiss_butler_filters_follow_the_instrument_rule() -> None:
    from lsst.ts.makecalibrations.butler.instrument import LATISS_FILTERS, LATISS_GRATINGS
    from lsst.ts.makecalibrations.calib.instrument import LATISS

    names = [name for name in LATISS_FILTERS if name != "unknown"]
    assert "SDSSg_65mm~blue300lpmm_qn1" in names
    assert len(names) == 5 * len(LATISS_GRATINGS)
    assert all(LATISS.physical_filter(*name.split("~")) == name for name in names)
