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

"""What the orchestrator works with, typed: the clients it needs and the run `configure` prepared.

`CameraClient`, `StateMonitor` and `OcpsRemote` are the parts of the camera client (``BaseCamera``),
of the OCPS ``RemoteGroup`` and of the OCPS ``Remote`` that the script uses; the real
ts_observatory_control and salobj classes and the embedded ones (`control`, `runtime`) all satisfy
them. `RunContext` is what a successful ``configure`` leaves: the configuration, the plan, the job
builder and the butler gateway, never `None` once configured.

May import: the standard library and `calib`; the gateway from this room.
"""

from __future__ import annotations

__all__ = ["CameraClient", "StateMonitor", "OcpsRemote", "RunContext"]

import dataclasses
from typing import Any, Protocol

from ..calib.config import CalibConfig
from ..calib.jobs import JobBuilder
from ..calib.plan import CalibrationPlan
from .butler_gateway import ButlerGateway


class StateMonitor(Protocol):
    """What the script uses of a ``RemoteGroup``: wait for its remotes, check they are ENABLED."""

    start_task: Any
    rem: Any

    async def assert_all_enabled(self, message: str = "") -> None:
        """Raise `AssertionError` unless every component is ENABLED."""


class CameraClient(StateMonitor, Protocol):
    """What the script uses of a camera client (``BaseCamera``: ``ComCam``...)."""

    read_out_time: float

    @property
    def components_attr(self) -> list[str]:
        """``rem`` attribute names of its components (``cccamera``, ..., ``ccoods``)."""

    @property
    def camera(self) -> Any:
        """The camera CSC's remote (``rem.cccamera``, ``rem.mtcamera``, ``rem.atcamera``)."""

    async def setup_instrument(self, **kwargs: Any) -> None:
        """Put the instrument in the configuration given (``filter=``; LATISS also ``grating=``)."""

    async def get_current_filter(self) -> str:
        """The filter in the beam."""

    async def take_imgtype(self, imgtype: str, exptime: float, n: int, **kwargs: Any) -> list[int]:
        """Take ``n`` images of type ``imgtype``; return their exposure ids.

        The script passes ``group_id``, ``reason``, ``program``, ``note`` and ``checkpoint``, keywords of
        ts_observatory_control's ``BaseCamera.take_imgtype`` (``tests/sal/test_conformance.py``
        checks the calls against its recorded signature).
        """


class OcpsRemote(Protocol):
    """What the script uses of the OCPS ``Remote``: ``execute``, ``abort_job`` and ``job_result``."""

    start_task: Any
    cmd_execute: Any
    cmd_abort_job: Any
    evt_job_result: Any


@dataclasses.dataclass(frozen=True)
class RunContext:
    """The run a successful ``configure`` prepared (`calib.prepare.prepare_run` and the checks).

    Attributes
    ----------
    config : `calib.config.CalibConfig`
        The configuration, resumed and with its templates filled in.
    plan : `calib.plan.CalibrationPlan`
        What the run takes and processes.
    job_builder : `calib.jobs.JobBuilder`
        Builds the OCPS jobs of the configuration.
    butler : `ButlerGateway`
        The repository of the run.
    already_certified : `frozenset` [`str`]
        Products a resumed run already certified.
    """

    config: CalibConfig
    plan: CalibrationPlan
    job_builder: JobBuilder
    butler: ButlerGateway
    already_certified: frozenset[str] = frozenset()
