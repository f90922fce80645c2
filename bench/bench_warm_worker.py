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

"""The warm pipetask worker against a ``pipetask`` subprocess per job, on the same OCPS jobs.

Run with ``python -m bench.bench_warm_worker [--work DIR] [--rounds 1]``. Makes the small daily
default with ``bench.bench_daily`` (2 detectors, 5 biases, 5 darks, 6 flats, default size; or reuses the
repository and report ``bench_daily --keep --work DIR`` left in ``DIR``), then replays every OCPS job of
that run in this process, one at a time, on the same raws, first as the simulated OCPS runs it with
``--ocps-executor pipetask`` (a ``pipetask run`` subprocess per job) and then with the warm worker
(`sim.warm_executor`), ``--rounds`` times in turn. CPU is user + system seconds of every process
involved: the subprocesses waited for, and for the warm worker each job's child (as the worker
measured it with ``wait4``) plus the worker's own start (its imports), measured when it is closed and
reaped. The printed ratio is subprocess CPU / warm CPU over the whole job list; the replayed outputs of
both are compared with the run's own (``bench_daily.compare_outputs``). The wall times depend on the
load of the machine and are printed only as a guide.

May import: the standard library and the sibling ``bench`` modules.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import bench_daily


def _total(rows: list[dict[str, Any]]) -> float:
    return float(sum(row["cpu_s"] for row in rows))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, help="bench_daily --keep work directory to reuse (repo, reports)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="subprocess/warm replays in turn")
    parser.add_argument("--keep", action="store_true", help="keep the work directory made here")
    args = parser.parse_args(argv if argv is not None else [])
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_warm_"))
    repo, reports = work / "repo", work / "reports"
    try:
        if not sorted(reports.glob("*.json")):
            bench_daily.make_repo(repo, "default", [0, 1])
            bench_daily.run_daily(repo, reports, "default", [0, 1], 5, 5, 6, "pipetask")
        report_path = sorted(reports.glob("*.json"))[-1]
        report = json.loads(report_path.read_text())
        n_images = bench_daily._processed(report, len(report["config"].get("detectors") or [0, 1]))
        load0 = os.getloadavg()
        results: dict[str, list[float]] = {"pipetask": [], "warm": []}
        per_job: dict[str, dict[str, float]] = {}
        for round_ in range(args.rounds):
            for kind in ("pipetask", "warm"):
                print(f"Round {round_ + 1}, {kind}:", flush=True)
                rows = bench_daily.replay(repo, report_path, f"{kind}{round_}x{int(time.time())}", kind)
                failed = [row for row in rows if row["exit_code"] not in (0, None)]
                if failed:
                    raise SystemExit(f"{kind}: {len(failed)} job(s) failed: {failed[0]['message']}")
                results[kind].append(_total(rows))
                for row in rows:
                    per_job.setdefault(row["name"], {})[kind] = row["cpu_s"]
                bench_daily.compare_outputs(repo, rows)
        load1 = os.getloadavg()
        print(f"\n{len(per_job) - 1} OCPS jobs of {report_path.name} ({n_images} processed detector-images):")
        print(f"  {'job':<28} {'subprocess':>10} {'warm':>10}  CPU s (last round)")
        for name, figures in per_job.items():
            print(f"  {name:<28} {figures.get('pipetask', 0.0):10.1f} {figures.get('warm', 0.0):10.1f}")
        for kind, totals in results.items():
            shown = " ".join(f"{t:.1f}" for t in totals)
            print(
                f"  {kind:<10} total CPU per round {shown} s = "
                f"{min(totals) / n_images:.2f} s per detector-image"
            )
        ratio = min(results["pipetask"]) / min(results["warm"])
        print(f"  subprocess / warm CPU: {ratio:.2f}x (best rounds)")
        print(f"  1-min load average before {load0[0]:.1f}, after {load1[0]:.1f} (2 cores, shared machine)")
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif args.work is None:
            print(f"Work directory kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
