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

"""MakeComCamCalibrations with real products: the simulated camera writes raws into a tiny butler
repo and the simulated OCPS runs the numpy pipelines through ``pipetask``.

Each test asserts the final state, the reason, and what was (and was not) certified, reading the
repository itself, not only the script's report.
"""

import dataclasses

import numpy as np
import pytest
from lsst.daf.butler import Butler

from lsst.ts.makecalibrations.butler.camera import AMP_NAMES
from lsst.ts.makecalibrations.butler.readers import exposure_observation_types, list_certified
from lsst.ts.makecalibrations.sal import ScriptState
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from tests.helpers import (
    SMALL_BIAS_DARK,
    TINY_PTC_FLATS,
    certified_in_repo,
    certifying_run,
)
from tests.scripts.driver import run_calibrations

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh_tiny_repo(tiny_copy):
    """A tiny repository of its own: the exposure ids (hence the simulated pixels) of a test using it
    do not depend on which tests ran before it on the shared one."""
    return tiny_copy("fresh_repo")


async def test_generate_verify_certify_defects_ptc(tmp_path, fresh_tiny_repo) -> None:
    """Internal verification, defects + PTC, a detector subset, a filter and discards."""
    collection = "LSSTComCam/calib/test/generate.{timestamp}"
    config = dict(
        script_mode="BIAS_DARK_FLAT",
        n_bias=3,
        n_discard_bias=2,
        n_dark=3,
        exp_times_dark=5,
        **TINY_PTC_FLATS,
        filter="g_01",
        detectors=[0, 4],
        generate_calibrations=True,
        do_verify=True,
        do_defects=True,
        do_ptc=True,
        n_processes=1,
        calib_collection=collection,
        # A validity range holding today, so the products are found by the exposures' dates.
        certify_calib_begin_date="2020-01-01",
        certify_calib_end_date="2040-01-01",
    )
    result = await run_calibrations(config, report_dir=tmp_path, repo=fresh_tiny_repo)
    assert result.final_state == ScriptState.DONE, result.reason
    report = result.report
    resolved = report.config["calib_collection"]
    assert resolved.startswith("LSSTComCam/calib/test/generate.") and "{" not in resolved

    # The repository holds exactly what the report says: five products for detectors 0 and 4.
    in_repo = certified_in_repo(fresh_tiny_repo, resolved)
    begin, end = "2020-01-01T00:00:00", "2040-01-01T00:00:00"
    for product in ("bias", "dark", "flat", "defects", "ptc"):
        assert in_repo[product] == {(0, begin, end), (4, begin, end)}, product
    assert result.certified() == {"bias": 2, "dark": 2, "flat": 2, "defects": 2, "ptc": 2}

    # Jobs as sent: combine, internal verification against the new collection, later jobs read
    # this run's certified calibrations first.
    sent = {job["pipeline"].rsplit("/", 1)[1]: job for job in result.sent_jobs()}
    assert set(sent) == {
        "cpBias.yaml",
        "verifyBias.yaml",
        "cpDark.yaml",
        "verifyDark.yaml",
        "cpFlat.yaml",
        "verifyFlat.yaml",
        "cpDefects.yaml",
        "cpPtc.yaml",
        "verifyGainFromFlatPairs.yaml",
    }
    assert all(job["exit_code"] == 0 for job in sent.values())
    # The PTC job's flat pairs are checked against its own PTC (cp_verify's gain check).
    assert sent["verifyGainFromFlatPairs.yaml"]["config"] == (
        f"-j 1 -i u/ocps/{sent['cpPtc.yaml']['job_id']} --register-dataset-types "
    )
    assert sent["verifyBias.yaml"]["config"] == (
        f"-j 1 -i u/ocps/{sent['cpBias.yaml']['job_id']},LSSTComCam/calib --register-dataset-types "
    )
    assert sent["cpDark.yaml"]["config"] == (
        f"-j 1 -i {resolved},LSSTComCam/calib --register-dataset-types -c cpDarkIsr:doDefect=False"
    )
    kept_bias = [e.exposure_id for e in report.exposures if e.image_type == "BIAS" and not e.discarded]
    discarded = [e.exposure_id for e in report.exposures if e.discarded]
    assert len(kept_bias) == 3 and len(discarded) == 4
    assert sent["cpBias.yaml"]["data_query"] == (
        "instrument='LSSTComCam' AND detector IN (0,4) AND exposure IN ("
        + ", ".join(map(str, kept_bias))
        + ")"
    )
    assert not any(str(d) in job["data_query"] for job in sent.values() for d in discarded)

    # The flats went through the requested filter; the exposures are in the repo with their types.
    types = exposure_observation_types(fresh_tiny_repo, [e.exposure_id for e in report.exposures])
    assert sorted(set(types.values())) == ["bias", "dark", "flat"]
    assert all(v.status == "passed" for v in report.verifications)
    assert [(v.image_type, v.mode) for v in report.verifications] == [
        ("BIAS", "internal"),
        ("DARK", "internal"),
        ("FLAT", "internal"),
        ("GAIN", "internal"),
    ]

    # Gains of every flat pair, every amp of both detectors, from the PTC job.
    n_pairs = TINY_PTC_FLATS["n_flat"] // 2
    pairs = {tuple(g.pair) for g in report.gains}
    assert len(pairs) == n_pairs and {g.detector for g in report.gains} == {0, 4}
    assert len(report.gains) == n_pairs * 2 * 16
    assert all(0.5 < g.gain < 3.0 for g in report.gains)
    # The log gives one line per gain job and says where the table is; no table row is logged.
    gain_lines = [m for m in result.log_messages if m.startswith("Gains from")]
    assert len(gain_lines) == 1 and str(result.script.report_path) in gain_lines[0]
    assert "\n" not in gain_lines[0]
    assert not any(m.lstrip().startswith("pair ") for m in result.log_messages)

    # Every product reads back through the butler exactly as the seed's "Accessing the
    # calibrations" section does (image access through lsst.images: .image.array).
    butler = Butler(str(fresh_tiny_repo), collections=[resolved])
    bias_id = kept_bias[0]
    for product in ("bias", "dark", "flat", "defects", "ptc"):
        assert butler.get(product, detector=0, exposure=bias_id, instrument="LSSTComCam") is not None
    bias = butler.get("bias", detector=0, exposure=bias_id, instrument="LSSTComCam")
    assert bias.image.array.ndim == 2 and np.isfinite(bias.image.array).all()
    ptc = butler.get("ptc", detector=0, exposure=bias_id, instrument="LSSTComCam")
    assert set(ptc.gain) == set(AMP_NAMES)

    kept_flats = [e.exposure_id for e in report.exposures if e.image_type == "FLAT" and not e.discarded]
    ptc_butler = Butler(str(fresh_tiny_repo), collections=[f"u/ocps/{sent['cpPtc.yaml']['job_id']}"])
    cp_covs = ptc_butler.get("cpPtcPartial", detector=0, exposure=kept_flats[0], instrument="LSSTComCam")
    # The seed procedure's pre-2024 name still reads the same partial.
    legacy = ptc_butler.get("cpPtcExtract", detector=0, exposure=kept_flats[0], instrument="LSSTComCam")
    assert legacy.gain == cp_covs.gain
    assert set(cp_covs.gain) == set(AMP_NAMES) and set(cp_covs.noise) == set(AMP_NAMES)
    assert all(0.5 < value < 3.0 for value in cp_covs.gain.values())

    verify_butler = Butler(str(fresh_tiny_repo), collections=[f"u/ocps/{sent['verifyFlat.yaml']['job_id']}"])
    verify_run = verify_butler.collections.defaults
    (run_ref,) = verify_butler.registry.queryDatasets("verifyFlatStats", collections=verify_run)
    assert run_ref.dataId["physical_filter"] == "g_01"  # cp_verify: one verifyFlatStats per filter
    run_stats = verify_butler.get(run_ref)
    # The 0.1 s pair served the PTC only: the flat was combined from, and verified on, the others.
    combined_flats = kept_flats[2:]
    assert set(run_stats) == set(combined_flats) | {"SUCCESS"}
    assert str(kept_flats[0]) not in sent["cpFlat.yaml"]["data_query"]
    det_stats = verify_butler.get(
        "verifyFlatDetStats", instrument="LSSTComCam", detector=0, exposure=combined_flats[0]
    )
    assert set(det_stats["AMP"]) == set(AMP_NAMES) and "SUCCESS" in det_stats
    processed = verify_butler.get(
        "verifyFlatProc", detector=0, exposure=combined_flats[0], instrument="LSSTComCam"
    )
    q25, q50, q75 = np.percentile(processed.image.array.flatten(), [25, 50, 75])
    assert q25 < q50 < q75 and q50 > 0


async def test_external_verification_and_gain_only(tmp_path, tiny_repo) -> None:
    """The daily default's shape: external verification, per-pair gains, nothing certified."""
    config = dict(
        n_bias=2,
        n_dark=2,
        exp_times_dark=2,
        n_flat=4,
        exp_times_flat=[1, 1, 3, 3],
        detectors=[1],
        n_processes=1,
        calib_collection="LSSTComCam/calib/test/external",
    )
    result = await run_calibrations(config, report_dir=tmp_path, repo=tiny_repo)
    assert result.final_state == ScriptState.DONE, result.reason
    report = result.report
    assert [(v.image_type, v.mode, v.status) for v in report.verifications] == [
        ("BIAS", "external", "passed"),
        ("DARK", "external", "passed"),
        ("FLAT", "external", "passed"),
        ("GAIN", "external", "passed"),  # the pairs against the PTC of LSSTComCam/calib
    ]
    assert report.certifications == []
    assert list_certified(tiny_repo, "LSSTComCam/calib/test/external") == []
    pipelines = sorted(job["pipeline"].rsplit("/", 1)[1] for job in result.sent_jobs())
    assert pipelines == [
        "cpPtc.yaml#cpPtcGainFromFlatPairs",
        "verifyBias.yaml",
        "verifyDark.yaml",
        "verifyFlat.yaml",
        "verifyGainFromFlatPairs.yaml",
    ]
    for job in result.sent_jobs():
        if "verify" in job["pipeline"] and "Gain" not in job["pipeline"]:
            assert job["config"] == "-j 1 -i LSSTComCam/calib --register-dataset-types "
    flats = [e.exposure_id for e in report.exposures if e.image_type == "FLAT" and not e.discarded]
    assert {tuple(g.pair) for g in report.gains} == {(flats[0], flats[1]), (flats[2], flats[3])}
    assert {g.detector for g in report.gains} == {1} and len(report.gains) == 32


async def test_certification_conflict_is_found_before_any_exposure(tmp_path, tiny_repo) -> None:
    # The repo's reference calibrations are certified in LSSTComCam/calib over [1950, 2050).
    config = certifying_run("LSSTComCam/calib", "2024-01-01", script_mode="BIAS_DARK")
    result = await run_calibrations(config, report_dir=tmp_path, repo=tiny_repo)
    assert result.final_state == ScriptState.CONFIGURE_FAILED
    assert "calib_collection LSSTComCam/calib already holds" in result.reason
    assert "9 bias certified over [" in result.reason and "9 dark certified over [" in result.reason
    assert "no image was taken" in result.reason
    assert result.observatory.camera.images_started == 0


async def test_second_run_certifying_the_same_collection_is_refused(tmp_path, tiny_repo) -> None:
    """The conflict check and the certification are one step: while another run holds its claim
    (butler.claims), a run that would certify the same product over an overlapping range is refused."""
    from lsst.ts.makecalibrations.butler.claims import claim, release

    collection = "u/claims/calib"
    token = claim(tiny_repo, collection, ["bias"], "2024-01-01", "2030-01-01", owner="the other run")
    config = dict(
        script_mode="BIAS",
        generate_calibrations=True,
        calib_collection=collection,
        certify_calib_begin_date="2025-01-01",
        certify_calib_end_date="2035-01-01",
    )
    try:
        result = await run_calibrations(config, report_dir=tmp_path, repo=tiny_repo)
    finally:
        release(tiny_repo, token)
    assert result.final_state == ScriptState.CONFIGURE_FAILED
    assert "another run (the other run, pid" in result.reason and "no image was taken" in result.reason
    assert result.observatory.camera.images_started == 0


async def test_failed_verification_certifies_nothing(tmp_path, tiny_repo) -> None:
    """Every amp of detector 2 reads out with 20 ADU of extra noise: bias verification fails, so the
    bias is not certified and the darks, which need it, are not combined."""

    async def noisy_camera(observatory) -> None:
        sink = observatory.sink
        await sink.start()
        noisy = tuple((2, amp, 20.0) for amp in AMP_NAMES)
        sink.truth = dataclasses.replace(sink.truth, noisy_amps=noisy)

    collection = "LSSTComCam/calib/test/noisy"
    config = certifying_run(
        collection, "2024-02-01", script_mode="BIAS_DARK", n_bias=3, n_dark=2, detectors=[2]
    )
    result = await run_calibrations(config, report_dir=tmp_path, repo=tiny_repo, prepare=noisy_camera)
    assert result.final_state == ScriptState.FAILED
    report = result.report
    (verification,) = report.verifications
    assert verification.status == "failed"
    decision = verification.decision
    assert decision["threshold"] == 8 and decision["failure_limit"] == 8 * (1 // 2 + 1)
    assert decision["n_exposures"] == 3
    assert decision["n_failed_exposures"] >= decision["max_failed_exposures"] == 4 // 2 + 1
    assert decision["failing_tests"]["NOISE"] >= 16 * 2
    combine, verify = report.jobs
    assert "BIAS verification: BIAS verification FAILED" in result.reason
    assert f"(job {verify.job_id}, collection u/ocps/{verify.job_id})" in result.reason
    assert "DARK combine: not started: it needs bias from this run, which was not certified" in result.reason
    assert [(c.product, c.status) for c in report.certifications] == [
        ("bias", "not_certified"),
        ("dark", "skipped"),
    ]
    assert list_certified(tiny_repo, collection) == []
    assert [job.name for job in report.jobs] == ["BIAS combine", "BIAS verify"]


async def test_camera_fault_then_resume_from_the_report(tmp_path, tiny_repo) -> None:
    """A camera fault during the darks: the biases are still processed and certified; resuming from
    the report takes only the darks again and certifies them."""
    config = certifying_run(
        "LSSTComCam/calib/test/resume.{timestamp}",
        "2024-03-01",
        **SMALL_BIAS_DARK,
        detectors=[3],
    )
    first = await run_calibrations(
        config, report_dir=tmp_path, repo=tiny_repo, faults=FaultPlan(camera_fault_after=4)
    )
    assert first.final_state == ScriptState.FAILED
    assert first.report.failure_step == "DARK acquisition"
    collection = first.report.config["calib_collection"]
    assert first.certified() == {"bias": 1}
    assert set(certified_in_repo(tiny_repo, collection)) == {"bias"}
    old_ids = {e.exposure_id for e in first.report.exposures}

    second = await run_calibrations(
        dict(config, resume_from_report=str(first.script.report_path)), report_dir=tmp_path, repo=tiny_repo
    )
    assert second.final_state == ScriptState.DONE, second.reason
    report = second.report
    assert report.config["calib_collection"] == collection
    assert second.observatory.camera.images_started == 3
    assert [e.image_type for e in report.exposures if not e.recovered] == ["DARK"] * 3
    assert report.acquisition("BIAS").status == "recovered"
    assert {e.exposure_id for e in report.exposures if e.image_type == "BIAS"} <= old_ids
    assert [job.name for job in report.jobs] == ["DARK combine", "DARK verify"]
    assert second.certified() == {"dark": 1}
    assert set(certified_in_repo(tiny_repo, collection)) == {"bias", "dark"}
