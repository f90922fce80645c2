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

"""``compare_runs``: the runs of a report folder, and two runs' gains and read noise per amplifier.

::

    compare_runs DIR                          list the runs whose JSON reports are in DIR, oldest first
    compare_runs A.json B.json [--plot P]     gain and read noise per detector and amplifier of A and B
                                              (median over the flat pairs) and their differences B - A
    compare_runs A.json --truth REPO [--plot P]   the same against the simulated truth recorded in
                                              REPO/simulation/truth.json (simulator repositories only)

The gains are those of the report's ``gains`` (per flat pair, from a PTC or gain job), the read
noise each pair's overscan noise times its gain (electrons, as the truth records it). The plot
draws the differences per amplifier, detector after detector; the table ends with the median and
largest absolute differences and the median signed difference B - A (with ``--truth``, B is the
truth: a negative gain B - A means the run's gains are above the truth).

May import: `calib`, `sim.repository`, the standard library, numpy and matplotlib.
"""

from __future__ import annotations

__all__ = ["AmpValues", "amp_values", "compare", "list_runs", "main", "plot_comparison", "truth_values"]

import argparse
import pathlib
import statistics
import sys
from collections.abc import Mapping, Sequence

from ..calib.report import RunReport, tai_to_iso
from ..calib.statuses import CertificationStatus

AmpValues = dict[tuple[int, str], tuple[float, float]]
"""``{(detector, amp): (gain e-/ADU, read noise e-)}``."""


def list_runs(directory: str | pathlib.Path) -> list[tuple[pathlib.Path, RunReport]]:
    """Every readable run report in ``directory``, oldest first."""
    runs = []
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        try:
            runs.append((path, RunReport.load(path)))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue  # not a run report
    return sorted(runs, key=lambda item: item[1].start_tai)


def amp_values(report: RunReport) -> AmpValues:
    """Median gain and read noise over the flat pairs, per detector and amplifier.

    A pair's noise is the overscan noise in ADU (`calib.report.GainRecord.noise`, as cp_pipe's
    partial PTC stores it): it is turned into electrons with that pair's gain, the unit of the
    simulated truth's read noise.
    """
    by_amp: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for g in report.gains:
        by_amp.setdefault((g.detector, g.amp), []).append((g.gain, g.noise * g.gain))
    return {
        key: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
        for key, values in by_amp.items()
    }


def truth_values(repo: str | pathlib.Path) -> AmpValues:
    """The gain and read noise the simulator drew its images with."""
    from ..sim.repository import read_simulation_config

    detectors = read_simulation_config(repo)["detectors"]
    return {
        (int(det), amp): (float(gain), float(info["read_noise"][amp]))
        for det, info in detectors.items()
        for amp, gain in info["gain"].items()
    }


def compare(a: AmpValues, b: AmpValues) -> list[tuple[int, str, float, float, float, float]]:
    """``(detector, amp, gain a, gain b, noise a, noise b)`` for the amplifiers both have."""
    return [
        (det, amp, *a[det, amp][:1], *b[det, amp][:1], a[det, amp][1], b[det, amp][1])
        for det, amp in sorted(set(a) & set(b))
    ]


def format_comparison(
    rows: Sequence[tuple[int, str, float, float, float, float]], names: tuple[str, str]
) -> str:
    """The comparison as a text table with a last line of the median and largest absolute differences
    and the median signed difference B - A."""
    lines = [
        f"{'det':>3} {'amp':>4} {'gain A':>7} {'gain B':>7} {'B-A':>7} "
        f"{'noise A':>7} {'noise B':>7} {'B-A':>6}"
    ]
    for det, amp, ga, gb, na, nb in rows:
        lines.append(
            f"{det:>3} {amp:>4} {ga:7.3f} {gb:7.3f} {gb - ga:+7.3f} {na:7.2f} {nb:7.2f} {nb - na:+6.2f}"
        )
    if rows:
        dg = [abs(r[3] - r[2]) for r in rows]
        dn = [abs(r[5] - r[4]) for r in rows]
        signed_g = statistics.median(r[3] - r[2] for r in rows)
        signed_n = statistics.median(r[5] - r[4] for r in rows)
        lines.append(
            f"{len(rows)} amplifiers; |gain B-A| median {statistics.median(dg):.4f}, "
            f"max {max(dg):.4f} e-/ADU (B-A median {signed_g:+.4f}); "
            f"|noise B-A| median {statistics.median(dn):.3f}, max {max(dn):.3f} e- "
            f"(B-A median {signed_n:+.3f})"
        )
    else:
        lines.append("no amplifier in common (a run without gains?)")
    lines.insert(0, f"A = {names[0]}\nB = {names[1]}")
    return "\n".join(lines)


def plot_comparison(
    rows: Sequence[tuple[int, str, float, float, float, float]],
    names: tuple[str, str],
    path: str | pathlib.Path,
) -> pathlib.Path:
    """Draw B - A of gain and noise per amplifier (detectors one after the other) into ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6), layout="constrained")
    ax_gain, ax_noise = fig.subplots(2, 1, sharex=True)
    x = list(range(len(rows)))
    ax_gain.bar(x, [r[3] - r[2] for r in rows], color="tab:blue")
    ax_noise.bar(x, [r[5] - r[4] for r in rows], color="tab:red")
    ax_gain.set_ylabel("gain B - A [e-/ADU]")
    ax_noise.set_ylabel("read noise B - A [e-]")
    for ax in (ax_gain, ax_noise):
        ax.axhline(0.0, color="k", lw=0.8)
        ax.grid(alpha=0.3)
    starts = [i for i, r in enumerate(rows) if i == 0 or rows[i - 1][0] != r[0]]
    ax_noise.set_xticks(starts, [f"det {rows[i][0]}" for i in starts])
    fig.suptitle(f"B - A per amplifier\nA = {names[0]}\nB = {names[1]}", fontsize=10)
    path = pathlib.Path(path)
    FigureCanvasAgg(fig).print_png(str(path))
    return path


def _describe(path: pathlib.Path, report: RunReport) -> str:
    certified = sorted(
        {c.product for c in report.certifications if c.status == CertificationStatus.CERTIFIED}
    )
    return (
        f"{path.name}  {tai_to_iso(report.start_tai)[:19]}  {report.final_state or '?':8}  "
        f"{report.config.get('script_mode', '')}  "
        f"gains {len({(g.detector, g.amp) for g in report.gains})} amps"
        f"  certified {', '.join(certified) or '-'}"
    )


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point ``compare_runs``."""
    parser = argparse.ArgumentParser(prog="compare_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="a report folder, or one or two JSON run reports")
    parser.add_argument(
        "--truth", metavar="REPO", help="compare one run with the truth of this simulated repo"
    )
    parser.add_argument("--plot", metavar="PNG", help="draw the differences into this PNG")
    parsed = parser.parse_args(args)
    paths = [pathlib.Path(p) for p in parsed.runs]
    if len(paths) == 1 and paths[0].is_dir():
        runs = list_runs(paths[0])
        print(f"{len(runs)} run(s) in {paths[0]}:")
        for path, report in runs:
            print(_describe(path, report))
        return 0
    expected = 1 if parsed.truth else 2
    if len(paths) != expected:
        parser.error(
            f"give {expected} JSON report(s){' with --truth' if parsed.truth else ''}, got {len(paths)}"
        )
    try:
        values: list[Mapping[tuple[int, str], tuple[float, float]]] = [
            amp_values(RunReport.load(p)) for p in paths
        ]
        names = [str(p) for p in paths]
        if parsed.truth:
            values.append(truth_values(parsed.truth))
            names.append(f"simulated truth of {parsed.truth}")
    except (OSError, ValueError, TypeError, KeyError) as e:
        print(f"compare_runs: cannot read {e}", file=sys.stderr)
        return 2
    rows = compare(dict(values[0]), dict(values[1]))
    print(format_comparison(rows, (names[0], names[1])))
    if parsed.plot:
        # The report file names identify the runs (their folders would crowd the title).
        titles = [pathlib.Path(n).name if n.endswith(".json") else n for n in names[:2]]
        print(f"plot: {plot_comparison(rows, (titles[0], titles[1]), parsed.plot)}")
    return 0 if rows else 1
