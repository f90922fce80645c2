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

`FilterChangerCamera` groups a camera, its header service and its OODS (class attribute
`FilterChangerCamera.component_names`), takes images through `BaseCamera` and changes filters through
the camera's ``setFilter``. Subclasses differ only in data: the component names and detector names.

May import: `sal` (for ``salobj``), the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["FilterChangerCamera", "TakeImageUsages"]

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from .base_camera import BaseCamera
from .remote_group import Usages, UsagesResources, component_attr_name


class TakeImageUsages(Usages):
    """Intended usages of a camera client (bit flags, combinable with those of `Usages`)."""

    TakeImage = 1 << 3
    TakeImageFull = 1 << 4


class FilterChangerCamera(BaseCamera):
    """A camera, its header service and its OODS; filters changed by the camera's ``setFilter``.

    Parameters
    ----------
    domain : ``salobj.Domain``, optional
        Domain for the remotes; a new one (closed by `close`) if `None`.
    log : `logging.Logger`, optional
        Parent logger.
    intended_usage : `int`, optional
        `TakeImageUsages` bit mask; `None` subscribes to every topic.
    tcs_ready_to_take_data : coroutine function, optional
        Awaited before on-sky image types.
    """

    component_names: ClassVar[tuple[str, str, str]] = ("CCCamera", "CCHeaderService", "CCOODS")
    """Camera, header service and OODS components."""

    detector_names: ClassVar[tuple[str, ...]] = ()
    """Detector names indexed by detector number (for integer sensor selections)."""

    def __init__(
        self,
        domain: Any = None,
        log: logging.Logger | None = None,
        intended_usage: int | None = None,
        tcs_ready_to_take_data: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(
            components=list(self.component_names),
            instrument_setup_attributes=["filter"],
            domain=domain,
            log=log,
            intended_usage=intended_usage,
            tcs_ready_to_take_data=tcs_ready_to_take_data,
        )
        self.read_out_time = 2.0
        self.shutter_time = 1.0
        self.filter_change_timeout = 60.0

    @property
    def usages(self) -> dict[int, UsagesResources]:
        usages = dict(super().usages)
        # No heartbeat: nothing in taking images reads it, and an unread topic fills its queue.
        camera_events = (
            "summaryState",
            "startIntegration",
            "startReadout",
            "endReadout",
            "endOfImageTelemetry",
            "ccsCommandState",
            "availableFilters",
            "startSetFilter",
            "endSetFilter",
        )
        attrs = tuple(component_attr_name(name) for name in self.component_names)
        usages[TakeImageUsages.TakeImage] = UsagesResources(
            components_attr=attrs,
            readonly=False,
            include=camera_events + ("imageInOODS", "largeFileObjectAvailable"),
        )
        usages[TakeImageUsages.TakeImageFull] = UsagesResources(
            components_attr=attrs, readonly=False, include=None
        )
        return usages

    @property
    def camera(self) -> Any:
        """The camera remote."""
        return getattr(self.rem, component_attr_name(self.component_names[0]))

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
