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

"""Accuracy of the default PTC (cpPtc.yaml: FULLCOVARIANCE, then cpPtcAdjustGainRatios) against the
simulated truth.

Run with ``.venv/bin/python -m bench.bench_ptc_accuracy [--detector 0] [--size default]`` (or
``make bench``). It simulates a 20-pair PTC of one detector with brighter-fatter on (the repository
default): four low-flux pairs for the read noise (0.002-0.02 s, 8-80 e-) and sixteen from 1 to 24 s
(4 to 96 ke-, below the 110 ke- full well), runs each flat through the PTC ISR (`pipelines.isr`,
bootstrap, the true defects masked), measures every pair with cpPtcExtract's `extract_pair`, solves
with cpPtcSolve's `solve_ptc` and adjusts the gains with cpPtcAdjustGainRatios' `adjust_gain_ratios`,
all with the pipeline's configuration. It prints, per amp and as maxima over the amps: the gain error
before and after the adjustment, the read noise against the amp's read noise and against the noise
of the overscan-corrected pixels (the amp's times `pipelines.isr.OVERSCAN_NOISE_FACTOR`, what cp_pipe's
PTC measures), and a00 of the ``b``-free fit (``a_matrix``) and of the ``b = 0`` fit
(``a_matrix_no_b``) against the truth, with the a00 error that each weighted fit can reach at best
(``CRB``: the Cramér-Rao bound from the fit's Jacobian at the true parameters, with the measured
weights), and the CPU time of each step; then the bad amps with the solver's reasons (an amp whose
gain or noise ends at a bound of the fit is one), and the ranges of the read noise, its truth and the
fitted n00. ``--seed`` draws another sensor and other noise, ``--size full`` the real 509 x 2000
amps, ``--pair-times`` another sequence (``0.1,0.5,1,2.5,5,5``: the pairs of the demo's flats, which
are fitted with EXPAPPROXIMATION, too few for FULLCOVARIANCE). It asserts nothing.

May import: numpy and this package.
"""

from __future__ import annotations

__all__ = ["PAIR_TIMES", "main"]

import argparse
import functools
import time

import numpy as np

from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.butler.images import make_masked_image
from lsst.ts.makecalibrations.pipelines.isr import OVERSCAN_NOISE_FACTOR, IsrSettings, run_isr
from lsst.ts.makecalibrations.pipelines.ptc_covariance import covariance_model
from lsst.ts.makecalibrations.pipelines.tasks.ptc_gain_ratio_task import (
    PtcAdjustGainRatiosConfig,
    adjust_gain_ratios,
)
from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import (
    PtcExtractConfig,
    PtcSolveConfig,
    extract_pair,
    solve_ptc,
)
from lsst.ts.makecalibrations.sim.truth import DEFAULT_TRUTH_SEED, TruthModel

PAIR_TIMES = [0.002, 0.005, 0.01, 0.02] + [float(t) for t in np.linspace(1.0, 24.0, 16)]
"""Exposure times (s) of the 20 pairs."""

PTC_ISR = IsrSettings(doApplyGains=False, doBootstrap=True)


def expected_a00_error(
    means: np.ndarray,
    sqrt_weights: np.ndarray,
    a: np.ndarray,
    noise: np.ndarray,
    gain: float,
    fit_b: bool,
) -> float:
    """Relative 1σ error of a00 that the weighted Eq. 20 fit reaches at best (Cramér-Rao bound):
    ``sqrt((JᵀJ)⁻¹)`` of the weighted model's Jacobian at the true parameters (``c = 0``), taken by
    central differences over every fitted parameter (a, c if ``fit_b``, noise, gain)."""
    n = a.shape[0]
    size = n * n
    start = np.concatenate([a.ravel()] + ([np.zeros(size)] if fit_b else []) + [noise.ravel(), [gain]])
    steps = np.concatenate(
        [np.full(size, 1e-9)] + ([np.full(size, 1e-13)] if fit_b else []) + [np.full(size, 0.1), [1e-5]]
    )

    def weighted_model(params: np.ndarray) -> np.ndarray:
        c = params[size : 2 * size].reshape(n, n) if fit_b else np.zeros((n, n))
        noise_params = params[(2 if fit_b else 1) * size : -1].reshape(n, n)
        model = covariance_model(means, params[:size].reshape(n, n), c, noise_params, float(params[-1]))
        return (model * sqrt_weights).ravel()

    columns = []
    for k, step in enumerate(steps):
        delta = np.zeros_like(start)
        delta[k] = step
        columns.append((weighted_model(start + delta) - weighted_model(start - delta)) / (2.0 * step))
    jac = np.stack(columns, axis=1)
    norm = np.linalg.norm(jac, axis=0)
    norm[norm == 0] = 1.0
    covariance = np.linalg.inv((jac / norm).T @ (jac / norm)) / np.outer(norm, norm)
    return float(np.sqrt(covariance[0, 0]) / abs(a[0, 0]))


def main(argv: list[str] | None = None) -> None:
    """Simulate, measure, solve and adjust; print the errors against the truth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", type=int, default=0)
    parser.add_argument("--size", default="default")
    parser.add_argument("--fit-type", default="FULLCOVARIANCE")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_TRUTH_SEED, help="truth seed (another sensor and other noise)"
    )
    parser.add_argument(
        "--pair-times",
        type=lambda text: [float(t) for t in text.split(",")],
        default=PAIR_TIMES,
        help="comma-separated exposure times (s), one per flat pair (default: the 20-pair PTC); "
        "the demo's flats are 0.1,0.5,1,2.5,5,5",
    )
    args = parser.parse_args(argv)
    pair_times = args.pair_times
    model = TruthModel(size=args.size, seed=args.seed)
    detector = get_camera()[args.detector]
    defects = model.reference_defect_mask(args.detector)
    extract_config = PtcExtractConfig()
    solve_config = PtcSolveConfig()
    solve_config.ptcFitType = args.fit_type
    cpu = {"simulate + ISR": 0.0, "extract": 0.0, "solve": 0.0, "adjust": 0.0}
    partials = []
    images = {}
    for index, exp_time in enumerate(pair_times):
        ids = (7000 + 2 * index, 7001 + 2 * index)
        t0 = time.process_time()
        results = []
        for exp_id in ids:
            amps = model.make_raw_amps(args.detector, exp_id, "FLAT", exp_time, exp_time)
            results.append(run_isr(amps, {"DARKTIME": exp_time}, detector, PTC_ISR, exposure_id=exp_id))
        t1 = time.process_time()
        partials.append(
            extract_pair(
                results[0].image,
                results[1].image,
                defects,
                defects,
                results[0].metadata,
                results[1].metadata,
                ids,
                exp_time,
                detector,
                extract_config,
            )
        )
        images[ids[0]] = make_masked_image(
            np.where(defects, np.nan, results[0].image).astype(np.float32), metadata=results[0].metadata
        )
        cpu["simulate + ISR"] += t1 - t0
        cpu["extract"] += time.process_time() - t1
    t0 = time.process_time()
    unadjusted = solve_ptc(partials, solve_config)
    cpu["solve"] = time.process_time() - t0
    t0 = time.process_time()
    ptc, note = adjust_gain_ratios(
        unadjusted, {k: functools.partial(images.__getitem__, k) for k in images}, PtcAdjustGainRatiosConfig()
    )
    cpu["adjust"] = time.process_time() - t0
    truth = model.detector(args.detector)
    print(
        f"PTC of detector {args.detector} ({args.size} size, seed {args.seed}, {len(pair_times)} pairs, "
        f"{ptc.fit_type}; bad amps: {ptc.bad_amps or 'none'}); {note}"
    )
    for amp, reason in ptc.metadata.get("PTC BAD AMP REASONS", {}).items():
        print(f"  bad amp {amp}: {reason}")
    truth_noise = list(model.detector(args.detector).read_noise.values())
    n00 = [ptc.fit_pars[amp][2] for amp in detector.amp_names if len(ptc.fit_pars.get(amp, [])) == 3]
    print(
        f"read noise {min(ptc.noise.values()):.2f} .. {max(ptc.noise.values()):.2f} e- (truth "
        f"{min(truth_noise):.2f} .. {max(truth_noise):.2f}); fitted n00 {min(n00):.1f} .. {max(n00):.1f} e^2"
    )
    print(
        f"{'amp':4} {'dg/g adj':>9} {'dg/g fit':>9} {'dn/n amp':>9} {'dn/n pix':>9} "
        f"{'a00 truth':>10} {'da00 b':>8} {'da00 no b':>9} {'CRB b':>6} {'CRB no b':>8}"
    )
    rows = []
    bounds = []
    n_lags = solve_config.maximumRangeCovariancesAstierFullCovFit
    for amp in detector.amp_names:
        g_true = truth.gain[amp]
        rn_true = truth.read_noise[amp]
        a00_true = model.a_matrix(args.detector, amp)[0, 0]
        row = (
            ptc.gain[amp] / g_true - 1.0,
            ptc.gain_unadjusted[amp] / g_true - 1.0,
            ptc.noise[amp] / rn_true - 1.0,
            ptc.noise[amp] / (rn_true * OVERSCAN_NOISE_FACTOR) - 1.0,
            (ptc.a_matrix[amp][0][0] / a00_true - 1.0) if ptc.a_matrix[amp] else np.nan,
            (ptc.a_matrix_no_b[amp][0][0] / a00_true - 1.0) if ptc.a_matrix_no_b[amp] else np.nan,
        )
        rows.append(row)
        mask = np.asarray(ptc.exp_id_mask[amp], dtype=bool)
        if ptc.covariances[amp] and mask.sum() >= n_lags:
            means = np.asarray(ptc.raw_means[amp])[mask]
            weights = np.asarray(ptc.covariances_sqrt_weights[amp])[mask][:, :n_lags, :n_lags]
            noise = np.zeros((n_lags, n_lags))
            noise[0, 0] = (rn_true * OVERSCAN_NOISE_FACTOR) ** 2
            a_true = model.a_matrix(args.detector, amp)[:n_lags, :n_lags]
            bound = tuple(
                expected_a00_error(means, weights, a_true, noise, g_true, fit_b) for fit_b in (True, False)
            )
        else:
            bound = (np.nan, np.nan)
        bounds.append(bound)
        print(
            f"{amp:4} {row[0]:+9.4f} {row[1]:+9.4f} {row[2]:+9.4f} {row[3]:+9.4f} {a00_true:10.3e} "
            f"{row[4]:+8.3f} {row[5]:+9.3f} {bound[0]:6.3f} {bound[1]:8.3f}"
        )
    errors = np.abs(np.array(rows))
    names = ("gain (adjusted)", "gain (fit, unadjusted)", "noise vs amp", "noise vs pixel", "a00 (b free)")
    maxima = ", ".join(
        f"{name} {value:.4f}"
        for name, value in zip(names + ("a00 (b = 0)",), errors.max(axis=0), strict=True)
    )
    print(f"max |relative error| over {len(rows)} amps: {maxima}")
    signed = np.array(rows)[:, 4:]
    if np.isnan(signed).all():
        print(f"no a00 ({ptc.fit_type} measures none)")
    else:
        print(
            "a00 relative error over the amps, mean / rms: "
            f"b free {np.nanmean(signed[:, 0]):+.3f} / {np.sqrt(np.nanmean(signed[:, 0] ** 2)):.3f}, "
            f"b = 0 {np.nanmean(signed[:, 1]):+.3f} / {np.sqrt(np.nanmean(signed[:, 1] ** 2)):.3f}; "
            "expected 1-sigma (Cramer-Rao bound of the weighted fit, median over the amps): "
            f"b free {np.nanmedian(np.array(bounds)[:, 0]):.3f}, "
            f"b = 0 {np.nanmedian(np.array(bounds)[:, 1]):.3f}"
        )
    print("CPU (s): " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))


if __name__ == "__main__":
    main()
