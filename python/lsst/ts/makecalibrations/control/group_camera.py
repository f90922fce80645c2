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
"""A camera client made of a camera CSC and the CSCs that go with it (header service, OODS, ...).

`GroupCamera` is the shared body of `ComCam`, `LSSTCam` (through `FilterChangerCamera`) and `LATISS`:
the components, the instrument setup attributes and the topics taking images reads are data (class
attributes); the constructor, the intended usages and the camera remote are written once here.

May import: `sal` (for ``salobj``), the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["GroupCamera", "TakeImageUsages"]

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from .base_camera import BaseCamera
from .remote_group import Usages, UsagesResources, component_attr_name


class TakeImageUsages(Usages):
    """Intended usages of a camera client (bit flags, combinable with those of `Usages`)."""

    TakeImage = 1 << 3
    TakeImageFull = 1 << 4


#: Events of the camera CSC that taking images reads (no heartbeat: nothing reads it, and an unread
#: topic fills its queue), plus the header service's and the OODS's.
IMAGE_EVENTS = (
    "summaryState",
    "startIntegration",
    "startReadout",
    "endReadout",
    "endOfImageTelemetry",
    "ccsCommandState",
    "imageInOODS",
    "largeFileObjectAvailable",
)


class GroupCamera(BaseCamera):
    """A camera CSC and its companion CSCs (`component_names`, the camera first).

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

    component_names: ClassVar[tuple[str, ...]] = ("CCCamera", "CCHeaderService", "CCOODS")
    """The camera CSC first, then its companions."""

    setup_attributes: ClassVar[tuple[str, ...]] = ("filter",)
    """Keywords `setup_instrument` accepts."""

    setup_events: ClassVar[tuple[str, ...]] = ()
    """Events of the components the instrument setup reads (added to `IMAGE_EVENTS`)."""

    def __init__(
        self,
        domain: Any = None,
        log: logging.Logger | None = None,
        intended_usage: int | None = None,
        tcs_ready_to_take_data: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(
            components=list(self.component_names),
            instrument_setup_attributes=list(self.setup_attributes),
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
        attrs = tuple(component_attr_name(name) for name in self.component_names)
        usages[TakeImageUsages.TakeImage] = UsagesResources(
            components_attr=attrs, readonly=False, include=IMAGE_EVENTS + self.setup_events
        )
        usages[TakeImageUsages.TakeImageFull] = UsagesResources(
            components_attr=attrs, readonly=False, include=None
        )
        return usages

    @property
    def camera(self) -> Any:
        """The camera remote."""
        return getattr(self.rem, component_attr_name(self.component_names[0]))
