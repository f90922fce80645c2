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

"""Certification through the daf_butler API, conflict detection, and the readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lsst.daf.butler import Butler, DatasetNotFoundError

from lsst.ts.makecalibrations.butler.calib_types import PhotonTransferCurve
from lsst.ts.makecalibrations.butler.certification import (
    CertificationConflict,
    CertificationError,
    certify,
    find_conflicts,
    format_tai,
    parse_tai,
)
from lsst.ts.makecalibrations.butler.images import make_masked_image, masked_image_arrays
from lsst.ts.makecalibrations.butler.readers import (
    PairGain,
    list_certified,
    read_pair_gains,
    read_ptc_bad_amps,
    read_ptc_fit_fallbacks,
    read_verify_stats,
)
from lsst.ts.makecalibrations.butler.repository import CALIB_COLLECTION, make_butler
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from tests.butler.helpers import make_info

JOB_RUN = "u/ocps/job1"
DAILY = "LSSTComCam/calib/daily"


def _put_job_outputs(
    repo: Path, run: str = JOB_RUN, detectors: tuple[int, ...] = (0, 1)
) -> dict[int, np.ndarray]:
    """Put a bias per detector (value = 100 + detector) and flats in r_03 into ``run``."""
    butler = make_butler(repo, writeable=True)
    butler.registry.registerRun(run)
    images = {}
    for det in detectors:
        images[det] = np.full((80, 256), 100.0 + det, dtype=np.float32)
        butler.put(
            make_masked_image(images[det], metadata={"OBSTYPE": "bias"}), "bias", detector=det, run=run
        )
        butler.put(make_masked_image(images[det]), "flat", detector=det, physical_filter="r_03", run=run)
    return images


async def test_certified_bias_is_found_by_exposure(repo: Path) -> None:
    writer = ButlerRawWriter(repo)
    inside = make_info(1, "BIAS")  # 2024-11-26T20:01 TAI
    outside = make_info(2, "BIAS", day_obs=20241128)
    await writer.write_image(inside)
    await writer.write_image(outside)
    writer.close()
    images = _put_job_outputs(repo)

    assert certify(repo, JOB_RUN, DAILY, "bias", "2024-11-26", "2024-11-27") == 2

    butler = Butler(str(repo), collections=[DAILY])
    bias = butler.get("bias", detector=1, exposure=inside.exposure_id, instrument="LSSTComCam")
    assert np.array_equal(masked_image_arrays(bias)[0], images[1])
    with pytest.raises(DatasetNotFoundError):
        butler.get("bias", detector=1, exposure=outside.exposure_id, instrument="LSSTComCam")
    # The calib chain still reaches the curated calibrations for the other detectors.
    curated = Butler(str(repo), collections=[DAILY, CALIB_COLLECTION])
    assert curated.get("bias", detector=5, exposure=inside.exposure_id, instrument="LSSTComCam") is not None

    assert [(c.dataset_type, c.data_id["detector"], c.begin, c.end) for c in list_certified(repo, DAILY)] == [
        ("bias", 0, "2024-11-26T00:00:00", "2024-11-27T00:00:00"),
        ("bias", 1, "2024-11-26T00:00:00", "2024-11-27T00:00:00"),
    ]


def test_conflicts_are_found_before_and_refused_by_certify(repo: Path) -> None:
    _put_job_outputs(repo)
    assert find_conflicts(repo, DAILY, ["bias"], "2024-11-26", "2024-11-27") == []  # no collection yet
    certify(repo, JOB_RUN, DAILY, "bias", "2024-11-26", "2024-11-27")

    overlapping = find_conflicts(repo, DAILY, ["bias", "dark"], "2024-11-26T12:00:00", "2024-11-28")
    assert overlapping == [CertificationConflict("bias", "2024-11-26T00:00:00", "2024-11-27T00:00:00", 2)]
    assert find_conflicts(repo, DAILY, ["bias"], "2024-11-27", "2024-11-28") == []  # touching is fine
    assert find_conflicts(repo, DAILY, ["bias"], "2024-11-26", "2024-11-27", detectors=[5]) == []

    with pytest.raises(CertificationError) as excinfo:
        certify(repo, JOB_RUN, DAILY, "bias", "2024-11-26T12:00:00", "2024-11-28")
    message = str(excinfo.value)
    assert "bias" in message and DAILY in message
    assert "2024-11-26T12:00:00" in message and "2024-11-28T00:00:00" in message
    # Re-certifying the same datasets over the same range is a conflict too.
    with pytest.raises(CertificationError, match="overlaps"):
        certify(repo, JOB_RUN, DAILY, "bias", "2024-11-26", "2024-11-27")
    assert certify(repo, JOB_RUN, DAILY, "bias", "2024-11-27", "2024-11-28") == 2


def test_flat_conflicts_can_be_restricted_to_a_filter(repo: Path) -> None:
    # The curated flats cover every filter over [1950, 2050).
    conflicts = find_conflicts(
        repo, CALIB_COLLECTION, ["flat"], "2024-11-26", "2024-11-27", physical_filter="r_03"
    )
    assert conflicts == [CertificationConflict("flat", "-inf", "2050-01-01T00:00:00", 9)]
    all_filters = find_conflicts(repo, CALIB_COLLECTION, ["flat"], "2024-11-26", "2024-11-27")
    assert all_filters[0].n_datasets == 9 * 8


def test_certify_refuses_nothing_to_certify_and_bad_input(repo: Path) -> None:
    _put_job_outputs(repo)
    with pytest.raises(CertificationError, match=f"No dark datasets in '{JOB_RUN}'.*{DAILY}"):
        certify(repo, JOB_RUN, DAILY, "dark", "2024-11-26", "2024-11-27")
    with pytest.raises(CertificationError, match="does not exist"):
        certify(repo, "u/ocps/nope", DAILY, "bias", "2024-11-26", "2024-11-27")
    with pytest.raises(CertificationError, match="not a calibration"):
        certify(repo, JOB_RUN, DAILY, "verifyBiasStats", "2024-11-26", "2024-11-27")
    with pytest.raises(ValueError, match="empty"):
        certify(repo, JOB_RUN, DAILY, "bias", "2024-11-27", "2024-11-26")
    with pytest.raises(ValueError, match="Invalid date"):
        certify(repo, JOB_RUN, DAILY, "bias", "yesterday", "2024-11-26")
    with pytest.raises(CertificationError, match="RUN"):
        certify(repo, CALIB_COLLECTION, DAILY, "bias", "2024-11-26", "2024-11-27")


def test_dates_are_tai() -> None:
    assert parse_tai("2024-11-26").scale == "tai"
    assert format_tai(parse_tai("2024-11-26T01:02:03.5")) == "2024-11-26T01:02:03.5"
    assert format_tai(None, "-inf") == "-inf"


def test_readers_return_verify_stats_and_pair_gains(repo: Path) -> None:
    butler = make_butler(repo, writeable=True)
    butler.registry.registerRun(JOB_RUN)
    stats = {
        2024112600001: {"SUCCESS": True},
        2024112600002: {"SUCCESS": False, "FAILURES": ["R22_S21 C17 NOISE"]},
    }
    stats["SUCCESS"] = False
    butler.put(stats, "verifyFlatStats", instrument="LSSTComCam", physical_filter="r_03", run=JOB_RUN)
    # As cp_verify: the run-level flat statistics have dimensions instrument + physical_filter.
    reader = Butler(str(repo), collections=[JOB_RUN])
    assert reader.get("verifyFlatStats", instrument="LSSTComCam", physical_filter="r_03") == stats
    assert read_verify_stats(repo, JOB_RUN, "verifyFlatStats") == stats
    # Two filters in one collection: merged, SUCCESS only if both succeeded.
    other = {2024112600009: {"SUCCESS": True}, "SUCCESS": True}
    butler.put(other, "verifyFlatStats", instrument="LSSTComCam", physical_filter="g_01", run=JOB_RUN)
    merged = read_verify_stats(repo, JOB_RUN, "verifyFlatStats")
    assert set(merged) == {2024112600001, 2024112600002, 2024112600009, "SUCCESS"}
    assert merged["SUCCESS"] is False
    with pytest.raises(LookupError, match="verifyBiasStats"):
        read_verify_stats(repo, JOB_RUN, "verifyBiasStats")
    with pytest.raises(LookupError, match="does not exist"):
        read_verify_stats(repo, "u/ocps/nope", "verifyFlatStats")

    assert read_pair_gains(repo, JOB_RUN) == []
    writer_records = [(2024112600003, 3), (2024112600005, 5)]
    registry = butler.registry
    registry.syncDimensionData("day_obs", {"instrument": "LSSTComCam", "id": 20241126})
    registry.syncDimensionData("group", {"instrument": "LSSTComCam", "name": "g"})
    for exposure, seq in writer_records:
        registry.syncDimensionData(
            "exposure",
            {
                "instrument": "LSSTComCam",
                "id": exposure,
                "obs_id": f"CC_O_20241126_{seq:06d}",
                "physical_filter": "empty",
                "group": "g",
                "day_obs": 20241126,
                "observation_type": "flat",
                "seq_num": seq,
            },
        )
    legacy_run = JOB_RUN + "_legacy"
    butler.registry.registerRun(legacy_run)
    for detector in (1, 0):
        for exposure, _ in writer_records:
            ptc = PhotonTransferCurve(detector, f"R22_S0{detector}", "PARTIAL", ["C00", "C10"])
            for amp in ptc.amp_names:
                ptc.input_exp_id_pairs[amp] = [[exposure, exposure + 1]]
                ptc.gain[amp] = 1.3 + 0.01 * detector
                ptc.noise[amp] = 5.5
            for dataset_type, run in (("cpPtcPartial", JOB_RUN), ("cpPtcExtract", legacy_run)):
                butler.put(
                    ptc, dataset_type, instrument="LSSTComCam", exposure=exposure, detector=detector, run=run
                )
    # A collection of an older version holds the pre-2024 name only: read as well.
    assert read_pair_gains(repo, legacy_run) == read_pair_gains(repo, JOB_RUN)
    gains = read_pair_gains(repo, JOB_RUN)
    assert len(gains) == 2 * 2 * 2
    assert gains[0] == PairGain((2024112600003, 2024112600004), 0, "C10", 1.3, 5.5)
    assert gains[1].amp == "C00"  # readout order: C10..C17 then C07..C00
    assert gains[-1].exposure_pair == (2024112600005, 2024112600006) and gains[-1].detector == 1
    cp_cov = Butler(str(repo), collections=[JOB_RUN]).get(
        "cpPtcPartial", detector=1, exposure=2024112600003, instrument="LSSTComCam"
    )
    assert cp_cov.gain == {"C00": 1.31, "C10": 1.31} and cp_cov.noise["C00"] == 5.5


def test_ptc_readers_name_bad_amps_and_fit_fallbacks(repo: Path) -> None:
    """The script's PTC checks: bad amps with the solver's reasons, and a fallback fit with its reason."""
    butler = make_butler(repo, writeable=True)
    butler.registry.registerRun(JOB_RUN)
    assert read_ptc_bad_amps(repo, JOB_RUN) == {} and read_ptc_fit_fallbacks(repo, JOB_RUN) == {}
    good = PhotonTransferCurve(0, "R22_S00", "FULLCOVARIANCE", ["C00", "C10"])
    fallback = PhotonTransferCurve(1, "R22_S01", "EXPAPPROXIMATION", ["C00", "C10"])
    fallback.metadata["PTC FIT FALLBACK"] = "6 flat pairs, fewer than the 8 that FULLCOVARIANCE needs"
    fallback.bad_amps.append("C10")
    fallback.metadata["PTC BAD AMP REASONS"] = {"C10": "fit failed (fewer than 3 usable points)"}
    for ptc in (good, fallback):
        butler.put(ptc, "ptc", instrument="LSSTComCam", detector=ptc.detector, run=JOB_RUN)
    assert read_ptc_fit_fallbacks(repo, JOB_RUN) == {1: fallback.metadata["PTC FIT FALLBACK"]}
    assert read_ptc_bad_amps(repo, JOB_RUN) == {1: {"C10": "fit failed (fewer than 3 usable points)"}}
    assert read_ptc_bad_amps(repo, "u/ocps/nope") == {}
