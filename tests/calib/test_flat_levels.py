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

"""Which flats go into the combined flat."""

import math

from lsst.ts.makecalibrations.calib.flat_levels import select_flats_for_combine


def test_equal_times_are_all_combined() -> None:
    times = {i: 5.0 for i in range(20)}
    assert select_flats_for_combine(times) == (list(range(20)), [])


def test_ptc_ramp_leaves_the_low_flux_flats_to_the_ptc() -> None:
    times = dict(enumerate([0.1, 0.1, 0.5, 0.5, 1, 1, 2.5, 2.5, 5, 5, 5, 5]))
    combined, left_out = select_flats_for_combine(times)
    assert combined == [6, 7, 8, 9, 10, 11]
    assert left_out == [0, 1, 2, 3, 4, 5]


def test_unknown_times_are_kept() -> None:
    times = {1: math.nan, 2: 0.0, 3: 5.0, 4: 1.0}
    assert select_flats_for_combine(times) == ([1, 2, 3], [4])
    assert select_flats_for_combine({1: math.nan}) == ([1], [])
