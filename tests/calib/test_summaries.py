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

"""Failure reasons of bounded length (calib.summaries) and where the run uses them."""

from __future__ import annotations

from lsst.ts.makecalibrations.calib.report import FailureRecord, RunReport
from lsst.ts.makecalibrations.calib.summaries import (
    MAX_REASON_CHARS,
    bounded,
    reason_kind,
    summarise_by_reason,
    summarise_items,
)
from lsst.ts.makecalibrations.calib.verification import decide_gain_check

NOISE = (
    "read noise {0:.3g} +- {1:.2g} e- not constrained by the flat pairs "
    "(relative error above 0.2; a low-flux pair is needed)"
)


def test_bounded_and_items() -> None:
    assert bounded("short") == "short"
    cut = bounded("x" * 10_000)
    assert len(cut) == MAX_REASON_CHARS and cut.endswith("(9500 more characters; see the run report)")
    assert summarise_items([], "amps") == "0 amps"
    assert summarise_items(["a", "b"], "amps") == "2 amps: a, b"
    assert summarise_items([f"C{i}" for i in range(16)], "amps") == "16 amps: C0, C1, C2 and 13 more"
    assert (
        summarise_items(["x; y", "z"], "steps failed", first=1, sep="; ") == "2 steps failed: x; y and 1 more"
    )


def test_reasons_grouped_by_kind() -> None:
    assert reason_kind(NOISE.format(7.25, 3.1)) == "read noise not constrained by the flat pairs"
    assert reason_kind("gain 1.234 +- 0.05 e-/ADU not constrained") == "gain not constrained"
    assert (
        reason_kind("negative noise term n00 = -1.2e+03 e^2 in the fit")
        == "negative noise term n00 = in the fit"
    )
    # 135 amps alike and one other: the counts per kind, the first three, nothing like 10 KB.
    reasons = {f"detector {i // 16} C{i % 16:02d}": NOISE.format(5 + i / 10, 2 + i / 100) for i in range(135)}
    reasons["detector 8 C15"] = "gain 1.7 +- 0.2 e-/ADU not constrained by the flat pairs"
    text = summarise_by_reason(reasons, "of 144 amplifiers bad in the PTC")
    assert text.startswith(
        "136 of 144 amplifiers bad in the PTC (read noise not constrained by the flat pairs: 135, "
        "gain not constrained by the flat pairs: 1); first 3: detector 0 C00, detector 0 C01, detector 0 C02 "
    )
    assert text.endswith(" and 133 more") and len(text) <= MAX_REASON_CHARS
    one_kind = summarise_by_reason({"a": NOISE.format(1, 1), "b": NOISE.format(2, 2)}, "bad amps")
    assert one_kind == "2 bad amps (read noise not constrained by the flat pairs): a, b"


def test_failures_are_bounded_with_their_details_kept() -> None:
    report = RunReport()
    details = [f"detector {i // 16} C{i % 16:02d}: {NOISE.format(6, 2)}" for i in range(135)]
    report.add_failure("PTC", "x" * 10_000, "job1", "u/ocps/job1", details=details)
    report.add_failure("GAIN verification", "short")
    failure = report.failures[0]
    assert len(failure.reason) == MAX_REASON_CHARS and failure.details == details
    assert report.failure_reason == failure.describe() and len(report.failure_reason) < 600
    summary = report.failures_summary()
    assert summary.startswith("2 steps failed: PTC: xxx") and len(summary) <= MAX_REASON_CHARS
    # The details survive the JSON round trip (the report keeps the full list).
    again = RunReport.from_dict(report.to_dict())
    assert again.failures[0].details == details and again.failures[1] == FailureRecord(
        "GAIN verification", "short"
    )


def test_gain_check_summary_is_bounded() -> None:
    stats = {
        f"pair{p}": {
            "SUCCESS": False,
            "FAILURES": [f"R22_S{d}0 C{a:02d} GAIN_FROM_FLAT_PAIR" for d in "012" for a in range(16)],
        }
        for p in range(6)
    }
    stats["SUCCESS"] = False
    decision = decide_gain_check(stats)
    assert not decision["passed"] and len(decision["failing_amps"]) == 48
    assert "on 48 amp(s): R22_S00 C00 (6 of 6 pairs), R22_S00 C01 (6 of 6 pairs)" in decision["summary"]
    assert decision["summary"].endswith("and 45 more") and len(decision["summary"]) <= MAX_REASON_CHARS
