"""The certification rule on fabricated run-level verification statistics (cp-algorithms §6.7)."""

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
