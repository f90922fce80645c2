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

"""``run_script`` as a process under signals, SIGKILL and a second run on the same repository.

Each test starts ``run_script`` (``--size tiny``, one detector, a few images, a high time scale) in
its own process group, as a terminal or the ScriptQueue would, and checks what an operator relies
on: the final state printed, the report written, the OCPS job processes gone, the report's exposures
equal to what the registry holds, and a resume from the report that takes no new image and ends DONE.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from lsst.ts.makecalibrations.cli.run_script import _Interrupts
from lsst.ts.makecalibrations.sim.repository import ensure_repo

SCRIPT = "maintel/make_comcam_calibrations.py"
RUN_SCRIPT = str(pathlib.Path(sys.executable).parent / "run_script")

#: A run with processing (a combine and a verify job) that takes a few seconds at time scale 100.
PROCESSING = [
    "script_mode=BIAS",
    "n_bias=3",
    "generate_calibrations=true",
    "do_verify=true",
    "detectors=[0]",
    "calib_collection=LSSTComCam/calib/signals/calib.{timestamp}",
    "certify_calib_begin_date=2024-01-01",
    "certify_calib_end_date=2034-01-01",
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("signals") / "repo"
    ensure_repo(path, size="tiny", detectors=[0])
    return path


class RunScript:
    """A ``run_script`` process whose output goes to a file that the test polls."""

    def __init__(self, repo: pathlib.Path, reports: pathlib.Path, parameters: list[str], name: str) -> None:
        self.repo = repo
        self.reports = reports
        self.out_path = reports.parent / f"{name}.out"
        reports.mkdir(parents=True, exist_ok=True)
        args = [RUN_SCRIPT, SCRIPT, "-p", *parameters, "--repo", str(repo), "--size", "tiny"]
        args += ["--time-scale", "100", "--report-dir", str(reports), "--no-progress"]
        self.out = open(self.out_path, "w")
        env = dict(os.environ, LSST_TOPIC_SUBNAME=f"signals_{name}_{os.getpid()}")
        self.process = subprocess.Popen(
            args, stdout=self.out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    @property
    def output(self) -> str:
        return self.out_path.read_text()

    def wait_for(self, text: str, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None:
                pytest.fail(f"run_script ended before {text!r}:\n{self.output}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no {text!r} within {timeout} s:\n{self.output}")
            time.sleep(0.05)

    def signal_group(self, sig: int) -> None:
        """Signal the process group, as Ctrl-C or ``timeout -s INT`` does."""
        os.killpg(self.process.pid, sig)

    def wait(self, timeout: float = 240.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.out.close()

    def report(self) -> dict:
        (path,) = self.reports.glob("*.json")
        return json.loads(path.read_text())

    def report_path(self) -> pathlib.Path:
        (path,) = self.reports.glob("*.json")
        return path


def processes_using(repo: pathlib.Path) -> list[str]:
    """Command lines of the processes (other than this one) that name ``repo``: run_script, pipetask."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(repo) in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def job_running(processes: list[str]) -> bool:
    """Is an OCPS job running among these processes (`processes_using`)?"""
    warm = [p for p in processes if "pipetask_server" in p]
    return any("pipetask run" in p for p in processes) or len(warm) >= 2


def wait_no_process(repo: pathlib.Path, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := processes_using(repo)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def registry_exposures(repo: pathlib.Path, group: str) -> dict[int, list[int]]:
    """Exposures of a group in the registry, with the detectors that have a raw."""
    from lsst.ts.makecalibrations.butler.readers import raw_detectors
    from lsst.ts.makecalibrations.butler.repository import make_butler

    butler = make_butler(repo)
    records = butler.registry.queryDimensionRecords("exposure", where=f"group = '{group}'")
    return raw_detectors(repo, [int(r.id) for r in records])


def assert_report_matches_registry(repo: pathlib.Path, report: dict) -> None:
    in_repo = registry_exposures(repo, report["group_id"])
    listed = {e["exposure_id"]: e for e in report["exposures"] if not e["recovered"]}
    assert sorted(listed) == sorted(in_repo)
    for exposure_id, detectors in in_repo.items():
        assert detectors == [0], (exposure_id, detectors)
        assert listed[exposure_id]["in_oods"], listed[exposure_id]


def resume(repo: pathlib.Path, tmp_path: pathlib.Path, report: pathlib.Path, name: str) -> RunScript:
    run = RunScript(repo, tmp_path / name, [*PROCESSING, f"resume_from_report={report}"], name)
    assert run.wait() == 0, run.output
    assert "Took " not in run.output and "Taking " not in run.output, run.output
    return run


def test_interrupts_repeat_window() -> None:
    interrupts = _Interrupts(window=1.0)
    assert interrupts.on_signal(now=10.0) == "stop"
    assert interrupts.on_signal(now=10.5) == "repeat"
    assert interrupts.on_signal(now=11.5) == "quit"


def test_sigint_during_processing_stops_aborts_and_leaves_nothing(repo, tmp_path) -> None:
    run = RunScript(repo, tmp_path / "reports", PROCESSING, "sigint")
    run.wait_for("combine job")
    run.signal_group(signal.SIGINT)
    assert run.wait() == 1
    out = run.output
    assert "state: STOPPED" in out and "script ended STOPPED" in out, out
    assert "FAILED" not in out, out
    assert wait_no_process(repo, 5.0) == []
    report = run.report()
    assert report["final_state"] == "STOPPED"
    assert {j["status"] for j in report["jobs"]} <= {"aborted", "succeeded"}
    assert "aborted" in {j["status"] for j in report["jobs"]}
    assert all(j["job_id"] for j in report["jobs"])
    assert {a["status"] for a in report["acquisitions"]} == {"complete"}
    assert {v["status"] for v in report["verifications"]} <= {"aborted", "passed"}
    assert_report_matches_registry(repo, report)


def test_double_sigint_is_one_interrupt_and_resume_takes_no_image(repo, tmp_path) -> None:
    # Stopped as soon as the last image is taken: images still being written and announced.
    run = RunScript(repo, tmp_path / "reports", PROCESSING, "double")
    run.wait_for("Took 4 biases")
    run.signal_group(signal.SIGINT)
    time.sleep(0.05)
    run.signal_group(signal.SIGINT)
    assert run.wait() == 1
    out = run.output
    assert "second interrupt" not in out and "script ended STOPPED" in out, out
    report = run.report()
    assert report["final_state"] == "STOPPED"
    assert {a["status"] for a in report["acquisitions"]} == {"complete"}, report["acquisitions"]
    assert_report_matches_registry(repo, report)
    resumed = resume(repo, tmp_path, run.report_path(), "double_resume")
    assert resumed.report()["final_state"] == "DONE"


def test_sigterm_during_acquisition_stops_with_a_report(repo, tmp_path) -> None:
    # Long darks, so that the signal arrives while the camera is taking them.
    acquisition = ["script_mode=BIAS_DARK", "n_bias=2", "n_dark=2", "exp_times_dark=200", "do_verify=false"]
    run = RunScript(repo, tmp_path / "reports", [*acquisition, "detectors=[0]"], "sigterm")
    run.wait_for("Taking 1 discarded + 2 kept darks")
    os.kill(run.process.pid, signal.SIGTERM)
    assert run.wait() == 1
    out = run.output
    assert "SIGTERM: sending stop" in out and "script ended STOPPED" in out, out
    report = run.report()
    assert report["final_state"] == "STOPPED"
    statuses = {a["image_type"]: a["status"] for a in report["acquisitions"]}
    assert statuses["BIAS"] == "complete" and statuses["DARK"] in ("incomplete", "complete"), statuses
    assert_report_matches_registry(repo, report)
    assert wait_no_process(repo, 5.0) == []


def test_sigkill_leaves_no_process_and_a_report_that_resumes(repo, tmp_path) -> None:
    run = RunScript(repo, tmp_path / "reports", PROCESSING, "sigkill")
    run.wait_for("All 3 kept biases are in the OODS")
    run.wait_for("combine job")
    deadline = time.monotonic() + 120
    # A job running: a pipetask subprocess, or the warm worker (which names the repo) and its child.
    while not job_running(processes_using(repo)):
        assert time.monotonic() < deadline and run.process.poll() is None, run.output
        time.sleep(0.05)
    os.kill(run.process.pid, signal.SIGKILL)
    run.wait()
    assert wait_no_process(repo, 5.0) == []
    report = run.report()
    assert report["final_state"] == ""  # written as the run went, never finished
    resumed = resume(repo, tmp_path, run.report_path(), "sigkill_resume")
    assert resumed.report()["final_state"] == "DONE"


def test_two_concurrent_runs_on_one_repo(repo, tmp_path) -> None:
    parameters = ["script_mode=BIAS", "n_bias=3", "do_verify=false", "detectors=[0]"]
    runs = [RunScript(repo, tmp_path / f"reports{i}", parameters, f"concurrent{i}") for i in range(2)]
    codes = [run.wait() for run in runs]
    assert codes == [0, 0], [run.output for run in runs]
    ids = [{e["exposure_id"] for e in run.report()["exposures"]} for run in runs]
    assert len(ids[0]) == len(ids[1]) == 4
    assert not ids[0] & ids[1]
