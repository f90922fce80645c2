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

"""Numpy instrument signature removal (ISR) for LSSTComCam raws, after ip_isr's IsrTaskLSST.

`run_isr` turns the 16 raw amp arrays of one detector (`butler.raw_image.RawImage`) into an
assembled, calibrated detector image with a variance plane, mask planes and the ISR header keys
the later steps read. The steps, in IsrTaskLSST order, each switched by `IsrSettings`:

1. convert to float and dither by U[-0.5, 0.5) ADU (seeded by exposure, detector and amp);
2. serial overscan: per-row median of the overscan columns, skipping 3 leading and 3 trailing
   columns (``MEDIAN_PER_ROW``); the clipped (3 sigma) stdev of the overscan residual, in ADU, goes to
   ``LSST ISR OVERSCAN RESIDUAL SERIAL STDEV <amp>`` and the median level to
   ``LSST ISR OVERSCAN SERIAL MEDIAN <amp>``;
3. saturation masking (``SAT``) on the raw values, if enabled;
4. parallel overscan: per-column median of the parallel overscan rows, skipping 3 + 3 rows;
5. gains: multiply by the gain of the PTC given to the ISR, else the nominal camera gain (e-), or
   by 1 with ``do_bootstrap`` (ADU); the ``LSST ISR GAIN <amp>`` and ``LSST ISR READNOISE <amp>``
   (e-: the noise of the PTC given to the ISR, else the camera's nominal value; with bootstrap the
   overscan noise in ADU) keys and ``LSST ISR UNITS`` are written, and where each value came from in
   ``LSST ISR GAIN SOURCE <amp>`` and ``LSST ISR READNOISE SOURCE <amp>`` (``PTC`` or ``CAMERA``);
6. assembly of the amps' data sections (C00..C07 bottom row, C10..C17 top row);
7. bias subtraction; dark subtraction scaled by ``DARKTIME / dark DARKTIME``;
8. defect masking (``BAD``) and NaN masking (``UNMASKEDNAN``);
9. variance ``image + readNoise^2`` (image units);
10. flat division (image and variance), used as is (``flatScalingType=USER``, scale 1);
11. interpolation over ``BAD``/``SAT``/``UNMASKEDNAN`` (linear along rows, flagged ``INTRP``);
12. ``LSST ISR FINAL MEAN/MEDIAN/STDEV <amp>``.

Crosstalk, linearity and deferred charge are accepted switches but do nothing: the simulated sensors
have no crosstalk, are linear and have perfect charge transfer (the result records
``LSST ISR NOOP STEPS`` so it is visible).

May import: numpy, `.stats`, `butler.camera`.
"""

from __future__ import annotations

__all__ = [
    "OVERSCAN_NOISE_FACTOR",
    "OVERSCAN_SKIP",
    "overscan_noise_factor",
    "IsrResult",
    "IsrSettings",
    "apply_parallel_overscan",
    "apply_serial_overscan",
    "dither_seed",
    "interpolate_rows",
    "run_isr",
]

import dataclasses
import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..butler.camera import PARALLEL_OVERSCAN, SATURATION_ADU, SERIAL_OVERSCAN, AmpGeometry, Detector
from .stats import clipped_stats, median_of, plain_stats

OVERSCAN_SKIP = 3
"""Leading and trailing overscan columns/rows skipped by the overscan fits."""


def overscan_noise_factor(serial_overscan: int, parallel_overscan: int) -> float:
    """Noise of a processed pixel over the amplifier's read noise (1.031 for ITL's 64 x 48 overscans).

    The serial overscan step subtracts the median of the ``serial_overscan - 6`` fitted columns from
    every row and the parallel step the median of ``parallel_overscan - 6`` rows from every column;
    each median carries ~1.52 sigma^2 / n of read-noise variance (1.528 / 58 and 1.516 / 42 for ITL,
    measured numerically), so a processed pixel has ``RN * 1.031`` of noise. A PTC measured on
    processed pixels (cp_pipe's, and this package's) finds that noise, and cp_verify's NOISE tests
    compare with it.
    """
    columns = serial_overscan - 2 * OVERSCAN_SKIP
    rows = parallel_overscan - 2 * OVERSCAN_SKIP
    return math.sqrt(1.0 + 1.528 / columns + 1.516 / rows)


OVERSCAN_NOISE_FACTOR = overscan_noise_factor(SERIAL_OVERSCAN, PARALLEL_OVERSCAN)
"""`overscan_noise_factor` of an ITL amp (64 overscan columns, 48 rows): 1.031."""


@dataclasses.dataclass
class IsrSettings:
    """Which ISR steps to run (names follow the IsrTaskLSST config fields).

    Attributes
    ----------
    doDither : `bool`
        Add U[-0.5, 0.5) ADU to the integer raw values.
    doSaturation : `bool`
        Mask raw values at or above ``saturation`` as ``SAT``.
    saturation : `float`
        Saturation level (ADU).
    doApplyGains : `bool`
        Convert to electrons with the nominal camera gains.
    doBootstrap : `bool`
        Use gain 1 (image stays in ADU) and the overscan noise as read noise.
    doCrosstalk, doLinearize, doDeferredCharge : `bool`
        Accepted for cp_pipe compatibility; nothing to correct in the simulation.
    doBias, doDark, doDefect, doFlat : `bool`
        Subtract the bias, subtract the scaled dark, mask defects, divide by the flat.
    doVariance : `bool`
        Compute the variance plane (otherwise it is left at 1).
    doInterpolate : `bool`
        Interpolate over ``BAD``, ``SAT`` and ``UNMASKEDNAN`` pixels.
    doStandardStatistics : `bool`
        Record ``LSST ISR FINAL MEAN/MEDIAN/STDEV <amp>``.
    """

    doDither: bool = True
    doSaturation: bool = False
    saturation: float = float(SATURATION_ADU)
    doApplyGains: bool = True
    doBootstrap: bool = False
    doCrosstalk: bool = False
    doLinearize: bool = False
    doDeferredCharge: bool = False
    doBias: bool = False
    doDark: bool = False
    doDefect: bool = False
    doFlat: bool = False
    doVariance: bool = True
    doInterpolate: bool = False
    doStandardStatistics: bool = True


@dataclasses.dataclass
class IsrResult:
    """Output of `run_isr`.

    Attributes
    ----------
    image : `numpy.ndarray`
        Assembled detector image (float32), in electrons or ADU (``LSST ISR UNITS``).
    variance : `numpy.ndarray`
        Variance plane (float32, image units squared).
    masks : `dict` [`str`, `numpy.ndarray`]
        Boolean mask planes (``BAD``, ``SAT``, ``INTRP``, ``UNMASKEDNAN``) that have any pixel set.
    metadata : `dict` [`str`, `typing.Any`]
        The raw header plus the ISR keys.
    """

    image: np.ndarray
    variance: np.ndarray
    masks: dict[str, np.ndarray]
    metadata: dict[str, Any]

    def mask(self, plane: str) -> np.ndarray:
        """Return a mask plane (all False when it was never set)."""
        plane_array = self.masks.get(plane)
        return np.zeros(self.image.shape, dtype=bool) if plane_array is None else plane_array


def dither_seed(exposure_id: int, detector_id: int, amp_name: str) -> int:
    """Deterministic dither seed for one amp of one exposure (ip_isr seeds with the exposure id)."""
    return (int(exposure_id) * 1009 + int(detector_id) * 31 + zlib.crc32(amp_name.encode())) % 2**63


def apply_serial_overscan(amp: np.ndarray, geometry: AmpGeometry) -> tuple[float, float]:
    """Subtract the per-row median of the serial overscan from every row of a raw amp, in place.

    Parameters
    ----------
    amp : `numpy.ndarray`
        Float raw amp array (all rows, incl. the parallel overscan rows), modified in place.
    geometry : `butler.camera.AmpGeometry`
        Raw layout.

    Returns
    -------
    residual_stdev : `float`
        3-sigma clipped stdev (ADU) of the overscan minus its per-row model, over the data rows.
    median_level : `float`
        Median of the per-row overscan levels (ADU).
    """
    first = geometry.serial_overscan_slice[1].start + OVERSCAN_SKIP
    last = geometry.serial_overscan_slice[1].stop - OVERSCAN_SKIP
    overscan = amp[:, first:last]
    per_row = np.median(overscan, axis=1)
    residual = overscan[: geometry.ny] - per_row[: geometry.ny, np.newaxis]
    residual_stdev = float(clipped_stats(residual, nsigma=3.0, niter=3).stdev)
    amp -= per_row[:, np.newaxis]
    return residual_stdev, float(np.median(per_row))


def apply_parallel_overscan(amp: np.ndarray, geometry: AmpGeometry) -> float:
    """Subtract the per-column median of the parallel overscan from the data columns, in place.

    Returns the median of the per-column levels (ADU, after the serial correction).
    """
    data_cols = geometry.data_slice[1]
    first = geometry.ny + OVERSCAN_SKIP
    last = geometry.raw_shape[0] - OVERSCAN_SKIP
    per_col = np.median(amp[first:last, data_cols], axis=0)
    amp[:, data_cols] -= per_col[np.newaxis, :]
    return float(np.median(per_col))


def interpolate_rows(image: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Replace ``bad`` pixels by linear interpolation between the nearest good pixels of their row.

    Rows with no good pixel are filled with the median of all good pixels. Modifies ``image`` in
    place and returns the boolean array of pixels that were changed (every ``bad`` pixel).

    The values are those of ``numpy.interp`` on each row's good pixels (the same float64 formula,
    ``slope * (x - x_j) + y_j`` between the good pixels either side of a run of bad ones, the nearest
    good value beyond the row's first or last good pixel), computed for all runs at once instead of a
    call per row: a bad column puts a bad pixel in every row of a full-size detector (4000 calls).
    Where each run starts and ends depends only on ``bad``, which is the same defect mask for every
    image of a job: the last mask's runs are kept (`_RowRuns`) and used again when ``bad`` is equal.
    """
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return bad.copy()
    runs = _row_runs(bad)
    y_left = image[runs.pixel_rows, runs.left_cols].astype(np.float64)
    y_right = image[runs.pixel_rows, runs.right_cols].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (y_right - y_left) / runs.span
        values = slope * runs.from_left + y_left
        # numpy.interp's fallbacks for a NaN result: from the right end, then the common value.
        retry = np.isnan(values)
        values[retry] = (slope * runs.from_right + y_right)[retry]
        same = np.isnan(values) & (y_left == y_right)
        values[same] = y_left[same]
    values = np.where(runs.has_left, np.where(runs.has_right, values, y_left), y_right)
    if runs.any_empty:
        good = ~bad
        values[runs.empty] = float(median_of(image[good])) if runs.any_good else 0.0
    image[runs.pixel_rows, runs.pixel_cols] = values
    return runs.mask.copy()


@dataclasses.dataclass(frozen=True)
class _RowRuns:
    """The runs of bad pixels along the rows of one mask, as `interpolate_rows` needs them.

    Attributes
    ----------
    mask : `numpy.ndarray`
        The mask they were found in (a private copy).
    pixel_rows, pixel_cols : `numpy.ndarray`
        Every bad pixel, run by run in row-major order.
    left_cols, right_cols : `numpy.ndarray`
        The good columns either side of each pixel's run (clipped into the row when there is none).
    has_left, has_right, empty : `numpy.ndarray`
        Whether the run has a good pixel on its left, on its right, or on neither side.
    span, from_left, from_right : `numpy.ndarray`
        ``x_right - x_left``, ``x - x_left`` and ``x - x_right`` (float64, numpy.interp's terms).
    any_empty, any_good : `bool`
        Whether some row has no good pixel; whether any pixel is good.
    """

    mask: np.ndarray
    pixel_rows: np.ndarray
    pixel_cols: np.ndarray
    left_cols: np.ndarray
    right_cols: np.ndarray
    has_left: np.ndarray
    has_right: np.ndarray
    empty: np.ndarray
    span: np.ndarray
    from_left: np.ndarray
    from_right: np.ndarray
    any_empty: bool
    any_good: bool


_LAST_ROW_RUNS: list[_RowRuns] = []


def _row_runs(bad: np.ndarray) -> _RowRuns:
    """`_RowRuns` of ``bad``: the last ones made if their mask equals ``bad``, else new ones (kept)."""
    if _LAST_ROW_RUNS:
        last = _LAST_ROW_RUNS[0]
        if last.mask.shape == bad.shape and np.array_equal(last.mask, bad):
            return last
    rows = np.flatnonzero(bad.any(axis=1))
    width = bad.shape[1]
    padded = np.zeros((rows.size, width + 2), dtype=np.int8)
    padded[:, 1:-1] = bad[rows]
    step = np.diff(padded, axis=1)
    # Runs of bad pixels: [start, end) in row rows[run_rows]; row-major order pairs them up.
    run_rows, starts = np.nonzero(step == 1)
    ends = np.nonzero(step == -1)[1]
    lengths = ends - starts
    pixel_rows = rows[np.repeat(run_rows, lengths)]
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pixel_cols = np.repeat(starts, lengths) + offsets
    left = np.repeat(starts - 1, lengths)  # last good column before the run (-1: none)
    right = np.repeat(ends, lengths)  # first good column after it (width: none)
    has_left, has_right = left >= 0, right < width
    x, x_left, x_right = (array.astype(np.float64) for array in (pixel_cols, left, right))
    empty = ~(has_left | has_right)
    runs = _RowRuns(
        mask=bad.copy(),
        pixel_rows=pixel_rows,
        pixel_cols=pixel_cols,
        left_cols=np.maximum(left, 0),
        right_cols=np.minimum(right, width - 1),
        has_left=has_left,
        has_right=has_right,
        empty=empty,
        span=x_right - x_left,
        from_left=x - x_left,
        from_right=x - x_right,
        any_empty=bool(empty.any()),
        any_good=not bool(bad.all()),
    )
    _LAST_ROW_RUNS[:] = [runs]
    return runs


def _ptc_or_camera(ptc_values: Mapping[str, float] | None, amp: str, nominal: float) -> tuple[float, str]:
    """The PTC's value of ``amp`` if it has a positive finite one, else the camera's ``nominal``, and
    the source name for the ``LSST ISR ... SOURCE`` header (``PTC`` or ``CAMERA``)."""
    value = math.nan if ptc_values is None else float(ptc_values.get(amp, math.nan))
    if math.isfinite(value) and value > 0:
        return value, "PTC"
    return float(nominal), "CAMERA"


def run_isr(
    amps: Mapping[str, np.ndarray],
    metadata: Mapping[str, Any],
    detector: Detector,
    settings: IsrSettings,
    *,
    exposure_id: int = 0,
    bias: np.ndarray | None = None,
    dark: np.ndarray | None = None,
    dark_time: float | None = None,
    dark_calib_time: float = 1.0,
    defects: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    read_noise: Mapping[str, float] | None = None,
    gains: Mapping[str, float] | None = None,
) -> IsrResult:
    """Run the numpy ISR on the raw amps of one detector.

    Parameters
    ----------
    amps : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Raw amp arrays (ADU) in assembled orientation, keyed by amp name (see `butler.camera`).
    metadata : `~collections.abc.Mapping` [`str`, `typing.Any`]
        Raw header (``DARKTIME`` is used for the dark scaling when ``dark_time`` is not given).
    detector : `butler.camera.Detector`
        Detector with the nominal amp gains and read noise.
    settings : `IsrSettings`
        Steps to run.
    exposure_id : `int`, optional
        Exposure id (dither seed).
    bias, dark, flat : `numpy.ndarray`, optional
        Assembled calibration images (bias in image units, dark in image units per second of dark
        time, flat as a multiplicative response), required when the matching step is on.
    dark_time : `float`, optional
        Dark time of this exposure (s); defaults to ``metadata["DARKTIME"]``.
    dark_calib_time : `float`, optional
        Dark time the dark calibration is normalised to (1 s for cp_pipe darks).
    defects : `numpy.ndarray`, optional
        Boolean defect mask of the assembled detector, required when ``doDefect``.
    read_noise : `~collections.abc.Mapping` [`str`, `float`], optional
        Per amp read noise (e-) of the PTC given to the ISR (cp_pipe writes the PTC noise, which
        includes what the overscan correction adds); amps missing or non-finite use the camera's
        nominal value. Not used in bootstrap mode (ADU, the overscan noise).
    gains : `~collections.abc.Mapping` [`str`, `float`], optional
        Per amp gain (e-/ADU) of the PTC given to the ISR (cp_pipe's ISR applies the PTC's gains);
        amps missing or non-finite use the camera's nominal gain. Not used in bootstrap mode or
        without ``doApplyGains``.

    Returns
    -------
    result : `IsrResult`
        The processed image.
    """
    names = [amp.name for amp in detector if amp.name in amps]
    if len(names) != len(detector.amplifiers):
        missing = sorted(set(detector.amp_names) - set(names))
        raise ValueError(f"Raw of {detector.name} lacks amplifiers {missing}.")
    geometry = detector.raw_geometry(next(iter(amps.values())).shape)
    md: dict[str, Any] = dict(metadata)
    image = np.empty(geometry.detector_shape, dtype=np.float32)
    saturated = np.zeros(geometry.detector_shape, dtype=bool) if settings.doSaturation else None
    read_noise_units: dict[str, float] = {}
    noop = [
        step
        for step, flag in (
            ("crosstalk", settings.doCrosstalk),
            ("linearize", settings.doLinearize),
            ("deferredCharge", settings.doDeferredCharge),
        )
        if flag
    ]
    if noop:
        md["LSST ISR NOOP STEPS"] = ",".join(noop)
    for amp in detector:
        raw = np.asarray(amps[amp.name])
        if settings.doDither:
            # rng.uniform(-0.5, 0.5) is -0.5 + 1.0 * rng.random(), bit for bit: drawn into the working
            # array itself, which then takes the raw values (one float64 array per amp, not three).
            rng = np.random.default_rng(dither_seed(exposure_id, detector.id, amp.name))
            work = rng.random(size=raw.shape)
            work -= 0.5
            work += raw
        else:
            work = raw.astype(np.float64)
        residual_stdev, serial_median = apply_serial_overscan(work, geometry)
        md[f"LSST ISR OVERSCAN RESIDUAL SERIAL STDEV {amp.name}"] = residual_stdev
        md[f"LSST ISR OVERSCAN SERIAL MEDIAN {amp.name}"] = serial_median
        md[f"LSST ISR OVERSCAN PARALLEL MEDIAN {amp.name}"] = apply_parallel_overscan(work, geometry)
        if settings.doBootstrap or not settings.doApplyGains:
            gain = 1.0
            amp_noise = residual_stdev
        else:
            gain, md[f"LSST ISR GAIN SOURCE {amp.name}"] = _ptc_or_camera(gains, amp.name, amp.gain)
            amp_noise, md[f"LSST ISR READNOISE SOURCE {amp.name}"] = _ptc_or_camera(
                read_noise, amp.name, amp.read_noise
            )
        md[f"LSST ISR GAIN {amp.name}"] = gain
        md[f"LSST ISR READNOISE {amp.name}"] = amp_noise
        read_noise_units[amp.name] = amp_noise
        box = amp.bbox_slices(geometry)
        image[box] = work[geometry.data_slice] * gain
        if saturated is not None:
            saturated[box] = raw[geometry.data_slice] >= settings.saturation
    md["LSST ISR UNITS"] = "electron" if (settings.doApplyGains and not settings.doBootstrap) else "adu"
    md["LSST ISR BOOTSTRAP"] = bool(settings.doBootstrap)
    masks: dict[str, np.ndarray] = {}
    if saturated is not None and saturated.any():
        masks["SAT"] = saturated

    if settings.doBias:
        if bias is None:
            raise ValueError("doBias is set but no bias was given.")
        image -= _check_shape(bias, image, "bias")
        md["LSST ISR BIAS"] = True
    if settings.doDark:
        if dark is None:
            raise ValueError("doDark is set but no dark was given.")
        exposure_dark_time = float(md.get("DARKTIME", 0.0)) if dark_time is None else float(dark_time)
        scale = exposure_dark_time / dark_calib_time
        image -= _check_shape(dark, image, "dark") * np.float32(scale)
        md["LSST ISR DARK SCALE"] = scale
    if settings.doDefect:
        if defects is None:
            raise ValueError("doDefect is set but no defect mask was given.")
        bad = _check_shape(defects, image, "defects").astype(bool)
        if bad.any():
            masks["BAD"] = bad.copy()
        md["LSST ISR DEFECTS NPIX"] = int(bad.sum())
    nan = ~np.isfinite(image)
    if nan.any():
        masks["UNMASKEDNAN"] = nan & ~masks.get("BAD", np.zeros_like(nan))

    if settings.doVariance:
        variance = np.empty_like(image)
        for amp in detector:
            box = amp.bbox_slices(geometry)
            variance[box] = image[box] + np.float32(read_noise_units[amp.name] ** 2)
    else:
        variance = np.ones_like(image)

    if settings.doFlat:
        if flat is None:
            raise ValueError("doFlat is set but no flat was given.")
        flat_array = _check_shape(flat, image, "flat").astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            image /= flat_array
            variance /= flat_array**2
        invalid = ~np.isfinite(image)
        if invalid.any():
            masks["UNMASKEDNAN"] = masks.get("UNMASKEDNAN", np.zeros_like(invalid)) | invalid

    if settings.doInterpolate:
        to_fix = np.zeros(image.shape, dtype=bool)
        for plane in ("BAD", "SAT", "UNMASKEDNAN"):
            if plane in masks:
                to_fix |= masks[plane]
        if to_fix.any():
            masks["INTRP"] = interpolate_rows(image, to_fix)
            replaced = ~np.isfinite(variance)
            replaced |= to_fix
            variance[replaced] = np.float32(median_of(variance[~replaced]))

    if settings.doStandardStatistics:
        excluded = np.zeros(image.shape, dtype=bool)
        for plane in ("BAD", "SAT", "UNMASKEDNAN"):
            if plane in masks:
                excluded |= masks[plane]
        for amp in detector:
            box = amp.bbox_slices(geometry)
            stats = plain_stats(image[box], excluded[box])
            md[f"LSST ISR FINAL MEAN {amp.name}"] = stats["MEAN"]
            md[f"LSST ISR FINAL MEDIAN {amp.name}"] = stats["MEDIAN"]
            md[f"LSST ISR FINAL STDEV {amp.name}"] = stats["STDEV"]
    return IsrResult(image=image, variance=variance, masks=masks, metadata=md)


def _check_shape(calib: np.ndarray, image: np.ndarray, name: str) -> np.ndarray:
    """Return ``calib`` as an array after checking it matches the image shape."""
    array = np.asarray(calib)
    if array.shape != image.shape:
        raise ValueError(f"The {name} has shape {array.shape}, the exposure {image.shape}.")
    return array
