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
