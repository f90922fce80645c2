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

"""Which flats of a sequence go into the combined flat (and its verification).

cp_pipe combines flats with equal weights after scaling each to its exposure level, so the combined
flat carries ``mean_k(1 / S_k) / N`` of relative variance: one pair at a few hundred electrons (the
low-flux pair a PTC needs to measure the read noise) makes a flat from twenty 20 ke- flats several
times noisier than Poisson, and cp_verify's flat NOISE test (``NOISE <= sqrt(MEAN)``) then fails on
every bright exposure; the low-flux flat itself can never pass that test (``NOISE^2 = S + RN^2 > S``).
Observatory practice is to build the flat from flats at one level and the PTC from a ramp; when one
sequence serves both, the flats whose exposure time is below `COMBINE_MIN_EXPTIME_FRACTION` of the
longest are used by the PTC, the gains from pairs and the defects only, not by the flat combine and
its verification. A sequence of equal times (the daily default) is unaffected.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = ["COMBINE_MIN_EXPTIME_FRACTION", "select_flats_for_combine"]

import math
from collections.abc import Mapping

COMBINE_MIN_EXPTIME_FRACTION = 0.5
"""Flats shorter than this fraction of the longest flat of the sequence are left out of the combine."""


def select_flats_for_combine(exp_times: Mapping[int, float]) -> tuple[list[int], list[int]]:
    """Split flats into those combined (and verified) and those left to the PTC and defects.

    Parameters
    ----------
    exp_times : `~collections.abc.Mapping` [`int`, `float`]
        Exposure time (s) of each kept flat, by exposure id. Unknown (non-finite or zero) times are kept.

    Returns
    -------
    combined : `list` [`int`]
        Exposure ids for the flat combine and verification, in the given order.
    left_out : `list` [`int`]
        Exposure ids shorter than `COMBINE_MIN_EXPTIME_FRACTION` of the longest.
    """
    known = [t for t in exp_times.values() if math.isfinite(t) and t > 0]
    if not known:
        return list(exp_times), []
    limit = COMBINE_MIN_EXPTIME_FRACTION * max(known)
    combined = [i for i, t in exp_times.items() if not (math.isfinite(t) and 0 < t < limit)]
    left_out = [i for i in exp_times if i not in set(combined)]
    return combined, left_out
