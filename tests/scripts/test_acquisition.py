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

"""MakeComCamCalibrations against the simulated observatory (no repo): acquisition, faults, stop.

The OCPS runs the sleep executor here (jobs produce nothing), so these runs either take images
only or fail in a chosen way; the product runs are in test_products.py.
"""

import asyncio
import json

import pytest

from lsst.ts.makecalibrations.calib.config import parse_config_text
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan
from lsst.ts.makecalibrations.sal import ScriptState, salobj
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from tests.helpers import wait_until
from tests.scripts.driver import RunResult, run_calibrations

IMAGES_ONLY = dict(do_verify=False, generate_calibrations=False, do_gain_from_flat_pairs=False)
SEQUENCE = [
    ScriptState.UNCONFIGURED,
    ScriptState.CONFIGURED,
    ScriptState.RUNNING,
    ScriptState.ENDING,
    ScriptState.DONE,
]


def images_by_type(result: RunResult) -> dict[str, list]:
    by_type: dict[str, list] = {}
    for info in result.images:
        by_type.setdefault(info.image_type, []).append(info)
    return by_type


@pytest.mark.parametrize(
    "mode, types",
    [
        ("BIAS", ["BIAS"]),
        ("DARK", ["DARK"]),
        ("BIAS_DARK", ["BIAS", "DARK"]),
        ("BIAS_DARK_FLAT", ["BIAS", "DARK", "FLAT"]),
    ],
)
async def test_every_script_mode_takes_its_images(tmp_path, mode: str, types: list[str]) -> None:
    config = dict(
        IMAGES_ONLY,
        script_mode=mode,
        n_bias=2,
        n_dark=2,
        exp_times_dark=[3, 4],
        n_flat=2,
        n_discard_flat=2,
        exp_times_flat=2.5,
        program="BLOCK-T17",
        reason="SITCOM-321",
        note="test note",
    )
    result = await run_calibrations(config, report_dir=tmp_path)
    assert result.final_state == ScriptState.DONE, result.reason
    assert result.states == SEQUENCE
    by_type = images_by_type(result)
    assert list(by_type) == types
    expected_times = {"BIAS": [0.0] * 3, "DARK": [3.0, 3.0, 4.0], "FLAT": [2.5] * 4}
    for image_type in types:
        assert [i.exposure_time for i in by_type[image_type]] == expected_times[image_type]
    for info in result.images:
        assert (info.group_id, info.program, info.reason, info.note) == (
            "2024-01-01T00:00:00.000",
            "BLOCK-T17",
            "SITCOM-321",
            "test note",
        )
    # The report marks the discarded images and says nothing was processed or certified.
    report = result.report
    assert report is not None and report.final_state == "DONE"
    for image_type in types:
        records = [e for e in report.exposures if e.image_type == image_type]
        n_discard = 2 if image_type == "FLAT" else 1
        assert [e.discarded for e in records] == [True] * n_discard + [False] * (len(records) - n_discard)
        assert [e.exposure_id for e in records] == [i.exposure_id for i in by_type[image_type]]
        assert all(e.in_oods and e.detectors_in_oods == 9 for e in records if not e.discarded)
        assert report.acquisition(image_type).status == "complete"
    assert report.jobs == [] and report.certifications == []
    assert result.job_requests == []
    assert result.script.checkpoint_message == "MakeComCamCalibrations BLOCK-T17 SITCOM-321"
    plan = result.script.plan
    assert result.metadata.duration == pytest.approx(plan.estimated_duration())
    assert result.metadata.nimages == plan.n_images == len(result.images)
    # The report file is where the log says.
    assert any(str(result.script.report_path) in m for m in result.log_messages)
    assert json.loads(result.script.report_path.read_text())["final_state"] == "DONE"


async def test_filter_is_set_before_the_images(tmp_path) -> None:
    config = dict(IMAGES_ONLY, n_bias=1, n_dark=1, n_flat=2, exp_times_flat=1, filter="g_01")
    result = await run_calibrations(config, report_dir=tmp_path)
    assert result.final_state == ScriptState.DONE, result.reason
    assert {i.physical_filter for i in result.images} == {"g_01"}
    assert result.observatory.camera.current_filter == "g_01"
    # The script subscribes to no heartbeat (nobody reads them; their queues would overflow and warn).
    script = result.script
    remotes = {
        "CCCamera": script.camera.rem.cccamera,
        "CCHeaderService": script.camera.rem.ccheaderservice,
        "CCOODS": script.camera.rem.ccoods,
        "OCPS group": script.ocps_group.rem.ocps_2,
        "OCPS": script.ocps,
    }
    assert [name for name, remote in remotes.items() if hasattr(remote, "evt_heartbeat")] == []
    assert hasattr(script.ocps, "evt_job_result") and hasattr(script.camera.rem.ccoods, "evt_imageInOODS")


async def test_unknown_filter_is_refused_before_any_image(tmp_path) -> None:
    result = await run_calibrations(dict(IMAGES_ONLY, filter="q_99"), report_dir=tmp_path)
    assert result.final_state == ScriptState.CONFIGURE_FAILED
    assert "filter: 'q_99' is not in the filter changer" in result.reason
    assert result.images == []


async def test_pause_and_resume_at_a_checkpoint(tmp_path) -> None:
    seen: list[int] = []

    async def on_paused(script, observatory) -> None:
        seen.append(observatory.camera.images_started)
        await asyncio.sleep(0.05)
        # Nothing is taken while paused.
        assert observatory.camera.images_started == seen[0]

    config = dict(IMAGES_ONLY, script_mode="BIAS_DARK", n_bias=2, n_dark=1)
    result = await run_calibrations(
        config, report_dir=tmp_path, pause_checkpoint="Taking .* darks", on_paused=on_paused
    )
    assert result.final_state == ScriptState.DONE, result.reason
    assert ScriptState.PAUSED in result.states
    assert seen == [3]  # 1 discarded + 2 biases before the pause
    assert len(result.images) == 5


# --- faults ------------------------------------------------------------------------------------


async def test_camera_fault_ends_failed_and_takes_no_more_images(tmp_path) -> None:
    config = dict(IMAGES_ONLY, script_mode="BIAS_DARK", n_bias=2, n_dark=3)
    result = await run_calibrations(config, report_dir=tmp_path, faults=FaultPlan(camera_fault_after=4))
    assert result.final_state == ScriptState.FAILED
    assert "DARK acquisition: dark 2 of 4 could not be taken" in result.reason
    assert "Simulated CCCamera fault" in result.reason
    assert [i.image_type for i in result.images] == ["BIAS"] * 3 + ["DARK"]
    report = result.report
    assert report.final_state == "FAILED" and report.failure_step == "DARK acquisition"
    assert report.acquisition("BIAS").status == "complete"
    assert report.acquisition("DARK").status == "incomplete"
    assert report.reusable_exposures() == {"bias": [i.exposure_id for i in result.images[1:3]]}


async def test_lost_images_are_reported_by_exposure_id(tmp_path) -> None:
    # Image 3 of the run is the second kept bias; the OODS never announces it.
    config = dict(IMAGES_ONLY, script_mode="BIAS_DARK", n_bias=2, n_dark=1, oods_timeout=0.5)
    result = await run_calibrations(config, report_dir=tmp_path, faults=FaultPlan(missing_oods_images={3}))
    lost = result.images[2].exposure_id
    assert result.final_state == ScriptState.FAILED
    assert "BIAS ingestion: 1 of 2 biases not announced by the OODS" in result.reason
    assert f"exposures [{lost}]" in result.reason
    report = result.report
    assert report.acquisition("BIAS").status == "missing_images"
    assert report.acquisition("BIAS").missing_exposure_ids == [lost]
    assert report.acquisition("DARK").status == "complete"  # the darks were still taken
    lost_record = next(e for e in report.exposures if e.exposure_id == lost)
    assert not lost_record.in_oods and lost_record.detectors_in_oods == 0
    assert len(result.images) == 5


async def test_ocps_job_failure_names_step_job_and_collection(tmp_path) -> None:
    config = dict(script_mode="BIAS", n_bias=2, detectors=[3], do_verify=True)
    faults = FaultPlan(ocps_fail_pipeline="verifyBias")
    result = await run_calibrations(config, report_dir=tmp_path, faults=faults)
    assert result.final_state == ScriptState.FAILED
    (sent,) = result.sent_jobs()
    assert sent["pipeline"] == "${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyBias.yaml"
    assert sent["config"] == "-j 8 -i LSSTComCam/calib --register-dataset-types "
    ids = ", ".join(str(i.exposure_id) for i in result.images[1:])
    assert sent["data_query"] == f"instrument='LSSTComCam' AND detector IN (3) AND exposure IN ({ids})"
    job_id = sent["job_id"]
    assert sent["exit_code"] == 1
    assert (
        "BIAS verify: BIAS verify job failed with exit code 1: Simulated pipetask failure." in result.reason
    )
    assert f"(job {job_id}, collection u/ocps/{job_id})" in result.reason
    (job,) = result.report.jobs
    assert (job.job_id, job.status, job.exit_code, job.output_collection) == (
        job_id,
        "failed",
        1,
        f"u/ocps/{job_id}",
    )
    assert result.report.verifications[0].status == "error"
    assert result.report.certifications == []


@pytest.mark.parametrize("component", ["OCPS", "CCCamera"])
async def test_csc_not_enabled_fails_before_any_image(tmp_path, component: str) -> None:
    kwargs = {}
    if component == "OCPS":
        kwargs["faults"] = FaultPlan(ocps_initial_state=salobj.State.DISABLED)
    else:
        kwargs["camera_initial_state"] = salobj.State.DISABLED
    result = await run_calibrations(dict(IMAGES_ONLY, script_mode="BIAS"), report_dir=tmp_path, **kwargs)
    assert result.final_state == ScriptState.FAILED
    assert "startup checks" in result.reason and "not enabled" in result.reason
    assert component in result.reason
    assert result.images == []
    assert result.report.failure_step == "startup checks"


# --- stop ----------------------------------------------------------------------------------------


#: The OCPS acks ``execute`` (with the job id) this many wall seconds after the job started, as a real
#: broker may: a stop can arrive before the script knows the id of a job that already runs.
SLOW_BUS = FaultPlan(ocps_ack_delay=1.0)


def assert_every_started_job_aborted_by_id(result: RunResult) -> None:
    """Every job the OCPS started was aborted by its id, and the report names each one."""
    started = [request.job_id for request in result.job_requests]
    assert started, "no OCPS job was started"
    assert result.observatory.ocps.running_job_ids == []
    assert set(started) <= result.observatory.executor._aborted
    assert sorted(job.job_id for job in result.report.jobs) == sorted(started)
    assert {job.status for job in result.report.jobs} == {"aborted"}
    assert all(job.job_id for job in result.report.jobs)


async def test_stop_during_acquisition_lets_the_exposure_finish(tmp_path) -> None:
    async def after_first_dark(script, observatory) -> None:
        await wait_until(lambda: observatory.camera.images_started >= 3)

    config = dict(IMAGES_ONLY, script_mode="BIAS_DARK", n_bias=1, n_dark=5, exp_times_dark=30)
    result = await run_calibrations(
        config, report_dir=tmp_path, time_scale=100, stop_when=after_first_dark, faults=SLOW_BUS
    )
    assert result.final_state == ScriptState.STOPPED
    assert ScriptState.STOPPING in result.states
    # The dark being exposed when stop arrived was read out and recorded; no other was started.
    assert result.observatory.camera.images_started == 3
    assert [i.image_type for i in result.images] == ["BIAS", "BIAS", "DARK"]
    report = result.report
    assert report.final_state == "STOPPED"
    assert report.acquisition("DARK").status == "incomplete"
    assert [e.exposure_id for e in report.exposures] == [i.exposure_id for i in result.images]
    assert report.certifications == [] and report.jobs == []


async def test_stop_during_acquisition_aborts_the_job_whose_execute_is_in_flight(tmp_path) -> None:
    """The bias job is sent while the darks are taken; the stop comes before its in-progress ack."""

    async def bias_job_started(script, observatory) -> None:
        await wait_until(lambda: bool(observatory.ocps.running_job_ids))
        assert script.report.jobs[0].job_id == ""  # the script does not know the id yet

    config = dict(script_mode="BIAS_DARK", n_bias=2, n_dark=5, exp_times_dark=30, do_verify=True)
    result = await run_calibrations(
        config,
        report_dir=tmp_path,
        time_scale=100,
        job_duration=1e6,
        stop_when=bias_job_started,
        faults=SLOW_BUS,
    )
    assert result.final_state == ScriptState.STOPPED
    assert result.report.acquisition("DARK").status in ("incomplete", "not_taken")
    assert_every_started_job_aborted_by_id(result)
    assert result.report.certifications == []


async def test_stop_during_processing_aborts_the_ocps_jobs(tmp_path) -> None:
    async def job_running(script, observatory) -> None:
        await wait_until(lambda: bool(observatory.ocps.running_job_ids))

    config = dict(script_mode="BIAS", n_bias=2, do_verify=True)
    result = await run_calibrations(
        config, report_dir=tmp_path, job_duration=1e6, stop_when=job_running, faults=SLOW_BUS
    )
    assert result.final_state == ScriptState.STOPPED
    (request,) = result.job_requests
    assert_every_started_job_aborted_by_id(result)
    (job,) = result.report.jobs
    assert job.job_id == request.job_id and job.status == "aborted"
    assert result.report.certifications == []
    assert result.report.final_state == "STOPPED"


async def test_background_task_timeout_aborts_what_still_runs(tmp_path) -> None:
    """After the last image the script waits background_task_timeout per task, then aborts and fails."""
    config = dict(script_mode="BIAS", n_bias=1, do_verify=True, background_task_timeout=0.5)
    result = await run_calibrations(config, report_dir=tmp_path, job_duration=1e6, faults=SLOW_BUS)
    assert result.final_state == ScriptState.FAILED
    assert "background tasks" in result.failure_steps()
    (failure,) = [f for f in result.report.failures if f.step == "background tasks"]
    assert "still running after 0.5 s (background_task_timeout 0.5 s x 1): BIAS processing" in failure.reason
    assert_every_started_job_aborted_by_id(result)


# --- bad input: refused at configure, no image taken ------------------------------------------------


@pytest.mark.parametrize(
    "text, fragments",
    [
        (
            "exp_times_dark: 20\nexp_times_flats: 30\n",
            ["exp_times_flats: unknown key; did you mean exp_times_flat?"],
        ),
        (
            "generate_calibrations: True\ncalibration_collection: x\n"
            'certify_calib_begin_date: "2022-11-04"\ncertify_calib_begin_date: "2022-11-05"\n',
            [
                "calibration_collection: unknown key; did you mean calib_collection?",
                "certify_calib_begin_date: duplicate",
            ],
        ),
        (
            "n_flat: 14\ngenerate_calibrations=True\ndo_ptc: True\n",
            ["line 2, column 1", "generate_calibrations=True"],
        ),
        ("n_bias: twenty\n", ["n_bias: expected an integer"]),
        ("n_dark: 3\nexp_times_dark: [1, 2]\n", ["exp_times_dark: has 2 entries but n_dark is 3"]),
        (
            "do_ptc: true\nn_flat: 2\nexp_times_flat: [1, 2]\n",
            ["exp_times_flat: do_ptc needs flats in equal"],
        ),
        (
            "do_gain_from_flat_pairs: true\nn_flat: 2\nexp_times_flat: [1, 2]\n",
            ["do_gain_from_flat_pairs: needs"],
        ),
        ("script_mode: BIAS_DARK\ndo_defects: true\n", ["do_defects: requires script_mode BIAS_DARK_FLAT"]),
        ("certify_calib_begin_date: '2022-11-05'\ncertify_calib_end_date: '2022-11-04'\n", ["is not after"]),
        ("detectors: [0, 9]\n", ["detectors: unknown detector(s) [9]"]),
        ("filter: ${FILTER_NAME_OR_ID}\n", ["filter: ${FILTER_NAME_OR_ID} is a placeholder"]),
    ],
)
async def test_bad_input_takes_no_image(tmp_path, text: str, fragments: list[str]) -> None:
    result = await run_calibrations(text, report_dir=tmp_path)
    assert result.final_state == ScriptState.CONFIGURE_FAILED
    assert result.configure_error
    for fragment in fragments:
        assert fragment in result.reason
    assert result.images == []
    assert result.observatory.camera.images_started == 0
    assert result.report is None


def test_plan_matches_what_the_script_takes() -> None:
    """The plan's exposure sequence is what set_metadata and --plan describe."""
    config = parse_config_text("n_bias: 2\nn_dark: 2\nexp_times_dark: [3, 4]\nn_flat: 2\nn_discard_flat: 2\n")
    plan = CalibrationPlan.from_config(config)
    assert [(e.exp_time, e.discard) for e in plan.acquisition(config.image_types[2]).exposures] == [
        (5.0, True),
        (5.0, True),
        (5.0, False),
        (5.0, False),
    ]
