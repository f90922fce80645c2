"""The flat-pairing rule: which flats of a sequence form the pairs of a PTC or a gain measurement.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["find_flat_pairs"]

import math
from collections.abc import Sequence


def find_flat_pairs(exp_times: Sequence[float]) -> list[tuple[int, int]]:
    """Return the flat pairs in a sequence of exposure times.

    Scans the sequence once: two consecutive images with the same exposure time form a pair and
    are both consumed; an unmatched image is skipped. ``[0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 1, 1.5]``
    gives the first three pairs.

    Parameters
    ----------
    exp_times : `~collections.abc.Sequence` [`float`]
        Exposure times of the kept flats, in acquisition order.

    Returns
    -------
    pairs : `list` [`tuple` [`int`, `int`]]
        Indices (into ``exp_times``) of the two flats of each pair.
    """
    pairs: list[tuple[int, int]] = []
    i = 0
    while i + 1 < len(exp_times):
        if math.isclose(exp_times[i], exp_times[i + 1], rel_tol=1e-9, abs_tol=1e-9):
            pairs.append((i, i + 1))
            i += 2
        else:
            i += 1
    return pairs
