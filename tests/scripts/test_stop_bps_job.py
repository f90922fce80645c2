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

"""A stop of the script aborts an OCPS job that runs through ``bps submit`` (Parsl), every process of it.

The simulated observatory runs its OCPS jobs with the BPS executor (``ocps_executor="bps"``, the
Parsl plugin's local site) on the tiny repository; the script takes two biases of one detector and
its bias job starts; once a Parsl worker runs a quantum (``pipetask run-qbb``) the script is stopped.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from lsst.ts.makecalibrations.sal import ScriptState, salobj
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
from lsst.ts.makecalibrations.sim.options import ObservatoryOptions
from lsst.ts.makecalibrations.sim.process_tree_guard import descendants, is_alive
from tests.scripts.driver import run_calibrations

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the process-tree guard needs Linux"),
]


async def test_stop_aborts_the_bps_job_and_its_processes(tmp_path: Path, tiny_repo: Path) -> None:
    salobj.set_test_topic_subname(randomize=True)
    seen: dict[int, str] = {}

    async def quantum_running(script: object, observatory: SimulatedObservatory) -> None:
        executor = observatory.executor
        while True:
            for process in list(getattr(executor, "_processes", {}).values()):
                for pid in descendants(process.pid):
                    try:
                        seen[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    except OSError:
                        pass
            if any("run-qbb" in command for command in seen.values()):
                return
            await asyncio.sleep(0.2)

    config = dict(
        script_mode="BIAS",
        n_bias=2,
        detectors=[0],
        do_verify=False,
        generate_calibrations=True,
        repo=str(tiny_repo),
    )
    async with SimulatedObservatory(
        ObservatoryOptions(time_scale=500.0, size="tiny", ocps_executor="bps"),
        repo=tiny_repo,
        detectors=(0,),
        shutdown_delay=0,
    ) as observatory:
        result = await run_calibrations(
            config, report_dir=tmp_path, observatory=observatory, stop_when=quantum_running, timeout=300
        )
    assert result.final_state == ScriptState.STOPPED, result.reason
    assert result.report is not None
    (job,) = result.report.jobs
    assert job.status == "aborted"
    assert [r["exit_code"] for r in result.job_results] == [255]
    assert any("process_worker_pool" in command for command in seen.values()), seen
    left = {pid: command for pid, command in seen.items() if is_alive(pid)}
    assert not left
    assert result.report.certifications == []
