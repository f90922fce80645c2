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

"""The LSSTComCam client, compatible with ts_observatory_control's ``ComCam``.

`ComCam` groups the CCCamera, CCHeaderService and CCOODS remotes, takes images through
`BaseCamera` and changes filters through ``CCCamera.setFilter`` (`FilterChangerCamera`).

May import: `sal` (for ``salobj``), the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["ComCam", "ComCamUsages", "COMCAM_DETECTOR_NAMES"]

from .filter_camera import FilterChangerCamera
from .group_camera import TakeImageUsages

COMCAM_DETECTOR_NAMES = tuple(f"R22_S{row}{col}" for row in range(3) for col in range(3))
"""Detector names of ComCam, indexed by detector number (0 = R22_S00 ... 8 = R22_S22)."""


class ComCamUsages(TakeImageUsages):
    """Intended usages of `ComCam` (bit flags, combinable with those of `Usages`)."""


class ComCam(FilterChangerCamera):
    """LSSTComCam: CCCamera, CCHeaderService and CCOODS (see `FilterChangerCamera` for the parameters)."""

    component_names = ("CCCamera", "CCHeaderService", "CCOODS")
    detector_names = COMCAM_DETECTOR_NAMES
