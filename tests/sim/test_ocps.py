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

"""The simulated OCPS:2 driven through a Remote, as BaseMakeCalibrations and dm_OCPS's tests use it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lsst.ts.makecalibrations.sal import salobj
from lsst.ts.makecalibrations.sim.clock import SimClock
from lsst.ts.makecalibrations.sim.faults import FailingExecutor, FaultPlan
from lsst.ts.makecalibrations.sim.ocps import OcpsCsc, SleepExecutor
from lsst.ts.makecalibrations.sim.ocps_jobs import JobOutcome, JobRequest

TIME_SCALE = 100.0
BIAS = "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpBias.yaml"
DARK = "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpDark.yaml"
QUERY = "instrument='LSSTComCam' AND detector IN (0,1,2) AND exposure IN (2024010100001, 2024010100002)"


class Ocps:
    """An OCPS:2 CSC and a Remote on it."""

    def __init__(self, executor: Any = None, initial_state: salobj.State = salobj.State.ENABLED) -> None:
        self.clock = SimClock(TIME_SCALE)
        self.executor = executor if executor is not None else SleepExecutor(self.clock, duration=5.0)
        self.csc = OcpsCsc(clock=self.clock, executor=self.executor, initial_state=initial_state)
        self.csc.shutdown_delay = 0.0
        self.domain = salobj.Domain()
        self.remote = salobj.Remote(self.domain, "OCPS", 2)

    async def __aenter__(self) -> Ocps:
        await asyncio.gather(self.csc.start_task, self.remote.start_task)
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.domain.close()
        await self.csc.close()

    async def execute(self, pipeline: str = BIAS) -> tuple[str, Any]:
        """Send execute; return the job id and the in-progress ack."""
        ack = await self.remote.cmd_execute.set_start(
            wait_done=False,
            pipeline=pipeline,
            version="",
            config="-j 2 -i LSSTComCam/raw/all",
            data_query=QUERY,
        )
        assert ack.ack == salobj.SalRetCode.CMD_INPROGRESS
        assert ack.timeout >= 600.0
        return json.loads(ack.result)["job_id"], ack

    async def job_result(self, job_id: str) -> Any:
        """Wait for the job_result of ``job_id`` (matching the ``jobId`` of its JSON result)."""
        while True:
            msg = await self.remote.evt_job_result.next(flush=False, timeout=5)
            if json.loads(msg.result)["jobId"] == job_id:
                return msg


@pytest.fixture
async def ocps() -> AsyncIterator[Ocps]:
    async with Ocps() as ocps:
        yield ocps


async def test_execute_happy_path(ocps: Ocps) -> None:
    job_id, ack = await ocps.execute()
    assert len(job_id) == 32 and int(job_id, 16) >= 0
    final = await ocps.remote.cmd_execute.next_ackcmd(ack)
    assert final.ack == salobj.SalRetCode.CMD_COMPLETE
    # job_result was written before the final ack.
    written = ocps.remote.evt_job_result.get()
    assert written is not None and written.job_id == job_id
    msg = await ocps.job_result(job_id)
    assert (msg.job_id, msg.exit_code) == (job_id, 0)
    result = json.loads(msg.result)
    assert result["phase"] == "completed"
    assert result["runId"] == str(ack.private_seqNum)
    assert result["parameters"]["environment"]["PIPELINE_URL"] == BIAS
    assert result["parameters"]["environment"]["DATA_QUERY"] == QUERY
    assert result["parameters"]["environment"]["OUTPUT_COLLECTION"] == f"u/ocps/{job_id}"
    # The job took its simulated duration.
    assert result["endTime"] - result["startTime"] >= 5.0
    assert ocps.csc.running_job_ids == []


async def test_concurrent_jobs_matched_by_id() -> None:
    async with Ocps() as ocps:
        executor = SleepExecutor(ocps.clock, durations={"cpBias": 30.0, "cpDark": 3.0})
        ocps.csc.executor = executor
        bias_id, bias_ack = await ocps.execute(BIAS)
        bias_done = asyncio.create_task(ocps.remote.cmd_execute.next_ackcmd(bias_ack))
        dark_id, dark_ack = await ocps.execute(DARK)
        dark_done = asyncio.create_task(ocps.remote.cmd_execute.next_ackcmd(dark_ack))
        assert bias_id != dark_id
        assert sorted(ocps.csc.running_job_ids) == sorted([bias_id, dark_id])
        # The dark job is shorter: it finishes first although sent second.
        first = await ocps.remote.evt_job_result.next(flush=False, timeout=5)
        assert first.job_id == dark_id
        assert (await dark_done).ack == salobj.SalRetCode.CMD_COMPLETE
        assert not bias_done.done()
        second = await ocps.job_result(bias_id)
        assert (await bias_done).ack == salobj.SalRetCode.CMD_COMPLETE
        by_id = {msg.job_id: json.loads(msg.result) for msg in (first, second)}
        assert by_id[bias_id]["parameters"]["environment"]["PIPELINE_URL"] == BIAS
        assert by_id[dark_id]["parameters"]["environment"]["PIPELINE_URL"] == DARK


async def test_abort_job() -> None:
    async with Ocps() as ocps:
        ocps.csc.executor = SleepExecutor(ocps.clock, duration=1000.0)
        job_id, ack = await ocps.execute()
        # Wait for execute's final ack from before the abort: it may arrive before abort_job's own
        # ack, and next_ackcmd refuses a command whose final ack was already received.
        final_task = asyncio.create_task(ocps.remote.cmd_execute.next_ackcmd(ack, timeout=5))
        await ocps.remote.cmd_abort_job.set_start(job_id=job_id, timeout=5)
        msg = ocps.remote.evt_job_result.get()
        assert (msg.job_id, msg.exit_code) == (job_id, 255)
        assert json.loads(msg.result)["phase"] == "aborted"
        final = await final_task
        assert final.ack == salobj.SalRetCode.CMD_COMPLETE
        # Aborting it again, or an unknown job, fails naming the job id.
        async with salobj.assertRaisesAckError(ack=salobj.SalRetCode.CMD_FAILED, result_contains=job_id):
            await ocps.remote.cmd_abort_job.set_start(job_id=job_id, timeout=5)
        async with salobj.assertRaisesAckError(result_contains="no-such-job"):
            await ocps.remote.cmd_abort_job.set_start(job_id="no-such-job", timeout=5)


async def test_failed_job() -> None:
    clock = SimClock(TIME_SCALE)
    plan = FaultPlan(ocps_fail_pipeline=r"cpDark\.yaml", ocps_fail_message="pipetask exploded")
    # 20 s simulated (0.2 s wall): long enough that the final ack never beats next_ackcmd under load.
    executor = FailingExecutor(SleepExecutor(clock, duration=20.0), plan, clock)
    async with Ocps(executor=executor) as ocps:
        dark_id, dark_ack = await ocps.execute(DARK)
        assert (await ocps.remote.cmd_execute.next_ackcmd(dark_ack)).ack == salobj.SalRetCode.CMD_COMPLETE
        msg = await ocps.job_result(dark_id)
        assert msg.exit_code == 1
        result = json.loads(msg.result)
        assert result["phase"] == "error"
        assert "pipetask exploded" in result["message"]
        # Other pipelines still succeed.
        bias_id, bias_ack = await ocps.execute(BIAS)
        await ocps.remote.cmd_execute.next_ackcmd(bias_ack)
        assert (await ocps.job_result(bias_id)).exit_code == 0


class BrokenExecutor:
    """An executor that crashes."""

    async def run(self, request: JobRequest) -> JobOutcome:
        raise ValueError("disk full")

    async def abort(self, job_id: str) -> None:
        pass


async def test_executor_crash_is_a_failed_job() -> None:
    async with Ocps(executor=BrokenExecutor()) as ocps:
        job_id, ack = await ocps.execute()
        assert (await ocps.remote.cmd_execute.next_ackcmd(ack)).ack == salobj.SalRetCode.CMD_COMPLETE
        msg = await ocps.job_result(job_id)
        assert msg.exit_code == 1
        assert "disk full" in json.loads(msg.result)["message"]


async def test_command_level_failures(ocps: Ocps) -> None:
    async with salobj.assertRaisesAckError(ack=salobj.SalRetCode.CMD_FAILED, result_contains="pipeline"):
        await ocps.remote.cmd_execute.set_start(pipeline="  ", timeout=5)
    assert not ocps.remote.evt_job_result.has_data


@pytest.mark.parametrize("state", [salobj.State.DISABLED, salobj.State.STANDBY])
async def test_not_enabled(state: salobj.State) -> None:
    async with Ocps(initial_state=state) as ocps:
        async with salobj.assertRaisesAckError(ack=salobj.SalRetCode.CMD_FAILED, result_contains="execute"):
            await ocps.remote.cmd_execute.set_start(pipeline=BIAS, timeout=5)
        assert not ocps.remote.evt_job_result.has_data
        await salobj.set_summary_state(ocps.remote, salobj.State.ENABLED, timeout=5)
        job_id, ack = await ocps.execute()
        await ocps.remote.cmd_execute.next_ackcmd(ack)
        assert (await ocps.job_result(job_id)).exit_code == 0


async def test_job_progress_from_the_pipetask_log_is_published(tmp_path) -> None:
    """The pipetask executor reads the middleware's per-quantum line; the OCPS logs quanta done."""
    import sys

    from lsst.ts.makecalibrations.sim.ocps_jobs import QUANTA_PROGRESS
    from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor

    line = (
        "lsst.pipe.base.mp_graph_executor INFO: Executed {} quanta successfully, 0 failed and {} remain "
        "out of total 3 quanta."
    )
    fake = (
        "import sys, time; "
        f"print({line.format(1, 2)!r}, flush=True); time.sleep(0.5); "
        f"print({line.format(3, 0)!r}, flush=True); sys.exit(1)"
    )
    executor = PipetaskExecutor(tmp_path, pipetask=[sys.executable, "-c", fake])
    executor.progress_interval = 0.1
    async with Ocps(executor=executor) as ocps:
        messages: list[str] = []

        async def on_log(data: Any) -> None:
            messages.append(data.message)

        ocps.remote.evt_logMessage.callback = on_log
        job_id, _ = await ocps.execute()
        await ocps.job_result(job_id)
        progress = [m for m in messages if QUANTA_PROGRESS.match(m)]
        assert progress[0] == f"Job {job_id}: 1 of 3 quanta done (0 failed)"
        assert progress[-1] == f"Job {job_id}: 3 of 3 quanta done (0 failed)"
        assert len(progress) == 2  # reported on change only
