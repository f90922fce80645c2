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

"""End to end: simulated raws in a butler repo, the cpPtc / cpPtcGainFromFlatPairs / cpDefects
pipelines run by the simulated OCPS's pipetask executor, products read back as the seed does and
compared with the simulated truth (default size, no brighter-fatter)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lsst.daf.butler import Butler
from lsst.pipe.base import Pipeline

from lsst.ts.makecalibrations.butler.readers import read_pair_gains
from lsst.ts.makecalibrations.pipelines.locations import expand_pipeline_uri
from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import (
    PairMeasurementConfig,
    PtcExtractConfig,
    PtcExtractTask,
)
from tests.pipelines.ptc_helpers import (
    DEFECTS_DETECTOR,
    DETECTORS,
    N_DEFECT_FLATS,
    N_SUBSET_FLATS,
    RAMP_FLAT_TIMES,
    SUBSET_DETECTOR,
    EndToEnd,
    check_gain_and_noise,
    relative_errors,
)

pytestmark = pytest.mark.slow


def _butler(e2e: EndToEnd, job: str) -> Butler:
    assert e2e.outcomes[job].exit_code == 0, e2e.outcomes[job].message
    return Butler(str(e2e.repo), collections=[e2e.collections[job]])


def _pairs(ids: list[int]) -> list[tuple[int, int]]:
    return list(zip(ids[0::2], ids[1::2], strict=True))


def test_gain_from_flat_pairs(end_to_end: EndToEnd):
    """Twenty 5 s flats give ten cpPtcPartial per detector; the ten-pair mean gain is within 1%."""
    butler = _butler(end_to_end, "ptc")
    worst_mean, worst_single, scatters, noise_errors = 0.0, 0.0, [], []
    for detector in DETECTORS:
        truth = end_to_end.model.detector(detector)
        rn_adu = {amp: truth.read_noise[amp] / truth.gain[amp] for amp in truth.gain}
        per_pair = []
        for first, second in _pairs(end_to_end.gain_flats):
            # The seed's access pattern: exposure = the pair's first flat (its cpPtcExtract still works).
            partial = butler.get("cpPtcPartial", detector=detector, exposure=first, instrument="LSSTComCam")
            legacy = butler.get("cpPtcExtract", detector=detector, exposure=first, instrument="LSSTComCam")
            assert legacy.gain == partial.gain
            assert partial.fit_type == "PARTIAL" and partial.detector == detector
            for amp in partial.amp_names:
                assert partial.input_exp_id_pairs[amp] == [[first, second]]
                assert partial.raw_exp_times[amp] == [5.0]
                assert partial.noise_list[amp] == [partial.noise[amp]]
            per_pair.append(relative_errors(partial.gain, truth.gain))
            noise_errors.append(relative_errors(partial.noise, rn_adu))
        errors = np.array(per_pair)
        worst_mean = max(worst_mean, float(np.abs(errors.mean(axis=0)).max()))
        worst_single = max(worst_single, float(np.abs(errors).max()))
        scatters.append(float(errors.std(ddof=1)))
    print(
        f"\n[gain-from-pairs e2e] detectors {DETECTORS}: max |dg/g| of the 10-pair mean {worst_mean:.4f}, "
        f"of a single pair {worst_single:.4f}, per-pair scatter {np.mean(scatters):.4f}; overscan noise "
        f"(ADU) vs truth {np.min(noise_errors):+.4f}..{np.max(noise_errors):+.4f}"
    )
    assert worst_mean < 0.01
    assert np.mean(scatters) < 0.01
    # .noise is the overscan read noise in ADU (3-sigma clipped: slightly below the truth).
    assert np.abs(noise_errors).max() < 0.05
    # The butler room's reader (used by the script's report) sees every pair of the job.
    pair_gains = read_pair_gains(end_to_end.repo, end_to_end.collections["ptc"])
    expected = set(_pairs(end_to_end.gain_flats) + _pairs(end_to_end.ramp_flats))
    assert {g.exposure_pair for g in pair_gains} == expected
    assert len(pair_gains) == len(expected) * len(DETECTORS) * 16


def test_gain_subset(end_to_end: EndToEnd):
    """cpPtc.yaml#cpPtcGainFromFlatPairs: partials only (no ptc), identical to the full pipeline's."""
    butler = _butler(end_to_end, "subset")
    collection = end_to_end.collections["subset"]
    refs = list(butler.registry.queryDatasets("cpPtcPartial", collections=collection))
    firsts = end_to_end.gain_flats[0:N_SUBSET_FLATS:2]
    assert sorted((int(r.dataId["exposure"]), int(r.dataId["detector"])) for r in refs) == [
        (first, SUBSET_DETECTOR) for first in firsts
    ]
    assert not list(butler.registry.queryDatasets("ptc", collections=collection))
    full = _butler(end_to_end, "ptc")
    for first in firsts:
        subset_partial = butler.get("cpPtcPartial", detector=SUBSET_DETECTOR, exposure=first)
        full_partial = full.get("cpPtcPartial", detector=SUBSET_DETECTOR, exposure=first)
        assert subset_partial.gain == pytest.approx(full_partial.gain, rel=1e-12)
        assert subset_partial.raw_vars == full_partial.raw_vars


def test_fused_extract_equals_the_two_task_chain(end_to_end: EndToEnd):
    """cpPtcExtract (the ISR of cpPtcIsr run in memory on each pair's raws) writes, bit for bit, the
    partials that `PtcExtractTask` (the chain before the fusion: cpPtcIsr writes cpPtcProc, the extract
    reads it back) measures from the same run's cpPtcProc of the same raws, with the same settings."""
    butler = _butler(end_to_end, "ptc")
    collection = end_to_end.collections["ptc"]
    uri = expand_pipeline_uri("${CP_PIPE_DIR}/pipelines/LSSTComCam/cpPtc.yaml")
    fused_config = Pipeline.from_uri(uri).to_graph().tasks["cpPtcExtract"].config
    config = PtcExtractConfig()
    for name in PairMeasurementConfig().keys():
        setattr(config, name, getattr(fused_config, name))
    task = PtcExtractTask(config=config)
    compared = 0
    for detector in DETECTORS:
        refs = butler.registry.queryDatasets(
            "cpPtcProc", collections=collection, where=f"detector={detector}"
        )
        loaders = {int(ref.dataId["exposure"]): butler.getDeferred(ref).get for ref in refs}
        chain = task.run(loaders, detector_id=detector).outputCovariances
        assert sorted(chain) == end_to_end.gain_flats[0::2] + end_to_end.ramp_flats[0::2]
        for first, partial in chain.items():
            fused = butler.get("cpPtcPartial", detector=detector, exposure=first, instrument="LSSTComCam")
            # assert_equal: exact equality, NaN (an amp without a usable gain) equal to NaN.
            for name in ("gain", "noise", "raw_means", "raw_vars", "covariances", "metadata"):
                np.testing.assert_equal(getattr(fused, name), getattr(partial, name), err_msg=name)
            compared += 1
    assert compared == len(DETECTORS) * (len(end_to_end.gain_flats) + len(end_to_end.ramp_flats)) // 2


def test_ptc(end_to_end: EndToEnd):
    """cpPtc (FULLCOVARIANCE + gain ratios) on the 5 s pairs plus a 17-pair ramp: gain within 1%, read
    noise within 5% of truth."""
    butler = _butler(end_to_end, "ptc")
    collection = end_to_end.collections["ptc"]
    all_flats = end_to_end.gain_flats + end_to_end.ramp_flats
    extracts = list(butler.registry.queryDatasets("cpPtcPartial", collections=collection))
    # Only flats are paired: the dark in the data query was left out by cpPtcExtract (and cpPtcIsr).
    assert sorted({int(ref.dataId["exposure"]) for ref in extracts}) == all_flats[0::2]
    expected_pairs = sorted([list(pair) for pair in _pairs(all_flats)])
    ramp = zip(_pairs(end_to_end.ramp_flats), RAMP_FLAT_TIMES[0::2], strict=True)
    unsaturated = {pair for pair, exp_time in ramp if exp_time <= 20}
    unsaturated |= set(_pairs(end_to_end.gain_flats))
    fits = []
    unadjusted_errors = []
    for detector in DETECTORS:
        truth = end_to_end.model.detector(detector)
        ptc = butler.get("ptc", detector=detector, exposure=all_flats[0], instrument="LSSTComCam")
        unadjusted = butler.get("ptcUnadjusted", detector=detector, instrument="LSSTComCam")
        # cpPtc.yaml's default: FULLCOVARIANCE (27 pairs), then cpPtcAdjustGainRatios.
        assert ptc.fit_type == "FULLCOVARIANCE" and not ptc.bad_amps
        assert ptc.gain_unadjusted == unadjusted.gain
        corrections = ptc.metadata["PTC GAIN RATIO CORRECTIONS"]
        assert np.median(list(corrections.values())) == pytest.approx(1.0)
        assert np.shape(ptc.a_matrix["C00"]) == (4, 4) and np.shape(ptc.a_matrix_no_b["C00"]) == (4, 4)
        assert np.shape(ptc.covariances_model["C00"]) == (len(expected_pairs), 4, 4)
        # The rest of cp_pipe's FULLCOVARIANCE model: b, the measured covariances and their weights.
        assert np.shape(ptc.b_matrix["C00"]) == (4, 4)
        assert np.shape(ptc.covariances["C00"]) == np.shape(ptc.covariances_sqrt_weights["C00"])
        assert np.shape(ptc.covariances["C00"])[0] == len(expected_pairs)
        assert np.shape(ptc.covariances["C00"])[1:] >= (4, 4)
        # Points are ordered by the detector-average mean of their pair (cp_pipe's solve order).
        detector_means = np.mean([ptc.raw_means[amp] for amp in ptc.amp_names], axis=0)
        assert np.all(np.diff(detector_means) >= 0)
        for amp in ptc.amp_names:
            assert sorted(ptc.input_exp_id_pairs[amp]) == expected_pairs
            # Outlier rejection keeps every point below the full well.
            points = zip(ptc.input_exp_id_pairs[amp], ptc.exp_id_mask[amp], strict=True)
            kept = {tuple(pair) for pair, used in points if used}
            assert unsaturated <= kept
            means = dict(zip(map(tuple, ptc.input_exp_id_pairs[amp]), ptc.raw_means[amp], strict=True))
            assert ptc.turnoff[amp] >= max(means[p] for p in unsaturated)
            a00, gain, n00 = ptc.fit_pars[amp]
            assert gain == ptc.gain_unadjusted[amp] and math.sqrt(n00) == pytest.approx(unadjusted.noise[amp])
            # The adjustment divides the gain and the noise (measured in ADU) by the same correction.
            assert ptc.gain[amp] == pytest.approx(gain / corrections[amp], rel=1e-12)
            assert ptc.noise[amp] == pytest.approx(unadjusted.noise[amp] / corrections[amp], rel=1e-12)
            # No brighter-fatter here (the default simulation has -2e-6); a partly saturated 30 s pair
            # kept by the outlier rejection may pull a00 slightly negative. The b-free a00 trades with
            # b on these small amps (about 2.5e-7 1-sigma); the b = 0 fit's is the tighter one.
            assert abs(a00) <= 1e-6
            assert abs(ptc.a_matrix_no_b[amp][0][0]) <= 5e-7
            assert 0 < ptc.gain_err[amp] < 0.005 * gain
        fits.append((ptc.gain, ptc.noise, truth))
        unadjusted_errors.append(relative_errors(ptc.gain_unadjusted, truth.gain))
    print(f"\n[PTC e2e] max |dg/g| before the gain-ratio adjustment {np.abs(unadjusted_errors).max():.4f}")
    check_gain_and_noise(f"PTC e2e, detectors {DETECTORS}", fits)


def test_defects(end_to_end: EndToEnd):
    """cpDefects on 5 x 30 s darks + 6 x 5 s flats: every injected defect found, <= 0.1% false pixels."""
    butler = _butler(end_to_end, "defects")
    detector = DEFECTS_DETECTOR
    defects = butler.get("defects", detector=detector, exposure=end_to_end.darks[0], instrument="LSSTComCam")
    assert list(defects.to_table().colnames) == ["x0", "y0", "width", "height"]
    found = defects.to_mask(end_to_end.model.geometry.detector_shape)
    expected = end_to_end.model.reference_defect_mask(detector)
    missed = expected & ~found
    false = found & ~expected
    truth = end_to_end.model.detector(detector)
    print(
        f"\n[defects e2e] detector {detector}: {len(defects)} boxes, {int(found.sum())} pixels; "
        f"{len(truth.hot_pixels)} hot + {len(truth.dead_pixels)} dead pixels and 2 columns injected; "
        f"missed {int(missed.sum())}, false {int(false.sum())} ({false.mean():.2e})"
    )
    assert not missed.any()
    assert false.mean() <= 1e-3
    # Both inputs were made inside the pipeline from the job's exposures only.
    for name, n_inputs in (("cpDefectsDark", len(end_to_end.darks)), ("cpDefectsFlat", N_DEFECT_FLATS)):
        combined = butler.get(name, detector=detector, instrument="LSSTComCam")
        assert combined.metadata["CPP_N_INPUTS"] == n_inputs
