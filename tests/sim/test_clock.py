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

"""Tests of the simulated clock: scaled sleeps, simulated TAI and the observing day."""

import asyncio
import time

import pytest

from lsst.ts.makecalibrations.sim.clock import SimClock, day_obs_from_tai

# 2024-01-02T00:00:00 TAI as TAI unix seconds.
TAI_20240102 = 1704153600.0


def test_day_obs_rolls_over_at_noon() -> None:
    assert day_obs_from_tai(TAI_20240102 + 11.99 * 3600) == 20240101
    assert day_obs_from_tai(TAI_20240102 + 12.0 * 3600) == 20240102
    assert day_obs_from_tai(TAI_20240102 - 1.0) == 20240101


def test_tai_runs_scaled() -> None:
    clock = SimClock(time_scale=1000.0, start_tai=TAI_20240102)
    t0 = clock.tai()
    assert TAI_20240102 <= t0 < TAI_20240102 + 100.0
    time.sleep(0.05)
    elapsed = clock.tai() - t0
    # 0.05 wall s is 50 simulated s (allow for a slow machine).
    assert 45.0 <= elapsed < 500.0
    assert clock.time().tai.isot.startswith("2024-01-02T00:")


def test_bad_time_scale() -> None:
    with pytest.raises(ValueError):
        SimClock(time_scale=0)


async def test_sleep_is_scaled() -> None:
    clock = SimClock(time_scale=200.0)
    assert clock.wall_seconds(10.0) == pytest.approx(0.05)
    assert clock.wall_seconds(-3.0) == 0.0
    t0 = time.monotonic()
    sim0 = clock.tai()
    await clock.sleep(20.0)
    wall = time.monotonic() - t0
    assert 0.09 <= wall < 1.0
    assert clock.tai() - sim0 >= 20.0
    # Concurrent sleeps overlap.
    t0 = time.monotonic()
    await asyncio.gather(*[clock.sleep(20.0) for _ in range(5)])
    assert time.monotonic() - t0 < 0.5
