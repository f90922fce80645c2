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

"""Simulated OCPS CSC (``OCPS:2``, LSSTComCam) and the default job executor.

``execute`` behaves like dm_OCPS: it allocates ``job_id = uuid4().hex``, sends an in-progress ack
whose result is ``{"job_id": ...}``, runs the job through a `JobExecutor`, writes ``job_result``
(UWS job JSON in ``result``) and only then returns, giving CMD_COMPLETE. Jobs run concurrently.
``execute`` fails only for command-level problems (CSC not enabled, no pipeline); a failed job is
reported by ``job_result`` with exit code 1. ``abort_job`` aborts a running job, whose ``job_result``
then has exit code 255. ``in_progress_ack_delay`` delays the in-progress ack (the job already runs),
reproducing a real broker's timing: a client learns the job id only that much later. An executor
with a ``progress`` attribute (`ocps_jobs.ProgressCallback`) has each job's quanta done published as
an INFO ``logMessage`` (`ocps_jobs.format_quanta_progress`).

May import: `sal`, the standard library and the sibling modules `clock`, `csc` and `ocps_jobs`.
"""

from __future__ import annotations

__all__ = ["OcpsCsc", "SleepExecutor", "OCPS_COMCAM_INDEX"]

import asyncio
import dataclasses
import json
import re
import uuid
from collections.abc import Mapping

from ..sal import salobj
from .clock import SimClock
from .csc import SimulatedCsc
from .ocps_jobs import JobExecutor, JobOutcome, JobRequest, format_quanta_progress

OCPS_COMCAM_INDEX = 2
"""SAL index of the LSSTComCam OCPS."""

ACK_GAP = 0.02
"""Wall seconds between the in-progress ack and the final ack, so a client can call ``next_ackcmd``."""


class SleepExecutor:
    """A `JobExecutor` whose jobs wait a simulated duration and succeed.

    Parameters
    ----------
    clock : `SimClock`
        Simulated clock.
    duration : `float`, optional
        Simulated duration of a job in seconds.
    durations : `dict` [`str`, `float`], optional
        Durations for jobs whose pipeline matches (``re.search``) a key; the first match wins.
    """

    def __init__(self, clock: SimClock, duration: float = 10.0, durations: Mapping[str, float] | None = None):
        self.clock = clock
        self.duration = float(duration)
        self.durations = dict(durations or {})
        self.requests: list[JobRequest] = []
        self._tasks: dict[str, asyncio.Task] = {}
        self._aborted: set[str] = set()

    def duration_for(self, request: JobRequest) -> float:
        """Return the simulated duration of a job."""
        for pattern, duration in self.durations.items():
            if re.search(pattern, request.pipeline):
                return float(duration)
        return self.duration

    def estimate_wall_duration(self, request: JobRequest) -> float:
        """Return the wall duration of a job (used for the in-progress ack timeout)."""
        return self.clock.wall_seconds(self.duration_for(request))

    async def run(self, request: JobRequest) -> JobOutcome:
        self.requests.append(request)
        start_tai = self.clock.tai()
        task = asyncio.create_task(self.clock.sleep(self.duration_for(request)))
        self._tasks[request.job_id] = task
        try:
            await task
        except asyncio.CancelledError:
            if request.job_id not in self._aborted:
                raise
            return JobOutcome(
                exit_code=255,
                phase="aborted",
                message="Aborted by abort_job.",
                start_tai=start_tai,
                end_tai=self.clock.tai(),
            )
        finally:
            del self._tasks[request.job_id]
        return JobOutcome(exit_code=0, phase="completed", start_tai=start_tai, end_tai=self.clock.tai())

    async def abort(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            self._aborted.add(job_id)
            task.cancel()


@dataclasses.dataclass
class _Job:
    """A job the OCPS is running."""

    request: JobRequest
    creation_tai: float
    aborted: bool = False
    reported: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class OcpsCsc(SimulatedCsc):
    """The simulated OCPS.

    Parameters
    ----------
    clock : `SimClock`
        Simulated clock (job creation times).
    executor : `JobExecutor`, optional
        Runs the jobs; a `SleepExecutor` if `None`.
    index : `int`, optional
        SAL index (2 = LSSTComCam).
    initial_state : ``salobj.State``, optional
        State to start in.
    ack_timeout : `float`, optional
        Minimum timeout (wall seconds) of the in-progress ack, as dm_OCPS's 600 s; raised to the
        executor's estimated duration when that is longer.
    in_progress_ack_delay : `float`, optional
        Wall seconds between the start of a job and its in-progress ack (default 0).
    """

    def __init__(
        self,
        clock: SimClock,
        executor: JobExecutor | None = None,
        index: int = OCPS_COMCAM_INDEX,
        initial_state: salobj.State = salobj.State.ENABLED,
        ack_timeout: float = 600.0,
        in_progress_ack_delay: float = 0.0,
    ) -> None:
        self.clock = clock
        self.executor: JobExecutor = executor if executor is not None else SleepExecutor(clock)
        self.ack_timeout = float(ack_timeout)
        self.in_progress_ack_delay = float(in_progress_ack_delay)
        self.jobs: dict[str, _Job] = {}
        super().__init__("OCPS", index=index, initial_state=initial_state)
        self.cmd_execute.allow_multiple_callbacks = True
        if hasattr(self.executor, "progress"):
            self.executor.progress = self._log_progress

    def _log_progress(self, job_id: str, done: int, failed: int, total: int) -> None:
        """Publish a job's progress as a ``logMessage`` (the OCPS interface has no progress event)."""
        if job_id in self.jobs:
            self.log.info(format_quanta_progress(job_id, done, failed, total))

    @property
    def running_job_ids(self) -> list[str]:
        """Ids of the jobs still running."""
        return list(self.jobs)

    async def do_execute(self, data: salobj.BaseMsgType) -> None:
        """Run a pipeline job; write ``job_result`` before the final ack."""
        self.assert_enabled("execute")
        if not data.pipeline.strip():
            raise salobj.ExpectedError("execute: pipeline must not be empty.")
        job_id = uuid.uuid4().hex
        request = JobRequest(
            job_id=job_id,
            run_id=str(data.private_seqNum),
            pipeline=data.pipeline,
            version=data.version,
            config=data.config,
            data_query=data.data_query,
            output_collection=f"u/ocps/{job_id}",
        )
        job = _Job(request=request, creation_tai=self.clock.tai())
        self.jobs[job_id] = job
        run: asyncio.Future[JobOutcome] | None = None
        try:
            timeout = self.ack_timeout
            estimate = getattr(self.executor, "estimate_wall_duration", None)
            if estimate is not None:
                timeout = max(timeout, estimate(request) + 10.0)
            self.log.info(f"Job {job_id}: {request.pipeline} on {request.data_query!r}")
            run = asyncio.ensure_future(self.executor.run(request))
            if self.in_progress_ack_delay > 0:
                await asyncio.wait([run], timeout=self.in_progress_ack_delay)
            await self.cmd_execute.ack_in_progress(
                data, timeout=timeout, result=json.dumps({"job_id": job_id})
            )
            ack_time = asyncio.get_running_loop().time()
            try:
                outcome = await run
            except Exception as e:
                self.log.exception(f"Job {job_id}: executor failed.")
                now = self.clock.tai()
                outcome = JobOutcome(
                    exit_code=1, phase="error", message=f"Executor failed: {e!r}", start_tai=now, end_tai=now
                )
            if job.aborted and outcome.exit_code != 255:
                outcome = dataclasses.replace(outcome, exit_code=255, phase="aborted", message="Aborted.")
            await self.evt_job_result.set_write(
                job_id=job_id,
                exit_code=outcome.exit_code,
                result=json.dumps(outcome.to_uws_json(request, job.creation_tai)),
                force_output=True,
            )
            job.reported.set()
            self.log.info(f"Job {job_id} ended: exit_code={outcome.exit_code} {outcome.message}")
            remaining_gap = ACK_GAP - (asyncio.get_running_loop().time() - ack_time)
            if remaining_gap > 0:
                await asyncio.sleep(remaining_gap)
        finally:
            self.jobs.pop(job_id, None)
            if run is not None and not run.done():
                run.cancel()

    async def do_abort_job(self, data: salobj.BaseMsgType) -> None:
        """Abort a running job; its ``job_result`` (exit code 255) is written before this ack."""
        self.assert_enabled("abort_job")
        job = self.jobs.get(data.job_id)
        if job is None:
            raise salobj.ExpectedError(
                f"abort_job: unknown job id {data.job_id!r}; running jobs: {self.running_job_ids}."
            )
        if job.reported.is_set():
            raise salobj.ExpectedError(f"abort_job: job {data.job_id} has already finished.")
        job.aborted = True
        await self.executor.abort(data.job_id)
        await job.reported.wait()

    async def close_tasks(self) -> None:
        for job_id in list(self.jobs):
            try:
                await self.executor.abort(job_id)
            except Exception:
                self.log.exception(f"Could not abort job {job_id} while closing.")
        await super().close_tasks()
