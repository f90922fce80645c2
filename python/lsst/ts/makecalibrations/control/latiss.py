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

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .base_camera import BaseCamera
from .remote_group import Usages, UsagesResources


class LATISSUsages(Usages):
    """Intended usages of `LATISS` (bit flags, combinable with those of `Usages`)."""

    TakeImage = 1 << 3
    Setup = 1 << 4
    TakeImageFull = 1 << 5


LATISS_DETECTOR_NAMES = ("RXX_S00",)
"""The one LATISS detector."""


class LATISS(BaseCamera):
    """LATISS: ATCamera, ATSpectrograph, ATHeaderService and ATOODS.

    Parameters
    ----------
    domain : ``salobj.Domain``, optional
        Domain for the remotes; a new one (closed by `close`) if `None`.
    log : `logging.Logger`, optional
        Parent logger.
    intended_usage : `int`, optional
        `LATISSUsages` bit mask; `None` subscribes to every topic.
    tcs_ready_to_take_data : coroutine function, optional
        Awaited before on-sky image types.
    """

    def __init__(
        self,
        domain: Any = None,
        log: logging.Logger | None = None,
        intended_usage: int | None = None,
        tcs_ready_to_take_data: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(
            components=["ATCamera", "ATSpectrograph", "ATHeaderService", "ATOODS"],
            instrument_setup_attributes=["filter", "grating"],
            domain=domain,
            log=log,
            intended_usage=intended_usage,
            tcs_ready_to_take_data=tcs_ready_to_take_data,
        )
        self.read_out_time = 2.0
        self.shutter_time = 1.0
        self.setup_timeout = 60.0

    @property
    def usages(self) -> dict[int, UsagesResources]:
        usages = dict(super().usages)
        attrs = ("atcamera", "atspectrograph", "atheaderservice", "atoods")
        usages[LATISSUsages.TakeImage] = UsagesResources(
            components_attr=attrs,
            readonly=False,
            include=(
                "summaryState",
                "startIntegration",
                "startReadout",
                "endReadout",
                "endOfImageTelemetry",
                "ccsCommandState",
                "reportedFilterPosition",
                "reportedDisperserPosition",
                "imageInOODS",
                "largeFileObjectAvailable",
            ),
        )
        usages[LATISSUsages.TakeImageFull] = UsagesResources(
            components_attr=attrs, readonly=False, include=None
        )
        return usages

    @property
    def camera(self) -> Any:
        """The ATCamera remote."""
        return self.rem.atcamera

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
