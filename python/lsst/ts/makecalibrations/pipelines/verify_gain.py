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

"""cp_verify's gain-from-flat-pairs check in numpy (``CpVerifyGainTask``, ``stageName='GAIN'``).

For each amp of one flat pair (a ``cpPtcExtract``/``cpPtcPartial`` partial PTC) the per-pair gain is
corrected for the flux dependence that brighter-fatter gives the pair estimator (DM-35790:
``g_corr = g (1 - slope * mean_adu / 100)`` with ``slope`` = 0.00027 %/ADU for ITL sensors,
0.00046 for e2v) and compared with the PTC gain: ``GAIN_FROM_FLAT_PAIR`` passes when
``|g_corr - g_ptc| / g_ptc * 100 < gain_threshold`` (5 %).

cp_verify compares with the camera's nominal gain and also tests ``ISR_NOISE`` comparing the
overscan noise in ADU with the camera read noise in e- (always failing at g ~ 1.4); here the
reference is the PTC the check is run with, and the noise is reported in e- (``ISR_NOISE`` =
overscan noise x PTC gain, ``AMP_NOISE`` = PTC noise) as statistics only.

Small-frame switch: the pair estimate has a statistical error of about ``sqrt(2 / N_pix)`` (0.14 %
on a 1e6-pixel ITL amp, 0.7 % at the default simulated size, ~4 % at ``tiny``), inflated by
``(1 + RN^2 / S)^2`` at low flux, plus the PTC gain's own error; with ``min_sigmas`` > 0 the limit is
at least ``min_sigmas`` times that error (``PTC N PIXELS`` of the partial), which leaves cp_verify's
5 % untouched at the full size and for bright pairs at the default size.

The detector results have cp_verify's structure (``AMP``, ``VERIFY``, ``SUCCESS``) so the exposure
and run merges of `pipelines.verify` apply: failures read ``"R22_S21 C17 GAIN_FROM_FLAT_PAIR"``.

May import: numpy, `butler.calib_types`.
"""

from __future__ import annotations

__all__ = ["E2V_FLUX_SLOPE", "ITL_FLUX_SLOPE", "gain_pair_stats"]

import math
from typing import Any

from ..butler.calib_types import PhotonTransferCurve

ITL_FLUX_SLOPE = 0.00027
"""Flux dependence of the pair gain of ITL sensors (% per ADU, DM-35790)."""

E2V_FLUX_SLOPE = 0.00046
"""Flux dependence of the pair gain of e2v sensors (% per ADU, DM-35790)."""


def gain_pair_stats(
    partial: PhotonTransferCurve,
    ptc: PhotonTransferCurve,
    slope: float = ITL_FLUX_SLOPE,
    gain_threshold: float = 5.0,
    min_sigmas: float = 5.0,
    min_mean_adu: float = 1000.0,
) -> dict[str, Any]:
    """Statistics and the ``GAIN_FROM_FLAT_PAIR`` test of one flat pair of one detector.

    Parameters
    ----------
    partial : `butler.calib_types.PhotonTransferCurve`
        The pair's partial PTC (``gain`` e-/ADU, ``raw_means`` ADU, ``noise`` ADU per amp).
    ptc : `butler.calib_types.PhotonTransferCurve`
        The PTC of the detector (reference gain e-/ADU, noise e-).
    slope : `float`, optional
        Flux correction (% per ADU).
    gain_threshold : `float`, optional
        Largest allowed |corrected pair gain - PTC gain| in % of the PTC gain.
    min_sigmas : `float`, optional
        The limit is at least this many statistical errors of the pair gain (0: cp_verify's fixed
        limit).

    min_mean_adu : `float`, optional
        Pairs with a lower mean (read-noise dominated; DMTN-101 takes the gain from pairs at ~20000
        counts) are measured but not tested.

    Returns
    -------
    stats : `dict` [`str`, `typing.Any`]
        ``{"AMP": {amp: {...}}, "VERIFY": {"AMP": {amp: {"GAIN_FROM_FLAT_PAIR": b, "SUCCESS": b}}},
        "SUCCESS": b}``. An amp without a finite pair gain or PTC gain fails.
    """
    n_pixels = partial.metadata.get("PTC N PIXELS", {})
    amp_stats: dict[str, dict[str, float]] = {}
    verify: dict[str, dict[str, bool]] = {}
    for amp in partial.amp_names:
        gain = float(partial.gain.get(amp, math.nan))
        means = partial.raw_means.get(amp) or [math.nan]
        mean = float(means[0])
        correction = 1.0 - slope * mean / 100.0
        corrected = gain * correction
        reference = float(ptc.gain.get(amp, math.nan))
        noise_adu = float(partial.noise.get(amp, math.nan))
        difference = abs(corrected - reference) / reference * 100.0 if reference else math.nan
        limit = gain_threshold
        npix = float(n_pixels.get(amp, math.nan)) if isinstance(n_pixels, dict) else math.nan
        if min_sigmas > 0 and math.isfinite(npix) and npix > 0:
            # Read noise inflates the pair estimate's error at low flux by about (1 + RN^2 / S)^2;
            # the PTC gain's own error adds in quadrature.
            ratio = gain * noise_adu**2 / mean if mean > 0 and math.isfinite(noise_adu) else 0.0
            pair_error = math.sqrt(2.0 / npix) * (1.0 + max(ratio, 0.0)) ** 2
            ptc_error = float(ptc.gain_err.get(amp, math.nan)) / reference if reference else math.nan
            if math.isfinite(ptc_error):
                pair_error = math.hypot(pair_error, ptc_error)
            limit = max(limit, min_sigmas * 100.0 * pair_error)
        amp_stats[amp] = {
            "MEAN_FLUX_FLAT_PAIR": mean,
            "GAIN_FROM_FLAT_PAIR": corrected,
            "GAIN_CORRECTION_FACTOR": correction,
            "AMP_GAIN": reference,
            "GAIN_DIFFERENCE_PERCENT": difference,
            "GAIN_LIMIT_PERCENT": limit,
            "ISR_NOISE": noise_adu * reference,
            "AMP_NOISE": float(ptc.noise.get(amp, math.nan)),
        }
        passed = bool(math.isfinite(difference) and difference < limit) or (
            math.isfinite(mean) and mean < min_mean_adu
        )
        verify[amp] = {"GAIN_FROM_FLAT_PAIR": passed, "SUCCESS": passed}
    return {
        "AMP": amp_stats,
        "METADATA": {"FLUX_SLOPE_PERCENT_PER_ADU": slope, "GAIN_THRESHOLD_PERCENT": gain_threshold},
        "CATALOG": {},
        "DET": {},
        "VERIFY": {"AMP": verify},
        "SUCCESS": all(tests["SUCCESS"] for tests in verify.values()),
    }
