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

"""Fault injection for the simulated observatory.

A `FaultPlan` says which faults the simulated CSCs should produce; `SimulatedObservatory` hands it to
the camera, the OODS and the OCPS. `FailingExecutor` wraps an OCPS job executor so that jobs whose
pipeline matches a pattern fail.

May import: `sal`, the standard library and the sibling modules `clock` and `ocps_jobs`.
"""

from __future__ import annotations

__all__ = ["FaultPlan", "FailingExecutor"]

import dataclasses
import re

from ..sal import salobj
from .clock import SimClock
from .ocps_jobs import JobExecutor, JobOutcome, JobRequest


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    """Faults to inject. The default plan injects none.

    Attributes
    ----------
    camera_fault_after : `int` or `None`
        The camera goes to FAULT instead of taking image number ``camera_fault_after + 1`` of the run
        (images counted from 1): that ``takeImages`` fails and ``errorCode`` is written. Fires once.
    camera_error_code : `int`
        ``errorCode`` written with the camera fault.
    camera_error_report : `str`
        ``errorReport`` written with the camera fault.
    camera_hang_at_image : `int` or `None`
        Image number (from 1) at which ``takeImages`` hangs: the camera reports BUSY and
        ``startIntegration`` for it, then never reads it out, never acks, and takes no more images.
    missing_oods_images : `frozenset` [`int`]
        Image numbers (from 1 over the run) for which CCOODS never writes ``imageInOODS``.
    missing_oods_obs_ids : `frozenset` [`str`]
        Obs ids (``CC_O_...``) for which CCOODS never writes ``imageInOODS``.
    ocps_fail_pipeline : `str` or `None`
        Regular expression searched in the ``pipeline`` of each OCPS job; matching jobs fail with
        exit code 1 and phase ``error``.
    ocps_fail_message : `str`
        Message of the failed jobs.
    ocps_initial_state : ``salobj.State`` or `None`
        State OCPS:2 starts in (DISABLED or STANDBY) instead of ENABLED.
    ocps_ack_delay : `float`
        Wall seconds by which the OCPS delays the in-progress ack of ``execute`` (which carries the
        job id) while the job already runs, as a real Kafka broker may: a client learns the job id
        that much later. 0 (default) acks at once.
    """

    camera_fault_after: int | None = None
    camera_error_code: int = 1001
    camera_error_report: str = "Simulated CCCamera fault: lost communication with the REB power supply."
    camera_hang_at_image: int | None = None
    missing_oods_images: frozenset[int] = frozenset()
    missing_oods_obs_ids: frozenset[str] = frozenset()
    ocps_fail_pipeline: str | None = None
    ocps_fail_message: str = "Simulated pipetask failure."
    ocps_initial_state: salobj.State | None = None
    ocps_ack_delay: float = 0.0

    def __post_init__(self) -> None:
        for name in ("camera_fault_after", "camera_hang_at_image"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "camera_fault_after" else 1):
                raise ValueError(f"{name}={value} is out of range.")
        object.__setattr__(self, "missing_oods_images", frozenset(self.missing_oods_images))
        object.__setattr__(self, "missing_oods_obs_ids", frozenset(self.missing_oods_obs_ids))
        if self.ocps_fail_pipeline is not None:
            re.compile(self.ocps_fail_pipeline)
        if not 0 <= self.ocps_ack_delay < float("inf"):
            raise ValueError(f"ocps_ack_delay={self.ocps_ack_delay} must be a finite number >= 0.")
        if self.ocps_initial_state is not None:
            state = salobj.State(self.ocps_initial_state)
            if state not in (salobj.State.DISABLED, salobj.State.STANDBY, salobj.State.ENABLED):
                raise ValueError(f"ocps_initial_state={state!r} must be DISABLED, STANDBY or ENABLED.")
            object.__setattr__(self, "ocps_initial_state", state)

    def oods_drops(self, image_number: int, obs_id: str) -> bool:
        """Should CCOODS stay silent about this image?

        Parameters
        ----------
        image_number : `int`
            Number of the image in the run, from 1.
        obs_id : `str`
            Obs id of the image.
        """
        return image_number in self.missing_oods_images or obs_id in self.missing_oods_obs_ids

    def ocps_job_fails(self, pipeline: str) -> bool:
        """Should an OCPS job running ``pipeline`` fail?"""
        return (
            self.ocps_fail_pipeline is not None and re.search(self.ocps_fail_pipeline, pipeline) is not None
        )


class FailingExecutor:
    """A `JobExecutor` that fails the jobs a `FaultPlan` selects and runs the others normally.

    Parameters
    ----------
    inner : `JobExecutor`
        Executor for the jobs that do not fail.
    plan : `FaultPlan`
        Selects the failing jobs (``ocps_fail_pipeline``) and their message.
    clock : `SimClock`
        Gives the start and end times of the failed jobs.
    """

    def __init__(self, inner: JobExecutor, plan: FaultPlan, clock: SimClock) -> None:
        self.inner = inner
        self.plan = plan
        self.clock = clock

    async def run(self, request: JobRequest) -> JobOutcome:
        if not self.plan.ocps_job_fails(request.pipeline):
            return await self.inner.run(request)
        start_tai = self.clock.tai()
        return JobOutcome(
            exit_code=1,
            phase="error",
            message=f"{self.plan.ocps_fail_message} (pipeline {request.pipeline})",
            start_tai=start_tai,
            end_tai=self.clock.tai(),
        )

    async def abort(self, job_id: str) -> None:
        await self.inner.abort(job_id)
