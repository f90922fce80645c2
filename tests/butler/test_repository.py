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

"""Repository creation: instrument, dataset types, curated calibrations, reuse and refusal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from lsst.daf.butler import Butler

from lsst.ts.makecalibrations.butler.calib_types import Defects, PhotonTransferCurve
from lsst.ts.makecalibrations.butler.camera import DETECTOR_NAMES, get_camera
from lsst.ts.makecalibrations.butler.images import masked_image_arrays
from lsst.ts.makecalibrations.butler.instrument import PHYSICAL_FILTERS
from lsst.ts.makecalibrations.butler.readers import list_certified
from lsst.ts.makecalibrations.butler.repository import CALIB_COLLECTION, RAW_RUN, RepositoryError
from lsst.ts.makecalibrations.pipelines.isr import OVERSCAN_NOISE_FACTOR
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from lsst.ts.makecalibrations.sim.repository import TRUTH_FILE, ensure_repo, read_simulation_config
from lsst.ts.makecalibrations.sim.truth import TruthModel
from tests.butler.helpers import make_info


def test_instrument_detectors_and_filters_are_registered(template_repo: Path) -> None:
    butler = Butler.from_config(str(template_repo))
    records = butler.registry.queryDimensionRecords("detector", instrument="LSSTComCam")
    assert sorted((r.id, r.full_name) for r in records) == list(enumerate(DETECTOR_NAMES))
    filters = butler.registry.queryDimensionRecords("physical_filter", instrument="LSSTComCam")
    assert {r.name: r.band for r in filters} == PHYSICAL_FILTERS
    (instrument,) = butler.registry.queryDimensionRecords("instrument")
    assert instrument.class_name == "lsst.ts.makecalibrations.butler.instrument.LsstComCam"


def test_dataset_types_follow_the_contract(template_repo: Path) -> None:
    butler = Butler.from_config(str(template_repo))
    get = butler.registry.getDatasetType
    assert set(get("verifyFlatStats").dimensions.required) == {"instrument", "physical_filter"}
    assert get("verifyBiasStats").dimensions.names == {"instrument"}
    assert get("cpPtcPartial").storageClass_name == "PhotonTransferCurve"
    assert get("flat").isCalibration() and "physical_filter" in get("flat").dimensions.names
    assert get("cpPtcExtract").storageClass_name == "PhotonTransferCurve"
    assert get("raw").storageClass_name == "RawImage"
    assert get("bias").storageClass_name == "MaskedImageV2"
    assert not get("verifyBiasDetStats").isCalibration()
    assert butler.registry.getCollectionType(RAW_RUN).name == "RUN"
    assert butler.registry.getCollectionType(CALIB_COLLECTION).name == "CALIBRATION"


def test_curated_calibrations_cover_every_detector_and_filter(template_repo: Path) -> None:
    certified = list_certified(template_repo, CALIB_COLLECTION)
    counts: dict[str, int] = {}
    for entry in certified:
        counts[entry.dataset_type] = counts.get(entry.dataset_type, 0) + 1
        # [1950-01-01, 2050-01-01): daf_butler treats anything before 1970 as unbounded.
        assert (entry.begin, entry.end) == ("-inf", "2050-01-01T00:00:00")
    assert counts == {"bias": 9, "dark": 9, "flat": 9 * len(PHYSICAL_FILTERS), "defects": 9, "ptc": 9}


async def test_seed_procedure_access_works_on_a_fresh_repo(repo: Path) -> None:
    """ "Accessing the calibrations" of the seed procedure, with an exposure id taken today."""
    writer = ButlerRawWriter(repo)
    info = make_info(1, "FLAT", 5.0, physical_filter="r_03", detectors=(0,))
    await writer.write_image(info)
    writer.close()
    truth = TruthModel.from_simulation_config(read_simulation_config(repo))

    butler = Butler(str(repo), collections=[CALIB_COLLECTION])
    detectors = (0, 1, 2, 3, 4, 5, 6, 7, 8)
    exposure = [info.exposure_id]
    bias = butler.get("bias", detector=detectors[0], exposure=exposure[0], instrument="LSSTComCam")
    dark = butler.get("dark", detector=detectors[0], exposure=exposure[0], instrument="LSSTComCam")
    flat = butler.get("flat", detector=detectors[0], exposure=exposure[0], instrument="LSSTComCam")
    defects = butler.get("defects", detector=detectors[0], exposure=exposure[0], instrument="LSSTComCam")
    ptc = butler.get("ptc", detector=detectors[0], exposure=exposure[0], instrument="LSSTComCam")

    image, _, _, metadata = masked_image_arrays(bias)
    assert np.array_equal(image, truth.reference_bias(0))
    assert metadata["OBSTYPE"] == "bias" and metadata["DETECTOR"] == 0
    assert np.array_equal(masked_image_arrays(dark)[0], truth.reference_dark(0))
    flat_image, _, _, flat_md = masked_image_arrays(flat)
    assert flat_md["FILTER"] == "r_03"
    assert np.array_equal(flat_image, truth.reference_flat(0))
    assert isinstance(defects, Defects)
    assert np.array_equal(defects.to_mask(truth.geometry.detector_shape), truth.reference_defect_mask(0))
    assert isinstance(ptc, PhotonTransferCurve) and ptc.fit_type == "EXPAPPROXIMATION"
    assert ptc.gain == get_camera()[0].gains
    # The noise a PTC measures on processed pixels: the read noise and the overscan medians' noise.
    assert ptc.noise == pytest.approx(
        {amp: rn * OVERSCAN_NOISE_FACTOR for amp, rn in get_camera()[0].read_noises.items()}, rel=1e-12
    )


def test_second_call_reuses_and_refuses_another_size(template_repo: Path) -> None:
    config = read_simulation_config(template_repo)
    assert config["size"] == "tiny" and config["nx"] == 32 and config["ny"] == 40
    with open(template_repo / TRUTH_FILE) as stream:
        assert json.load(stream)["detectors"]["0"]["hot_pixels"]
    start = time.monotonic()
    ensure_repo(template_repo)
    ensure_repo(template_repo, size="tiny")
    assert time.monotonic() - start < 1.0
    with pytest.raises(RepositoryError, match="size='tiny'.*size='default'"):
        ensure_repo(template_repo, size="default")
    with pytest.raises(RepositoryError, match="seed"):
        ensure_repo(template_repo, seed=config["seed"] + 1)
    with pytest.raises(ValueError, match="Unknown size"):
        ensure_repo(template_repo, size="enormous")


def test_refuses_a_foreign_butler_repo(tmp_path: Path) -> None:
    Butler.makeRepo(str(tmp_path / "other"))
    with pytest.raises(RepositoryError, match="not created by ensure_repo"):
        ensure_repo(tmp_path / "other", size="tiny")


def test_creation_says_what_it_does_and_warns_of_nothing(
    template_repo: Path, template_repo_creation: dict[str, list[str]]
) -> None:
    CREATION = template_repo_creation
    lines = CREATION["progress"]
    assert lines[0].startswith(f"creating the butler repository {template_repo} (size tiny)")
    assert [line for line in lines if "from the simulated truth" in line][-1].endswith("(9 of 9)")
    assert lines[-1] == f"butler repository {template_repo} ready"
    # The curated range begins in 1950: stored unbounded below, without the butler's epoch warning.
    assert not [w for w in CREATION["warnings"] if "epoch" in w], CREATION["warnings"]
    butler = Butler(str(template_repo))
    (association,) = [
        a
        for a in butler.registry.queryDatasetAssociations("bias", collections="LSSTComCam/calib")
        if a.ref.dataId["detector"] == 0
    ]
    assert association.timespan.begin is None


def test_reference_calibrations_only_for_the_detectors_asked_for(tmp_path: Path) -> None:
    repo = tmp_path / "subset"
    lines: list[str] = []
    ensure_repo(repo, size="tiny", detectors=[4], filters=["r_03"], progress=lines.append)
    assert "reference calibrations from the simulated truth: detector 4 (1 of 1)" in lines

    def calibrated() -> set[int]:
        butler = Butler(str(repo))
        refs = butler.registry.queryDatasets("bias", collections="LSSTComCam/calib", findFirst=False)
        return {int(ref.dataId["detector"]) for ref in refs}

    assert calibrated() == {4}
    lines.clear()
    ensure_repo(repo, detectors=[4])  # nothing to add
    assert lines == []
    ensure_repo(repo, size="tiny", detectors=[2, 4], progress=lines.append)  # added on demand
    assert calibrated() == {2, 4}
    assert "detectors [2], flat filters []" in lines[0]
    # Flats for the one filter asked for, others added on demand (for every detector the repo has).

    def flat_filters() -> set[tuple[int, str]]:
        registry = Butler(str(repo)).registry
        refs = registry.queryDatasets("flat", collections="LSSTComCam/calib", findFirst=False)
        return {(int(ref.dataId["detector"]), str(ref.dataId["physical_filter"])) for ref in refs}

    assert flat_filters() == {(2, "r_03"), (4, "r_03")}
    ensure_repo(repo, filters=["g_01"])
    assert flat_filters() == {(d, f) for d in (2, 4) for f in ("r_03", "g_01")}
    with pytest.raises(ValueError, match="Unknown detectors"):
        ensure_repo(repo, detectors=[9])
    with pytest.raises(ValueError, match="Unknown filters"):
        ensure_repo(repo, filters=["q_99"])
