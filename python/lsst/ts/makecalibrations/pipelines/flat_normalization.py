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

"""Flat-field normalisation across the focal plane (cp_pipe ``CpFlatMeasureTask`` and
``CpFlatNormalizationTask``, https://github.com/lsst/cp_pipe).

`measure_flat` computes the clipped statistics of one ISR-processed flat (whole detector and per
amp). `solve_scales` fits the bilinear model ``B[d, e] = G[d] * E[e]`` to the detector levels of every
detector ``d`` and exposure ``e`` of a job, in log space, with the Pan-STARRS iteration cp_pipe uses:
the exposure scales ``E`` are what the flat combine divides each input by, so a combined flat keeps
the relative throughput ``G[d]`` of its detector (pixel-weighted mean of ``G`` over the detectors = 1)
instead of being normalised to 1 per detector.

May import: numpy, `.stats`, `butler.camera`.
"""

from __future__ import annotations

__all__ = ["FlatScales", "measure_flat", "scales_to_structure", "solve_scales"]

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..butler.camera import Detector
from .stats import clipped_stats


def measure_flat(
    image: np.ndarray, excluded: np.ndarray, detector: Detector, nsigma: float = 3.0, niter: int = 3
) -> dict[str, Any]:
    """Clipped statistics of one processed flat, with cp_pipe's ``cpFlatStatistics`` keys.

    Parameters
    ----------
    image : `numpy.ndarray`
        Assembled detector image.
    excluded : `numpy.ndarray`
        Pixels to ignore (``DETECTED``, ``BAD``, ``NO_DATA``).
    detector : `butler.camera.Detector`
        Detector (amp boxes).
    nsigma, niter : `float`, `int`
        Clipping parameters.

    Returns
    -------
    stats : `dict` [`str`, `typing.Any`]
        ``DETECTOR_MEDIAN`` (the clipped mean, as cp_pipe), ``DETECTOR_SIGMA``, ``DETECTOR_N``, and per
        amp index ``i``: ``AMP_NAME_i``, ``AMP_MEDIAN_i``, ``AMP_SIGMA_i``, ``AMP_N_i``.
    """
    ny, nx = image.shape[0] // 2, image.shape[1] // 8
    det_stats = clipped_stats(image, excluded, nsigma, niter)
    out: dict[str, Any] = {
        "DETECTOR_MEDIAN": float(det_stats.mean),
        "DETECTOR_SIGMA": float(det_stats.stdev),
        "DETECTOR_N": int(det_stats.n),
    }
    for i, amp in enumerate(detector):
        rows = slice(amp.iy * ny, (amp.iy + 1) * ny)
        cols = slice(amp.ix * nx, (amp.ix + 1) * nx)
        amp_stats = clipped_stats(image[rows, cols], excluded[rows, cols], nsigma, niter)
        out[f"AMP_NAME_{i}"] = amp.name
        out[f"AMP_MEDIAN_{i}"] = float(amp_stats.mean)
        out[f"AMP_SIGMA_{i}"] = float(amp_stats.stdev)
        out[f"AMP_N_{i}"] = int(amp_stats.n)
    return out


@dataclasses.dataclass
class FlatScales:
    """Solution of the bilinear flat model.

    Attributes
    ----------
    detectors : `list` [`int`]
        Detector ids (rows of the model).
    exposures : `list` [`int`]
        Exposure ids (columns).
    detector_scale : `numpy.ndarray`
        ``G[d]``, pixel-weighted mean 1.
    exposure_scale : `numpy.ndarray`
        ``E[e]``.
    """

    detectors: list[int]
    exposures: list[int]
    detector_scale: np.ndarray
    exposure_scale: np.ndarray


def _weighted_mean(values: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Weighted mean along ``axis`` ignoring non-finite values (NaN where no weight)."""
    usable = np.isfinite(values) & (weights > 0)
    w = np.where(usable, weights, 0.0)
    total = np.sum(w, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(np.where(usable, values, 0.0) * w, axis=axis) / total


def solve_scales(
    levels: np.ndarray,
    npix: np.ndarray,
    detectors: Sequence[int],
    exposures: Sequence[int],
    n_iter: int = 10,
) -> FlatScales:
    """Fit ``levels[d, e] = G[d] * E[e]`` in log space (cp_pipe ``measureScales``, DETECTOR level).

    Parameters
    ----------
    levels : `numpy.ndarray`
        Detector levels ``B[d, e]`` (clipped means); non-finite or non-positive entries are ignored.
    npix : `numpy.ndarray`
        Pixel counts ``N[d, e]`` used as weights.
    detectors, exposures : `~collections.abc.Sequence` [`int`]
        Ids of the rows and columns.
    n_iter : `int`
        Iterations (``scaleMaxIter``).

    Returns
    -------
    scales : `FlatScales`
        ``G`` normalised so that its pixel-weighted mean is 1, and ``E``.
    """
    levels = np.asarray(levels, dtype=np.float64)
    weights = np.asarray(npix, dtype=np.float64)
    if levels.shape != (len(detectors), len(exposures)) or weights.shape != levels.shape:
        raise ValueError(f"levels {levels.shape} / npix {weights.shape} do not match the id lists.")
    with np.errstate(invalid="ignore", divide="ignore"):
        log_b = np.where(np.isfinite(levels) & (levels > 0), np.log(levels), np.nan)
    weights = np.where(np.isfinite(log_b), weights, 0.0)
    log_g = np.zeros(len(detectors))
    log_e = _weighted_mean(log_b - log_g[:, np.newaxis], weights, axis=0)
    det_weight = weights.sum(axis=1)
    for _ in range(n_iter):
        log_g = _weighted_mean(log_b - log_e[np.newaxis, :], weights, axis=1)
        if np.isnan(log_g).any():
            log_g = np.where(np.isnan(log_g), np.nanmean(log_g), log_g)
        log_e = _weighted_mean(log_b - log_g[:, np.newaxis], weights, axis=0)
        flux_level = np.sum(det_weight * np.exp(log_g)) / np.sum(det_weight)
        log_g -= np.log(flux_level)
    log_e = _weighted_mean(log_b - log_g[:, np.newaxis], weights, axis=0)
    return FlatScales(
        detectors=[int(d) for d in detectors],
        exposures=[int(e) for e in exposures],
        detector_scale=np.exp(log_g),
        exposure_scale=np.exp(log_e),
    )


def scales_to_structure(scales: FlatScales, amp_names: Mapping[int, Sequence[str]]) -> dict[str, Any]:
    """Return cp_pipe's ``cpFlatNormalizeScales`` structure.

    ``{"expScale": {det: {amp: {exp: E[exp]}}}, "detScale": {det: G[det]}}``; at DETECTOR level every
    amp of a detector gets the same exposure scale. Exposures whose scale is undefined are left out.
    """
    exp_scale: dict[int, dict[str, dict[int, float]]] = {}
    det_scale: dict[int, float] = {}
    for d, det in enumerate(scales.detectors):
        per_exp = {
            int(exp): float(value)
            for exp, value in zip(scales.exposures, scales.exposure_scale, strict=True)
            if np.isfinite(value)
        }
        exp_scale[int(det)] = {amp: dict(per_exp) for amp in amp_names[det]}
        det_scale[int(det)] = float(scales.detector_scale[d])
    return {"expScale": exp_scale, "detScale": det_scale}
