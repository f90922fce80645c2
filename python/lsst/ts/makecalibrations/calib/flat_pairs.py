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

"""The flat-pairing rule: which flats of a sequence form the pairs of a PTC or a gain measurement.

Walking the flats in acquisition order (for exposures: increasing exposure id), a flat not yet paired
is paired with the next one when their exposure times differ by at most `PAIR_TOLERANCE`; otherwise
it is left out. A run of ``2k`` equal times gives ``k`` pairs, an odd one out between pairs is
ignored. The plan (`calib.plan`, `CalibConfig.flat_pairs`), the configuration checks and the PTC
pipeline (`pipelines.ptc.match_pairs_by_time`) all use this one rule, so the plan never announces a
pair the pipeline does not make, nor the other way round.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["PAIR_TOLERANCE", "find_flat_pairs", "match_pairs_by_time"]

from collections.abc import Iterable, Sequence

PAIR_TOLERANCE = 5e-3
"""Largest exposure-time difference (s) of the two flats of a pair: cp_pipe's
``matchExposureTimeTolerance`` default. Exposure times from headers differ from the commanded ones by
far less; two commanded times closer than this are one exposure time."""


def find_flat_pairs(exp_times: Sequence[float], tolerance: float = PAIR_TOLERANCE) -> list[tuple[int, int]]:
    """Return the flat pairs in a sequence of exposure times.

    ``[0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 1, 1.5]`` gives the first three pairs.

    Parameters
    ----------
    exp_times : `~collections.abc.Sequence` [`float`]
        Exposure times of the kept flats, in acquisition order.
    tolerance : `float`, optional
        Largest exposure-time difference (s) of a pair.

    Returns
    -------
    pairs : `list` [`tuple` [`int`, `int`]]
        Indices (into ``exp_times``) of the two flats of each pair.
    """
    pairs: list[tuple[int, int]] = []
    i = 0
    while i + 1 < len(exp_times):
        if abs(float(exp_times[i]) - float(exp_times[i + 1])) <= tolerance:
            pairs.append((i, i + 1))
            i += 2
        else:
            i += 1
    return pairs


def match_pairs_by_time(
    exposures: Iterable[tuple[int, float]], tolerance: float = PAIR_TOLERANCE
) -> list[tuple[int, int]]:
    """Pair flats given as ``(exposure_id, exposure_time)``, in increasing id order (`find_flat_pairs`).

    Returns
    -------
    pairs : `list` [`tuple` [`int`, `int`]]
        ``(first_id, second_id)`` of each pair, in increasing id order.
    """
    ordered = sorted((int(exp_id), float(exp_time)) for exp_id, exp_time in exposures)
    return [(ordered[i][0], ordered[j][0]) for i, j in find_flat_pairs([t for _, t in ordered], tolerance)]
