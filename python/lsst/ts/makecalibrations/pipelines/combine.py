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

"""Combine many processed exposures of one detector into a calibration, in row bands (as cp_pipe's
``CalibCombineTask``, https://github.com/lsst/cp_pipe).

`combine_exposures` reproduces cp_pipe's ``CalibCombineTask`` in numpy: each input is divided by its
scale (``Unity``, ``ExposureTime``, ``DarkTime`` or a per-exposure list), then the inputs are
combined pixel by pixel with afw's ``MEANCLIP`` (3 sigma, 3 iterations, `stats.clipped_stats_stack`),
ignoring input pixels flagged in the configured mask planes. Pixels with no usable input become
``BAD`` (``noGoodPixelsMask``), NaN results are replaced by the image median and flagged ``BAD``.

Memory: the inputs are never all in memory. They are read through `BandSource` callables in bands
of full rows; the band height is chosen so that the stacked band of all inputs (with the working
arrays of the clipped mean) fits in a fixed budget, so the band shrinks as the number of inputs
grows and peak memory stays flat. Only the output planes are detector sized.

`combined_metadata` writes the cp_pipe headers (``OBSTYPE``, ``CALIB_CREATION_*``, ``CPP_INPUT_*``,
``FLATSRC``, per-amp ``DISTRIBUTION`` and ``BADPIX-NUM`` QA keys) and the exposure/dark time of the
output (0 for a bias, 1 otherwise).

May import: numpy, astropy, `.stats`, `butler.camera`.
"""

from __future__ import annotations

__all__ = [
    "BYTES_PER_STACK_VALUE",
    "SCALINGS",
    "Band",
    "BandSource",
    "CombineResult",
    "band_height",
    "combine_band",
    "combine_exposures",
    "combined_metadata",
    "input_scale",
]

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from astropy.time import Time

from ..butler.camera import Detector, get_camera
from .stats import clipped_stats_stack

SCALINGS = ("Unity", "ExposureTime", "DarkTime", "InputList")
"""Supported ``exposureScaling`` values (cp_pipe's ``MeanStats`` is not needed by these pipelines)."""

BYTES_PER_STACK_VALUE = 24
"""Peak bytes per stacked input value during a band combine.

The stack itself (float32), its usable flags, the sorted copy used for the quantiles, the kept flags,
the masked values and the deviations: about 4 + 1 + 4 + 1 + 4 + 4 bytes, plus the freshly read band
(image, mask, optional variance) before it is copied into the stack.
"""

QA_PERCENTILES = (0, 5, 16, 50, 84, 95, 100)
"""Percentiles of the per-amp ``DISTRIBUTION`` QA keys."""


@dataclasses.dataclass
class Band:
    """Pixels of one input over a band of full rows.

    Attributes
    ----------
    image : `numpy.ndarray`
        Image values, shape ``(rows, cols)``.
    excluded : `numpy.ndarray`
        True for pixels to ignore (flagged in one of the combine's mask planes).
    variance : `numpy.ndarray` or `None`
        Variance values, only needed when errors come from the input variance.
    metadata : `dict` [`str`, `typing.Any`] or `None`
        Header of the input (only needed from the first band read).
    """

    image: np.ndarray
    excluded: np.ndarray
    variance: np.ndarray | None = None
    metadata: dict[str, Any] | None = None


BandSource = Callable[[int, int, bool], Band]
"""``source(row_start, row_stop, with_variance) -> Band`` reads one input over rows [start, stop)."""


@dataclasses.dataclass
class CombineResult:
    """A combined calibration image.

    Attributes
    ----------
    image, variance : `numpy.ndarray`
        Combined image and its variance (float32).
    bad : `numpy.ndarray`
        Pixels with no usable input or a non-finite result.
    n_used : `numpy.ndarray`
        Number of inputs kept by the clipped mean at each pixel (uint16).
    band_rows : `int`
        Rows per band used.
    n_bands : `int`
        Number of bands read.
    """

    image: np.ndarray
    variance: np.ndarray
    bad: np.ndarray
    n_used: np.ndarray
    band_rows: int
    n_bands: int


def input_scale(scaling: str, metadata: Mapping[str, Any], listed: float | None = None) -> float:
    """Return the scale an input is divided by.

    Parameters
    ----------
    scaling : `str`
        One of `SCALINGS`.
    metadata : `~collections.abc.Mapping`
        Header of the input (``EXPTIME``, ``DARKTIME``).
    listed : `float`, optional
        The scale from the normalisation list (``InputList``).

    Returns
    -------
    scale : `float`
        Positive finite scale.

    Raises
    ------
    ValueError
        If the scale is missing, zero, negative or not finite.
    """
    if scaling == "Unity":
        scale = 1.0
    elif scaling == "ExposureTime":
        scale = float(metadata.get("EXPTIME", np.nan))
    elif scaling == "DarkTime":
        scale = float(metadata.get("DARKTIME", np.nan))
    elif scaling == "InputList":
        scale = np.nan if listed is None else float(listed)
    else:
        raise ValueError(f"Unknown exposureScaling {scaling!r}; expected one of {SCALINGS}.")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"exposureScaling {scaling}: invalid scale {scale!r}.")
    return scale


def band_height(n_inputs: int, n_cols: int, n_rows: int, memory_budget_bytes: float) -> int:
    """Rows per band so that ``n_inputs`` stacked bands fit in the memory budget (at least 1 row)."""
    per_row = max(1, n_inputs) * n_cols * BYTES_PER_STACK_VALUE
    return int(min(n_rows, max(1, memory_budget_bytes // per_row)))


def combine_band(
    images: np.ndarray,
    excluded: np.ndarray,
    scales: np.ndarray,
    nsigma: float,
    niter: int,
    variances: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale and clipped-mean combine one band of a stack of inputs.

    Parameters
    ----------
    images : `numpy.ndarray`
        Stack ``(N, rows, cols)`` (float32); divided by ``scales`` in place.
    excluded : `numpy.ndarray`
        Same shape, True for input pixels to ignore.
    scales : `numpy.ndarray`
        Shape ``(N,)`` or ``(N, rows, cols)``.
    nsigma, niter : `float`, `int`
        Clipping parameters.
    variances : `numpy.ndarray`, optional
        Input variances ``(N, rows, cols)``; when given (few inputs) the output variance is
        ``sum(var_i / s_i^2) / n^2`` over the usable inputs, otherwise ``varclip / n`` (afw's
        ``MEANCLIP`` error).

    Returns
    -------
    mean, variance : `numpy.ndarray`
        Combined band and its variance (float32, NaN where no input is usable).
    n_used : `numpy.ndarray`
        Inputs kept per pixel.
    """
    scale_array = np.asarray(scales, dtype=np.float32)
    if scale_array.ndim == 1:
        scale_array = scale_array[:, np.newaxis, np.newaxis]
    if not np.all(scale_array == 1.0):  # x / 1 is x: unit scales (biases) need no pass over the stack
        images /= scale_array
    stats = clipped_stats_stack(images, excluded, nsigma=nsigma, niter=niter)
    n = np.asarray(stats.n)
    with np.errstate(invalid="ignore", divide="ignore"):
        if variances is not None:
            usable = ~excluded & np.isfinite(variances)
            scaled = np.where(usable, variances / scale_array**2, 0.0)
            n_usable = usable.sum(axis=0)
            variance = scaled.sum(axis=0, dtype=np.float64) / n_usable.astype(np.float64) ** 2
        else:
            variance = np.asarray(stats.variance) / n
    return (
        np.asarray(stats.mean, dtype=np.float32),
        np.asarray(variance, dtype=np.float32),
        n.astype(np.uint16),
    )


def combine_exposures(
    sources: Sequence[BandSource],
    shape: tuple[int, int],
    scales: Sequence[float | Mapping[str, float]],
    *,
    nsigma: float = 3.0,
    niter: int = 3,
    memory_budget_bytes: float = 256 * 2**20,
    variance_from_inputs_below: int = 5,
    detector: Detector | None = None,
) -> CombineResult:
    """Combine inputs read band by band (see the module docstring).

    Parameters
    ----------
    sources : `~collections.abc.Sequence` [`BandSource`]
        One reader per input.
    shape : `tuple` [`int`, `int`]
        Detector image shape ``(rows, cols)``.
    scales : `~collections.abc.Sequence`
        Per input, a scalar scale or a mapping amp name → scale (amp boxes of ``detector``).
    nsigma, niter : `float`, `int`
        Clipping parameters of the clipped mean.
    memory_budget_bytes : `float`
        Budget for the stacked band and its working arrays.
    variance_from_inputs_below : `int`
        With fewer inputs than this, the output variance comes from the input variances
        (cp_pipe's ``maxVisitsToCalcErrorFromInputVariance``).
    detector : `butler.camera.Detector`, optional
        Needed for per-amp scales.

    Returns
    -------
    result : `CombineResult`
        The combined planes.
    """
    n_inputs = len(sources)
    if n_inputs == 0:
        raise ValueError("No inputs to combine.")
    if len(scales) != n_inputs:
        raise ValueError(f"{len(scales)} scales for {n_inputs} inputs.")
    n_rows, n_cols = shape
    detector = detector or get_camera()[0]
    with_variance = n_inputs < variance_from_inputs_below
    rows_per_band = band_height(n_inputs, n_cols, n_rows, memory_budget_bytes)
    image = np.empty(shape, dtype=np.float32)
    variance = np.empty(shape, dtype=np.float32)
    n_used = np.empty(shape, dtype=np.uint16)
    n_bands = 0
    for start in range(0, n_rows, rows_per_band):
        stop = min(n_rows, start + rows_per_band)
        stack = np.empty((n_inputs, stop - start, n_cols), dtype=np.float32)
        excluded = np.empty(stack.shape, dtype=bool)
        var_stack = np.empty(stack.shape, dtype=np.float32) if with_variance else None
        band_scales = np.empty(stack.shape, dtype=np.float32) if _any_mapping(scales) else None
        for i, source in enumerate(sources):
            band = source(start, stop, with_variance)
            if band.image.shape != (stop - start, n_cols):
                raise ValueError(
                    f"Input {i} band has shape {band.image.shape}, expected {(stop - start, n_cols)}."
                )
            stack[i] = band.image
            excluded[i] = band.excluded
            if var_stack is not None:
                var_stack[i] = band.variance if band.variance is not None else np.nan
            if band_scales is not None:
                band_scales[i] = _amp_scale_band(scales[i], start, stop, shape, detector)
            del band
        scale_arg = band_scales if band_scales is not None else np.array(scales, dtype=np.float32)
        mean, var, used = combine_band(stack, excluded, scale_arg, nsigma, niter, var_stack)
        image[start:stop] = mean
        variance[start:stop] = var
        n_used[start:stop] = used
        del stack, excluded, var_stack, band_scales
        n_bands += 1
    bad = ~np.isfinite(image) | ~np.isfinite(variance) | (n_used == 0)
    if bad.any():
        good = ~bad
        image[bad] = np.float32(np.median(image[good])) if good.any() else np.float32(0.0)
        variance[bad] = np.float32(np.median(variance[good])) if good.any() else np.float32(0.0)
    return CombineResult(
        image=image, variance=variance, bad=bad, n_used=n_used, band_rows=rows_per_band, n_bands=n_bands
    )


def _any_mapping(scales: Sequence[float | Mapping[str, float]]) -> bool:
    return any(isinstance(scale, Mapping) for scale in scales)


def _amp_scale_band(
    scale: float | Mapping[str, float], start: int, stop: int, shape: tuple[int, int], detector: Detector
) -> np.ndarray | float:
    """Scale values over rows [start, stop) for a scalar or per-amp scale."""
    if not isinstance(scale, Mapping):
        return float(scale)
    n_rows, n_cols = shape
    ny, nx = n_rows // 2, n_cols // 8
    out = np.full((stop - start, n_cols), np.nan, dtype=np.float32)
    for amp in detector:
        row0, row1 = max(start, amp.iy * ny), min(stop, (amp.iy + 1) * ny)
        if row0 >= row1:
            continue
        value = scale.get(amp.name)
        if value is None:
            raise ValueError(f"No scale for amp {amp.name}.")
        out[row0 - start : row1 - start, amp.ix * nx : (amp.ix + 1) * nx] = value
    return out


def combined_metadata(
    calibration_type: str,
    input_metadata: Sequence[Mapping[str, Any]],
    exposure_ids: Sequence[int],
    scales: Sequence[float | Mapping[str, float]],
    *,
    image: np.ndarray | None = None,
    bad: np.ndarray | None = None,
    detector: Detector | None = None,
    flat_source: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the header of a combined calibration (cp_pipe ``CalibCombineTask`` headers).

    Parameters
    ----------
    calibration_type : `str`
        ``bias``, ``dark`` or ``flat`` (written upper case in ``OBSTYPE``).
    input_metadata : `~collections.abc.Sequence` [`~collections.abc.Mapping`]
        Headers of the inputs, in the order of ``exposure_ids``.
    exposure_ids : `~collections.abc.Sequence` [`int`]
        Input exposure ids.
    scales : `~collections.abc.Sequence`
        Scale each input was divided by.
    image, bad : `numpy.ndarray`, optional
        Combined image and bad-pixel mask, for the per-amp QA keys.
    detector : `butler.camera.Detector`, optional
        Detector (amp boxes for the QA keys, ``DETECTOR``/``DET_NAME``).
    flat_source : `str`, optional
        ``FLATSRC`` for flats.
    extra : `~collections.abc.Mapping`, optional
        More keys to add last.

    Returns
    -------
    metadata : `dict` [`str`, `typing.Any`]
        Header of the combined calibration.
    """
    ctype = calibration_type.lower()
    md: dict[str, Any] = {}
    # Keys that are identical in every input are kept (afw merge_headers mode 'drop').
    if input_metadata:
        common = dict(input_metadata[0])
        for other in input_metadata[1:]:
            for key in list(common):
                if key not in other or other[key] != common[key]:
                    del common[key]
        md.update({key: value for key, value in common.items() if not _per_exposure_key(key)})
    now = datetime.datetime.now(datetime.UTC)
    md["OBSTYPE"] = ctype.upper()
    md["CALIB_CREATION_DATE"] = now.strftime("%Y-%m-%d")
    md["CALIB_CREATION_TIME"] = now.strftime("%H:%M:%S")
    md["CALIB_CREATION_DATETIME"] = now.isoformat()
    exposure_time = 0.0 if ctype == "bias" else 1.0
    md["EXPTIME"] = exposure_time
    md["DARKTIME"] = exposure_time
    dates = [str(m["DATE-OBS"]) for m in input_metadata if m.get("DATE-OBS")]
    if dates:
        times = Time(dates, scale="tai")
        md["DATE-OBS"] = Time(np.mean(times.mjd), format="mjd", scale="tai").isot
    for i, (exposure_id, meta, scale) in enumerate(zip(exposure_ids, input_metadata, scales, strict=True)):
        md[f"CPP_INPUT_{i}"] = int(exposure_id)
        md[f"CPP_INPUT_DATE_{i}"] = str(meta.get("DATE-OBS", ""))
        md[f"CPP_INPUT_EXPT_{i}"] = float(meta.get("EXPTIME", np.nan))
        md[f"CPP_INPUT_SCALE_{i}"] = (
            float(np.mean(list(scale.values()))) if isinstance(scale, Mapping) else float(scale)
        )
    md["CPP_N_INPUTS"] = len(exposure_ids)
    if ctype == "flat":
        md["FLATSRC"] = flat_source or "DOME"
    if detector is not None:
        md["DETECTOR"] = detector.id
        md["DET_NAME"] = detector.name
        md["CALIB_ID"] = f"raftName=R22 detectorName={detector.slot} detector={detector.id}"
        if image is not None:
            ny, nx = image.shape[0] // 2, image.shape[1] // 8
            for amp in detector:
                rows = slice(amp.iy * ny, (amp.iy + 1) * ny)
                cols = slice(amp.ix * nx, (amp.ix + 1) * nx)
                values = image[rows, cols]
                amp_bad = bad[rows, cols] if bad is not None else np.zeros(values.shape, dtype=bool)
                good = values[~amp_bad]
                pct = np.nanpercentile(good, QA_PERCENTILES) if good.size else [np.nan] * len(QA_PERCENTILES)
                for p, value in zip(QA_PERCENTILES, pct, strict=True):
                    md[f"LSST CALIB {ctype.upper()} {amp.name} DISTRIBUTION {p}-PCT"] = float(value)
                md[f"LSST CALIB {ctype.upper()} {amp.name} BADPIX-NUM"] = int(amp_bad.sum())
    if extra:
        md.update(extra)
    return md


def _per_exposure_key(key: str) -> bool:
    """Whether a header key describes one input exposure (and must not reach the combined header)."""
    prefixes = ("LSST ISR OVERSCAN", "LSST ISR FINAL", "LSST ISR DARK SCALE", "OBSID", "EXPID", "DATE-")
    return key.startswith(prefixes) or key in {"EXPTIME", "DARKTIME", "SEQNUM", "EXPOSURE"}
