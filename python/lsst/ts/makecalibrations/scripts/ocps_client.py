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

"""Run OCPS pipeline jobs without losing a result: one dispatcher for every ``job_result``.

Reading ``evt_job_result`` with ``next()`` from several tasks at once, or flushing its queue, lets
one task pop (or flush) another's result. So a single callback on ``evt_job_result`` stores every result by
job id, and each job waits on its own future:
a result that arrives before anyone waits is kept, and nothing is ever flushed.

`OcpsJobRunner.run` sends ``execute`` with ``wait_done=False``, takes the job id from the
in-progress ack, waits for the final ack with ``next_ackcmd`` and then for the matching
``job_result``, all within ``pipeline_job_timeout``; a job that takes longer is aborted. It fills a
`calib.report.JobRecord` as it goes and raises `JobFailedError` for anything but exit code 0.

A stop (cancellation) while ``execute`` is in flight does not lose the job: the job id is known only
from the in-progress ack, which on a real broker can arrive after the stop, so the runner waits for
that ack (at most `OcpsJobRunner.stop_ack_timeout` seconds) and then aborts the job by id. If no ack
comes in that time the record says so (status ``unacknowledged``) rather than naming no job.

May import: `sal`, `calib` and the standard library.
"""

from __future__ import annotations

__all__ = ["JobFailedError", "JobResultDispatcher", "OcpsJobRunner"]

import asyncio
import json
import logging
from typing import Any

from ..calib.jobs import JobSpec, ocps_output_collection
from ..calib.report import JobRecord
from ..calib.statuses import JobStatus
from ..sal import current_tai, salobj


class JobFailedError(Exception):
    """An OCPS job did not succeed; ``record`` says how (status, exit code, message)."""

    def __init__(self, record: JobRecord, reason: str) -> None:
        self.record = record
        self.reason = reason
        super().__init__(reason)


def _result_job_id(data: Any) -> str:
    """The job id of a ``job_result`` message: ``jobId`` in its ``result`` JSON, else ``job_id``."""
    try:
        response = json.loads(data.result)
    except (TypeError, ValueError):
        response = None
    if isinstance(response, dict) and response.get("jobId"):
        return str(response["jobId"])
    return str(getattr(data, "job_id", "") or "")


class JobResultDispatcher:
    """Keeps every ``job_result`` of one OCPS, by job id, for whoever waits for it.

    Parameters
    ----------
    evt_job_result : ``RemoteEvent``
        The OCPS remote's ``evt_job_result``; its callback is taken over until `close`.
    log : `logging.Logger`
        Logger.
    """

    def __init__(self, evt_job_result: Any, log: logging.Logger) -> None:
        self.evt_job_result = evt_job_result
        self.log = log
        self._futures: dict[str, asyncio.Future] = {}
        evt_job_result.callback = self._callback

    def _future(self, job_id: str) -> asyncio.Future:
        future = self._futures.get(job_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._futures[job_id] = future
        return future

    async def _callback(self, data: Any) -> None:
        job_id = _result_job_id(data)
        if not job_id:
            self.log.warning(f"Ignoring a job_result without a job id: {data.result!r}")
            return
        future = self._future(job_id)
        if not future.done():
            future.set_result(data)

    def has_result(self, job_id: str) -> bool:
        """True if the result of ``job_id`` has arrived."""
        future = self._futures.get(job_id)
        return future is not None and future.done()

    async def wait(self, job_id: str) -> Any:
        """Wait for (or return at once) the ``job_result`` of ``job_id``."""
        return await asyncio.shield(self._future(job_id))

    def close(self) -> None:
        """Release the callback."""
        if self.evt_job_result.callback == self._callback:
            self.evt_job_result.callback = None


class OcpsJobRunner:
    """Sends jobs to one OCPS and tracks the running ones, so they can be aborted.

    Parameters
    ----------
    ocps : ``Remote``
        Remote of the OCPS (e.g. ``OCPS:2``).
    log : `logging.Logger`
        Logger.
    """

    stop_ack_timeout: float = 10.0
    """Seconds a stop waits for the in-progress ack of an ``execute`` in flight, to abort its job."""

    def __init__(self, ocps: Any, log: logging.Logger) -> None:
        self.ocps = ocps
        self.log = log
        self.dispatcher = JobResultDispatcher(ocps.evt_job_result, log)
        self.running: dict[str, JobRecord] = {}

    async def run(self, spec: JobSpec, record: JobRecord, timeout: float) -> JobRecord:
        """Run one job to completion.

        Parameters
        ----------
        spec : `calib.jobs.JobSpec`
            What to run.
        record : `calib.report.JobRecord`
            Filled in as the job progresses (job id, status, exit code, times).
        timeout : `float`
            Seconds allowed from ``execute`` to ``job_result`` (``pipeline_job_timeout``).

        Returns
        -------
        record : `calib.report.JobRecord`
            The record, status ``succeeded``.

        Raises
        ------
        JobFailedError
            If the command was refused, the job failed or was aborted, or it timed out (it is then
            aborted).
        """
        record.start_tai = current_tai()
        execute = asyncio.ensure_future(
            self.ocps.cmd_execute.set_start(wait_done=False, timeout=timeout, **spec.execute_fields())
        )
        try:
            ack = await asyncio.shield(execute)
            job_id = str(json.loads(ack.result)["job_id"])
        except asyncio.CancelledError:
            await self._abort_in_flight(spec, record, execute)
            raise
        except salobj.AckError as e:
            record.status = JobStatus.REJECTED
            record.end_tai = current_tai()
            record.message = f"execute refused: {e.ackcmd.result}"
            raise JobFailedError(record, f"the OCPS refused the {spec.name} job: {e.ackcmd.result}") from e
        except (ValueError, KeyError, TypeError) as e:
            record.status = JobStatus.REJECTED
            record.end_tai = current_tai()
            record.message = f"no job id in the execute ack: {ack.result!r}"
            raise JobFailedError(
                record, f"the OCPS gave no job id for the {spec.name} job ({ack.result!r})"
            ) from e
        record.job_id = job_id
        record.output_collection = ocps_output_collection(job_id)
        self.running[job_id] = record
        self.log.info(
            f"{spec.name} job {job_id} started: {spec.pipeline} on {len(spec.exposure_ids)} exposures"
        )
        try:
            result = await asyncio.wait_for(self._wait_result(ack, job_id), timeout=timeout)
        except TimeoutError:
            record.status = JobStatus.TIMEOUT
            record.end_tai = current_tai()
            record.message = f"no job_result within pipeline_job_timeout={timeout:g} s; job aborted"
            await self.abort(job_id)
            raise JobFailedError(record, f"{spec.name} job timed out after {timeout:g} s (aborted)") from None
        self.running.pop(job_id, None)
        record.end_tai = current_tai()
        record.exit_code = int(result.exit_code)
        response: dict[str, Any] = {}
        try:
            loaded = json.loads(result.result)
            if isinstance(loaded, dict):
                response = loaded
        except (TypeError, ValueError):
            pass
        record.phase = str(response.get("phase", ""))
        results = response.get("results")
        record.log_uri = next(
            (
                str(item.get("uri", ""))
                for item in (results if isinstance(results, list) else [])
                if isinstance(item, dict) and item.get("id") == "log"
            ),
            "",
        )
        if record.exit_code == 0:
            record.status = JobStatus.SUCCEEDED
            self.log.info(f"{spec.name} job {job_id} succeeded in {record.duration:.1f} s")
            return record
        record.status = JobStatus.ABORTED if record.exit_code == 255 else JobStatus.FAILED
        record.message = str(response.get("message", "")) or f"phase {record.phase or 'unknown'}"
        raise JobFailedError(
            record,
            f"{spec.name} job {record.status} with exit code {record.exit_code}: {record.message}",
        )

    async def _abort_in_flight(self, spec: JobSpec, record: JobRecord, execute: asyncio.Future) -> None:
        """On a stop with ``execute`` in flight: wait (bounded) for its job id, then abort the job."""
        self.log.warning(
            f"Stop while the {spec.name} job's execute is in flight; waiting up to "
            f"{self.stop_ack_timeout:g} s for its job id to abort it"
        )
        try:
            ack = await asyncio.wait_for(asyncio.shield(execute), timeout=self.stop_ack_timeout)
            job_id = str(json.loads(ack.result)["job_id"])
        except salobj.AckError as e:
            record.status = JobStatus.REJECTED
            record.end_tai = current_tai()
            record.message = f"execute refused: {e.ackcmd.result}"
            return
        except (TimeoutError, ValueError, KeyError, TypeError):
            execute.cancel()
            record.status = JobStatus.UNACKNOWLEDGED
            record.end_tai = current_tai()
            record.message = (
                f"stopped while execute was in flight; no in-progress ack (job id) within "
                f"{self.stop_ack_timeout:g} s, so a job the OCPS may have started could not be aborted"
            )
            self.log.error(f"{spec.name} job: {record.message}")
            return
        record.job_id = job_id
        record.output_collection = ocps_output_collection(job_id)
        self.running[job_id] = record
        await self.abort(job_id)

    async def _wait_result(self, ack: Any, job_id: str) -> Any:
        try:
            await self.ocps.cmd_execute.next_ackcmd(ack, wait_done=True)
        except RuntimeError:
            # The final ack was already received ("unknown or finished"): the result is what counts.
            pass
        except salobj.AckError as e:
            if not self.dispatcher.has_result(job_id):
                self.log.warning(
                    f"Job {job_id}: execute ended with {e.ackcmd.result!r}; waiting for its job_result"
                )
        return await self.dispatcher.wait(job_id)

    async def abort(self, job_id: str) -> None:
        """Ask the OCPS to abort a running job (errors are logged, not raised)."""
        record = self.running.pop(job_id, None)
        try:
            await self.ocps.cmd_abort_job.set_start(job_id=job_id, timeout=30)
            self.log.warning(f"Aborted OCPS job {job_id}" + (f" ({record.name})" if record else ""))
        except (salobj.AckError, RuntimeError) as e:
            self.log.warning(f"Could not abort OCPS job {job_id}: {e}")
        if record is not None and record.status == JobStatus.RUNNING:
            record.status = JobStatus.ABORTED
            record.end_tai = current_tai()
            record.message = "aborted by the script"

    async def abort_all(self) -> None:
        """Abort every job still running."""
        for job_id in list(self.running):
            await self.abort(job_id)

    def close(self) -> None:
        """Release the ``job_result`` callback."""
        self.dispatcher.close()
