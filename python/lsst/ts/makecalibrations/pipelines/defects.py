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

"""Defect finding in numpy: hot pixels on a combined dark, cold pixels on a combined flat, column
post-processing, merging with the detector edge frame, and conversion to a `butler.calib_types.Defects`.

This is the numerical core of the ``cpDefects`` PipelineTasks (`pipelines.tasks.defects_tasks`),
following cp_pipe's ``MeasureDefectsCombinedTask`` and ``MergeDefectsCombinedTask`` with the LSSTComCam
overrides (https://github.com/lsst/cp_pipe, ``python/lsst/cp/pipe/defects.py``):

* per amp, ``m`` = MEANCLIP (3σ, 3 iterations) of the amp;
* dark, VALUE mode: hot if ``v - m >= darkCurrentThreshold * expTime / gain`` in ADU, or
  ``>= darkCurrentThreshold * expTime`` when the dark is in electrons (ComCam: 3 e-/s, combined dark
  ``expTime = 1``);
* flat, VALUE mode: cold if ``v <= 0.9 m`` (no hot pixels from flats);
* bias, VALUE mode: hot if ``v - m >= 1000`` ADU;
* STDEV mode (cp_pipe default, not used for ComCam): dark hot if ``v - m >= 4.8 s``, flat hot/cold at
  ``+4.8 s`` / ``-5.0 s`` with ``s`` = STDEVCLIP;
* flagged pixels form footprints (8-connected), converted to boxes;
* columns: a column of an amp with at least ``badOnAndOffPixelColumnThreshold`` flagged pixels has its
  span filled except for runs of at least ``goodPixelColumnGapThreshold`` good pixels ("blinking"
  columns), and a column with at least ``badPixelsToFillColumnThreshold`` flagged pixels becomes a
  full amp-height column;
* merge: OR of the inputs, plus a frame of 5 px around the detector (ComCam ``edgesAsDefects``).

The three column thresholds are defined for a 2000-row ITL amp (50, 30 and 1000 px). For the shrunken
simulated amps they are scaled by ``rows / 2000`` (`ColumnThresholds.for_amp_rows`), with floors of 3,
2 and 2 px, so the same *fraction* of a column triggers the same action: on the default 250-row amp a
column with >= 125 flagged pixels becomes a full column.

May import: numpy, scipy.ndimage, `.stats` and `butler.calib_types`.
"""

from __future__ import annotations

__all__ = [
    "IMAGE_TYPES",
    "THRESHOLD_TYPES",
    "ColumnThresholds",
    "DefectThresholds",
    "edge_frame_mask",
    "fill_bad_columns",
    "fill_blinking_columns",
    "find_amp_defects",
    "footprint_boxes",
    "mask_to_defects",
    "measure_defects",
    "merge_defect_masks",
]

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ..butler.calib_types import Defects
from .stats import border_mask, clipped_stats

IMAGE_TYPES = ("bias", "dark", "flat")
"""Image types a defect measurement accepts."""

THRESHOLD_TYPES = ("VALUE", "STDEV")
"""cp_pipe ``thresholdType`` choices."""

_FULL_AMP_ROWS = 2000
"""Rows of a real ITL amp, for which cp_pipe's column thresholds are defined."""

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclasses.dataclass(frozen=True)
class ColumnThresholds:
    """Column post-processing thresholds (pixels) for one amp height.

    Attributes
    ----------
    bad_on_off : `int`
        A column with at least this many flagged pixels is a "blinking" column whose span is filled
        (cp_pipe ``badOnAndOffPixelColumnThreshold``, 50 on a 2000-row amp).
    good_gap : `int`
        Runs of at least this many good pixels in a blinking column are not filled
        (``goodPixelColumnGapThreshold``, 30).
    fill_column : `int`
        A column with at least this many flagged pixels becomes a full amp column
        (``badPixelsToFillColumnThreshold``, ComCam 1000); 0 or less disables it.
    """

    bad_on_off: int = 50
    good_gap: int = 30
    fill_column: int = 1000

    def for_amp_rows(self, rows: int) -> ColumnThresholds:
        """Scale these thresholds, given for a 2000-row amp, to an amp of ``rows`` rows.

        Each threshold is multiplied by ``rows / 2000`` and rounded, with floors of 3 (``bad_on_off``),
        2 (``good_gap``) and 2 (``fill_column``) pixels; a non-positive ``fill_column`` stays disabled.
        """
        factor = rows / _FULL_AMP_ROWS
        return ColumnThresholds(
            bad_on_off=max(3, round(self.bad_on_off * factor)),
            good_gap=max(2, round(self.good_gap * factor)),
            fill_column=max(2, round(self.fill_column * factor))
            if self.fill_column > 0
            else self.fill_column,
        )


@dataclasses.dataclass(frozen=True)
class DefectThresholds:
    """Detection thresholds (cp_pipe ``MeasureDefectsTaskConfig`` with the ComCam overrides).

    Attributes
    ----------
    threshold_type : `str`
        ``VALUE`` (ComCam) or ``STDEV``.
    dark_current_threshold : `float`
        Hot-pixel dark current (e-/s) in VALUE mode (ComCam 3.0).
    bias_threshold : `float`
        Hot-pixel bias excess (ADU) in VALUE mode.
    frac_threshold_flat : `float`
        Cold-pixel fraction of the amp mean in VALUE mode (ComCam 0.9).
    n_sigma_bright, n_sigma_dark : `float`
        STDEV-mode thresholds (4.8 and -5.0).
    """

    threshold_type: str = "VALUE"
    dark_current_threshold: float = 3.0
    bias_threshold: float = 1000.0
    frac_threshold_flat: float = 0.9
    n_sigma_bright: float = 4.8
    n_sigma_dark: float = -5.0

    def __post_init__(self) -> None:
        if self.threshold_type not in THRESHOLD_TYPES:
            raise ValueError(f"threshold_type must be one of {THRESHOLD_TYPES}, not {self.threshold_type!r}.")


def find_amp_defects(
    amp_image: np.ndarray,
    image_type: str,
    thresholds: DefectThresholds,
    gain: float = 1.0,
    exp_time: float = 1.0,
    units: str = "adu",
    bad: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flag the hot and cold pixels of one amp of a combined calibration.

    Parameters
    ----------
    amp_image : `numpy.ndarray`
        Pixels of the amp.
    image_type : `str`
        ``bias``, ``dark`` or ``flat``.
    thresholds : `DefectThresholds`
        Thresholds.
    gain : `float`, optional
        Camera gain of the amp (e-/ADU), used for a dark in ADU.
    exp_time : `float`, optional
        Exposure time of the calibration (1 s for a combined dark).
    units : `str`, optional
        ``adu`` or ``electron``, the units of the image.
    bad : `numpy.ndarray`, optional
        Pixels to leave out of the amp statistics (they are still tested).

    Returns
    -------
    hot, cold : `numpy.ndarray`
        Boolean arrays of the amp's shape.
    """
    if image_type not in IMAGE_TYPES:
        raise ValueError(f"image_type must be one of {IMAGE_TYPES}, not {image_type!r}.")
    values = np.asarray(amp_image, dtype=np.float64)
    stats = clipped_stats(values, bad, nsigma=3.0, niter=3)
    mean, sigma = float(stats.mean), float(stats.stdev)
    hot = np.zeros(values.shape, dtype=bool)
    cold = np.zeros(values.shape, dtype=bool)
    if not np.isfinite(mean):
        return hot, cold
    finite = np.isfinite(values)
    excess = np.where(finite, values - mean, 0.0)
    if thresholds.threshold_type == "VALUE":
        if image_type == "dark":
            threshold = thresholds.dark_current_threshold * exp_time
            if units.lower() != "electron":
                threshold /= gain
            hot = finite & (excess >= threshold)
        elif image_type == "bias":
            hot = finite & (excess >= thresholds.bias_threshold)
        else:
            cold = finite & (values <= thresholds.frac_threshold_flat * mean)
    else:
        if not np.isfinite(sigma):
            return hot, cold
        if image_type in ("dark", "flat"):
            hot = finite & (excess >= thresholds.n_sigma_bright * sigma)
        if image_type == "flat":
            cold = finite & (excess <= thresholds.n_sigma_dark * sigma)
    return hot, cold


def footprint_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Split the flagged pixels into 8-connected footprints and return boxes covering them exactly.

    Each footprint is decomposed into row runs merged vertically (`Defects.from_mask` on the footprint
    cut-out), as ip_isr's ``Defects.fromFootprintList`` covers a footprint with boxes.

    Parameters
    ----------
    mask : `numpy.ndarray`
        Boolean image.

    Returns
    -------
    boxes : `list` [`tuple` [`int`, `int`, `int`, `int`]]
        ``(x0, y0, width, height)`` in the coordinates of ``mask``.
    """
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=_EIGHT_CONNECTED)
    boxes: list[tuple[int, int, int, int]] = []
    if count == 0:
        return boxes
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None:
            continue
        rows, cols = region
        cutout = labels[region] == index
        for x0, y0, width, height in Defects.from_mask(cutout, detector=0).boxes:
            boxes.append((x0 + cols.start, y0 + rows.start, width, height))
    return boxes


def fill_blinking_columns(mask: np.ndarray, bad_on_off: int, good_gap: int) -> np.ndarray:
    """Fill the spans of columns with many flagged pixels ("blinking" columns).

    A column with at least ``bad_on_off`` flagged pixels is filled between consecutive flagged pixels
    unless the gap between them holds at least ``good_gap`` good pixels.

    Parameters
    ----------
    mask : `numpy.ndarray`
        Boolean amp image (rows = parallel direction).
    bad_on_off, good_gap : `int`
        Thresholds (`ColumnThresholds`).

    Returns
    -------
    filled : `numpy.ndarray`
        New boolean array.
    """
    out = np.array(mask, dtype=bool, copy=True)
    counts = out.sum(axis=0)
    for column in np.flatnonzero(counts >= bad_on_off):
        rows = np.flatnonzero(out[:, column])
        gaps = np.diff(rows) - 1
        for start, stop, gap in zip(rows[:-1], rows[1:], gaps, strict=True):
            if 0 < gap < good_gap:
                out[start + 1 : stop, column] = True
    return out


def fill_bad_columns(mask: np.ndarray, fill_column: int) -> np.ndarray:
    """Flag the whole column of an amp when it holds at least ``fill_column`` flagged pixels."""
    out = np.array(mask, dtype=bool, copy=True)
    if fill_column > 0:
        out[:, out.sum(axis=0) >= fill_column] = True
    return out


def measure_defects(
    image: np.ndarray,
    image_type: str,
    amp_boxes: Mapping[str, tuple[slice, slice]],
    thresholds: DefectThresholds | None = None,
    column_thresholds: ColumnThresholds | None = None,
    gains: Mapping[str, float] | None = None,
    exp_time: float = 1.0,
    units: str = "adu",
    bad: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Find the defects of one combined calibration of a detector.

    Parameters
    ----------
    image : `numpy.ndarray`
        Assembled detector image of the combined bias, dark (per second) or flat.
    image_type : `str`
        ``bias``, ``dark`` or ``flat``.
    amp_boxes : `~collections.abc.Mapping` [`str`, `tuple` [`slice`, `slice`]]
        Slices ``(rows, cols)`` of every amp in ``image``.
    thresholds : `DefectThresholds`, optional
        Detection thresholds (ComCam defaults).
    column_thresholds : `ColumnThresholds`, optional
        Column thresholds; by default cp_pipe's scaled to the amp height.
    gains : `~collections.abc.Mapping` [`str`, `float`], optional
        Camera gains per amp (needed for a dark in ADU).
    exp_time : `float`, optional
        Exposure time of the calibration (1 for combined darks).
    units : `str`, optional
        Image units (``adu`` or ``electron``).
    bad : `numpy.ndarray`, optional
        Pixels already BAD in the combined image (kept out of the amp statistics).

    Returns
    -------
    mask : `numpy.ndarray`
        Boolean defect mask of the detector.
    metadata : `dict` [`str`, `typing.Any`]
        ``LSST CALIB DEFECTS <amp> N_HOT`` / ``N_COLD`` (footprints), ``LSST CALIB DEFECTS N_BAD_COLUMNS``
        and the thresholds used.
    """
    thresholds = thresholds or DefectThresholds()
    array = np.asarray(image)
    mask = np.zeros(array.shape, dtype=bool)
    metadata: dict[str, Any] = {}
    n_bad_columns = 0
    for amp_name, box in amp_boxes.items():
        amp = array[box]
        columns = column_thresholds or ColumnThresholds().for_amp_rows(amp.shape[0])
        gain = 1.0 if gains is None else float(gains[amp_name])
        hot, cold = find_amp_defects(
            amp, image_type, thresholds, gain, exp_time, units, None if bad is None else bad[box]
        )
        metadata[f"LSST CALIB DEFECTS {amp_name} N_HOT"] = len(footprint_boxes(hot))
        metadata[f"LSST CALIB DEFECTS {amp_name} N_COLD"] = len(footprint_boxes(cold))
        amp_mask = fill_blinking_columns(hot | cold, columns.bad_on_off, columns.good_gap)
        filled = fill_bad_columns(amp_mask, columns.fill_column)
        n_bad_columns += int(np.count_nonzero(filled.all(axis=0)))
        mask[box] |= filled
    metadata["LSST CALIB DEFECTS N_BAD_COLUMNS"] = n_bad_columns
    metadata["LSST CALIB DEFECTS IMAGE TYPE"] = image_type
    metadata["LSST CALIB DEFECTS THRESHOLD TYPE"] = thresholds.threshold_type
    return mask, metadata


def edge_frame_mask(shape: Sequence[int], up_down: int, left_right: int | None = None) -> np.ndarray:
    """Boolean mask of the frame around a detector (ComCam ``edgesAsDefects``).

    Parameters
    ----------
    shape : sequence of `int`
        Detector shape ``(rows, cols)``.
    up_down : `int`
        Rows flagged at the bottom and at the top (``nPixBorderUpDown``).
    left_right : `int`, optional
        Columns flagged at the left and right (``nPixBorderLeftRight``); defaults to ``up_down``.

    Returns
    -------
    mask : `numpy.ndarray`
        Boolean array of ``shape``.
    """
    return border_mask(shape, up_down, up_down if left_right is None else left_right)


def merge_defect_masks(
    masks: Iterable[np.ndarray], shape: Sequence[int], up_down: int, left_right: int | None = None
) -> np.ndarray:
    """OR the defect masks of the inputs and add the detector edge frame.

    cp_pipe sums the rasterised defects of each image type, divides by the number of inputs and keeps
    pixels > 0, which for a single combined input per type is a logical OR.

    Parameters
    ----------
    masks : iterable of `numpy.ndarray`
        Boolean masks of the detector (e.g. from the dark and the flat).
    shape : sequence of `int`
        Detector shape.
    up_down, left_right : `int`
        Width of the frame (`edge_frame_mask`; ``left_right`` defaults to ``up_down``); 0 disables it.

    Returns
    -------
    merged : `numpy.ndarray`
        Boolean defect mask.
    """
    merged = edge_frame_mask(shape, up_down, left_right)
    for mask in masks:
        array = np.asarray(mask, dtype=bool)
        if array.shape != merged.shape:
            raise ValueError(f"Defect mask shape {array.shape} differs from the detector {merged.shape}.")
        merged |= array
    return merged


def mask_to_defects(mask: np.ndarray, detector: int, metadata: Mapping[str, Any] | None = None) -> Defects:
    """Convert a boolean defect mask into a `Defects` (boxes ``x0, y0, width, height``)."""
    md = dict(metadata or {})
    md.setdefault("OBSTYPE", "defects")
    md["DETECTOR"] = int(detector)
    md["LSST CALIB DEFECTS NPIX"] = int(np.count_nonzero(mask))
    return Defects.from_mask(np.asarray(mask, dtype=bool), detector=int(detector), metadata=md)
