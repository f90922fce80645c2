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

"""What every simulated CSC of this package has in common (`SimulatedCsc`).

May import: `sal` and the standard library.
"""

from __future__ import annotations

__all__ = ["SimulatedCsc"]

from .. import __version__
from ..sal import salobj


class SimulatedCsc(salobj.BaseCsc):
    """Base of the simulated CSCs: simulation mode 0 only, this package's version, ENABLED by default.

    A command the simulation does not implement has no ``do_`` method (``allow_missing_callbacks``):
    the simulated CSCs implement only what the scripts use.

    Parameters
    ----------
    name : `str`
        Component name (``CCCamera``, ``OCPS`` ...).
    index : `int` or `None`, optional
        SAL index of an indexed component.
    initial_state : ``salobj.State``, optional
        State to start in.
    """

    valid_simulation_modes = (0,)
    version = __version__

    def __init__(
        self, name: str, index: int | None = None, initial_state: salobj.State = salobj.State.ENABLED
    ) -> None:
        super().__init__(name, index=index, initial_state=initial_state, allow_missing_callbacks=True)
