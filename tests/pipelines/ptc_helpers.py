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

"""Helpers shared by the PTC/defects tests: ISR-processed simulated flats from `sim.truth` and the
exposures of the end-to-end fixture (`conftest.end_to_end`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.pipelines import ptc
from lsst.ts.makecalibrations.pipelines.isr import OVERSCAN_NOISE_FACTOR, IsrSettings, run_isr  # noqa: F401
from lsst.ts.makecalibrations.sim.ocps_jobs import JobOutcome
from lsst.ts.makecalibrations.sim.truth import DetectorTruth, TruthModel

PTC_ISR = IsrSettings(doApplyGains=False, doBootstrap=True)
"""The cpPtcIsr settings: overscan only, ADU."""


def isr_flat(model: TruthModel, detector: int, exposure_id: int, exp_time: float):
    """One simulated flat of ``detector`` through the PTC ISR (an `IsrResult`)."""
    amps = model.make_raw_amps(detector, exposure_id, "FLAT", exp_time, exp_time)
    return run_isr(amps, {"DARKTIME": exp_time}, get_camera()[detector], PTC_ISR, exposure_id=exposure_id)


def measure_pairs(model: TruthModel, detector: int, exposure_times, first_id: int = 1000):
    """Simulate one pair per exposure time and measure every amp; returns {amp: [PairMeasurement]}."""
    det = get_camera()[detector]
    geometry = model.geometry
    settings = ptc.PairSettings(max_lag=0)  # cpPtcExtract's measurement, without the covariances
    edges = ptc.amp_edge_mask(
        geometry.data_shape, ptc.scaled_edge_width(geometry.data_shape, settings.num_edge_suspect)
    )
    result: dict[str, list[ptc.PairMeasurement]] = {amp.name: [] for amp in det}
    exposure_id = first_id
    for exp_time in exposure_times:
        first = isr_flat(model, detector, exposure_id, exp_time)
        second = isr_flat(model, detector, exposure_id + 1, exp_time)
        exposure_id += 2
        for amp in det:
            box = amp.bbox_slices(geometry)
            key = f"LSST ISR OVERSCAN RESIDUAL SERIAL STDEV {amp.name}"
            read_noise = 0.5 * (first.metadata[key] + second.metadata[key])
            measured = ptc.measure_pair(first.image[box], second.image[box], read_noise, edges, settings)
            result[amp.name].append(measured)
    return result


def relative_errors(measured: dict[str, float], truth: dict[str, float]) -> np.ndarray:
    """``measured / truth - 1`` for every amp of ``truth``."""
    return np.array([measured[amp] / truth[amp] - 1.0 for amp in truth])


def check_gain_and_noise(
    label: str, fits: list[tuple[dict[str, float], dict[str, float], DetectorTruth]]
) -> np.ndarray:
    """Assert that PTC gains and read noises, ``(gain, noise, truth)`` per detector, match the truth:
    gains within 1%, noises within 5% of the truth and within 2% of the overscan-corrected pixel
    noise (truth x `OVERSCAN_NOISE_FACTOR`); prints the figures. Returns the last errors."""
    gain_errors = np.array([relative_errors(gain, truth.gain) for gain, _, truth in fits])
    noise_errors = np.array([relative_errors(noise, truth.read_noise) for _, noise, truth in fits])
    processed_errors = np.array(
        [
            relative_errors(noise, {amp: rn * OVERSCAN_NOISE_FACTOR for amp, rn in truth.read_noise.items()})
            for _, noise, truth in fits
        ]
    )
    print(
        f"\n[{label}]: max |dg/g| {np.abs(gain_errors).max():.4f}, noise vs truth "
        f"{noise_errors.min():+.4f}..{noise_errors.max():+.4f}, vs the overscan-corrected pixel noise "
        f"{processed_errors.min():+.4f}..{processed_errors.max():+.4f}"
    )
    assert np.abs(gain_errors).max() < 0.01
    assert np.abs(noise_errors).max() < 0.05
    # The known +3.1% of the overscan medians is what remains: the PTC noise is unbiased for it.
    assert np.abs(processed_errors).max() < 0.02
    return processed_errors


DETECTORS = (0, 7)
"""Detectors of the PTC job (the gain and PTC accuracy tests use both)."""

DEFECTS_DETECTOR = 7
"""Detector of the defects job."""

SUBSET_DETECTOR = 0
"""Detector of the cpPtcGainFromFlatPairs subset job."""

DAY_OBS = 20241126

GAIN_FLAT_TIMES = [5.0] * 20
"""The seed's daily gain sequence: twenty 5 s flats (ten pairs, ~20 ke-)."""

RAMP_FLAT_TIMES = [
    t for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 4, 6, 8, 10, 13, 16, 20, 30) for _ in range(2)
]
"""A PTC ramp: 17 pairs from ~20 e- (read-noise dominated) to past the 110 ke- full well."""

DARK_TIMES = [30.0] * 5
"""Darks of the defects job (30 s so that 3 e-/s is many sigma above the read noise of 5 frames)."""

N_DEFECT_FLATS = 6
"""Flats (the first 5 s ones) of the defects job."""

N_SUBSET_FLATS = 4
"""Flats (the first 5 s ones) of the subset job."""


@dataclasses.dataclass
class EndToEnd:
    """What the end-to-end tests look at."""

    repo: Path
    model: TruthModel
    gain_flats: list[int]
    ramp_flats: list[int]
    darks: list[int]
    outcomes: dict[str, JobOutcome]
    collections: dict[str, str]
    seconds: dict[str, float]
