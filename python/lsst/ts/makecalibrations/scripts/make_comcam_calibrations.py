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

"""`MakeComCamCalibrations`: the LSSTComCam calibration script loaded from the MTQueue as
``maintel/make_comcam_calibrations.py``.

Only the camera facts differ from `BaseMakeCalibrations`: instrument LSSTComCam, detectors 0..8
(R22_S00..R22_S22), OCPS:2, the ``ComCam`` camera client and the ``LSSTComCam`` pipeline directories.

May import: `sal`, `calib` and the sibling modules.
"""

from __future__ import annotations

__all__ = ["MakeComCamCalibrations"]

from ..calib.instrument import COMCAM
from ..control.clients import ComCam, ComCamUsages
from .base_make_calibrations import BaseMakeCalibrations


class MakeComCamCalibrations(BaseMakeCalibrations):
    """Take LSSTComCam biases, darks and flats and have OCPS:2 make, verify and certify calibrations."""

    instrument = COMCAM
    camera_client = ComCam
    camera_usage = ComCamUsages.TakeImage
