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

"""The assembled simulated observatory and its command-line entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsst.ts.makecalibrations.control import RemoteGroup
from lsst.ts.makecalibrations.sal import salobj
from lsst.ts.makecalibrations.sim.__main__ import parse_args
from lsst.ts.makecalibrations.sim.exposure import RecordingSink
from lsst.ts.makecalibrations.sim.faults import FailingExecutor, FaultPlan
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
from lsst.ts.makecalibrations.sim.ocps import SleepExecutor
from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

COMPONENTS = ["CCCamera", "CCHeaderService", "CCOODS", "OCPS:2"]


async def test_all_enabled_by_default() -> None:
    async with SimulatedObservatory(ObservatoryOptions(time_scale=100.0), shutdown_delay=0.0) as observatory:
        assert isinstance(observatory.sink, RecordingSink)
        assert isinstance(observatory.executor, SleepExecutor)
        assert observatory.clock.time_scale == 100.0
        async with RemoteGroup(COMPONENTS) as group:
            await group.assert_all_enabled()
        assert observatory.camera is not None and observatory.camera.sink is observatory.sink
        assert observatory.ocps is not None and observatory.ocps.salinfo.index == 2
    assert all(csc.done_task.done() for csc in observatory.cscs)


async def test_fault_plan_initial_states_and_failing_jobs() -> None:
    faults = FaultPlan(ocps_initial_state=salobj.State.DISABLED, ocps_fail_pipeline="cpFlat")
    async with SimulatedObservatory(
        ObservatoryOptions(time_scale=100.0),
        faults=faults,
        camera_initial_state=salobj.State.STANDBY,
        shutdown_delay=0.0,
    ) as observatory:
        async with RemoteGroup(COMPONENTS) as group:
            assert await group.get_state("ocps_2") == salobj.State.DISABLED
            assert await group.get_state("cccamera") == salobj.State.STANDBY
            assert await group.get_state("ccoods") == salobj.State.ENABLED
            with pytest.raises(AssertionError, match=r"\['CCCamera', 'OCPS:2'\]"):
                await group.assert_all_enabled()
            await group.enable()
            assert isinstance(observatory.ocps.executor, FailingExecutor)
            remote = group.rem.ocps_2
            ack = await remote.cmd_execute.set_start(wait_done=False, pipeline="cpFlat.yaml")
            job_id = json.loads(ack.result)["job_id"]
            await remote.cmd_execute.next_ackcmd(ack)
            result = remote.evt_job_result.get()
            assert (result.job_id, result.exit_code) == (job_id, 1)


def test_repo_selects_butler_sink_and_pipetask_executor(tmp_path: Path) -> None:
    from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor
    from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter

    observatory = SimulatedObservatory(
        ObservatoryOptions(time_scale=50.0, size="tiny"), repo=tmp_path / "repo"
    )
    assert isinstance(observatory.sink, ButlerRawWriter)
    assert observatory.sink.size == "tiny"
    assert observatory.sink.clock is observatory.clock
    assert isinstance(observatory.executor, PipetaskExecutor)
    # An explicit sink or executor wins over the repo.
    sink = RecordingSink()
    observatory = SimulatedObservatory(repo=tmp_path / "repo", sink=sink)
    assert observatory.sink is sink


def test_parse_args() -> None:
    args = parse_args(["--time-scale", "20", "--repo", "/tmp/r", "--ingest-delay", "0.5"])
    assert (args.time_scale, args.repo, args.ingest_delay) == (20.0, "/tmp/r", 0.5)
    with pytest.raises(SystemExit):
        parse_args(["--time-scale", "0"])


def test_parse_args_checks_the_observatory_options_as_run_script(tmp_path, capsys) -> None:
    """The simulator's command line shares sim.options with run_script: the same choices and checks."""
    site = tmp_path / "site.yaml"
    site.write_text("computeSite: local\n")
    args = parse_args(["--size", "tiny", "--ocps-executor", "bps", "--bps-site-config", str(site)])
    assert args.observatory == ObservatoryOptions(size="tiny", ocps_executor="bps", bps_site_config=site)
    for bad, words in (
        (["--size", "huge"], "invalid choice: 'huge'"),
        (["--bps-site-config", str(site)], "--bps-site-config is for --ocps-executor bps only."),
        (
            ["--ocps-executor", "bps", "--bps-site-config", str(tmp_path / "no.yaml")],
            "--bps-site-config: cannot find the BPS site configuration",
        ),
        (["--time-scale", "-1"], "--time-scale must be > 0, not -1.0."),
    ):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert words in capsys.readouterr().err


def test_command_line_runs_until_interrupted() -> None:
    env = dict(os.environ, TS_MAKECALIBRATIONS_SAL_BACKEND="embedded")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lsst.ts.makecalibrations.sim",
            "--time-scale",
            "100",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Simulated observatory running at time scale 100.0" in line
        time.sleep(0.2)
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "Stopping." in stdout
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
