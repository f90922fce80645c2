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

"""`MakeLSSTCamCalibrations`: the LSSTCam calibration script loaded from the MTQueue as
``maintel/make_lsstcam_calibrations.py``.

Only camera facts differ from `BaseMakeCalibrations`: instrument LSSTCam (`calib.instrument.LSSTCAM`:
189 science detectors, OCPS:3, the ``LSSTCam`` pipeline directories, defaults ``LSSTCam/calib``,
``LSSTCam/calib/daily``, ``/repo/LSSTCam``, the ``ignore`` key), the ``LSSTCam`` camera client, and one
hook: before the first flat the dome must allow flats, as the real script checks: MTDomeTrajectory
ENABLED and MTDome DISABLED or ENABLED, each unless named in ``ignore``.

May import: `sal`, `calib` and the sibling modules.
"""

from __future__ import annotations

__all__ = ["DOME_FLAT_STATES", "MakeLSSTCamCalibrations"]

from typing import Any

from ..calib.instrument import LSSTCAM
from ..control.clients import LSSTCam, LSSTCamUsages, RemoteGroup, Usages
from ..sal import salobj
from .base_make_calibrations import BaseMakeCalibrations

DOME_FLAT_STATES: dict[str, tuple[salobj.State, ...]] = {
    "MTDomeTrajectory": (salobj.State.ENABLED,),
    "MTDome": (salobj.State.DISABLED, salobj.State.ENABLED),
}
"""States in which each dome component allows flats (the real script's feasibility check)."""


class MakeLSSTCamCalibrations(BaseMakeCalibrations):
    """Take LSSTCam biases, darks and flats and have OCPS:3 make, verify and certify calibrations."""

    instrument = LSSTCAM
    camera_client = LSSTCam
    camera_usage = LSSTCamUsages.TakeImage
    flats_help = (
        "Before the flats it checks that MTDomeTrajectory is ENABLED and MTDome DISABLED or ENABLED "
        "(components in ignore are not checked)."
    )
    _dome: Any = None
    """State monitor of the dome components (made by `start_remotes`)."""

    def _checked_dome_components(self) -> list[str]:
        ignored = set(self.config.extras.get("ignore", ()))
        return [name for name in DOME_FLAT_STATES if name not in ignored]

    async def start_remotes(self) -> None:
        """The camera and OCPS clients, and a state monitor of the dome components."""
        await super().start_remotes()
        if self._dome is None:
            self._dome = RemoteGroup(
                components=list(DOME_FLAT_STATES),
                domain=self.domain,
                log=self.log,
                intended_usage=Usages.MonitorState,
            )
            if self._dome.start_task is not None:
                await self._dome.start_task

    async def flat_feasibility_problem(self) -> str | None:
        """The dome components not in a state that allows flats (each named with its state)."""
        problems = []
        for name in self._checked_dome_components():
            allowed = DOME_FLAT_STATES[name]
            try:
                state = await self._dome.get_state(name.lower())
            except (TimeoutError, RuntimeError) as e:
                problems.append(f"{name} state unknown ({e}); needs {_names(allowed)}")
                continue
            if state not in allowed:
                problems.append(f"{name} is {salobj.State(state).name}; needs {_names(allowed)}")
        if not problems:
            return None
        return "dome not ready for flats: " + "; ".join(problems) + " (add to ignore to skip)"


def _names(states: tuple[salobj.State, ...]) -> str:
    return " or ".join(state.name for state in states)
