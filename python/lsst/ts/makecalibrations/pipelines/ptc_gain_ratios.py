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

"""Amp-to-amp gain ratios from flat fields, the numerical core of ``cpPtcAdjustGainRatios``.

The gains of a PTC fit are independent per amp, each with the statistical error of its own pixels.
A flat field in electrons is smooth across the amp boundaries, so a gain error shows as a step: an
amp whose gain is too high by a factor ``r`` is ``r`` times too bright. cp_pipe's
``PhotonTransferCurveAdjustGainRatiosTask`` measures these ratios on binned, gain-corrected flats
after removing the smooth illumination, relative to a reference amp, and divides each amp's gain by
its median ratio (normalised so that the median correction is 1 and the detector's mean gain is kept).

* `choose_reference_amp`: the amp of median gain among those with a low noise and a turnoff above a
  percentile (cp_pipe's rule).
* `bin_flat`: bin-averaged values of a gain-corrected flat, away from the amp boundaries.
* `fit_gain_ratios`: ``log(value) = log(ratio_amp) + Σ c_pq T_p(x) T_q(y)`` by linear least squares
  (a Chebyshev gradient instead of cp_pipe's radial spline plus order-1 Chebyshev), rejecting amps
  whose ratio is off by more than ``max_fractional_gain_ratio`` and outlying bins.
* `gain_corrections`: median over the flats, normalised by the median over the amps.

May import: numpy.
"""

from __future__ import annotations

__all__ = [
    "BinnedFlat",
    "bin_flat",
    "choose_reference_amp",
    "fit_gain_ratios",
    "gain_corrections",
]

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numpy.polynomial import chebyshev


def choose_reference_amp(
    gains: Sequence[float],
    noises: Sequence[float],
    turnoffs: Sequence[float],
    max_noise: float = 12.0,
    turnoff_percentile: float = 25.0,
) -> int:
    """Index of the reference amp, -1 if fewer than two amps qualify.

    Amps with a non-finite gain or a noise above ``max_noise`` (e-) are left out, and so are those whose
    turnoff is below the ``turnoff_percentile`` percentile of all turnoffs; of the rest, the amp at the
    middle of the gain order is the reference.
    """
    gain = np.asarray(gains, dtype=np.float64).copy()
    noise = np.asarray(noises, dtype=np.float64)
    turnoff = np.asarray(turnoffs, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        gain[~(noise <= max_noise)] = math.nan
        finite_turnoff = turnoff[np.isfinite(turnoff)]
        if finite_turnoff.size:
            gain[~(turnoff >= np.percentile(finite_turnoff, turnoff_percentile))] = math.nan
    good = np.flatnonzero(np.isfinite(gain))
    if good.size <= 1:
        return -1
    order = good[np.argsort(gain[good])]
    return int(order[good.size // 2])


@dataclasses.dataclass
class BinnedFlat:
    """Bin averages of one gain-corrected flat.

    Attributes
    ----------
    x, y : `numpy.ndarray`
        Bin centres in detector pixels (column, row).
    amp_index : `numpy.ndarray`
        Amp of each bin (index into the amp list).
    value : `numpy.ndarray`
        Mean of the bin's unmasked pixels (e-).
    shape : `tuple` [`int`, `int`]
        Detector image shape (rows, columns).
    """

    x: np.ndarray
    y: np.ndarray
    amp_index: np.ndarray
    value: np.ndarray
    shape: tuple[int, int]


def bin_flat(
    image: npt.ArrayLike,
    amp_boxes: Sequence[tuple[slice, slice]],
    gains: Sequence[float],
    bin_factor: int = 8,
    boundary: tuple[int, int] = (20, 20),
) -> BinnedFlat:
    """Bin a flat (ADU, NaN = masked) into ``bin_factor``-pixel squares, times each amp's gain.

    Parameters
    ----------
    image : `numpy.ndarray`
        Assembled detector image (ADU), masked pixels NaN.
    amp_boxes : sequence of (`slice`, `slice`)
        ``(rows, columns)`` of each amp's data in ``image``.
    gains : sequence of `float`
        Gain of each amp (e-/ADU); an amp with a non-finite gain gives no bins.
    bin_factor : `int`, optional
        Bin side (px).
    boundary : `tuple` [`int`, `int`], optional
        Rows and columns left out at every amp edge before binning.

    Returns
    -------
    binned : `BinnedFlat`
        The bins with at least half of their pixels unmasked.
    """
    data = np.asarray(image, dtype=np.float64)
    xs, ys, amps, values = [], [], [], []
    for index, ((rows, cols), gain) in enumerate(zip(amp_boxes, gains, strict=True)):
        if not (math.isfinite(gain) and gain > 0):
            continue
        r0, r1 = rows.start + boundary[0], rows.stop - boundary[0]
        c0, c1 = cols.start + boundary[1], cols.stop - boundary[1]
        n_rows, n_cols = (r1 - r0) // bin_factor, (c1 - c0) // bin_factor
        if n_rows <= 0 or n_cols <= 0:
            continue
        cut = data[r0 : r0 + n_rows * bin_factor, c0 : c0 + n_cols * bin_factor] * gain
        blocks = cut.reshape(n_rows, bin_factor, n_cols, bin_factor)
        good = np.isfinite(blocks)
        counts = good.sum(axis=(1, 3))
        sums = np.where(good, blocks, 0.0).sum(axis=(1, 3))
        keep = counts >= 0.5 * bin_factor * bin_factor
        row_centres = r0 + (np.arange(n_rows) + 0.5) * bin_factor
        col_centres = c0 + (np.arange(n_cols) + 0.5) * bin_factor
        yy, xx = np.meshgrid(row_centres, col_centres, indexing="ij")
        xs.append(xx[keep])
        ys.append(yy[keep])
        amps.append(np.full(int(keep.sum()), index))
        values.append(sums[keep] / counts[keep])
    if not values:
        empty = np.zeros(0)
        return BinnedFlat(empty, empty, np.zeros(0, dtype=int), empty, (data.shape[0], data.shape[1]))
    return BinnedFlat(
        np.concatenate(xs),
        np.concatenate(ys),
        np.concatenate(amps).astype(int),
        np.concatenate(values),
        (data.shape[0], data.shape[1]),
    )


def fit_gain_ratios(
    binned: BinnedFlat,
    n_amps: int,
    reference: int,
    gradient_order: int = 2,
    max_fractional_gain_ratio: float = 0.05,
    n_sigma_clip: float = 5.0,
) -> np.ndarray:
    """Ratio of each amp's gain-corrected flux to the reference amp's, the smooth gradient removed.

    Bins outside ``[0.8 p5, 1.2 p95]`` of the values are dropped first (unmasked defects). Then
    ``log(value)`` is fitted with one offset per amp (the reference's fixed at 0) plus a 2-D Chebyshev
    series of degree ``gradient_order`` in x and y over the detector; bins beyond ``n_sigma_clip``
    robust sigmas and amps whose ratio differs from 1 by more than ``max_fractional_gain_ratio`` are
    left out and the fit repeated (at most ``n_amps // 2`` times) until that set no longer changes.

    Returns
    -------
    ratios : `numpy.ndarray`
        ``(n_amps,)``; 1 for the reference, and for every amp left out or without bins.
    """
    ratios = np.ones(n_amps)
    if binned.value.size == 0 or not 0 <= reference < n_amps:
        return ratios
    value = binned.value
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(value) & (value > 0)
    if not np.any(finite):
        return ratios
    lo, hi = np.percentile(value[finite], [5.0, 95.0])
    use = finite & (value >= 0.8 * lo) & (value <= 1.2 * hi)
    rows, cols = binned.shape
    x = 2.0 * binned.x / cols - 1.0
    y = 2.0 * binned.y / rows - 1.0
    gradient = chebyshev.chebvander2d(x, y, [gradient_order, gradient_order])
    log_value = np.log(np.where(use, value, 1.0))
    excluded: set[int] = set()
    for _ in range(max(n_amps // 2, 1)):
        amps = [k for k in range(n_amps) if k != reference and k not in excluded]
        rows_used = use & ~np.isin(binned.amp_index, sorted(excluded))
        offsets = np.stack([(binned.amp_index == k).astype(np.float64) for k in amps], axis=1)
        design = np.concatenate([offsets, gradient], axis=1)
        for _clip in range(3):
            coeffs, *_ = np.linalg.lstsq(design[rows_used], log_value[rows_used], rcond=None)
            residual = log_value - design @ coeffs
            scatter = 1.4826 * float(np.median(np.abs(residual[rows_used] - np.median(residual[rows_used]))))
            clipped = rows_used & (np.abs(residual) <= n_sigma_clip * max(scatter, 1e-12))
            if np.array_equal(clipped, rows_used):
                break
            rows_used = clipped
        fitted = {k: math.exp(float(c)) for k, c in zip(amps, coeffs[: len(amps)], strict=True)}
        present = {k for k in amps if np.any(rows_used & (binned.amp_index == k))}
        new_excluded = excluded | {
            k for k in amps if k not in present or abs(fitted[k] - 1.0) > max_fractional_gain_ratio
        }
        if new_excluded == excluded:
            for k in amps:
                ratios[k] = fitted[k]
            return ratios
        excluded = new_excluded
    return ratios


def gain_corrections(ratios: npt.ArrayLike) -> np.ndarray:
    """Per-amp correction: the median ratio over the flats (``ratios`` is ``(n_flats, n_amps)``),
    divided by the median over the amps so that the detector's gain is unchanged on average."""
    per_amp = np.median(np.asarray(ratios, dtype=np.float64), axis=0)
    return per_amp / float(np.median(per_amp))
