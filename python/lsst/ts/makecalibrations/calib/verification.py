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

"""The certification decision from cp_verify run-level statistics.

The rule is the one of the ts_externalscripts ComCam script (``count_failed_verification_tests``,
https://github.com/lsst-ts/ts_externalscripts):

* the run-level stats map each exposure id to ``{"SUCCESS": bool, "FAILURES": [...]}`` and have a
  top-level ``"SUCCESS"``; if that is True, certify;
* otherwise the test name is the last space-separated token of each FAILURES string, counted per
  exposure; an exposure fails if some test has at least ``threshold × (n_detectors // 2 + 1)``
  failures;
* the calibration is not certified if the number of failed exposures is at least
  ``len(stats) // 2 + 1``, where ``len`` counts the ``"SUCCESS"`` key too.

This ``majority`` rule is the default. It can never refuse a flat: cp_verify's run-level flat stats
list only the exposure-level ``SCATTER`` (once per exposure), and a run of one exposure always
certifies. The ``strict`` rule (configuration key ``verification_rule``) counts the failures per
detector and per amplifier, over the exposures, from the exposure-level stats (``verify*ExpStats``,
which name the failing detector and amp also for flats) or, without them, from the run-level
FAILURES strings. Besides the majority rule it refuses certification when

* an amplifier fails some test in every exposure (a dead or noisy amp);
* a detector fails a detector-level test (flat ``SCATTER``) in every exposure (vignetting, a
  wrong-filter flat);
* an exposure-level test (flat ``EXP`` ``SCATTER``) fails in a majority (``n // 2 + 1``) of the
  exposures.

`decide_certification` returns a `VerificationDecision` that records the counts, the limits and
the failing tests, for the log and the run report.

May import: the standard library and the other `calib` modules.
"""

from __future__ import annotations

__all__ = ["VERIFICATION_RULES", "VerificationDecision", "decide_certification", "decide_gain_check"]

import collections
import dataclasses
from collections.abc import Mapping
from typing import Any

from .summaries import bounded, summarise_items
from .verify_stats import exposure_level_failures, run_level_failures

VERIFICATION_RULES = ("majority", "strict")
"""Certification rules: the anchor's ``majority`` rule (default) and the ``strict`` rule."""


@dataclasses.dataclass(frozen=True)
class VerificationDecision:
    """The outcome of the certification rule for one image type.

    Attributes
    ----------
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    certify : `bool`
        True if the calibration passes.
    overall_success : `bool`
        The stats' own top-level ``SUCCESS`` (True certifies directly).
    n_exposures : `int`
        Exposures in the stats.
    n_failed_exposures : `int`
        Exposures with some test failing at least ``failure_limit`` times.
    max_failed_exposures : `int`
        ``len(stats) // 2 + 1``: this many failed exposures or more prevent certification.
    threshold : `int`
        ``number_verification_tests_threshold_<type>``.
    n_detectors : `int`
        Detectors processed.
    failure_limit : `int`
        ``threshold × (n_detectors // 2 + 1)``.
    failures_per_exposure : `dict` [`str`, `dict` [`str`, `int`]]
        Test failure counts of each exposure that has failures (exposure id as a string).
    failed_exposures : `dict` [`str`, `list` [`str`]]
        Failed exposures and the tests that reached the limit.
    failing_tests : `dict` [`str`, `int`]
        Total failures per test over all exposures.
    rule : `str`
        ``majority`` or ``strict``.
    amp_failures : `dict` [`str`, `int`]
        Strict rule: exposures in which each failing amp (``"R22_S21 C17"``) failed some test.
    detector_failures : `dict` [`str`, `int`]
        Strict rule: exposures in which each detector failed a detector-level test.
    exposure_level_failures : `int`
        Strict rule: exposures whose exposure-level test failed.
    blocking : `list` [`str`]
        Strict rule: why certification is refused beyond the majority rule (empty if nothing).
    """

    image_type: str
    certify: bool
    overall_success: bool
    n_exposures: int
    n_failed_exposures: int
    max_failed_exposures: int
    threshold: int
    n_detectors: int
    failure_limit: int
    failures_per_exposure: dict[str, dict[str, int]]
    failed_exposures: dict[str, list[str]]
    failing_tests: dict[str, int]
    rule: str = "majority"
    amp_failures: dict[str, int] = dataclasses.field(default_factory=dict)
    detector_failures: dict[str, int] = dataclasses.field(default_factory=dict)
    exposure_level_failures: int = 0
    blocking: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for the log: the outcome, the counts and the limits."""
        verdict = "PASSED" if self.certify else "FAILED"
        if self.overall_success:
            return (
                f"{self.image_type} verification {verdict}: "
                f"all {self.n_exposures} exposures passed every test"
            )
        tests = ", ".join(f"{name} x{count}" for name, count in sorted(self.failing_tests.items()))
        strict = ""
        if self.rule == "strict":
            blocks = summarise_items(self.blocking, "block", sep="; ") if self.blocking else "nothing blocks"
            strict = "; strict rule: " + blocks
        return bounded(
            f"{self.image_type} verification {verdict}: {self.n_failed_exposures} of {self.n_exposures} "
            f"exposures failed (certification needs fewer than {self.max_failed_exposures}); an exposure "
            f"fails when one test fails >= {self.failure_limit} times "
            f"(threshold {self.threshold} x ({self.n_detectors} // 2 + 1) detectors)"
            + (f"; failing tests: {tests}" if tests else "")
            + strict
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)


def decide_certification(
    image_type: str,
    stats: Mapping[Any, Any],
    threshold: int,
    n_detectors: int,
    rule: str = "majority",
    exposure_stats: Mapping[Any, Mapping[str, Any]] | None = None,
) -> VerificationDecision:
    """Apply the certification rule to run-level verification statistics.

    Parameters
    ----------
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    stats : `~collections.abc.Mapping`
        ``verify<Type>Stats``: exposure id (int or str) -> ``{"SUCCESS": bool, "FAILURES": [str]}``,
        plus ``"SUCCESS": bool``.
    threshold : `int`
        ``number_verification_tests_threshold_<type>``.
    n_detectors : `int`
        Number of detectors processed.
    rule : `str`, optional
        ``majority`` (the anchor's rule) or ``strict`` (see the module docstring).
    exposure_stats : `~collections.abc.Mapping`, optional
        ``verify<Type>ExpStats`` per exposure id, for the strict rule; without them the strict rule
        reads the run-level FAILURES (which, for flats, do not name detectors or amps).

    Returns
    -------
    decision : `VerificationDecision`
        Whether to certify, and why.
    """
    overall = bool(stats.get("SUCCESS", False))
    failure_limit = threshold * (n_detectors // 2 + 1)
    max_failed = len(stats) // 2 + 1
    exposures = [key for key in stats if key != "SUCCESS"]
    per_exposure: dict[str, dict[str, int]] = {}
    failed: dict[str, list[str]] = {}
    totals: collections.Counter[str] = collections.Counter()
    for exposure in exposures:
        counter = collections.Counter(f.test for f in run_level_failures(stats[exposure]))
        if not counter:
            continue
        per_exposure[str(exposure)] = dict(counter)
        totals.update(counter)
        over = sorted(test for test, count in counter.items() if count >= failure_limit)
        if over:
            failed[str(exposure)] = over
    majority_ok = overall or len(failed) < max_failed
    if rule not in VERIFICATION_RULES:
        raise ValueError(f"Unknown verification rule {rule!r}; expected one of {VERIFICATION_RULES}.")
    amp_counts: collections.Counter[str] = collections.Counter()
    det_counts: collections.Counter[str] = collections.Counter()
    n_exp_level = 0
    blocking: list[str] = []
    if rule == "strict":
        for exposure in exposures:
            exp_entry = None
            if exposure_stats is not None:
                exp_entry = exposure_stats.get(exposure, exposure_stats.get(str(exposure)))
            amps, dets, exp_level = _strict_failures(stats[exposure], exp_entry)
            amp_counts.update(amps)
            det_counts.update(dets)
            n_exp_level += bool(exp_level)
        n = len(exposures)
        for amp, count in sorted(amp_counts.items()):
            if n and count == n:
                blocking.append(f"{amp} failed in every exposure")
        for det, count in sorted(det_counts.items()):
            if n and count == n:
                blocking.append(f"{det} failed a detector test in every exposure")
        if n and n_exp_level >= n // 2 + 1:
            blocking.append(f"the exposure-level test failed in {n_exp_level} of {n} exposures")
    certify = majority_ok and not blocking
    return VerificationDecision(
        image_type=str(image_type),
        certify=certify,
        overall_success=overall,
        n_exposures=len(exposures),
        n_failed_exposures=len(failed),
        max_failed_exposures=max_failed,
        threshold=int(threshold),
        n_detectors=int(n_detectors),
        failure_limit=failure_limit,
        failures_per_exposure=per_exposure,
        failed_exposures=failed,
        failing_tests=dict(totals),
        rule=rule,
        amp_failures=dict(amp_counts),
        detector_failures=dict(det_counts),
        exposure_level_failures=n_exp_level,
        blocking=blocking,
    )


def _strict_failures(run_entry: Any, exp_entry: Mapping[str, Any] | None) -> tuple[set[str], set[str], bool]:
    """Failing amps (``"R22_S21 C17"``), detectors and exposure-level failure of one exposure.

    From the exposure-level stats when given, otherwise from the run-level FAILURES
    (`calib.verify_stats`).
    """
    failures = exposure_level_failures(exp_entry) if exp_entry is not None else run_level_failures(run_entry)
    amps = {f"{f.detector} {f.amp}" for f in failures if f.amp is not None}
    dets = {f.detector for f in failures if f.detector is not None and f.amp is None}
    exp_level = any(f.detector is None for f in failures)
    return amps, dets, exp_level


def decide_gain_check(stats: Mapping[Any, Any]) -> dict[str, Any]:
    """The outcome of cp_verify's gain-from-flat-pairs check (``verifyGainStats``).

    Every failing amp fails the check (a gain is a per-amp product; there is no majority): the
    result names each failing amp with the number of pairs it failed in.

    Parameters
    ----------
    stats : `~collections.abc.Mapping`
        ``verifyGainStats``: first exposure of each pair -> ``{"SUCCESS", "FAILURES": [...]}``, plus
        ``"SUCCESS"``; failures read ``"R22_S21 C17 GAIN_FROM_FLAT_PAIR"``.

    Returns
    -------
    decision : `dict` [`str`, `typing.Any`]
        ``passed``, ``n_pairs``, ``failing_amps`` (``{"R22_S21 C17": n_pairs}``) and ``summary``.
    """
    pairs = [key for key in stats if key != "SUCCESS"]
    amps: collections.Counter[str] = collections.Counter()
    for pair in pairs:
        entry = stats[pair]
        failures = run_level_failures(entry)
        amps.update({f"{f.detector} {f.amp}" for f in failures if f.amp is not None})
        if isinstance(entry, Mapping) and not entry.get("SUCCESS", False) and not entry.get("FAILURES"):
            amps.update({f"pair {pair}"})
    passed = not amps and (bool(stats.get("SUCCESS", False)) or not pairs)
    if passed:
        summary = (
            f"GAIN verification PASSED: every amp of {len(pairs)} flat pair(s) within 5 % of the PTC gain"
        )
    else:
        listed = summarise_items(
            (f"{amp} ({count} of {len(pairs)} pairs)" for amp, count in sorted(amps.items())), "amp(s)"
        )
        summary = bounded(
            f"GAIN verification FAILED: the flux-corrected gain from flat pairs differs from the PTC "
            f"gain by 5 % or more on {listed}"
        )
    return {"passed": passed, "n_pairs": len(pairs), "failing_amps": dict(amps), "summary": summary}
