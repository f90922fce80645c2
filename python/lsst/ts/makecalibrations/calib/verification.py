"""The certification decision from cp_verify run-level statistics.

The rule is the one of the existing ComCam script (``count_failed_verification_tests``, see
cp-algorithms §6.7 "Consumer logic"):

* the run-level stats map each exposure id to ``{"SUCCESS": bool, "FAILURES": [...]}`` and have a
  top-level ``"SUCCESS"``; if that is True, certify;
* otherwise the test name is the last space-separated token of each FAILURES string, counted per
  exposure; an exposure fails if some test has at least ``threshold × (n_detectors // 2 + 1)``
  failures;
* the calibration is not certified if the number of failed exposures is at least
  ``len(stats) // 2 + 1``, where ``len`` counts the ``"SUCCESS"`` key too.

`decide_certification` returns a `VerificationDecision` that records the counts, the limits and
the failing tests, for the log and the run report.

May import: the standard library and the other `calib` modules.
"""

from __future__ import annotations

__all__ = ["VerificationDecision", "decide_certification"]

import collections
import dataclasses
from collections.abc import Mapping
from typing import Any


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

    def summary(self) -> str:
        """One line for the log: the outcome, the counts and the limits."""
        verdict = "PASSED" if self.certify else "FAILED"
        if self.overall_success:
            return (
                f"{self.image_type} verification {verdict}: "
                f"all {self.n_exposures} exposures passed every test"
            )
        tests = ", ".join(f"{name} x{count}" for name, count in sorted(self.failing_tests.items()))
        return (
            f"{self.image_type} verification {verdict}: {self.n_failed_exposures} of {self.n_exposures} "
            f"exposures failed (certification needs fewer than {self.max_failed_exposures}); an exposure "
            f"fails when one test fails >= {self.failure_limit} times "
            f"(threshold {self.threshold} x ({self.n_detectors} // 2 + 1) detectors)"
            + (f"; failing tests: {tests}" if tests else "")
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)


def decide_certification(
    image_type: str, stats: Mapping[Any, Any], threshold: int, n_detectors: int
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
        entry = stats[exposure]
        failures = entry.get("FAILURES", []) if isinstance(entry, Mapping) else []
        counter = collections.Counter(str(f).split(" ")[-1] for f in failures if str(f).strip())
        if not counter:
            continue
        per_exposure[str(exposure)] = dict(counter)
        totals.update(counter)
        over = sorted(test for test, count in counter.items() if count >= failure_limit)
        if over:
            failed[str(exposure)] = over
    certify = overall or len(failed) < max_failed
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
    )
