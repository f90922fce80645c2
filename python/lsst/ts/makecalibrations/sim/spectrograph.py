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

"""Simulated ATSpectrograph CSC: the LATISS filter wheel and disperser (grating) wheel.

``changeFilter`` / ``changeDisperser`` (by name, or by slot when the name is empty) move a wheel on the
simulated clock and write ``reportedFilterPosition`` / ``reportedDisperserPosition``. The simulated
ATCamera asks `SpectrographCsc.physical_filter` for the ``filter~grating`` of each image.

May import: `sal`, the standard library, `calib.instrument` and the sibling modules `clock` and `csc`.
"""

from __future__ import annotations

__all__ = ["SpectrographCsc"]

from collections.abc import Sequence

from ..calib.instrument import LATISS
from ..sal import salobj
from .clock import SimClock
from .csc import SimulatedCsc


class SpectrographCsc(SimulatedCsc):
    """The simulated ATSpectrograph.

    Parameters
    ----------
    clock : `SimClock`
        Simulated clock of the wheel moves.
    filters, gratings : sequence of `str`
        Wheel contents in slot order; the first of each is in the beam at startup.
    move_time : `float`, optional
        Simulated seconds of one wheel move.
    initial_state : ``salobj.State``, optional
        State to start in.
    """

    def __init__(
        self,
        clock: SimClock,
        filters: Sequence[str],
        gratings: Sequence[str],
        move_time: float = 3.0,
        initial_state: salobj.State = salobj.State.ENABLED,
    ) -> None:
        if not filters or not gratings:
            raise ValueError("The spectrograph needs at least one filter and one grating.")
        self.clock = clock
        self.filters = tuple(filters)
        self.gratings = tuple(gratings)
        self.move_time = float(move_time)
        self.filter = self.filters[0]
        self.grating = self.gratings[0]
        super().__init__("ATSpectrograph", initial_state=initial_state)

    def physical_filter(self) -> str:
        """The butler physical filter now in the beam: ``filter~grating``."""
        return LATISS.physical_filter(self.filter, self.grating)

    async def start(self) -> None:
        await super().start()
        await self._report_filter()
        await self._report_grating()

    async def do_changeFilter(self, data: salobj.BaseMsgType) -> None:
        """Put filter ``data.name`` (or slot ``data.filter`` when the name is empty) in the beam."""
        self.assert_enabled("changeFilter")
        self.filter = _pick(self.filters, data.name, data.filter, "filter")
        await self.clock.sleep(self.move_time)
        await self._report_filter()

    async def do_changeDisperser(self, data: salobj.BaseMsgType) -> None:
        """Put grating ``data.name`` (or slot ``data.disperser`` when the name is empty) in the beam."""
        self.assert_enabled("changeDisperser")
        self.grating = _pick(self.gratings, data.name, data.disperser, "grating")
        await self.clock.sleep(self.move_time)
        await self._report_grating()

    async def _report_filter(self) -> None:
        await self.evt_reportedFilterPosition.set_write(
            slot=self.filters.index(self.filter), name=self.filter, band=self.filter, force_output=True
        )

    async def _report_grating(self) -> None:
        await self.evt_reportedDisperserPosition.set_write(
            slot=self.gratings.index(self.grating), name=self.grating, band="", force_output=True
        )


def _pick(names: tuple[str, ...], name: str, slot: int, what: str) -> str:
    """The wheel entry named ``name`` (or at ``slot`` if the name is empty)."""
    if name:
        if name not in names:
            raise salobj.ExpectedError(f"Unknown {what} {name!r}; the wheel holds {list(names)}.")
        return name
    if not 0 <= slot < len(names):
        raise salobj.ExpectedError(f"No {what} in slot {slot}; slots 0..{len(names) - 1}.")
    return names[slot]
