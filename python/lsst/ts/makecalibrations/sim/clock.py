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

"""Simulated time for the simulated observatory.

Every simulated duration (exposure, readout, filter change, ingest, OCPS job) goes through a
`SimClock`, so a run that takes minutes of observatory time completes in seconds of wall time while
the times the camera reports stay true.

May import: the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["SimClock", "day_obs_from_tai"]

import asyncio
import datetime
import time

import astropy.time

SECONDS_PER_HALF_DAY = 12 * 3600.0


def day_obs_from_tai(tai: float) -> int:
    """Return the observing day ``YYYYMMDD`` of a TAI time: the TAI date of ``tai - 12 h``.

    Parameters
    ----------
    tai : `float`
        TAI unix seconds.
    """
    date = datetime.datetime.fromtimestamp(tai - SECONDS_PER_HALF_DAY, tz=datetime.UTC)
    return int(date.strftime("%Y%m%d"))


class SimClock:
    """A clock whose time runs ``time_scale`` times faster than the wall clock.

    Parameters
    ----------
    time_scale : `float`, optional
        Simulated seconds per wall second (> 0).
    start_tai : `float`, optional
        Simulated TAI (unix seconds) now; the current TAI if `None`.
    """

    def __init__(self, time_scale: float = 1.0, start_tai: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale={time_scale} must be > 0.")
        self.time_scale = float(time_scale)
        self._wall0 = time.monotonic()
        self._tai0 = astropy.time.Time.now().unix_tai if start_tai is None else float(start_tai)

    def tai(self) -> float:
        """Return the simulated TAI in unix seconds."""
        return self._tai0 + (time.monotonic() - self._wall0) * self.time_scale

    def time(self) -> astropy.time.Time:
        """Return the simulated time as an astropy `~astropy.time.Time` (scale tai)."""
        return astropy.time.Time(self.tai(), format="unix_tai", scale="tai")

    def wall_seconds(self, sim_seconds: float) -> float:
        """Return the wall duration of ``sim_seconds`` of simulated time."""
        return max(0.0, float(sim_seconds)) / self.time_scale

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep ``sim_seconds`` of simulated time (``sim_seconds / time_scale`` wall seconds)."""
        await asyncio.sleep(self.wall_seconds(sim_seconds))
