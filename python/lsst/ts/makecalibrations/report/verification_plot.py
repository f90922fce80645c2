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

"""A heat map of cp_verify failures per detector and test, from the run-level (``verify*Stats``) or
exposure-level (``verify*ExpStats``) statistics dicts.

May import: numpy, matplotlib, `butler.camera`, `report.layout`.
"""

from __future__ import annotations

__all__ = ["BIAS_DARK_TESTS", "FLAT_TESTS", "count_verification_failures", "plot_verification_failures"]

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


def _count_exposure_level(exp_stats: Mapping[str, Any], counts: dict[tuple[str, str], int]) -> None:
    for failure in exposure_level_failures(exp_stats):
        counts[(_detector_label(failure.detector or _EXPOSURE_ROW), failure.test)] += 1


def count_verification_failures(stats: Mapping[Any, Any]) -> dict[tuple[str, str], int]:
    """Count cp_verify failures per ``(detector, test)``.

    Parameters
    ----------
    stats : `~collections.abc.Mapping`
        One of: a run-level dict (``verify*Stats``: exposure id -> ``{"SUCCESS", "FAILURES"}`` with
        FAILURES such as ``"R22_S21 C17 NOISE"``, ``"R22_S22 SCATTER"`` or ``"SCATTER"``); an
        exposure-level dict (``verify*ExpStats``: detector name -> ``{"SUCCESS", "FAILURES"}`` with
        FAILURES such as ``"C17 NOISE"``, and for flats ``"VERIFY": {"EXP": {"SCATTER": bool}}``); or
        a mapping exposure id -> exposure-level dict. Prefer the exposure-level form for flats: the
        run-level flat stats list only exposure-level failures (cp_verify drops the amp failures).

    Returns
    -------
    counts : `dict` [`tuple` [`str`, `str`], `int`]
        Number of failures (amp x exposure occurrences) per detector name and test name; failures
        that name no detector (exposure-level tests) are counted under ``"exposure level"``.
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    keys = [str(k) for k in stats if k != "SUCCESS"]
    if keys and all(_DET_NAME_RE.match(k) or k in ("EXP", "VERIFY") for k in keys):
        _count_exposure_level(stats, counts)
        return dict(counts)
    for key, entry in stats.items():
        if key == "SUCCESS" or not isinstance(entry, Mapping):
            continue
        if "FAILURES" not in entry and any(_DET_NAME_RE.match(str(k)) for k in entry):
            _count_exposure_level(entry, counts)
            continue
        for failure in run_level_failures(entry):
            counts[(failure.detector or _EXPOSURE_ROW, failure.test)] += 1
    return dict(counts)


def _processed_detectors(stats: Mapping[Any, Any]) -> set[str] | None:
    """Detector names present in exposure-level stats, or `None` if the stats do not say."""
    names: set[str] = set()
    entries = [stats] + [v for v in stats.values() if isinstance(v, Mapping)]
    for entry in entries:
        names |= {str(k) for k in entry if _DET_NAME_RE.match(str(k))}
    return names or None


def _exposure_summary(stats: Mapping[Any, Any]) -> str:
    entries = [v for k, v in stats.items() if k != "SUCCESS" and isinstance(v, Mapping)]
    if not entries or not all("SUCCESS" in e for e in entries):
        return ""
    n_fail = sum(1 for e in entries if not e["SUCCESS"])
    keys = [str(k) for k in stats if k != "SUCCESS"]
    what = "detectors" if all(_DET_NAME_RE.match(k) for k in keys) else "exposures"
    return f"{n_fail}/{len(entries)} {what} flagged"


def plot_verification_failures(
    stats_by_type: Mapping[str, Mapping[Any, Any]],
    path: str | Path,
    run_name: str,
    *,
    verdicts: Mapping[str, str] | None = None,
) -> Path:
    """Draw a heat map of verification failures: detectors x (calibration type, test).

    Parameters
    ----------
    stats_by_type : `~collections.abc.Mapping` [`str`, `~collections.abc.Mapping`]
        Verification statistics keyed by calibration type (``"bias"``, ``"dark"``, ``"flat"``), each
        in one of the forms `count_verification_failures` accepts. The standard tests of each type
        are always shown, so a clean run draws an all-zero map.
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
        overall = stats.get("SUCCESS")
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
