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

"""A heat map of cp_verify failures per detector and test, from a run's `VerificationStats` (its
exposure-level ``verify*ExpStats`` and run-level ``verify*Stats``).

May import: numpy, matplotlib, `butler.camera`, `report.layout`.
"""

from __future__ import annotations

__all__ = [
    "BIAS_DARK_TESTS",
    "FLAT_TESTS",
    "VerificationStats",
    "count_verification_failures",
    "plot_verification_failures",
]

import dataclasses
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..butler.camera import DETECTOR_NAMES
from ..calib.verify_stats import exposure_level_failures, run_level_failures
from .layout import save_png

BIAS_DARK_TESTS: tuple[str, ...] = ("MEAN", "NOISE", "CR_NOISE", "READ_NOISE_CONSISTENT")
"""cp_verify tests of a bias or dark, always shown as columns of the failure heat map."""

FLAT_TESTS: tuple[str, ...] = ("NOISE", "SCATTER")
"""cp_verify tests of a flat, always shown as columns of the failure heat map."""

_DEFAULT_TESTS: dict[str, tuple[str, ...]] = {
    "bias": BIAS_DARK_TESTS,
    "dark": BIAS_DARK_TESTS,
    "flat": FLAT_TESTS,
}

_EXPOSURE_ROW = "exposure level"
_DET_NAME_RE = re.compile(r"^R\d\d_S\d\d$")


def _detector_label(name: str) -> str:
    return name if _DET_NAME_RE.match(name) else _EXPOSURE_ROW


@dataclasses.dataclass(frozen=True)
class VerificationStats:
    """cp_verify's statistics of one calibration type of a run, as the verification plot reads them.

    Attributes
    ----------
    exposures : `~collections.abc.Mapping` [`int`, `~collections.abc.Mapping`]
        The exposure-level ``verify*ExpStats`` per exposure id: detector name -> ``{"SUCCESS",
        "FAILURES"}`` with FAILURES such as ``"C17 NOISE"``, and for flats ``"VERIFY": {"EXP":
        {"SCATTER": bool}}``. Where there are any, the failures are counted from them: the run-level
        flat stats list only exposure-level failures (cp_verify drops the amp failures).
    run : `~collections.abc.Mapping`
        The run-level ``verify*Stats``: exposure id -> ``{"SUCCESS", "FAILURES"}`` with FAILURES such
        as ``"R22_S21 C17 NOISE"``, ``"R22_S22 SCATTER"`` or ``"SCATTER"``, and ``"SUCCESS"``,
        cp_verify's verdict on the run. The failures are counted from it when ``exposures`` is empty.
    """

    exposures: Mapping[int, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    run: Mapping[Any, Any] = dataclasses.field(default_factory=dict)

    @property
    def success(self) -> bool | None:
        """cp_verify's verdict on the run; `None` when the run-level stats are missing."""
        value = self.run.get("SUCCESS")
        return None if value is None else bool(value)

    def entries(self) -> list[Mapping[str, Any]]:
        """The per-exposure entries the failures are counted from (see the attributes)."""
        if self.exposures:
            return list(self.exposures.values())
        return [v for k, v in self.run.items() if k != "SUCCESS" and isinstance(v, Mapping)]


def count_verification_failures(stats: VerificationStats) -> dict[tuple[str, str], int]:
    """Count cp_verify failures per ``(detector, test)``.

    Returns
    -------
    counts : `dict` [`tuple` [`str`, `str`], `int`]
        Number of failures (amp x exposure occurrences) per detector name and test name; failures
        that name no detector (exposure-level tests) are counted under ``"exposure level"``.
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    if stats.exposures:
        for exp_stats in stats.exposures.values():
            for failure in exposure_level_failures(exp_stats):
                counts[(_detector_label(failure.detector or _EXPOSURE_ROW), failure.test)] += 1
    else:
        for entry in stats.entries():
            for failure in run_level_failures(entry):
                counts[(failure.detector or _EXPOSURE_ROW, failure.test)] += 1
    return dict(counts)


def _processed_detectors(stats: VerificationStats) -> set[str] | None:
    """Detector names present in the exposure-level stats, or `None` if there are none."""
    names = {str(k) for entry in stats.exposures.values() for k in entry if _DET_NAME_RE.match(str(k))}
    return names or None


def _exposure_summary(stats: VerificationStats) -> str:
    entries = stats.entries()
    if not entries or not all("SUCCESS" in e for e in entries):
        return ""
    n_fail = sum(1 for e in entries if not e["SUCCESS"])
    return f"{n_fail}/{len(entries)} exposures flagged"


def plot_verification_failures(
    stats_by_type: Mapping[str, VerificationStats],
    path: str | Path,
    run_name: str,
    *,
    verdicts: Mapping[str, str] | None = None,
) -> Path:
    """Draw a heat map of verification failures: detectors x (calibration type, test).

    Parameters
    ----------
    stats_by_type : `~collections.abc.Mapping` [`str`, `VerificationStats`]
        Verification statistics keyed by calibration type (``"bias"``, ``"dark"``, ``"flat"``). The
        standard tests of each type are always shown, so a clean run draws an all-zero map.
    path : `str` or `pathlib.Path`
        Output PNG.
    run_name : `str`
        Name of the run, shown in the title.
    verdicts : `~collections.abc.Mapping` [`str`, `str`], optional
        Outcome of the certification rule per calibration type (e.g. ``"passed (0 of 20 exposures
        over the limit)"``), shown next to cp_verify's own verdict: the rule may certify a
        calibration even when cp_verify flags some exposures.

    Returns
    -------
    path : `pathlib.Path`
        The written PNG.
    """
    columns: list[tuple[str, str]] = []
    counts: dict[tuple[str, str, str], int] = {}
    summaries: list[str] = []
    has_exposure_row = False
    processed: dict[str, set[str] | None] = {}
    for calib_type, stats in stats_by_type.items():
        processed[calib_type] = _processed_detectors(stats)
        type_counts = count_verification_failures(stats)
        tests = list(_DEFAULT_TESTS.get(calib_type, ()))
        tests += sorted({test for _, test in type_counts} - set(tests))
        columns += [(calib_type, test) for test in tests]
        for (det, test), n in type_counts.items():
            counts[(calib_type, det, test)] = n
            has_exposure_row |= det == _EXPOSURE_ROW
        overall = stats.success
        verdict = "" if overall is None else ("cp_verify passed" if overall else "cp_verify FAILED")
        parts = [s for s in (verdict, _exposure_summary(stats)) if s]
        if verdicts and verdicts.get(calib_type):
            parts.append(f"rule: {verdicts[calib_type]}")
        summaries.append(f"{calib_type}: " + "; ".join(parts) if parts else calib_type)
    rows = list(DETECTOR_NAMES) + ([_EXPOSURE_ROW] if has_exposure_row else [])
    matrix = np.zeros((len(rows), max(len(columns), 1)), dtype=int)
    not_processed = np.zeros(matrix.shape, dtype=bool)
    for j, (calib_type, test) in enumerate(columns):
        seen = processed.get(calib_type)
        for i, det in enumerate(rows):
            matrix[i, j] = counts.get((calib_type, det, test), 0)
            not_processed[i, j] = seen is not None and det != _EXPOSURE_ROW and det not in seen
    fig = Figure(figsize=(max(10.0, 1.0 + 0.75 * len(columns)), 7.0), layout="constrained")
    ax = fig.subplots()
    vmax = max(int(matrix.max()), 1)
    from matplotlib import colormaps

    reds = colormaps["Reds"].with_extremes(bad="0.88")
    shown = np.ma.masked_array(matrix, mask=not_processed)
    image = ax.imshow(shown, cmap=reds, vmin=0, vmax=vmax, aspect="auto")
    for i in range(matrix.shape[0]):
        for j in range(len(columns)):
            n = matrix[i, j]
            if not_processed[i, j]:
                ax.text(j, i, "-", ha="center", va="center", fontsize=8, color="0.5")
                continue
            ax.text(
                j,
                i,
                str(n),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if n > 0.6 * vmax else ("black" if n else "0.6"),
            )
    ax.set_xticks(
        range(len(columns)),
        [f"{t}\n{test}" for t, test in columns],
        fontsize=8,
        rotation=45,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("calibration type and cp_verify test")
    ax.set_ylabel("detector")
    for j in range(1, len(columns)):
        if columns[j][0] != columns[j - 1][0]:
            ax.axvline(j - 0.5, color="black", lw=1.5)
    cbar = fig.colorbar(image, ax=ax)
    cbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    cbar.set_label("failures [count of amplifier x exposure]")
    total = int(matrix.sum())
    footer = f"{total} failures in total"
    if not_processed.any():
        footer += "; grey '-': detector not processed"
    ax.set_title("\n".join(summaries + [footer]), fontsize=9, loc="left")
    fig.suptitle(f"Verification failures per detector and test\n{run_name}", fontsize=12)
    return save_png(fig, path)
