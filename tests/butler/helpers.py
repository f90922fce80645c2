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

"""Helpers shared by the butler-room tests (fake camera images)."""

from __future__ import annotations

from lsst.ts.makecalibrations.sim.exposure import ExposureInfo, evening_exposure

DAY_OBS = 20241126


def make_info(
    seq_num: int,
    image_type: str = "BIAS",
    exposure_time: float = 0.0,
    physical_filter: str = "empty",
    detectors: tuple[int, ...] = (0, 4),
    day_obs: int = DAY_OBS,
) -> ExposureInfo:
    """`sim.exposure.evening_exposure` on the butler tests' day and detectors by default."""
    return evening_exposure(
        seq_num,
        image_type,
        exposure_time,
        day_obs=day_obs,
        detectors=detectors,
        physical_filter=physical_filter,
    )
