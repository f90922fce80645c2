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

"""cp_verify in numpy: per-detector statistics and tests of processed bias, dark and flat exposures,
and the detector → exposure → run merges with cp_verify's exact output structures
(https://github.com/lsst/cp_verify, ``python/lsst/cp/verify``).

* `detector_stats` measures one processed exposure per amp with a 5-sigma, 3-iteration clip,
  ignoring ``DETECTED``/``BAD``/``NO_DATA`` pixels: bias and dark ``MEAN``, ``NOISE`` (STDEVCLIP),
  ``CR_NOISE`` (plain STDEV after `cosmic_rays.find_cosmic_rays` on the whole detector) and, for
  biases, ``AMP_CORNER``; flat ``MEAN`` and ``NOISE`` and the detector ``MEAN``/``SCATTER`` of the
  amp means. It then applies the DMTN-101 tests (bias/dark: ``MEAN``, one-sided ``NOISE``,
  ``CR_NOISE``, then ``READ_NOISE_CONSISTENT`` outside ``SUCCESS``; flat: per-amp
  ``NOISE <= sqrt(MEAN)`` and detector ``SCATTER/MEAN <= 0.05``).
* `merge_exposure` keys an exposure's detectors by name (``"R22_S21"``) with ``SUCCESS`` and, for
  failing detectors, ``FAILURES`` such as ``"C17 NOISE"``; flats add the ``EXP`` scatter test.
* `merge_run` keys exposures by integer id with ``FAILURES`` such as ``"R22_S21 C17 NOISE"``; for flats
  (whose exposure level has a ``VERIFY`` key) only the exposure-level failures are listed, as
  cp_verify's ``CpVerifyRunMergeTask`` does.

May import: numpy, astropy, `.stats`, `.cosmic_rays`, `butler.camera`.
"""

from __future__ import annotations

__all__ = [
    "FULL_DETECTOR_PIXELS",
    "STAGES",
    "VerifyThresholds",
    "detector_failures",
    "detector_stats",
    "exp_scatter_limit",
    "merge_exposure",
    "merge_run",
]

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from astropy.time import Time

from ..butler.camera import AmpGeometry, Detector, amp_geometry
from .cosmic_rays import CosmicRaySettings, TooManyCosmicRaysError, find_cosmic_rays
from .stats import clipped_stats_of_usable, plain_moments, plain_moments_of_usable, usable_pixels

STAGES = ("BIAS", "DARK", "FLAT")
"""Verification stages (cp_verify ``stageName``)."""

FULL_DETECTOR_PIXELS = int(np.prod(amp_geometry("full").detector_shape))
"""Pixels of a real ComCam detector (4072 x 4000)."""


@dataclasses.dataclass(frozen=True)
class VerifyThresholds:
    """Test thresholds (cp_verify / DMTN-101 defaults).

    Attributes
    ----------
    num_sigma_clip : `float`
        Clip of the NOISE statistic.
    clip_max_iter : `int`
        Clipping iterations.
    noise_tolerance : `float`
        Relative excess of NOISE over the read noise allowed (one-sided).
    cr_noise_tolerance : `float`
        Relative difference of NOISE and CR_NOISE allowed.
    read_noise_tolerance : `float`
        Relative excess of the overscan noise (e-) over the read noise allowed.
    det_scatter_tolerance : `float`
        Flat: SCATTER/MEAN of the amp means of a detector.
    exp_scatter_threshold : `float`
        Flat: absolute stdev of the detector means of an exposure (image units, e-), for full-size
        detectors (cp_verify's limit; see `exp_scatter_limit`).
    exp_scatter_scale_with_size : `bool`
        Flat, small-frame switch: on detectors with fewer pixels than a full-size one, scale
        ``exp_scatter_threshold`` by ``sqrt(full-size pixels / detector pixels)``. The
        statistical floor of the exposure scatter is ``~sqrt(mean / pixels)``, so cp_verify's absolute
        0.05 e- (calibrated, with a margin of ~1.7, on 16.3 Mpx ComCam detectors) would fail every
        exposure of a scaled-down simulation; scaling keeps the test's full-size margin.
    cosmic_rays : `cosmic_rays.CosmicRaySettings`
        Cosmic-ray finding before ``CR_NOISE`` (``FindCosmicRaysConfig`` defaults, PSF FWHM 3 px);
        more cosmic-ray pixels than ``n_cr_pixel_max`` on a detector is a processing failure
        (``PROCESSING=False`` on every amp).
    corner_size : `int`
        Side of the AMP_CORNER box.
    """

    num_sigma_clip: float = 5.0
    clip_max_iter: int = 3
    noise_tolerance: float = 0.05
    cr_noise_tolerance: float = 0.05
    read_noise_tolerance: float = 0.05
    det_scatter_tolerance: float = 0.05
    exp_scatter_threshold: float = 0.05
    exp_scatter_scale_with_size: bool = True
    cosmic_rays: CosmicRaySettings = CosmicRaySettings()
    corner_size: int = 200


def _amp_slices(detector: Detector, geometry: AmpGeometry) -> dict[str, tuple[slice, slice]]:
    return {amp.name: amp.bbox_slices(geometry) for amp in detector}


def _geometry_of(image: np.ndarray) -> AmpGeometry:
    return AmpGeometry(nx=image.shape[1] // 8, ny=image.shape[0] // 2)


def _mjd(metadata: Mapping[str, Any]) -> float:
    date = metadata.get("DATE-OBS")
    if not date:
        return math.nan
    try:
        return float(Time(str(date), scale="tai").mjd)
    except ValueError:
        return math.nan


def detector_stats(
    stage: str,
    image: np.ndarray,
    excluded: np.ndarray,
    detector: Detector,
    metadata: Mapping[str, Any],
    thresholds: VerifyThresholds = VerifyThresholds(),
) -> dict[str, Any]:
    """Statistics and tests of one processed exposure of one detector (``verify*DetStats``).

    Parameters
    ----------
    stage : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    image : `numpy.ndarray`
        Processed detector image (e-).
    excluded : `numpy.ndarray`
        Pixels flagged ``DETECTED``, ``BAD`` or ``NO_DATA``.
    detector : `butler.camera.Detector`
        Detector (amp boxes, nominal read noise as fallback).
    metadata : `~collections.abc.Mapping`
        ISR header (``LSST ISR READNOISE/GAIN/OVERSCAN RESIDUAL SERIAL STDEV <amp>``).
    thresholds : `VerifyThresholds`, optional
        Test thresholds.

    Returns
    -------
    stats : `dict` [`str`, `typing.Any`]
        ``{"AMP", "METADATA", "CATALOG", "DET", "ISR", "VERIFY", "SUCCESS"}`` as cp_verify writes them.
    """
    stage = stage.upper()
    if stage not in STAGES:
        raise ValueError(f"Unknown stage {stage!r}; expected one of {STAGES}.")
    geometry = _geometry_of(image)
    slices = _amp_slices(detector, geometry)
    nsig, niter = thresholds.num_sigma_clip, thresholds.clip_max_iter
    amp_stats: dict[str, dict[str, float]] = {}
    read_noise_adu: dict[str, float] = {}
    plain_stdev: dict[str, float] = {}
    for amp in detector:
        box = slices[amp.name]
        # One pick of the usable pixels for MEAN and NOISE (what plain_moments and clipped_stats do).
        source = usable_pixels(image[box], excluded[box])
        usable = source.astype(np.float64, copy=False)
        mean, stdev = plain_moments_of_usable(usable)
        clipped = clipped_stats_of_usable(usable, nsig, niter, source=source)
        amp_stats[amp.name] = {"MEAN": float(mean), "NOISE": float(clipped.stdev)}
        plain_stdev[amp.name] = stdev
        key = f"LSST ISR OVERSCAN RESIDUAL SERIAL STDEV {amp.name}"
        read_noise_adu[amp.name] = float(metadata.get(key, math.nan))
    cr_pixels, force_failure = 0, False
    if stage in ("BIAS", "DARK"):
        cr_pixels, force_failure = _cr_noise(
            image, excluded, slices, amp_stats, thresholds.cosmic_rays, plain_stdev
        )
    if stage == "BIAS":
        for amp in detector:
            corner = amp.corner_slices(geometry, thresholds.corner_size)
            amp_stats[amp.name]["AMP_CORNER"] = float(plain_moments(image[corner], excluded[corner])[0])

    result: dict[str, Any] = {
        "AMP": amp_stats,
        "METADATA": {"READ_NOISE_ADU": read_noise_adu},
        "CATALOG": {},
        "DET": {},
        "ISR": {"MJD": _mjd(metadata), "DETECTOR_PIXELS": int(image.size)},
    }
    if stage == "FLAT":
        result["VERIFY"] = _verify_flat(result, thresholds)
    else:
        result["VERIFY"] = _verify_bias_dark(result, detector, metadata, thresholds, force_failure)
        result["ISR"]["CR_PIXELS"] = cr_pixels
    verify = result["VERIFY"]
    result["SUCCESS"] = bool(
        all(amp["SUCCESS"] for amp in verify["AMP"].values()) and verify.get("DET", {}).get("SUCCESS", True)
    )
    return result


def _cr_noise(
    image: np.ndarray,
    excluded: np.ndarray,
    slices: Mapping[str, tuple[slice, slice]],
    amp_stats: dict[str, dict[str, float]],
    settings: CosmicRaySettings,
    plain_stdev: Mapping[str, float] | None = None,
) -> tuple[int, bool]:
    """Set ``CR_NOISE`` (plain STDEV after the cosmic-ray repair) in ``amp_stats``; return the number of
    cosmic-ray pixels and whether there were too many (cp_verify's ``FORCE_FAILURE``).

    As cp_verify's ``RepairTask`` call, the search runs on the whole detector, around its median (of
    every 4th pixel of every 4th row: within ~0.005 sigma of the full median at 1/16 of its CPU), with
    each amp's NOISE as the pixel noise; with too many cosmic-ray pixels the image stays unrepaired.
    ``plain_stdev``, the plain STDEV of each amp of ``image`` itself (same excluded pixels), is the
    CR_NOISE of the amps with no repaired pixel (the same values, so the same number).
    """
    sigma = np.zeros(image.shape, dtype=np.float32)
    for name, box in slices.items():
        sigma[box] = amp_stats[name]["NOISE"]
    background = _median_level(image, excluded)
    mask = None
    try:
        found = find_cosmic_rays(image, sigma, excluded, background, settings)
        repaired, cr_pixels, too_many = found.repaired, int(found.mask.sum()), False
        mask = found.mask
    except TooManyCosmicRaysError as error:
        repaired, cr_pixels, too_many = image, error.n_pixels, True
    for name, box in slices.items():
        unchanged = mask is None or cr_pixels == 0 or not mask[box].any()
        if unchanged and plain_stdev is not None and name in plain_stdev:
            amp_stats[name]["CR_NOISE"] = float(plain_stdev[name])
        else:
            amp_stats[name]["CR_NOISE"] = float(plain_moments(repaired[box], excluded[box])[1])
    return cr_pixels, too_many


def _median_level(image: np.ndarray, excluded: np.ndarray, step: int = 4) -> float:
    """Median of the usable pixels of every ``step``-th row and column (0 if none)."""
    sample = image[::step, ::step]
    usable = ~excluded[::step, ::step] & np.isfinite(sample)
    return float(np.median(sample[usable])) if usable.any() else 0.0


def _verify_bias_dark(
    result: dict[str, Any],
    detector: Detector,
    metadata: Mapping[str, Any],
    thresholds: VerifyThresholds,
    force_failure: bool,
) -> dict[str, Any]:
    """cp_verify bias/dark tests (DMTN-101 4.2–4.4 / 5.2–5.4) per amp."""
    verify: dict[str, dict[str, bool]] = {}
    for amp in detector:
        stats = result["AMP"][amp.name]
        read_noise = float(metadata.get(f"LSST ISR READNOISE {amp.name}", amp.read_noise))
        if not np.isfinite(read_noise) or read_noise <= 0:
            read_noise = amp.read_noise
        mean, noise, cr_noise = stats["MEAN"], stats["NOISE"], stats["CR_NOISE"]
        tests = {
            "MEAN": bool(abs(mean) < noise),
            "NOISE": bool((noise - read_noise) / read_noise <= thresholds.noise_tolerance),
            "CR_NOISE": bool(abs(noise - cr_noise) / cr_noise <= thresholds.cr_noise_tolerance),
        }
        if force_failure:
            tests["PROCESSING"] = False
        tests["SUCCESS"] = all(tests.values())
        gain = float(metadata.get(f"LSST ISR GAIN {amp.name}", amp.gain))
        overscan_e = gain * result["METADATA"]["READ_NOISE_ADU"][amp.name]
        # cp_verify adds the flag only when gain * READ_NOISE_ADU is truthy (NaN is truthy).
        if overscan_e:
            consistent = not (
                (overscan_e - read_noise) / read_noise > thresholds.read_noise_tolerance
                or not np.isfinite(overscan_e)
            )
            tests["READ_NOISE_CONSISTENT"] = bool(consistent)
        verify[amp.name] = tests
    return {"AMP": verify}


def _verify_flat(result: dict[str, Any], thresholds: VerifyThresholds) -> dict[str, Any]:
    """cp_verify flat tests: per amp NOISE <= sqrt(MEAN); detector SCATTER/MEAN <= tolerance."""
    amp_means = np.array([stats["MEAN"] for stats in result["AMP"].values()], dtype=np.float64)
    finite = amp_means[np.isfinite(amp_means)]
    det_mean = float(np.mean(finite)) if finite.size else math.nan
    det_scatter = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
    result["DET"] = {"MEAN": det_mean, "SCATTER": det_scatter}
    verify_amp = {}
    for name, stats in result["AMP"].items():
        mean, noise = stats["MEAN"], stats["NOISE"]
        passed = bool(mean > 0 and noise <= math.sqrt(mean))
        verify_amp[name] = {"NOISE": passed, "SUCCESS": passed}
    scatter_ok = bool(det_mean > 0 and det_scatter / det_mean <= thresholds.det_scatter_tolerance)
    return {"AMP": verify_amp, "DET": {"SCATTER": scatter_ok, "SUCCESS": scatter_ok}}


def detector_failures(det_stats: Mapping[str, Any]) -> list[str]:
    """Failed tests of one detector, in cp_verify order: DET tests, then ``"<amp> <test>"``, then catalog.

    Only amps (and the detector level) whose ``SUCCESS`` is False contribute; for them every False
    entry other than ``SUCCESS`` is listed.
    """
    verify = det_stats.get("VERIFY", {})
    failures: list[str] = []
    det = verify.get("DET", {})
    if det and not det.get("SUCCESS", True):
        failures += [test for test, ok in det.items() if test != "SUCCESS" and not ok]
    for amp_name, tests in verify.get("AMP", {}).items():
        if not tests.get("SUCCESS", True):
            failures += [f"{amp_name} {test}" for test, ok in tests.items() if test != "SUCCESS" and not ok]
    catalog = verify.get("CATALOG", {})
    if catalog and not catalog.get("SUCCESS", True):
        failures += [test for test, ok in catalog.items() if test != "SUCCESS" and not ok]
    return failures


def merge_exposure(
    det_stats: Mapping[str, Mapping[str, Any]],
    stage: str,
    thresholds: VerifyThresholds = VerifyThresholds(),
) -> dict[str, Any]:
    """Merge the detector results of one exposure (``verify*ExpStats``).

    Parameters
    ----------
    det_stats : `~collections.abc.Mapping` [`str`, `~collections.abc.Mapping`]
        ``verify*DetStats`` keyed by detector name (``R22_S21``).
    stage : `str`
        ``BIAS``, ``DARK`` or ``FLAT``; flats add ``EXP``/``VERIFY`` (exposure scatter of the
        detector means, ``np.std`` with ddof 0, absolute threshold in image units).
    thresholds : `VerifyThresholds`, optional
        Thresholds.

    Returns
    -------
    stats : `dict` [`str`, `typing.Any`]
        ``{detName: {"SUCCESS": b[, "FAILURES": [...]]}, ..., "SUCCESS": b}`` (+ ``EXP``/``VERIFY``).
    """
    merged: dict[str, Any] = {}
    all_ok = True
    if stage.upper() == "FLAT":
        means = [float(s.get("DET", {}).get("MEAN", math.nan)) for s in det_stats.values()]
        finite = np.array([m for m in means if np.isfinite(m)])
        scatter = float(np.std(finite)) if finite.size else math.nan
        scatter_ok = bool(np.isfinite(scatter) and scatter <= exp_scatter_limit(det_stats, thresholds))
        merged["EXP"] = {"SCATTER": scatter}
        merged["VERIFY"] = {"EXP": {"SCATTER": scatter_ok}}
        all_ok = scatter_ok
    entries, detectors_ok = _success_entries(det_stats, detector_failures)
    merged.update(entries)
    merged["SUCCESS"] = bool(all_ok and detectors_ok)
    return merged


def _success_entries(
    children: Mapping[Any, Mapping[str, Any]], failures: Callable[[Mapping[str, Any]], list[str]]
) -> tuple[dict[Any, dict[str, Any]], bool]:
    """One ``{"SUCCESS": b[, "FAILURES": failures(child)]}`` per child, in key order, and whether all
    of them passed (a child without ``SUCCESS`` failed)."""
    entries: dict[Any, dict[str, Any]] = {}
    all_ok = True
    for key in sorted(children):
        stats = children[key]
        ok = bool(stats.get("SUCCESS", False))
        entry: dict[str, Any] = {"SUCCESS": ok}
        if not ok:
            entry["FAILURES"] = failures(stats)
            all_ok = False
        entries[key] = entry
    return entries, all_ok


def exp_scatter_limit(det_stats: Mapping[str, Mapping[str, Any]], thresholds: VerifyThresholds) -> float:
    """Flat exposure-scatter threshold for these detectors.

    cp_verify's absolute ``exp_scatter_threshold`` (0.05 e-) for frames of a full-size detector or
    larger (an e2v detector has more pixels than `FULL_DETECTOR_PIXELS`, the ITL one). With
    ``exp_scatter_scale_with_size`` (the small-frame switch), detectors with fewer pixels (the
    scaled-down simulations) get it times ``sqrt(FULL_DETECTOR_PIXELS / pixels)`` (median pixels of the
    detectors): the statistical floor of the test grows as ``1 / sqrt(pixels)``. Never below the
    absolute threshold.

    Parameters
    ----------
    det_stats : `~collections.abc.Mapping` [`str`, `~collections.abc.Mapping`]
        ``verifyFlatDetStats`` by detector (``ISR.DETECTOR_PIXELS``).
    thresholds : `VerifyThresholds`
        ``exp_scatter_threshold`` and ``exp_scatter_scale_with_size``.

    Returns
    -------
    limit : `float`
        Largest passing ``EXP.SCATTER`` (image units).
    """
    limit = thresholds.exp_scatter_threshold
    if not thresholds.exp_scatter_scale_with_size:
        return limit
    pixels = [s.get("ISR", {}).get("DETECTOR_PIXELS") for s in det_stats.values()]
    pixels = [int(p) for p in pixels if p]
    if not pixels:
        return limit
    return limit * max(1.0, math.sqrt(FULL_DETECTOR_PIXELS / float(np.median(pixels))))


def merge_run(exp_stats: Mapping[int, Mapping[str, Any]]) -> dict[Any, Any]:
    """Merge the exposure results of a run (``verify*Stats``), keyed by integer exposure id.

    Without a ``VERIFY`` key at the exposure level (bias, dark) the failures of every failing detector
    are listed as ``"<detName> <failure>"``; with one (flat) only the exposure-level failures are.
    """
    entries, all_ok = _success_entries(exp_stats, _exposure_failures)
    merged: dict[Any, Any] = {int(exposure_id): entry for exposure_id, entry in entries.items()}
    merged["SUCCESS"] = bool(all_ok)
    return merged


def _exposure_failures(stats: Mapping[str, Any]) -> list[str]:
    """Failures of one failing exposure (see `merge_run`)."""
    if "VERIFY" in stats:
        return [
            test
            for level in stats["VERIFY"].values()
            for test, passed in level.items()
            if test != "SUCCESS" and not passed
        ]
    return [
        f"{name} {failure}"
        for name, det in stats.items()
        if isinstance(det, Mapping) and not det.get("SUCCESS", True)
        for failure in det.get("FAILURES", [])
    ]
