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

"""Simulated header service CSC (CCHeaderService, MTHeaderService, ATHeaderService): announces a header
file for every image the camera reads out.

May import: `sal`, the standard library and the sibling modules `clock`, `csc` and `exposure`.
"""

from __future__ import annotations

__all__ = ["HeaderServiceCsc"]

from ..sal import salobj
from .csc import SimulatedCsc
from .exposure import ExposureInfo

HEADER_BYTES_PER_DETECTOR = 28_800
"""Nominal size of one detector's FITS header (10 blocks of 2880 bytes)."""


class HeaderServiceCsc(SimulatedCsc):
    """A header service: writes ``largeFileObjectAvailable`` once per image.

    Parameters
    ----------
    name : `str`, optional
        Component name (``CCHeaderService`` by default).
    initial_state : ``salobj.State``, optional
        State to start in.
    url_root : `str`, optional
        Root of the announced header URLs.
    """

    def __init__(
        self,
        initial_state: salobj.State = salobj.State.ENABLED,
        url_root: str = "file:///sim/headers",
        name: str = "CCHeaderService",
    ) -> None:
        super().__init__(name, initial_state=initial_state)
        self.url_root = url_root.rstrip("/")
        self.headers_written: list[str] = []

    async def handle_image(self, info: ExposureInfo) -> None:
        """Announce the header of one image (only when ENABLED, like the real service).

        Parameters
        ----------
        info : `ExposureInfo`
            The image read out by the camera.
        """
        if self.summary_state != salobj.State.ENABLED:
            self.log.warning(f"Not ENABLED; no header for {info.obs_id}.")
            return
        await self.evt_largeFileObjectAvailable.set_write(
            url=f"{self.url_root}/{info.day_obs}/{info.obs_id}.yaml",
            generator=self.salinfo.name,
            version=1.0,
            byteSize=HEADER_BYTES_PER_DETECTOR * len(info.detectors),
            checkSum="",
            mimeType="YAML",
            id=info.obs_id,
            force_output=True,
        )
        self.headers_written.append(info.obs_id)
