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

"""A main-telescope camera client with a filter changer in the camera CSC: the shared body of `ComCam`
and `LSSTCam` (compatible with ts_observatory_control's ``ComCam`` / ``LSSTCam``).

`FilterChangerCamera` is a `GroupCamera` (camera, header service, OODS) that changes filters through
the camera's ``setFilter``. Subclasses differ only in data: the component names and detector names.

May import: `sal` (for ``salobj``), the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["FilterChangerCamera"]

from collections.abc import Iterable
from typing import Any, ClassVar

from .base_camera import BaseCamera
from .group_camera import GroupCamera


class FilterChangerCamera(GroupCamera):
    """A camera, its header service and its OODS; filters changed by the camera's ``setFilter``
    (see `GroupCamera` for the parameters)."""

    setup_events = ("availableFilters", "startSetFilter", "endSetFilter")

    detector_names: ClassVar[tuple[str, ...]] = ()
    """Detector names indexed by detector number (for integer sensor selections)."""

    @property
    def filter_change_timeout(self) -> float:
        """Timeout of a filter change (s): the setup timeout."""
        return self.setup_timeout

    @staticmethod
    def get_image_types() -> list[str]:
        return BaseCamera.get_image_types() + ["SPOT"]

    async def setup_instrument(self, **kwargs: Any) -> None:
        """Put the filter ``filter`` in the beam if it is given and not already there."""
        self.check_kwargs(**kwargs)
        filter_name = kwargs.get("filter")
        if filter_name is None:
            return
        if str(filter_name) != await self.get_current_filter():
            await self.setup_filter(str(filter_name))

    async def get_available_instrument_setup(self) -> list[list[str]]:
        """Return ``[available filters]``."""
        return [await self.get_available_filters()]

    async def get_current_filter(self) -> str:
        """Return the filter in the beam (from the ``endSetFilter`` event).

        Raises
        ------
        RuntimeError
            If the camera published no ``endSetFilter`` within ``fast_timeout``.
        """
        try:
            data = await self.camera.evt_endSetFilter.aget(timeout=self.fast_timeout)
        except TimeoutError:
            raise RuntimeError(
                "Could not determine current filter: no endSetFilter event from "
                f"{self.component_names[0]} within {self.fast_timeout}s."
            ) from None
        return data.filterName

    async def setup_filter(self, filter: str) -> None:
        """Change the filter and wait for ``endSetFilter``.

        Parameters
        ----------
        filter : `str`
            Filter name, e.g. ``"r_03"``.
        """
        async with self.cmd_lock:
            self.camera.evt_endSetFilter.flush()
            await self.camera.cmd_setFilter.set_start(name=filter, timeout=self.filter_change_timeout)
            data = await self.camera.evt_endSetFilter.next(flush=False, timeout=self.filter_change_timeout)
            self.log.info(f"Filter {data.filterName} in position.")

    async def get_available_filters(self) -> list[str]:
        """Return the names of the filters in the filter changer."""
        data = await self.camera.evt_availableFilters.aget(timeout=self.fast_timeout)
        return data.filterNames.split(":")

    def parse_sensors(self, sensors: str | Iterable[int | str] | None) -> str:
        """Return the ``sensors`` field of ``takeImages``.

        Parameters
        ----------
        sensors : `str`, iterable of `int` or `str`, or `None`
            `None` for all sensors (``""``); a string is passed through; an iterable of detector
            numbers or names is joined with ":" (numbers become names, e.g. ComCam ``R22_Sxy``).
        """
        if sensors is None:
            return ""
        if isinstance(sensors, str):
            return sensors
        names = []
        for sensor in sensors:
            if isinstance(sensor, int):
                if not 0 <= sensor < len(self.detector_names):
                    raise RuntimeError(
                        f"Invalid {type(self).__name__} detector {sensor}; must be in "
                        f"0..{len(self.detector_names) - 1}."
                    )
                names.append(self.detector_names[sensor])
            else:
                names.append(str(sensor))
        return ":".join(names)
