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

"""The LATISS client, compatible with ts_observatory_control's ``LATISS``.

`LATISS` groups the ATCamera, ATSpectrograph, ATHeaderService and ATOODS remotes, takes images through
`BaseCamera` (ATCamera) and sets the filter and the grating (disperser) through the spectrograph's
``changeFilter`` / ``changeDisperser``, waiting for ``reportedFilterPosition`` /
``reportedDisperserPosition`` as the real client does.

May import: `sal` (for ``salobj``), the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["LATISS", "LATISSUsages"]

from collections.abc import Iterable
from typing import Any

from .group_camera import GroupCamera, TakeImageUsages


class LATISSUsages(TakeImageUsages):
    """Intended usages of `LATISS` (bit flags, combinable with those of `Usages`)."""


LATISS_DETECTOR_NAMES = ("RXX_S00",)
"""The one LATISS detector."""


class LATISS(GroupCamera):
    """LATISS: ATCamera, ATSpectrograph, ATHeaderService and ATOODS (see `GroupCamera` for the
    parameters)."""

    component_names = ("ATCamera", "ATSpectrograph", "ATHeaderService", "ATOODS")
    setup_attributes = ("filter", "grating")
    setup_events = ("reportedFilterPosition", "reportedDisperserPosition")

    async def setup_instrument(self, **kwargs: Any) -> None:
        """Put ``filter`` and ``grating`` in the beam (each only if given)."""
        self.check_kwargs(**kwargs)
        await self.setup_atspec(filter=kwargs.get("filter"), grating=kwargs.get("grating"))

    async def setup_atspec(self, filter: str | int | None = None, grating: str | int | None = None) -> None:
        """Change the spectrograph's filter and grating, waiting for each to report its position.

        Parameters
        ----------
        filter, grating : `str` or `int`, optional
            Name (or slot number) of the filter and the grating; `None` leaves it unchanged.
        """
        spectrograph = self.rem.atspectrograph
        async with self.cmd_lock:
            if filter is not None:
                await self._move_wheel(
                    spectrograph.cmd_changeFilter, "filter", filter, spectrograph.evt_reportedFilterPosition
                )
            if grating is not None:
                await self._move_wheel(
                    spectrograph.cmd_changeDisperser,
                    "disperser",
                    grating,
                    spectrograph.evt_reportedDisperserPosition,
                )

    async def _move_wheel(self, command: Any, slot_field: str, value: str | int, reported: Any) -> None:
        """Send a wheel command by name (or slot number) and wait for the wheel to report its position."""
        reported.flush()
        by_slot = isinstance(value, int)
        await command.set_start(
            **{slot_field: int(value) if by_slot else 0},
            name="" if by_slot else str(value),
            timeout=self.setup_timeout,
        )
        data = await reported.next(flush=False, timeout=self.setup_timeout)
        self.log.info(f"{slot_field.capitalize()} {data.name} in position.")

    async def get_setup(self) -> tuple[str, str]:
        """Return ``(filter, grating)`` now in the beam."""
        spectrograph = self.rem.atspectrograph
        filter_data = await spectrograph.evt_reportedFilterPosition.aget(timeout=self.fast_timeout)
        grating_data = await spectrograph.evt_reportedDisperserPosition.aget(timeout=self.fast_timeout)
        return filter_data.name, grating_data.name

    async def get_available_instrument_setup(self) -> list[str]:
        """LATISS does not publish its filter/grating lists here; an empty list."""
        return []

    def parse_sensors(self, sensors: str | Iterable[int | str] | None) -> str:
        """Return the ``sensors`` field of ``takeImages`` (`None`: ``""``, the one detector)."""
        if sensors is None:
            return ""
        if isinstance(sensors, str):
            return sensors
        return ":".join(LATISS_DETECTOR_NAMES[s] if isinstance(s, int) else str(s) for s in sensors)
