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

"""A CSC simulated only for its summary state: MTDome and MTDomeTrajectory of the Simonyi telescope.

The LSSTCam script checks their states before taking flats (MTDomeTrajectory ENABLED, MTDome DISABLED
or ENABLED); nothing else of them is simulated. Their interfaces are the generic CSC topics only.

May import: `sal`, the standard library and the sibling module `csc`.
"""

from __future__ import annotations

__all__ = ["StateOnlyCsc"]

from ..sal import salobj
from .csc import SimulatedCsc


class StateOnlyCsc(SimulatedCsc):
    """A CSC whose only behaviour is its summary state (the standard state commands).

    Parameters
    ----------
    name : `str`
        Component name (``MTDome``, ``MTDomeTrajectory``).
    initial_state : ``salobj.State``, optional
        State to start in; FAULT (which a CSC cannot start in) starts in STANDBY and goes to FAULT.
    """

    def __init__(self, name: str, initial_state: salobj.State = salobj.State.ENABLED) -> None:
        self._start_in_fault = initial_state == salobj.State.FAULT
        start_state = salobj.State.STANDBY if self._start_in_fault else initial_state
        super().__init__(name, initial_state=start_state)

    async def start(self) -> None:
        await super().start()
        if self._start_in_fault:
            await self.fault(code=1, report=f"Simulated {self.salinfo.name} fault.")
