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

"""Jobs of the simulated OCPS: what ``execute`` asks for, what comes back, and who runs it.

The simulated OCPS CSC turns each ``execute`` command into a `JobRequest` and hands it to a
`JobExecutor`. The default executor in `ocps` only waits a simulated duration; the butler-backed
executor in `pipetask_executor` runs the named pipeline for real, and tells the OCPS how many quanta
of each job are done (a `ProgressCallback`), which the OCPS publishes as a ``logMessage``
(`format_quanta_progress`): the OCPS interface has no progress event, and dm_OCPS publishes nothing
while a job runs.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = [
    "JobRequest",
    "JobOutcome",
    "JobExecutor",
    "QUANTA_PROGRESS",
    "PIPETASK_PROGRESS",
    "ProgressCallback",
    "format_quanta_progress",
]

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """One ``execute`` command of the OCPS.

    Attributes
    ----------
    job_id : `str`
        Identifier allocated by the OCPS (``uuid4().hex``).
    run_id : `str`
        ``str(private_seqNum)`` of the command, as the real OCPS sends to its UWS server.
    pipeline, version, config, data_query : `str`
        The ``execute`` fields, verbatim.
    output_collection : `str`
        RUN collection the job writes to, ``u/ocps/<job_id>``.
    """

    job_id: str
    run_id: str
    pipeline: str
    version: str
    config: str
    data_query: str
    output_collection: str


@dataclasses.dataclass
class JobOutcome:
    """How a job ended.

    Attributes
    ----------
    exit_code : `int`
        0 on success, 1 on failure, 255 when aborted.
    phase : `str`
        UWS phase: ``completed``, ``error`` or ``aborted``.
    message : `str`
        One-line explanation (empty on success).
    log_uri : `str`
        Where the job's log was written (``file://...``), or empty.
    start_tai, end_tai : `float`
        TAI unix seconds.
    outputs : `list` [`str`]
        Dataset type names the job produced.
    command : `str`
        How the job was run: ``pipetask run`` or ``bps submit`` (the UWS ``parameters.command``).
    """

    exit_code: int
    phase: str
    message: str = ""
    log_uri: str = ""
    start_tai: float = 0.0
    end_tai: float = 0.0
    outputs: list[str] = dataclasses.field(default_factory=list)
    command: str = "pipetask run"

    def to_uws_json(self, request: JobRequest, creation_tai: float) -> dict[str, Any]:
        """Return the UWS job description written as the ``result`` of ``job_result``."""
        results = [{"id": "log", "uri": self.log_uri}] if self.log_uri else []
        return {
            "jobId": request.job_id,
            "runId": request.run_id,
            "phase": self.phase,
            "creationTime": creation_tai,
            "startTime": self.start_tai,
            "endTime": self.end_tai,
            "executionDuration": max(0, round(self.end_tai - self.start_tai)),
            "parameters": {
                "command": self.command,
                "environment": {
                    "PIPELINE_URL": request.pipeline,
                    "RUN_OPTIONS": request.config,
                    "DATA_QUERY": request.data_query,
                    "OUTPUT_COLLECTION": request.output_collection,
                },
            },
            "results": results,
            "message": self.message,
            "outputs": list(self.outputs),
        }


class JobExecutor(Protocol):
    """Runs OCPS jobs."""

    async def run(self, request: JobRequest) -> JobOutcome:
        """Run the job to completion and return its outcome (never raise for a job failure)."""
        ...

    async def abort(self, job_id: str) -> None:
        """Stop a running job; its `run` then returns an outcome with exit code 255."""
        ...


QUANTA_PROGRESS = re.compile(
    r"^Job (?P<job_id>[0-9A-Za-z_-]+): (?P<done>\d+) of (?P<total>\d+) quanta done \((?P<failed>\d+) failed\)"
)
"""The simulated OCPS's ``logMessage`` telling a job's progress (`format_quanta_progress`)."""

PIPETASK_PROGRESS = re.compile(
    r"Executed (?P<done>\d+) quanta successfully, (?P<failed>\d+) failed and (?P<remain>\d+) remain "
    r"out of total (?P<total>\d+) quanta"
)
"""The line ``pipetask`` (``lsst.pipe.base.mp_graph_executor``) logs after every quantum."""

ProgressCallback = Callable[[str, int, int, int], None]
"""``callback(job_id, done, failed, total)``: quanta done (successfully), failed, and in all."""


def format_quanta_progress(job_id: str, done: int, failed: int, total: int) -> str:
    """The message the simulated OCPS logs for a job's progress (parsed by `QUANTA_PROGRESS`)."""
    return f"Job {job_id}: {done} of {total} quanta done ({failed} failed)"
