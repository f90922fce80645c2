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

"""The certification rule on fabricated run-level verification statistics (the ts_externalscripts rule)."""

from lsst.ts.makecalibrations.calib.verification import decide_certification


def failures(n: int, test: str = "NOISE") -> list[str]:
    """``n`` failure strings of one test spread over detectors and amps, as cp_verify writes them."""
    return [f"R22_S{(i // 16) // 3}{(i // 16) % 3} C{i % 16:02d} {test}" for i in range(n)]


def test_overall_success_certifies() -> None:
    stats = {101: {"SUCCESS": True}, 102: {"SUCCESS": True}, "SUCCESS": True}
    decision = decide_certification("BIAS", stats, threshold=8, n_detectors=9)
    assert decision.certify and decision.overall_success
    assert decision.n_exposures == 2 and decision.n_failed_exposures == 0
    assert "PASSED" in decision.summary()


def test_exposure_fails_at_threshold_times_majority_of_detectors() -> None:
    # 9 detectors: limit = 8 * (9 // 2 + 1) = 40 failures of one test in one exposure.
    below = {1: {"SUCCESS": False, "FAILURES": failures(39)}, "SUCCESS": False}
    decision = decide_certification("BIAS", below, 8, 9)
    assert decision.failure_limit == 40
    assert decision.n_failed_exposures == 0 and decision.certify
    assert decision.failures_per_exposure == {"1": {"NOISE": 39}}
    at = {1: {"SUCCESS": False, "FAILURES": failures(40)}, "SUCCESS": False}
    decision = decide_certification("BIAS", at, 8, 9)
    assert decision.failed_exposures == {"1": ["NOISE"]}
    # len(stats) counts SUCCESS: 2 // 2 + 1 = 2 failed exposures needed; one is not enough.
    assert decision.max_failed_exposures == 2 and decision.certify


def test_last_token_is_the_test_name() -> None:
    stats = {
        1: {"SUCCESS": False, "FAILURES": failures(3, "NOISE") + failures(3, "CR_NOISE") + ["SCATTER"]},
        "SUCCESS": False,
    }
    decision = decide_certification("FLAT", stats, 1, 2)
    assert decision.failing_tests == {"NOISE": 3, "CR_NOISE": 3, "SCATTER": 1}
    # limit = 1 * (2 // 2 + 1) = 2: NOISE and CR_NOISE reach it, SCATTER does not.
    assert decision.failed_exposures == {"1": ["CR_NOISE", "NOISE"]}


def test_majority_of_exposures_refuses_certification() -> None:
    # 4 exposures + SUCCESS = 5 keys -> 5 // 2 + 1 = 3 failed exposures refuse certification.
    stats = {e: {"SUCCESS": True} for e in range(4)}
    stats["SUCCESS"] = False
    for e in range(2):
        stats[e] = {"SUCCESS": False, "FAILURES": failures(16)}
    decision = decide_certification("DARK", stats, 8, 2)
    assert decision.failure_limit == 16
    assert decision.n_failed_exposures == 2 and decision.max_failed_exposures == 3
    assert decision.certify
    stats[2] = {"SUCCESS": False, "FAILURES": failures(16, "MEAN")}
    decision = decide_certification("DARK", stats, 8, 2)
    assert decision.n_failed_exposures == 3 and not decision.certify
    summary = decision.summary()
    assert "FAILED" in summary and "3 of 4 exposures failed" in summary and ">= 16" in summary
    assert decision.to_dict()["failed_exposures"] == {"0": ["NOISE"], "1": ["NOISE"], "2": ["MEAN"]}


def test_string_exposure_keys_and_missing_success() -> None:
    stats = {"2024010100001": {"SUCCESS": False, "FAILURES": failures(5)}}
    decision = decide_certification("BIAS", stats, 1, 9)
    # No SUCCESS key: len(stats) = 1 -> 1 failed exposure refuses.
    assert not decision.overall_success
    assert decision.failed_exposures == {"2024010100001": ["NOISE"]}
    assert not decision.certify


# --- the strict rule on fabricated flat statistics ------------------------------------------------

DETECTORS = [f"R22_S{i}{j}" for i in range(3) for j in range(3)]


def flat_exposure(det_failures: dict[str, list[str]], exp_scatter_ok: bool) -> dict:
    """``verifyFlatExpStats`` of one exposure: detectors with FAILURES, and the EXP SCATTER test."""
    stats: dict = {"EXP": {"SCATTER": 0.01 if exp_scatter_ok else 900.0}}
    stats["VERIFY"] = {"EXP": {"SCATTER": exp_scatter_ok}}
    for det in DETECTORS:
        failures = det_failures.get(det, [])
        stats[det] = {"SUCCESS": not failures, **({"FAILURES": failures} if failures else {})}
    stats["SUCCESS"] = exp_scatter_ok and not det_failures
    return stats


def flat_run(exposures: dict[int, dict]) -> dict:
    """``verifyFlatStats`` as cp_verify merges flats: only the exposure-level failures are listed."""
    run: dict = {}
    for exp_id, stats in exposures.items():
        ok = stats["SUCCESS"]
        run[exp_id] = {"SUCCESS": ok}
        if not ok:
            run[exp_id]["FAILURES"] = [] if stats["VERIFY"]["EXP"]["SCATTER"] else ["SCATTER"]
    run["SUCCESS"] = all(v["SUCCESS"] for v in run.values())
    return run


def decide_both(exposures: dict[int, dict]) -> tuple:
    run = flat_run(exposures)
    default = decide_certification("FLAT", run, 8, 9)
    strict = decide_certification("FLAT", run, 8, 9, rule="strict", exposure_stats=exposures)
    return default, strict


def test_dead_amp_is_blocked_only_by_the_strict_rule() -> None:
    # A dead amp (mean ~ 0) fails NOISE <= sqrt(MEAN) and pulls its detector's SCATTER and the
    # exposure scatter of the detector means over their limits, in every exposure.
    exposures = {e: flat_exposure({"R22_S11": ["SCATTER", "C03 NOISE"]}, False) for e in range(1, 5)}
    default, strict = decide_both(exposures)
    assert default.certify  # one SCATTER per exposure never reaches 8 x 5
    assert not strict.certify
    assert "R22_S11 C03 failed in every exposure" in strict.blocking
    assert strict.amp_failures == {"R22_S11 C03": 4}
    assert "strict rule" in strict.summary() and "FAILED" in strict.summary()


def test_vignetted_detector_is_blocked_only_by_the_strict_rule() -> None:
    # Vignetting on one detector: its amp means spread by more than 5 %, every exposure, but the
    # exposure scatter stays within its limit for this fabricated case.
    exposures = {e: flat_exposure({"R22_S22": ["SCATTER"]}, True) for e in range(1, 4)}
    default, strict = decide_both(exposures)
    assert default.certify
    assert not strict.certify
    assert strict.blocking == ["R22_S22 failed a detector test in every exposure"]


def test_wrong_filter_flat_is_blocked_only_by_the_strict_rule() -> None:
    # Flats divided by a flat of another filter: every detector's amp means scatter and the
    # exposure scatter fails; a single exposure run is enough for the strict rule.
    exposures = {1: flat_exposure({det: ["SCATTER"] for det in DETECTORS}, False)}
    default, strict = decide_both(exposures)
    assert default.certify
    assert not strict.certify
    assert "the exposure-level test failed in 1 of 1 exposures" in strict.blocking
    assert strict.detector_failures == {det: 1 for det in DETECTORS}


def test_strict_rule_passes_isolated_failures() -> None:
    # One amp failing in one of four exposures, one exposure scatter failure: not systematic.
    exposures = {e: flat_exposure({}, True) for e in range(1, 5)}
    exposures[2] = flat_exposure({"R22_S01": ["C10 NOISE"]}, False)
    default, strict = decide_both(exposures)
    assert default.certify and strict.certify and strict.blocking == []
    assert strict.amp_failures == {"R22_S01 C10": 1} and strict.exposure_level_failures == 1


def test_strict_rule_reads_run_level_failures_without_exposure_stats() -> None:
    stats = {e: {"SUCCESS": False, "FAILURES": ["R22_S21 C17 NOISE", "R22_S21 C17 CR_NOISE"]} for e in (1, 2)}
    stats["SUCCESS"] = False
    assert decide_certification("BIAS", stats, 8, 9).certify
    strict = decide_certification("BIAS", stats, 8, 9, rule="strict")
    assert not strict.certify and strict.blocking == ["R22_S21 C17 failed in every exposure"]


def test_unknown_rule_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="Unknown verification rule 'lenient'"):
        decide_certification("BIAS", {"SUCCESS": True}, 8, 9, rule="lenient")
