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

"""cp_verify's gain-from-flat-pairs check on simulated flats: a 6 % gain drift fails, good data passes."""

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.calib_types import PhotonTransferCurve
from lsst.ts.makecalibrations.butler.camera import AMP_NAMES, get_camera
from lsst.ts.makecalibrations.calib.verification import decide_gain_check
from lsst.ts.makecalibrations.pipelines.isr import apply_parallel_overscan, apply_serial_overscan
from lsst.ts.makecalibrations.pipelines.ptc import PairSettings, measure_pair
from lsst.ts.makecalibrations.pipelines.tasks.verify_tasks import CpVerifyGainMergeTask
from lsst.ts.makecalibrations.pipelines.verify_gain import gain_pair_stats
from lsst.ts.makecalibrations.sim.truth import TruthModel

DETECTOR = 0


def _adu_amps(model: TruthModel, exposure_id: int) -> dict[str, np.ndarray]:
    """Overscan-corrected data sections (ADU) of one 5 s flat, and the overscan noise (ADU)."""
    raws = model.make_raw_amps(DETECTOR, exposure_id, "FLAT", 5.0, 5.0)
    geometry = model.geometry
    result = {}
    for amp, raw in raws.items():
        work = raw.astype(np.float64)
        noise, _ = apply_serial_overscan(work, geometry)
        apply_parallel_overscan(work, geometry)
        result[amp] = (work[geometry.data_slice], noise)
    return result


def _partial(model: TruthModel) -> PhotonTransferCurve:
    """The partial PTC of one 20 ke- flat pair, measured as cpPtcExtract does (FULL estimator)."""
    first, second = _adu_amps(model, 11), _adu_amps(model, 12)
    partial = PhotonTransferCurve(
        detector=DETECTOR, detector_name="R22_S00", fit_type="PARTIAL", amp_names=list(AMP_NAMES)
    )
    for amp in AMP_NAMES:
        (image1, noise1), (image2, noise2) = first[amp], second[amp]
        measurement = measure_pair(image1, image2, 0.5 * (noise1 + noise2), settings=PairSettings(max_lag=0))
        partial.gain[amp] = measurement.gain
        partial.raw_means[amp] = [measurement.mean]
        partial.noise[amp] = measurement.read_noise
    return partial


def _reference_ptc() -> PhotonTransferCurve:
    ptc = PhotonTransferCurve(
        detector=DETECTOR, detector_name="R22_S00", fit_type="EXPAPPROXIMATION", amp_names=list(AMP_NAMES)
    )
    for amp in get_camera()[DETECTOR]:
        ptc.gain[amp.name] = amp.gain
        ptc.noise[amp.name] = amp.read_noise
    return ptc


@pytest.fixture(scope="module")
def partials() -> dict[str, PhotonTransferCurve]:
    good = TruthModel(size="default")
    drifted = TruthModel(size="default", gain_drift=((DETECTOR, "C03", 1.06),))
    return {"good": _partial(good), "drifted": _partial(drifted)}


def test_good_pairs_pass_with_the_itl_flux_correction(partials) -> None:
    stats = gain_pair_stats(partials["good"], _reference_ptc())
    assert stats["SUCCESS"]
    # Brighter-fatter raises the raw pair gain by ~4 % at 20 ke- (a00 = -2e-6); the 0.00027 %/ADU
    # correction brings it back within about 1 % of the PTC gain.
    raw = np.array([partials["good"].gain[amp] / _reference_ptc().gain[amp] for amp in AMP_NAMES])
    assert 1.02 < np.median(raw) < 1.06
    corrected = [stats["AMP"][amp]["GAIN_DIFFERENCE_PERCENT"] for amp in AMP_NAMES]
    assert max(corrected) < 2.0


def test_a_six_percent_gain_drift_fails_that_amp_only(partials) -> None:
    stats = gain_pair_stats(partials["drifted"], _reference_ptc())
    failed = [amp for amp, tests in stats["VERIFY"]["AMP"].items() if not tests["SUCCESS"]]
    assert failed == ["C03"]
    assert stats["AMP"]["C03"]["GAIN_DIFFERENCE_PERCENT"] > 5.0
    # Merged as verifyGainStats, the failure names the detector and amp; the check fails the run.
    merged = CpVerifyGainMergeTask().run([stats], keys=[(11, DETECTOR)]).outputStats
    assert merged[11] == {"SUCCESS": False, "FAILURES": ["R22_S00 C03 GAIN_FROM_FLAT_PAIR"]}
    decision = decide_gain_check(merged)
    assert not decision["passed"] and decision["failing_amps"] == {"R22_S00 C03": 1}
    assert "R22_S00 C03 (1 of 1 pairs)" in decision["summary"]
    good = CpVerifyGainMergeTask().run(
        [gain_pair_stats(partials["good"], _reference_ptc())], keys=[(11, DETECTOR)]
    )
    assert decide_gain_check(good.outputStats)["passed"]
