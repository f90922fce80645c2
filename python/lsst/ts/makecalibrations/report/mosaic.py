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

"""A mosaic of one combined calibration (bias, dark or flat) over the raft's detectors, with a robust
percentile stretch and a colour bar.

May import: numpy, matplotlib, `butler.camera`, `report.layout`.
"""

from __future__ import annotations

__all__ = ["plot_calibration_mosaic"]

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from ..butler.camera import DETECTOR_NAMES
from .layout import raft_axes, save_png, slot

if TYPE_CHECKING:
    from lsst.images import MaskedImage

_DEFAULT_UNITS: dict[str, str] = {
    "bias": "e-",
    "dark": "e-/s",
    "flat": "relative response",
}


def _bin(array: np.ndarray, max_pixels: int) -> np.ndarray:
    """Block-average ``array`` so that no axis exceeds ``max_pixels`` (NaN-aware)."""
    factor = max(1, math.ceil(max(array.shape) / max_pixels))
    if factor == 1:
        return array.astype(float)
    ny, nx = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = array[:ny, :nx].astype(float).reshape(ny // factor, factor, nx // factor, factor)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(blocks).sum(axis=(1, 3))
        sums = np.nansum(blocks, axis=(1, 3))
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def plot_calibration_mosaic(
    images: Mapping[int, MaskedImage],
    calib_type: str,
    path: str | Path,
    run_name: str,
    *,
    unit: str | None = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
    max_pixels: int = 400,
    cmap: str = "viridis",
) -> Path:
    """Draw a combined calibration over the 3x3 detectors with one robust stretch and colour bar.

    Parameters
    ----------
    images : `~collections.abc.Mapping` [`int`, ``lsst.images.MaskedImage``]
        The combined calibration of each detector (as the butler reads it), keyed by detector id.
        Detectors that are missing are drawn empty.
    calib_type : `str`
        ``"bias"``, ``"dark"``, ``"flat"`` or any other name (shown in the title).
    path : `str` or `pathlib.Path`
        Output PNG.
    run_name : `str`
        Name of the run, shown in the title.
    unit : `str`, optional
        Pixel unit for the colour bar; by default the images' own unit if they have one, else
        ``e-`` (bias), ``e-/s`` (dark) or ``relative response`` (flat).
    percentiles : `tuple` [`float`, `float`], optional
        Percentiles of all finite pixels (after binning) mapped to the ends of the colour scale.
    max_pixels : `int`, optional
        Images are block-averaged so no axis exceeds this many display pixels.
    cmap : `str`, optional
        Matplotlib colour map.

    Returns
    -------
    path : `pathlib.Path`
        The written PNG.
    """
    arrays: dict[int, np.ndarray] = {}
    shapes: dict[int, tuple[int, int]] = {}
    pixel_unit = unit
    for det, image in images.items():
        array = np.asarray(image.image.array)
        shapes[det] = (int(array.shape[0]), int(array.shape[1]))
        arrays[det] = _bin(array, max_pixels)
        if pixel_unit is None and image.unit is not None:
            pixel_unit = str(image.unit)
    pixel_unit = pixel_unit or _DEFAULT_UNITS.get(calib_type, "as stored")
    finite = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays.values()] or [np.zeros(0)])
    if finite.size:
        vmin, vmax = (float(v) for v in np.percentile(finite, percentiles))
        if vmax <= vmin:
            vmin, vmax = vmin - 0.5, vmax + 0.5
        median = float(np.median(finite))
        sigma = 0.7413 * float(np.subtract(*np.percentile(finite, [75, 25])))
    else:
        vmin, vmax, median, sigma = 0.0, 1.0, math.nan, math.nan
    aspect = float(np.median([ny / nx for ny, nx in shapes.values()])) if shapes else 1.0
    aspect = min(max(aspect, 0.2), 2.0)
    fig = Figure(figsize=(12, 1.6 + 3 * 3.4 * aspect + 0.6), layout="constrained")
    axes = raft_axes(fig)
    image_artist = None
    for det, ax in axes.items():
        ax.set_title(f"{DETECTOR_NAMES[det]} (detector {det})", fontsize=9)
        ax.tick_params(labelsize=7)
        row, col = slot(det)
        if row == 0:
            ax.set_xlabel("x [pixel]", fontsize=8)
        if col == 0:
            ax.set_ylabel("y [pixel]", fontsize=8)
        if det not in arrays:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_box_aspect(aspect)
            continue
        ny, nx = shapes[det]
        image_artist = ax.imshow(
            arrays[det],
            origin="lower",
            extent=(0, nx, 0, ny),
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="antialiased",
        )
    if image_artist is not None:
        cbar = fig.colorbar(image_artist, ax=list(axes.values()), shrink=0.8)
        cbar.set_label(f"{calib_type} [{pixel_unit}]")
    fig.suptitle(
        f"Combined {calib_type} mosaic -- {run_name}\n"
        f"stretch {percentiles[0]:g}-{percentiles[1]:g} percentile = [{vmin:.4g}, {vmax:.4g}] {pixel_unit}; "
        f"median {median:.4g}, robust sigma {sigma:.3g}",
        fontsize=12,
    )
    return save_png(fig, path)
