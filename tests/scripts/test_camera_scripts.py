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

"""MakeLSSTCamCalibrations and MakeLatissCalibrations against their simulated observatories.

The fast tests use the sleep executor (images and checks only): the LSSTCam dome feasibility check
before the flats (and ``ignore``), the LATISS filter and grating before the flats, the real component
names. The two end-to-end runs (pipetask, internal verification, certification, products read back)
are kept small: LSSTCam biases on one ITL and one e2v detector, LATISS flats on its one detector.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest

from lsst.ts.makecalibrations.calib.config import schema_defaults
from lsst.ts.makecalibrations.calib.instrument import LATISS, LSSTCAM
from lsst.ts.makecalibrations.cli.run_script import print_plan
from lsst.ts.makecalibrations.sal import ScriptState, salobj
from lsst.ts.makecalibrations.scripts import (
    MakeComCamCalibrations,
    MakeLatissCalibrations,
    MakeLSSTCamCalibrations,
)
from tests.scripts.driver import run_calibrations

IMAGES_ONLY = dict(do_verify=False, generate_calibrations=False, do_gain_from_flat_pairs=False)
SMALL = dict(IMAGES_ONLY, n_bias=1, n_discard_bias=0, n_dark=1, n_discard_dark=0, exp_times_dark=1)
FLATS = dict(n_flat=2, n_discard_flat=0, exp_times_flat=1)
DETECTORS = [0, 94]  # R01_S00 (ITL) and R22_S11 (e2v)
#: Three biases, made into a bias, verified and certified.
BIASES = dict(script_mode="BIAS", n_bias=3, n_discard_bias=0, generate_calibrations=True)


def image_types(result) -> list[str]:
    return [info.image_type for info in result.images]


async def test_lsstcam_takes_images_through_mtcamera_and_ocps3(tmp_path) -> None:
    config = dict(SMALL, **FLATS, detectors=DETECTORS, filter="g_6")
    result = await run_calibrations(
        config, report_dir=tmp_path, script_class=MakeLSSTCamCalibrations, detectors=DETECTORS
    )
    assert result.final_state == ScriptState.DONE, result.reason
    observatory = result.observatory
    assert (observatory.camera.salinfo.name, observatory.oods.salinfo.name) == ("MTCamera", "MTOODS")
    assert observatory.ocps.salinfo.index == 3
    assert image_types(result) == ["BIAS", "DARK", "FLAT", "FLAT"]
    assert {i.obs_id[:5] for i in result.images} == {"MC_O_"}
    assert {i.detectors for i in result.images} == {tuple(DETECTORS)}
    assert {i.physical_filter for i in result.images} == {"g_6"}
    assert result.metadata.instrument == "LSSTCam"


@pytest.mark.parametrize(
    "states, named",
    [
        ({"MTDome": salobj.State.FAULT}, "MTDome is FAULT; needs DISABLED or ENABLED"),
        ({"MTDomeTrajectory": salobj.State.DISABLED}, "MTDomeTrajectory is DISABLED; needs ENABLED"),
    ],
)
async def test_dome_not_ready_fails_before_any_flat(tmp_path, states, named: str) -> None:
    result = await run_calibrations(
        dict(SMALL, **FLATS, detectors=[94]),
        report_dir=tmp_path,
        script_class=MakeLSSTCamCalibrations,
        detectors=[94],
        component_states=states,
    )
    assert result.final_state == ScriptState.FAILED
    assert named in result.reason
    assert image_types(result) == ["BIAS", "DARK"]  # no flat
    assert result.failure_steps() == ["flat feasibility"]
    assert result.report is not None and result.report.acquisition("FLAT").status == "not_taken"


async def test_ignore_skips_the_dome_check(tmp_path) -> None:
    result = await run_calibrations(
        dict(SMALL, **FLATS, detectors=[94], ignore=["MTDome"]),
        report_dir=tmp_path,
        script_class=MakeLSSTCamCalibrations,
        detectors=[94],
        component_states={"MTDome": salobj.State.FAULT},
    )
    assert result.final_state == ScriptState.DONE, result.reason
    assert image_types(result) == ["BIAS", "DARK", "FLAT", "FLAT"]


async def test_latiss_sets_filter_and_grating_before_the_flats(tmp_path) -> None:
    config = dict(SMALL, **FLATS, filter="SDSSr_65mm", grating="holo4_003")
    result = await run_calibrations(config, report_dir=tmp_path, script_class=MakeLatissCalibrations)
    assert result.final_state == ScriptState.DONE, result.reason
    observatory = result.observatory
    assert observatory.camera.salinfo.name == "ATCamera" and observatory.ocps.salinfo.index == 1
    assert observatory.spectrograph is not None
    assert {i.physical_filter for i in result.images} == {"SDSSr_65mm~holo4_003"}
    assert {i.detectors for i in result.images} == {(0,)}
    assert {i.obs_id[:5] for i in result.images} == {"AT_O_"}


async def test_latiss_unknown_grating_fails_before_any_image(tmp_path) -> None:
    config = dict(SMALL, **FLATS, grating="no_such_grating")
    result = await run_calibrations(config, report_dir=tmp_path, script_class=MakeLatissCalibrations)
    assert result.final_state == ScriptState.FAILED
    assert "no_such_grating" in result.reason and "grating" in result.reason
    assert result.images == []


@pytest.mark.parametrize(
    ("script_class", "camera", "ocps", "prefix", "own_help"),
    [
        (MakeComCamCalibrations, "LSSTComCam", "OCPS:2", "make_comcam_calibrations", ""),
        (MakeLSSTCamCalibrations, "LSSTCam", "OCPS:3", "make_lsstcam_calibrations", "MTDomeTrajectory"),
        (MakeLatissCalibrations, "LATISS", "OCPS:1", "make_latiss_calibrations", "the grating"),
    ],
)
async def test_each_script_describes_its_own_camera(script_class, camera, ocps, prefix, own_help) -> None:
    """The description, help and report names come from the camera's InstrumentSpec."""
    script = script_class(index=1)
    try:
        description = script.evt_description.data
        assert description.description.startswith(f"Take {camera} biases, darks and flats;")
        assert f"has {ocps} build and verify" in description.help
        assert own_help in description.help and description.help.endswith("Every run writes a JSON report.")
        assert script.report_prefix == prefix
    finally:
        await script.close()


def test_schemas_hold_each_scripts_parameters_and_defaults() -> None:
    comcam, lsstcam, latiss = (
        set(schema_defaults()),
        schema_defaults(LSSTCAM),
        schema_defaults(LATISS),
    )
    assert set(lsstcam) == comcam | {"ignore"} and set(latiss) == comcam | {"grating"}
    assert lsstcam["calib_collection"] == "LSSTCam/calib/daily" and lsstcam["repo"] == "/repo/LSSTCam"
    assert lsstcam["input_collections_bias"] == "LSSTCam/calib" and lsstcam["ignore"] == []
    assert latiss["calib_collection"] == "LATISS/calib/daily" and latiss["grating"] is None
    assert latiss["input_collections_verify_flat"] == "LATISS/calib"
    assert MakeLSSTCamCalibrations.get_schema()["title"].startswith("MakeLSSTCamCalibrations")
    assert "grating" not in MakeComCamCalibrations.get_schema()["properties"]


@pytest.mark.parametrize(
    "script_class, pipeline_dir, ocps",
    [(MakeLSSTCamCalibrations, "LSSTCam", 3), (MakeLatissCalibrations, "LATISS", 1)],
)
def test_plan_shows_every_job_string(script_class, pipeline_dir: str, ocps: int) -> None:
    out = io.StringIO()
    config = "detectors: [0]\ngenerate_calibrations: true\ndo_defects: true\ndo_ptc: true\n"
    assert print_plan(script_class, config, out=out) == 0
    text = out.getvalue()
    jobs = [line for line in text.splitlines() if line[:1].isdigit() and ". " in line]
    assert f"OCPS:{ocps} execute commands ({len(jobs)})" in text
    for pipeline in (
        "cpBias",
        "verifyBias",
        "cpDark",
        "verifyDark",
        "cpFlat",
        "verifyFlat",
        "cpDefects",
        "cpPtc",
    ):
        assert f"pipelines/{pipeline_dir}/{pipeline}.yaml" in text, pipeline
    assert "LSSTComCam" not in text


# --- end to end, through pipetask -----------------------------------------------------------------


@pytest.fixture(scope="module")
def lsstcam_repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    from lsst.ts.makecalibrations.sim.repository import ensure_repo

    repo = tmp_path_factory.mktemp("lsstcam") / "repo"
    ensure_repo(repo, size="tiny", detectors=DETECTORS, filters=["r_57"], instrument="LSSTCam")
    return repo


@pytest.fixture(scope="module")
def latiss_repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    from lsst.ts.makecalibrations.sim.repository import ensure_repo

    repo = tmp_path_factory.mktemp("latiss") / "repo"
    ensure_repo(repo, size="tiny", filters=["SDSSr_65mm~empty"], instrument="LATISS")
    return repo


@pytest.mark.slow
async def test_lsstcam_biases_verified_and_certified_on_itl_and_e2v(tmp_path, lsstcam_repo) -> None:
    from lsst.daf.butler import Butler

    config = dict(BIASES, detectors=DETECTORS, calib_collection="LSSTCam/calib/test")
    result = await run_calibrations(
        config,
        report_dir=tmp_path,
        repo=lsstcam_repo,
        script_class=MakeLSSTCamCalibrations,
        detectors=DETECTORS,
        timeout=400,
    )
    assert result.final_state == ScriptState.DONE, result.reason
    assert result.certified() == {"bias": 2}
    assert [(v.image_type, v.mode, v.status) for v in result.report.verifications] == [
        ("BIAS", "internal", "passed")
    ]
    butler = Butler(str(lsstcam_repo), collections=["LSSTCam/calib/test"])
    exposure = result.report.exposures[0].exposure_id
    for detector in DETECTORS:
        bias = butler.get("bias", detector=detector, exposure=exposure, instrument="LSSTCam")
        # Same data section at the tiny size, although ITL and e2v raws differ in pre/overscans.
        assert bias.image.array.shape == (2 * 40, 8 * 32)
        assert np.isfinite(bias.image.array).all()


@pytest.mark.slow
async def test_latiss_biases_verified_and_certified(tmp_path, latiss_repo) -> None:
    from lsst.daf.butler import Butler

    config = dict(BIASES, calib_collection="LATISS/calib/test")
    result = await run_calibrations(
        config, report_dir=tmp_path, repo=latiss_repo, script_class=MakeLatissCalibrations, timeout=400
    )
    assert result.final_state == ScriptState.DONE, result.reason
    assert result.certified() == {"bias": 1}
    assert [(v.image_type, v.mode, v.status) for v in result.report.verifications] == [
        ("BIAS", "internal", "passed")
    ]
    exposure = result.report.exposures[0].exposure_id
    butler = Butler(str(latiss_repo), collections=["LATISS/calib/test"])
    bias = butler.get("bias", detector=0, exposure=exposure, instrument="LATISS")
    assert bias.image.array.shape == (2 * 40, 8 * 32)
    # The reference flats are per filter and grating (the physical filter LATISS flats are taken in).
    reference = Butler(str(latiss_repo))
    (ref,) = reference.registry.queryDatasets(
        "flat", collections="LATISS/calib/curated", instrument="LATISS", physical_filter="SDSSr_65mm~empty"
    )
    assert 0.5 < float(reference.get(ref).image.array.mean()) < 1.5


@pytest.mark.parametrize("grating, flat_conflict", [("empty", True), ("holo4_003", False)])
def test_latiss_flat_conflict_check_uses_filter_and_grating(latiss_repo, grating, flat_conflict) -> None:
    """LATISS flats are certified per ``filter~grating``: the repo's reference flat is SDSSr_65mm~empty."""
    out = io.StringIO()
    config = (
        "generate_calibrations: true\ncalib_collection: LATISS/calib\ndo_gain_from_flat_pairs: false\n"
        f"repo: {latiss_repo}\nfilter: SDSSr_65mm\ngrating: {grating}\n"
    )
    assert print_plan(MakeLatissCalibrations, config, out=out, check_repo=True) == 1
    text = out.getvalue()
    assert "calib_collection LATISS/calib already holds calibrations" in text, text
    assert "1 bias certified over" in text  # the reference bias and dark conflict whatever the filter
    assert ("1 flat certified over" in text) is flat_conflict
