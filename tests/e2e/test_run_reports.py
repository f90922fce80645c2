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

"""The run report of real runs against the simulated observatory (tiny images, one detector).

A DONE run (combine + internal verification + certification of bias, dark and flat, and a PTC),
a FAILED run (an injected failure of the dark combine job, after every image was taken) then the
same run resumed from its report, and a STOPPED run (stopped during the bias acquisition). Each
report is read back as the JSON file the script wrote, and checked against what the simulated
OCPS and camera actually did.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import os
import pathlib
import re
from typing import Any

import pytest

from lsst.ts.makecalibrations.butler.camera import AMP_NAMES
from lsst.ts.makecalibrations.butler.readers import list_certified
from lsst.ts.makecalibrations.butler.repository import make_butler
from lsst.ts.makecalibrations.calib.config import schema_defaults
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from tests.helpers import SMALL_BIAS_DARK, TINY_PTC_FLATS, TINY_PTC_OPTIONS, certifying_run, wait_until
from tests.scripts import driver as runner

pytestmark = pytest.mark.slow


ScriptState = runner.ScriptState


@pytest.fixture(scope="module")
def report_repo(tiny_copy) -> pathlib.Path:
    """One tiny butler repository (with curated calibrations) shared by the tests of this module."""
    repo = tiny_copy("report_runs_repo")
    os.environ.setdefault("LSST_TOPIC_SUBNAME", "test_report_runs")
    return repo


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def n_exposures_in_repo(repo: pathlib.Path) -> int:
    """Exposures registered in the repository (every raw the camera wrote)."""
    return len(list(make_butler(repo).registry.queryDimensionRecords("exposure", instrument="LSSTComCam")))


def read_report(result: Any) -> dict[str, Any]:
    """The report JSON as written, after checking that its path was logged."""
    path = result.script.report_path
    assert path is not None and path.is_file()
    assert f"Run report written to {path}" in result.log_messages
    summary = [m for m in result.log_messages if m.startswith("Summary:")]
    assert summary and summary[-1].rstrip().endswith(f"report: {path}")
    data = json.loads(path.read_text())
    assert data["report_path"] == str(path)
    check_html_page(path, data, result)
    return data


HTML_PAGES: list[tuple[pathlib.Path, str]] = []
"""(page, final state) of every run of this module, rendered in Chromium by the last test."""


def check_html_page(path: pathlib.Path, data: dict[str, Any], result: Any) -> None:
    """The HTML page beside the JSON: logged, final state, every job with its log, plots embedded."""
    page = path.with_suffix(".html")
    assert f"Run report page (open it in a browser): {page}" in result.log_messages
    text = page.read_text()
    assert f'id="final-state">{data["final_state"]}<' in text
    for job in data["jobs"]:
        assert job["job_id"] in text
        if job["log_uri"]:
            # A link relative to the page, to the log the OCPS wrote.
            link = os.path.relpath(job["log_uri"].removeprefix("file://"), page.parent)
            assert f'<a href="{link}">log</a>' in text and (page.parent / link).is_file()
    # Offline: every image is embedded (the plots drawn beside the report), nothing fetched.
    images = re.findall(r'<img src="([^"]*)"', text)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert len(images) == len(list(path.parent.glob(f"{path.stem}_*.png")))
    HTML_PAGES.append((page, data["final_state"]))


def check_common(data: dict[str, Any], result: Any, config: dict[str, Any], final_state: str) -> None:
    """Configuration, exposures, jobs (against the OCPS's own results) and phases."""
    assert data["final_state"] == final_state
    assert data["script"] == "MakeComCamCalibrations" and data["instrument"] == "LSSTComCam"
    assert data["start_tai"] < data["end_tai"] and data["duration"] > 0
    # The configuration used: every schema key, defaults filled, the given values kept.
    assert set(schema_defaults()) <= set(data["config"])
    for key in ("script_mode", "n_bias", "detectors", "generate_calibrations", "repo", "report_dir"):
        assert data["config"][key] == config[key], key
    assert data["config"]["n_discard_bias"] == schema_defaults()["n_discard_bias"] == 1

    # Exposures: every image the camera read out, discarded ones marked, none reused.
    taken = [e for e in data["exposures"] if not e["recovered"]]
    assert len(taken) == result.observatory.camera.images_started
    for acq in data["acquisitions"]:
        mine = [e for e in taken if e["image_type"] == acq["image_type"]]
        if mine:
            assert mine[0]["discarded"], "the discarded image is taken first"
            assert not any(e["discarded"] for e in mine[1:])
            assert all(e["exposure_id"] > 0 for e in mine)

    # Every OCPS job, with its fields exactly as the OCPS received them and answered.
    sent = {job["job_id"]: job for job in result.sent_jobs()}
    jobs = data["jobs"]
    assert {job["job_id"] for job in jobs if job["end_tai"]} == set(sent)
    for job in jobs:
        assert re.fullmatch(r"[0-9a-f]{32}", job["job_id"]), job
        assert job["output_collection"] == f"u/ocps/{job['job_id']}"
        assert job["kind"] in ("combine", "verify", "defects", "ptc", "gain")
        assert job["name"] and job["product"]
        if job["job_id"] in sent:
            answer = sent[job["job_id"]]
            assert (job["pipeline"], job["config"], job["data_query"]) == (
                answer["pipeline"],
                answer["config"],
                answer["data_query"],
            )
            assert job["exit_code"] == answer["exit_code"]
            assert job["duration"] == pytest.approx(job["end_tai"] - job["start_tai"]) and job["duration"] > 0
            assert job["status"] == ("succeeded" if job["exit_code"] == 0 else job["status"])

    # Timings per phase: every phase closed, with its duration.
    names = [p["name"] for p in data["phases"]]
    assert names[:2] == ["startup checks", "setup instrument"]
    for phase in data["phases"]:
        assert phase["end_tai"] >= phase["start_tai"] > 0, phase
        assert phase["duration"] == pytest.approx(phase["end_tai"] - phase["start_tai"])
    assert {job["name"] for job in jobs} <= set(names)


def check_verification(verification: dict[str, Any]) -> None:
    """Outcome, thresholds and failing tests of one verification."""
    assert verification["status"] in ("passed", "failed")
    decision = verification["decision"]
    assert decision["certify"] == (verification["status"] == "passed")
    for key in ("threshold", "failure_limit", "max_failed_exposures", "n_exposures", "failing_tests"):
        assert key in decision, key
    assert decision["threshold"] > 0 and isinstance(decision["failing_tests"], dict)
    assert verification["summary"] and verification["job_id"]


class TimeLeftRecorder:
    """``run_script``'s progress reporter on the bus beside a run, recording its time-left estimate."""

    def __init__(self, config: dict[str, Any]) -> None:
        import yaml

        from lsst.ts.makecalibrations.cli.progress import build_plan
        from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations
        from lsst.ts.makecalibrations.sim.site import simulated_site

        site = simulated_site("tiny", 500.0)
        self.plan = build_plan(MakeComCamCalibrations, yaml.safe_dump(config), site)
        assert self.plan is not None
        self.samples: list[tuple[float, float]] = []
        self.domain: Any = None
        self.reporter: Any = None

    async def start(self, observatory: Any) -> None:
        from lsst.ts.makecalibrations.cli.progress import ProgressReporter, ProgressState
        from lsst.ts.makecalibrations.sal import salobj

        assert self.plan is not None
        self.domain = salobj.Domain()
        state = ProgressState.from_plan(self.plan, time_scale=500.0)

        def record(line: str) -> None:
            now = self.reporter.clock()
            self.samples.append((now, state.remaining(now)[0]))

        self.reporter = ProgressReporter(self.domain, state, 1, 2, record, min_interval=1.0, max_silence=2.0)
        await self.reporter.start()

    async def close(self) -> None:
        if self.reporter is not None:
            await asyncio.wait_for(self.reporter.close(), timeout=30)
        if self.domain is not None:
            await asyncio.wait_for(self.domain.close(), timeout=30)

    def check_mid_run_estimate(self) -> None:
        """The time left follows the run: finite and never negative on every line, and the
        estimate on the last line before the end is less than a quarter of the one at the start.

        Nothing here compares the estimate with the wall time the run really took: in CI this
        run shares the cores with the other test workers, whose load comes and goes mid-run,
        and a bound against the wall clock (30 %, then half to twice) failed under load twice.
        What this catches is an estimate that does not follow the run (a clock that stops, a
        phase counted twice or never finished); its accuracy on a steady machine is measured by
        ``make run`` and recorded in doc/benchmarks.rst.
        """
        state = self.reporter.state
        assert state.start_time is not None and state.end_time is not None
        lefts = [left for _, left in self.samples]
        assert len(lefts) >= 3, f"too few progress lines: {self.samples}"
        assert all(math.isfinite(left) and left >= 0 for left in lefts), lefts
        first, last = lefts[0], lefts[-1]
        assert first > 0, lefts
        assert last < 0.25 * first, (
            f"time left at the start {first:.1f} s, at the end {last:.1f} s; "
            f"all: {[(round(t - state.start_time), round(left)) for t, left in self.samples]}"
        )


async def test_done_run_report_and_plots(tmp_path: pathlib.Path, report_repo: pathlib.Path) -> None:
    """Everything requested succeeds: the report holds all of it and the PTC run draws its plots."""
    collection = "LSSTComCam/calib/test/report_done"
    config = certifying_run(
        collection,
        "2024-05-01",
        script_mode="BIAS_DARK_FLAT",
        n_bias=3,
        n_dark=3,
        exp_times_dark=2,
        **TINY_PTC_FLATS,
        detectors=[0],
        do_verify=True,
        do_ptc=True,
        repo=str(report_repo),
        report_dir=str(tmp_path / "reports"),
    )
    progress = TimeLeftRecorder(config)
    try:
        result = await runner.run_calibrations(
            config, report_dir=tmp_path, repo=report_repo, prepare=progress.start
        )
    finally:
        await progress.close()
    assert result.final_state == ScriptState.DONE, result.reason
    progress.check_mid_run_estimate()
    data = read_report(result)
    check_common(data, result, config, "DONE")
    assert data["failure_step"] == "" and data["failures"] == []

    by_type = {
        t: [e for e in data["exposures"] if e["image_type"] == t and not e["discarded"]]
        for t in ("BIAS", "DARK", "FLAT")
    }
    assert {t: len(v) for t, v in by_type.items()} == {"BIAS": 3, "DARK": 3, "FLAT": TINY_PTC_FLATS["n_flat"]}
    assert all(e["in_oods"] and e["obs_id"].startswith("CC_O_") for v in by_type.values() for e in v)
    assert [e["exp_time"] for e in by_type["FLAT"]] == TINY_PTC_FLATS["exp_times_flat"]
    assert [(a["image_type"], a["status"]) for a in data["acquisitions"]] == [
        ("BIAS", "complete"),
        ("DARK", "complete"),
        ("FLAT", "complete"),
    ]

    assert sorted(job["name"] for job in data["jobs"]) == sorted(
        [
            "BIAS combine",
            "BIAS verify",
            "DARK combine",
            "DARK verify",
            "FLAT combine",
            "FLAT verify",
            "PTC",
            "GAIN verify",
        ]
    )
    assert all(job["status"] == "succeeded" and job["exit_code"] == 0 for job in data["jobs"])
    # The PTC job's flat pairs are checked against its own PTC (cp_verify's gain check); the PTC runs
    # beside the flat combine, so the order of FLAT and GAIN varies.
    assert sorted((v["image_type"], v["mode"], v["status"]) for v in data["verifications"]) == [
        ("BIAS", "internal", "passed"),
        ("DARK", "internal", "passed"),
        ("FLAT", "internal", "passed"),
        ("GAIN", "internal", "passed"),
    ]
    flats = [e["exposure_id"] for e in by_type["FLAT"]]
    pairs = tuple(zip(flats[::2], flats[1::2], strict=True))
    for verification in data["verifications"]:
        if verification["image_type"] == "GAIN":
            decision = verification["decision"]
            assert decision["passed"] and decision["n_pairs"] == len(pairs) and not decision["failing_amps"]
        else:
            check_verification(verification)

    # Certifications: type, collections, range and count, as in the repository.
    certs = {c["product"]: c for c in data["certifications"]}
    assert set(certs) == {"bias", "dark", "flat", "ptc"}
    jobs_by_product = {job["product"]: job for job in data["jobs"] if job["kind"] in ("combine", "ptc")}
    for product, cert in certs.items():
        assert cert["status"] == "certified" and cert["count"] == 1
        assert cert["calib_collection"] == collection
        assert (cert["begin"], cert["end"]) == ("2024-05-01", "2024-05-02")
        assert cert["run_collection"] == jobs_by_product[product]["output_collection"]
    assert {c.dataset_type for c in list_certified(report_repo, collection)} == set(certs)

    # Gains per flat pair, detector and amplifier.
    assert {tuple(g["pair"]) for g in data["gains"]} == set(pairs)
    assert sorted((tuple(g["pair"]), g["detector"], g["amp"]) for g in data["gains"]) == sorted(
        (pair, 0, amp) for pair in pairs for amp in AMP_NAMES
    )
    assert all(0.5 < g["gain"] < 3.0 and g["noise"] > 0 for g in data["gains"])
    # compare_runs against the truth the simulated repository records: every amp, gains close.
    from lsst.ts.makecalibrations.calib.report import RunReport
    from lsst.ts.makecalibrations.cli.compare_runs import amp_values, compare, truth_values

    rows = compare(amp_values(RunReport.load(result.script.report_path)), truth_values(report_repo))
    assert [(det, amp) for det, amp, *_ in rows] == sorted((0, amp) for amp in AMP_NAMES)
    assert max(abs(gain - truth) for _, _, gain, truth, _, _ in rows) < 0.25

    # Timings of each acquisition and each job.
    names = [p["name"] for p in data["phases"]]
    for name in ("BIAS acquisition", "DARK acquisition", "FLAT acquisition", "PTC", "FLAT verify"):
        assert name in names

    # Plots: logged, next to the report, non-empty PNGs, PTC among them.
    report_path = result.script.report_path
    stem = report_path.stem
    pngs = {p.name: p for p in report_path.parent.glob(f"{stem}_*.png")}
    for product in ("ptc", "gain_noise_ptc", "verification_failures", "mosaic_bias", "mosaic_flat"):
        png = pngs[f"{stem}_{product}.png"]
        content = png.read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 5000, product
    (logged,) = [m for m in result.log_messages if m.startswith("Run plots")]
    assert all(str(p) in logged for p in pngs.values())


async def test_failed_run_then_resumed_from_its_report(
    tmp_path: pathlib.Path, report_repo: pathlib.Path
) -> None:
    """The dark combine job fails after every image was taken: FAILED with the step, job and reason;
    resumed from the report, the run takes no image, processes the darks and ends DONE."""
    collection = "LSSTComCam/calib/test/report_failed"
    config = certifying_run(
        collection,
        "2024-06-01",
        **SMALL_BIAS_DARK,
        detectors=[3],
        repo=str(report_repo),
        report_dir=str(tmp_path),
    )
    first = await runner.run_calibrations(
        config,
        report_dir=tmp_path,
        repo=report_repo,
        faults=FaultPlan(ocps_fail_pipeline="cpDark", ocps_fail_message="injected dark failure"),
    )
    assert first.final_state == ScriptState.FAILED
    data = read_report(first)
    check_common(data, first, config, "FAILED")
    assert first.observatory.camera.images_started == 6
    assert [(a["image_type"], a["status"]) for a in data["acquisitions"]] == [
        ("BIAS", "complete"),
        ("DARK", "complete"),
    ]

    (dark_job,) = [job for job in data["jobs"] if job["name"] == "DARK combine"]
    assert dark_job["status"] == "failed" and dark_job["exit_code"] == 1
    assert "injected dark failure" in dark_job["message"]
    assert data["failure_step"] == "DARK combine"
    assert "injected dark failure" in data["failure_reason"] and dark_job["job_id"] in data["failure_reason"]
    (failure,) = data["failures"]
    assert failure["step"] == "DARK combine" and failure["job_id"] == dark_job["job_id"]
    assert failure["collection"] == dark_job["output_collection"]
    assert dark_job["job_id"] in first.reason
    (bias_verification,) = data["verifications"]
    check_verification(bias_verification)
    assert bias_verification["status"] == "passed"
    assert [(c["product"], c["status"]) for c in data["certifications"]] == [
        ("bias", "certified"),
        ("dark", "skipped"),
    ]
    assert "combine job failed" in data["certifications"][1]["reason"]
    assert {c.dataset_type for c in list_certified(report_repo, collection)} == {"bias"}
    old_darks = [
        e["exposure_id"] for e in data["exposures"] if e["image_type"] == "DARK" and not e["discarded"]
    ]

    # Resume from the report: no exposure, the darks of the failed run, the dark certified.
    n_before = n_exposures_in_repo(report_repo)
    second = await runner.run_calibrations(
        dict(config, resume_from_report=str(first.script.report_path)), report_dir=tmp_path, repo=report_repo
    )
    assert second.final_state == ScriptState.DONE, second.reason
    resumed = read_report(second)
    assert resumed["resumed_from"] == str(first.script.report_path)
    assert second.observatory.camera.images_started == 0
    assert n_exposures_in_repo(report_repo) == n_before
    assert all(e["recovered"] for e in resumed["exposures"])
    assert [(a["image_type"], a["status"]) for a in resumed["acquisitions"]] == [
        ("BIAS", "recovered"),
        ("DARK", "recovered"),
    ]
    (dark_combine,) = [job for job in resumed["jobs"] if job["name"] == "DARK combine"]
    assert dark_combine["status"] == "succeeded"
    assert dark_combine["data_query"].endswith(f"exposure IN ({', '.join(map(str, old_darks))})")
    assert "BIAS combine" not in {job["name"] for job in resumed["jobs"]}
    assert [(c["product"], c["status"]) for c in resumed["certifications"]] == [("dark", "certified")]
    assert {c.dataset_type for c in list_certified(report_repo, collection)} == {"bias", "dark"}


async def test_stopped_run_report(tmp_path: pathlib.Path, report_repo: pathlib.Path) -> None:
    """Stopped while the biases are taken: STOPPED, the images taken recorded, nothing certified."""
    config = certifying_run(
        "LSSTComCam/calib/test/report_stopped",
        "2024-07-01",
        script_mode="BIAS_DARK",
        n_bias=6,
        n_dark=2,
        detectors=[5],
        repo=str(report_repo),
        report_dir=str(tmp_path),
    )

    async def during_biases(script: Any, observatory: Any) -> None:
        await wait_until(lambda: observatory.camera.images_started >= 2)

    result = await runner.run_calibrations(
        config, report_dir=tmp_path, repo=report_repo, time_scale=10.0, stop_when=during_biases
    )
    assert result.final_state == ScriptState.STOPPED, result.reason
    data = read_report(result)
    check_common(data, result, config, "STOPPED")
    taken = result.observatory.camera.images_started
    assert 2 <= taken < 7
    assert [(a["image_type"], a["status"]) for a in data["acquisitions"]] == [
        ("BIAS", "incomplete"),
        ("DARK", "not_taken"),
    ]
    assert [e["image_type"] for e in data["exposures"]] == ["BIAS"] * taken
    assert data["failure_step"] == "stopped" and "stopped by request" in data["failure_reason"]
    assert data["jobs"] == [] and data["verifications"] == [] and data["gains"] == []
    assert all(c["status"] != "certified" for c in data["certifications"])
    assert list_certified(report_repo, "LSSTComCam/calib/test/report_stopped") == []
    assert "BIAS acquisition" in [p["name"] for p in data["phases"]]


async def test_two_runs_compared_then_cleaned(tmp_path: pathlib.Path, report_repo: pathlib.Path) -> None:
    """A second run with gains (a PTC from flats only) is compared with the DONE run by
    ``compare_runs``; then ``cleanup_runs`` removes the job outputs of every finished run of this
    module, keeping the certified calibrations (still readable) and the job logs the pages link to."""
    from lsst.daf.butler import CollectionType

    from lsst.ts.makecalibrations.calib.report import RunReport
    from lsst.ts.makecalibrations.cli import cleanup_runs, compare_runs

    done = [page.with_suffix(".json") for page, state in HTML_PAGES if state == "DONE"]
    if not done or not any(RunReport.load(p).gains for p in done):
        pytest.skip("the DONE run of this module did not run (its gains are run A)")
    first = next(p for p in done if RunReport.load(p).gains)
    earlier = RunReport.load(first)
    # The biases and darks of run A are reused (no image, no job): only flats are taken, and a PTC.
    reused = {
        key: [e.exposure_id for e in earlier.exposures if e.image_type == key.upper() and not e.discarded]
        for key in ("bias", "dark")
    }
    config = dict(
        script_mode="BIAS_DARK_FLAT",
        exposure_ids=reused,
        generate_calibrations=False,
        do_verify=False,
        do_defects=False,
        n_flat=6,
        exp_times_flat=[0.2, 0.2, 1.5, 1.5, 3, 3],
        detectors=[0],
        do_ptc=True,
        config_options_ptc=TINY_PTC_OPTIONS,
        n_processes=1,
        calib_collection="LSSTComCam/calib/test/report_second",
        certify_calib_begin_date="2024-08-01",
        certify_calib_end_date="2024-08-02",
        repo=str(report_repo),
        report_dir=str(tmp_path),
    )
    result = await runner.run_calibrations(config, report_dir=tmp_path, repo=report_repo)
    assert result.final_state == ScriptState.DONE, result.reason
    second = result.script.report_path
    read_report(result)

    # compare_runs on the two reports: one row per amp of detector 0, B - A as the reports say.
    plot = tmp_path / "diff.png"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert compare_runs.main([str(first), str(second), "--plot", str(plot)]) == 0
    a = compare_runs.amp_values(RunReport.load(first))
    b = compare_runs.amp_values(RunReport.load(second))
    rows = [line.split() for line in out.getvalue().splitlines() if re.match(r"\s*0\s+C\d\d\s", line)]
    assert [row[1] for row in rows] == sorted(AMP_NAMES)
    for row in rows:
        gain_a, gain_b = a[0, row[1]][0], b[0, row[1]][0]
        assert float(row[4]) == pytest.approx(gain_b - gain_a, abs=1e-3)
        assert abs(gain_b - gain_a) < 0.25  # both near the same truth, from different flats
    assert len({row[4] for row in rows}) > 1, "the two runs measured the gains independently"
    assert plot.read_bytes().startswith(PNG_MAGIC)

    # cleanup_runs over every finished run of this module (DONE, FAILED, resumed, STOPPED, second).
    reports = sorted({page.with_suffix(".json") for page, _ in HTML_PAGES})
    runs = [RunReport.load(p) for p in reports]
    jobs = [job for run in runs for job in run.jobs if job.output_collection]
    certified_runs = {c.run_collection for run in runs for c in run.certifications if c.status == "certified"}
    assert certified_runs and any(job.output_collection not in certified_runs for job in jobs)
    running = tmp_path / "running.json"
    running.write_text(json.dumps(dict(json.loads(second.read_text()), final_state="")))
    butler = make_butler(report_repo)
    before = set(butler.registry.queryCollections())
    n_raws = n_exposures_in_repo(report_repo)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cleanup_runs.main([*map(str, reports), str(running), "--dry-run"]) == 0
    dry = out.getvalue()
    assert f"skip {running}: run not over" in dry and "dry run: nothing removed" in dry
    assert set(make_butler(report_repo).registry.queryCollections()) == before
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cleanup_runs.main(list(map(str, reports))) == 0
    skipped = f"skip {running}: run not over (state 'running')\n"
    assert out.getvalue() == dry.replace(" (dry run: nothing removed)", "").replace(skipped, ""), (
        "the dry run says what the run does"
    )
    butler = make_butler(report_repo)
    after = set(butler.registry.queryCollections())
    for job in jobs:
        name = job.output_collection
        if name in certified_runs:
            assert name in after, name
            assert not [
                ref
                for ref in butler.registry.queryDatasets(..., collections=name)
                if ref.datasetType.name.endswith("Proc")
            ], f"intermediate images left in {name}"
        else:
            assert name not in after, f"{job.name} output run {name} not removed"
        assert f"run {name}" in dry or f"leave {name}" in dry
        if job.log_uri:
            assert pathlib.Path(job.log_uri.removeprefix("file://")).is_file(), "job log removed"
    assert n_exposures_in_repo(report_repo) == n_raws
    # Every certified calibration still reads back.
    calibration = list(butler.registry.queryCollections(collectionTypes={CollectionType.CALIBRATION}))
    n_read = 0
    for dataset_type in butler.registry.queryDatasetTypes():
        if dataset_type.isCalibration():
            for association in butler.registry.queryDatasetAssociations(
                dataset_type, collections=calibration
            ):
                assert butler.get(association.ref) is not None
                n_read += 1
    assert n_read >= sum(c.count for run in runs for c in run.certifications if c.status == "certified")
    freed = re.search(r"runs removed.*: ([0-9.]+) MB freed", dry)
    assert freed and float(freed[1]) > 0
    # Again: nothing left to do.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cleanup_runs.main(list(map(str, reports))) == 0
    assert "0 runs removed, intermediates of 0 kept runs removed: 0.0 MB freed" in out.getvalue()


def chromium_or_skip() -> str:
    """The Chromium executable, or skip saying how to get it."""
    import shutil

    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "Chromium is not installed: `make test` installs the Debian package chromium when run as root "
        "(Makefile target browser); otherwise install it to render the HTML reports"
    )


def render_in_chromium(chromium: str, page: pathlib.Path, png: pathlib.Path) -> list[str]:
    """Screenshot ``page`` headless; return the console messages Chromium logged."""
    import subprocess

    completed = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1600",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0 and png.is_file(), completed.stderr[-2000:]
    return [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]


def screenshot_is_not_empty(png: pathlib.Path) -> bool:
    """More than a blank page: a good share of the pixels are not the background."""
    from matplotlib.image import imread

    pixels = imread(png)[..., :3]
    background = (pixels > 0.97).all(axis=-1)
    return bool(pixels.std() > 0.02 and (~background).mean() > 0.02)


def test_html_reports_render_in_chromium(tmp_path: pathlib.Path) -> None:
    """The pages of the DONE, FAILED and STOPPED runs above render without console errors."""
    chromium = chromium_or_skip()
    # The check itself catches a page with errors and a blank page.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script></body></html>')
    assert render_in_chromium(chromium, bad, tmp_path / "bad.png") and not screenshot_is_not_empty(
        tmp_path / "bad.png"
    )
    states = {state for _, state in HTML_PAGES}
    if not {"DONE", "FAILED", "STOPPED"} <= states:
        pytest.skip(f"the run tests of this module did not all run (pages of {sorted(states)})")
    for page, state in HTML_PAGES:
        png = tmp_path / f"{page.stem}_{state}.png"
        assert render_in_chromium(chromium, page, png) == [], page
        assert screenshot_is_not_empty(png), page
