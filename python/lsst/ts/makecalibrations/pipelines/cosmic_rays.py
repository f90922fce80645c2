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

"""Cosmic-ray finding and repair with the criteria of meas_algorithms' ``findCosmicRays``.

cp_verify measures ``CR_NOISE`` after running ``RepairTask`` (``keepCRs=False``) on a copy of the
processed exposure with a Gaussian PSF of ``psfFwhm = 3`` px. `find_cosmic_rays` applies the same
per-pixel tests, vectorised in numpy and scipy (``FindCosmicRaysConfig`` defaults in
`CosmicRaySettings`). For a pixel of value ``v`` with standard deviation ``s`` and, in each of the
four directions (vertical, horizontal, two diagonals), the mean ``m`` of its two opposite neighbours
(standard deviation ``dm``), all relative to the background ``b``:

1. it is not negative, not ``BAD``-like itself (the caller's ``excluded``), not on the frame's edge;
2. it is ``minSigma * s`` above ``m`` in at least one direction (the sharpness test);
3. in at least one direction ``t * (v - cond3_fac * s) > m + cond3_fac * dm``, where ``t`` is
   ``cond3_fac2`` times the PSF's value 1 px away (vertical/horizontal) or sqrt(2) px away
   (diagonals) relative to its peak: a star or any source at least as broad as the PSF fails it;
4. the candidates are grouped into 8-connected footprints; a footprint whose pixels sum to less
   than ``min_DN`` above the background is not a cosmic ray;
5. the cosmic-ray pixels are replaced by interpolation, then, ``niteration`` times, the pixels
   around each cosmic ray (its footprint grown by one pixel) are tested again with ``minSigma / 2``
   and without the noise margin (``cond3_fac = 0``) against the repaired image; those found join the
   cosmic ray;
6. more than ``nCrPixelMax`` candidate pixels raises `TooManyCosmicRaysError` (the stack raises
   ``LengthError``; cp_verify then fails every amp with ``PROCESSING = False``).

The repair replaces each cosmic-ray pixel with the mean of the linear interpolations along its row
and its column between the nearest pixels that are neither cosmic ray nor excluded (the row/column
interpolation of ``RemoveCR``), or the background if there are none.

The stack scans the frame in raster order and replaces each candidate as it goes; here the first pass
tests every pixel against the original image and the neighbour passes pick up what the sequential
scan would have found next to a cosmic ray.

May import: numpy, scipy.
"""

from __future__ import annotations

__all__ = [
    "CosmicRaySettings",
    "CosmicRays",
    "TooManyCosmicRaysError",
    "find_cosmic_rays",
    "psf_thresholds",
]

import dataclasses
import math

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

# The four directions of condition 3, in the stack's order: vertical, horizontal, the two diagonals.
# Each is the pair of (row, column) offsets of the two opposite neighbours.
_DIRECTIONS = (
    ((-1, 0), (1, 0)),
    ((0, -1), (0, 1)),
    ((-1, -1), (1, 1)),
    ((-1, 1), (1, -1)),
)
_DIAGONAL = (False, False, True, True)

# How far (pixels) the repair looks along a row or a column for a pixel outside the cosmic ray.
_MAX_INTERPOLATION_REACH = 64


@dataclasses.dataclass(frozen=True)
class CosmicRaySettings:
    """Cosmic-ray finding settings (meas_algorithms ``FindCosmicRaysConfig`` defaults).

    Attributes
    ----------
    min_sigma : `float`
        ``minSigma``: sharpness above the neighbours' mean, in sigma of the pixel.
    min_dn : `float`
        ``min_DN``: least total signal of a cosmic ray above the background (image units).
    cond3_fac : `float`
        ``cond3_fac``: noise margin (sigma) of the PSF test.
    cond3_fac2 : `float`
        ``cond3_fac2``: fraction of the PSF's neighbour-to-peak ratio of the PSF test.
    niteration : `int`
        ``niteration``: passes over the neighbours of the cosmic rays.
    n_cr_pixel_max : `int`
        ``nCrPixelMax``: more cosmic-ray pixels than this is an error.
    psf_fwhm : `float`
        FWHM (pixels) of the Gaussian PSF (cp_verify ``psfFwhm``).
    """

    min_sigma: float = 6.0
    min_dn: float = 150.0
    cond3_fac: float = 2.5
    cond3_fac2: float = 0.4
    niteration: int = 3
    n_cr_pixel_max: int = 10000
    psf_fwhm: float = 3.0

    def __post_init__(self) -> None:
        if not self.psf_fwhm > 0:
            raise ValueError(f"psf_fwhm must be positive, not {self.psf_fwhm!r}.")
        if self.niteration < 0 or self.n_cr_pixel_max < 0:
            raise ValueError(
                f"niteration ({self.niteration}) and n_cr_pixel_max ({self.n_cr_pixel_max}) must not "
                "be negative."
            )


class TooManyCosmicRaysError(RuntimeError):
    """More cosmic-ray pixels than ``n_cr_pixel_max`` (the stack's ``LengthError``).

    Parameters
    ----------
    n_pixels : `int`
        Cosmic-ray pixels found when the search stopped.
    limit : `int`
        ``n_cr_pixel_max``.
    """

    def __init__(self, n_pixels: int, limit: int) -> None:
        super().__init__(f"Too many cosmic-ray pixels: {n_pixels} found, more than nCrPixelMax = {limit}.")
        self.n_pixels = n_pixels
        self.limit = limit


@dataclasses.dataclass(frozen=True)
class CosmicRays:
    """What `find_cosmic_rays` found.

    Attributes
    ----------
    repaired : `numpy.ndarray`
        Copy of the image with the cosmic-ray pixels replaced (float32).
    mask : `numpy.ndarray`
        Boolean mask of the cosmic-ray pixels.
    n_cosmic_rays : `int`
        Number of cosmic rays (footprints).
    """

    repaired: np.ndarray
    mask: np.ndarray
    n_cosmic_rays: int


def psf_thresholds(settings: CosmicRaySettings) -> tuple[float, float]:
    """Condition-3 factors: ``cond3_fac2`` x the Gaussian PSF's value at 1 px and at sqrt(2) px from
    its centre, relative to the centre.

    Parameters
    ----------
    settings : `CosmicRaySettings`
        ``psf_fwhm`` and ``cond3_fac2``.

    Returns
    -------
    axis, diagonal : `float`
        Factors for the vertical/horizontal and for the diagonal neighbours.
    """
    sigma = settings.psf_fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    axis = math.exp(-1.0 / (2.0 * sigma**2))
    return settings.cond3_fac2 * axis, settings.cond3_fac2 * axis**2


def find_cosmic_rays(
    image: np.ndarray,
    sigma: np.ndarray | float,
    excluded: np.ndarray,
    background: float,
    settings: CosmicRaySettings = CosmicRaySettings(),
) -> CosmicRays:
    """Find, group and repair the cosmic rays of an image (see the module docstring).

    Parameters
    ----------
    image : `numpy.ndarray`
        2-d image (not modified).
    sigma : `numpy.ndarray` or `float`
        Noise of each pixel (the square root of the variance plane), or one value for all.
    excluded : `numpy.ndarray`
        Pixels that are never cosmic-ray candidates nor used to repair (``BAD``, ``SAT``,
        ``NO_DATA``, ...).
    background : `float`
        Background level (the stack passes the image median).
    settings : `CosmicRaySettings`, optional
        Thresholds.

    Returns
    -------
    cosmic_rays : `CosmicRays`
        Repaired copy, mask and count.

    Raises
    ------
    TooManyCosmicRaysError
        More candidate pixels than ``settings.n_cr_pixel_max``.
    ValueError
        Arrays of different shapes, or not 2-d.
    """
    values = np.asarray(image, dtype=np.float32)
    if values.ndim != 2 or np.shape(excluded) != values.shape:
        raise ValueError(
            f"image must be 2-d and excluded of its shape; got {values.shape} and {np.shape(excluded)}."
        )
    noise = np.broadcast_to(np.asarray(sigma, dtype=np.float32), values.shape)
    excluded = np.asarray(excluded, dtype=bool)
    repaired = values.copy()
    mask = np.zeros(values.shape, dtype=bool)
    if min(values.shape) < 5:
        return CosmicRays(repaired, mask, 0)
    thresholds = psf_thresholds(settings)
    bkgd = np.float32(background)

    rows, cols = _preselect(values, noise, settings.min_sigma)
    candidate = ~excluded[rows, cols]
    rows, cols = rows[candidate], cols[candidate]
    is_cr, _ = _test_pixels(
        values, noise, rows, cols, bkgd, settings.min_sigma, settings.cond3_fac, thresholds
    )
    rows, cols = rows[is_cr], cols[is_cr]
    if rows.size > settings.n_cr_pixel_max:
        raise TooManyCosmicRaysError(int(rows.size), settings.n_cr_pixel_max)
    if rows.size == 0:
        return CosmicRays(repaired, mask, 0)

    # Condition 1: the footprint's total signal above the background.
    footprint = _footprints(rows, cols, values.shape[1])
    sums = np.bincount(footprint, weights=values[rows, cols].astype(np.float64) - float(bkgd))
    bright = sums >= settings.min_dn
    n_cosmic_rays = int(np.count_nonzero(bright))
    if n_cosmic_rays == 0:
        return CosmicRays(repaired, mask, 0)
    rows, cols = rows[bright[footprint]], cols[bright[footprint]]
    mask[rows, cols] = True
    _interpolate(repaired, mask, excluded, bkgd)

    # The neighbours of each cosmic ray, against the repaired image, without the noise margin.
    n_pixels = rows.size
    for _ in range(settings.niteration):
        near_rows, near_cols = _around(mask, rows, cols)
        is_cr, estimate = _test_pixels(
            repaired, noise, near_rows, near_cols, bkgd, settings.min_sigma / 2.0, 0.0, thresholds
        )
        if not is_cr.any():
            break
        n_pixels += int(np.count_nonzero(is_cr))
        if n_pixels > settings.n_cr_pixel_max:
            raise TooManyCosmicRaysError(n_pixels, settings.n_cr_pixel_max)
        near_rows, near_cols = near_rows[is_cr], near_cols[is_cr]
        repaired[near_rows, near_cols] = estimate[is_cr]
        mask[near_rows, near_cols] = True
        rows, cols = np.concatenate([rows, near_rows]), np.concatenate([cols, near_cols])

    _interpolate(repaired, mask, excluded, bkgd)
    return CosmicRays(repaired, mask, n_cosmic_rays)


def _footprints(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    """Footprint number (0, 1, ...) of each pixel: 8-connected groups of the given pixels.

    The groups are the connected components of the graph joining each pixel to its neighbours among
    the others, so the cost follows the number of candidates, not the frame's size: labelling the
    whole frame (`scipy.ndimage.label` with an 8-connected structure) gives the same groups but costs
    0.12 s of CPU per full-size detector, a third of the whole search.
    """
    index = rows.astype(np.int64) * width + cols
    order = np.argsort(index)
    ordered = index[order]
    heads, tails = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        target = ordered + dy * width + dx
        at = np.minimum(np.searchsorted(ordered, target), ordered.size - 1)
        hit = (ordered[at] == target) & (np.abs((ordered % width) - (ordered[at] % width)) <= 1)
        heads.append(np.nonzero(hit)[0])
        tails.append(at[hit])
    head, tail = np.concatenate(heads), np.concatenate(tails)
    graph = sparse.coo_matrix((np.ones(head.size), (head, tail)), shape=(ordered.size, ordered.size))
    _, labels = csgraph.connected_components(graph, directed=False)
    footprint = np.empty(rows.size, dtype=np.int64)
    footprint[order] = labels
    return footprint


def _around(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interior pixels next to (8-connected) the given pixels of ``mask`` and not in it."""
    ny, nx = mask.shape
    near_rows = (rows[:, None] + np.array([-1, -1, -1, 0, 0, 1, 1, 1])).ravel()
    near_cols = (cols[:, None] + np.array([-1, 0, 1, -1, 1, -1, 0, 1])).ravel()
    inside = (near_rows >= 1) & (near_rows < ny - 1) & (near_cols >= 1) & (near_cols < nx - 1)
    index = np.unique(near_rows[inside].astype(np.int64) * nx + near_cols[inside])
    near_rows, near_cols = index // nx, index % nx
    outside = ~mask[near_rows, near_cols]
    return near_rows[outside], near_cols[outside]


_PRESELECT_ROWS = 32
"""Rows of the image the preselection works on at a time (their temporaries stay in the CPU cache)."""


def _preselect(values: np.ndarray, noise: np.ndarray, min_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Interior pixels (rows, columns, in raster order) with ``v - min(8 neighbours) >= min_sigma * s``.

    Condition 2 needs ``v - m >= minSigma * s`` for some direction; every ``m`` is at least the
    smallest of the 8 neighbours, so this preselects the few pixels to test. The test runs on bands
    of `_PRESELECT_ROWS` rows (the same float32 arithmetic per pixel as on the whole frame at once),
    so its temporaries stay in the cache instead of five frame-sized arrays.
    """
    ny = values.shape[0]
    found_rows, found_cols = [], []
    for first in range(1, ny - 1, _PRESELECT_ROWS):
        last = min(ny - 1, first + _PRESELECT_ROWS)
        block = values[first - 1 : last + 1]
        with np.errstate(invalid="ignore"):
            pre = block[1:-1, 1:-1] - _neighbour_minimum(block) >= min_sigma * noise[first:last, 1:-1]
        band_rows, band_cols = np.nonzero(pre)
        found_rows.append(band_rows + first)
        found_cols.append(band_cols + 1)
    if not found_rows:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty.copy()
    return np.concatenate(found_rows), np.concatenate(found_cols)


def _neighbour_minimum(values: np.ndarray) -> np.ndarray:
    """Smallest of the 3x3 neighbourhood of every interior pixel (shape reduced by 2 on each axis)."""
    rows = np.minimum(np.minimum(values[:-2], values[1:-1]), values[2:])
    return np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _test_pixels(
    values: np.ndarray,
    noise: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    bkgd: np.float32,
    min_sigma: float,
    cond3_fac: float,
    thresholds: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Conditions 2 and 3 at the given interior pixels; the estimate is the first passing direction's
    neighbour mean (the stack's preliminary replacement)."""
    centre = values[rows, cols]
    s_centre = noise[rows, cols]
    sharp = np.zeros(rows.size, dtype=bool)
    psf_like = np.zeros(rows.size, dtype=bool)
    estimate = np.full(rows.size, bkgd, dtype=np.float32)
    peak = centre - bkgd
    for (first, second), diagonal in zip(_DIRECTIONS, _DIAGONAL, strict=True):
        a = values[rows + first[0], cols + first[1]]
        b = values[rows + second[0], cols + second[1]]
        mean = 0.5 * (a + b)
        sharp |= centre >= mean + min_sigma * s_centre
        s_mean = 0.5 * np.hypot(
            noise[rows + first[0], cols + first[1]], noise[rows + second[0], cols + second[1]]
        )
        factor = thresholds[1] if diagonal else thresholds[0]
        passes = factor * (peak - cond3_fac * s_centre) > (mean - bkgd) + cond3_fac * s_mean
        estimate = np.where(passes & ~psf_like, mean, estimate)
        psf_like |= passes
    return sharp & psf_like & (centre >= 0), estimate


def _interpolate(image: np.ndarray, mask: np.ndarray, excluded: np.ndarray, bkgd: np.float32) -> None:
    """Replace ``image[mask]`` in place by the mean of the row and column linear interpolations between
    the nearest pixels outside ``mask | excluded`` (one of them if the other has none; else ``bkgd``)."""
    usable = ~(mask | excluded)
    rows, cols = np.nonzero(mask)
    estimates = []
    for axis in (1, 0):
        along = cols if axis == 1 else rows
        before = _nearest(usable, rows, cols, axis, -1)
        after = _nearest(usable, rows, cols, axis, +1)
        v_before = _value_at(image, rows, cols, axis, before)
        v_after = _value_at(image, rows, cols, axis, after)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = (along - before) / (after - before)
            line = v_before + weight * (v_after - v_before)
        line = np.where(before < 0, v_after, np.where(after < 0, v_before, line))
        estimates.append(np.where((before < 0) & (after < 0), np.nan, line))
    with np.errstate(invalid="ignore"):
        fill = np.nanmean(np.stack(estimates), axis=0) if rows.size else np.empty(0)
    image[rows, cols] = np.where(np.isfinite(fill), fill, bkgd)


def _nearest(usable: np.ndarray, rows: np.ndarray, cols: np.ndarray, axis: int, step: int) -> np.ndarray:
    """Index (along ``axis``) of the nearest usable pixel in direction ``step``, -1 if none in reach."""
    start = cols if axis == 1 else rows
    size = usable.shape[axis]
    found = np.full(rows.size, -1, dtype=np.int64)
    todo = np.arange(rows.size)
    for distance in range(1, _MAX_INTERPOLATION_REACH + 1):
        if todo.size == 0:
            break
        index = start[todo] + step * distance
        inside = (index >= 0) & (index < size)
        todo, index = todo[inside], index[inside]
        ok = usable[rows[todo], index] if axis == 1 else usable[index, cols[todo]]
        found[todo[ok]] = index[ok]
        todo = todo[~ok]
    return found


def _value_at(
    image: np.ndarray, rows: np.ndarray, cols: np.ndarray, axis: int, index: np.ndarray
) -> np.ndarray:
    """``image`` at ``index`` along ``axis`` (NaN where ``index`` is -1)."""
    safe = np.maximum(index, 0)
    values = image[rows, safe] if axis == 1 else image[safe, cols]
    return np.where(index >= 0, values, np.nan).astype(np.float64)
