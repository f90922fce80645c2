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

"""The LSSTCam client, compatible with ts_observatory_control's ``LSSTCam``.

`LSSTCam` groups the MTCamera, MTHeaderService and MTOODS remotes, takes images through `BaseCamera`
and changes filters through ``MTCamera.setFilter`` (`FilterChangerCamera`). Integer sensor selections
are not mapped to names (give names such as ``R22_S11``; the script takes every sensor).

May import: `sal` (for ``salobj``), the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["LSSTCam", "LSSTCamUsages"]

from .filter_camera import FilterChangerCamera
from .group_camera import TakeImageUsages


class LSSTCamUsages(TakeImageUsages):
    """Intended usages of `LSSTCam` (bit flags, combinable with those of `Usages`)."""


class LSSTCam(FilterChangerCamera):
    """LSSTCam: MTCamera, MTHeaderService and MTOODS (see `FilterChangerCamera` for the parameters)."""

    component_names = ("MTCamera", "MTHeaderService", "MTOODS")
