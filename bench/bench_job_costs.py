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

"""Benchmark: the CPU cost of each kind of OCPS job, fitted as fixed + per detector-image.

Run with ``python -m bench.bench_job_costs`` (``make bench`` runs it with the defaults: the default
image size, 3 detectors, jobs replayed on 1 and 3 of them; about 25 minutes on 2 idle cores). It
prints the entry of ``calib.durations.MEASURED_COSTS`` it proposes; that table is where the plan's
estimated duration and ``run_script``'s time left take their figures from.

1. **The jobs.** A repository is made at ``--size`` with reference calibrations of ``--detectors``
   detectors, and ``make run``'s two configurations run on it with ``run_script`` (time scale 100),
   reduced to those detectors: ``examples/demo_generate_and_certify.yaml`` (combines, internal
   verifications, defects, PTC, gain check) and ``examples/daily_default.yaml`` (external
   verifications, gain from flat pairs, gain check). ``--reuse`` takes the repository and reports of
   an earlier run of this benchmark in ``--work`` instead (after a code change: the same raws).
2. **Each job again, at several sizes.** Every successful job of the two reports is run again, one
   after the other, with the simulated OCPS's default executor (`sim.observatory.SimulatedObservatory`
   on that repository: what ``run_script`` runs its jobs with), on the same raws and inputs, its data
   query cut to the first ``n`` detectors for each ``n`` of ``--replay-detectors``. Its CPU seconds
   are those of this process's descendants while it runs: the processes it waited for
   (``RUSAGE_CHILDREN``) plus the user + system time the live ones gained (``/proc``: a worker that
   outlives the job is counted too); its wall time is printed but not fitted (the machine is shared).
3. **The fit.** Per kind of job (`calib.durations.cost_kind`: combine, verify, defects, PTC, gain, gain
   check) and per image type's combine and verification (``flat_combine``...), least squares of CPU
   seconds = fixed + per_image x detector-images over its jobs; the detector-images are the kept
   exposures of the job's data query times its detectors, as the plan counts them
   (`calib.plan.CalibrationPlan.n_processed`). The proposed entry has every kind, and an image type's
   own figures where they differ from its kind's by more than `SPECIFIC_DIFFERENCE` at the largest
   size measured; the overall fit (every job but the gain checks) is its figure for a job of a kind
   not measured.

May import: the standard library, numpy and this package.
"""

from __future__ import annotations

__all__ = ["fit_costs", "main", "measure", "replay_at", "tree_cpu"]

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .bench_daily import ROOT, make_repo, replay_request, run_measured, script_command

CONFIGS = ("examples/demo_generate_and_certify.yaml", "examples/daily_default.yaml")
"""``make run``'s configurations, whose jobs are measured."""

_DETECTORS = re.compile(r"detector IN \(([^)]*)\)")
_EXPOSURES = re.compile(r"exposure IN \(([^)]*)\)")


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process's descendants: the waited-for ones
    (``RUSAGE_CHILDREN``) and the live ones with what they waited for (Linux ``/proc``)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        # utime stime cutime cstime (fields 14-17 of stat; here after pid and comm).
        times[int(entry.name)] = sum(int(v) for v in fields[11:15]) / tick
    me = os.getpid()
    for pid in times:
        ancestor = parents.get(pid)
        while ancestor is not None and ancestor not in (me, 0, 1):
            ancestor = parents.get(ancestor)
        if ancestor == me:
            total += times[pid]
    return total


def run_sources(work: Path, size: str, n_detectors: int) -> list[Path]:
    """Make the repository and run ``make run``'s two configurations on it; return their reports."""
    repo, reports = work / "repo", work / "reports"
    detectors = list(range(n_detectors))
    created = make_repo(repo, size, detectors)
    print(f"repository {repo} (size {size}, {n_detectors} detectors): {created['cpu_s']:.1f} s CPU")
    paths = []
    for config in CONFIGS:
        params = [f"detectors={json.dumps(detectors)}"]
        command = script_command(repo, reports, size, params, ROOT / config)
        result = run_measured(command, reports)
        figures = f"{result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} s CPU"
        print(f"{config}: {figures}, report {result['report']}", flush=True)
        paths.append(Path(result["report"]))
    return paths


def _count(pattern: re.Pattern[str], query: str) -> list[str]:
    match = pattern.search(query)
    if match is None:
        raise ValueError(f"No {pattern.pattern!r} in the data query {query!r}.")
    return [item.strip() for item in match.group(1).split(",") if item.strip()]


async def replay_at(executor: Any, job: dict[str, Any], n_detectors: int, tag: str) -> dict[str, Any]:
    """Run a report's ``job`` again on its first ``n_detectors`` detectors; return its figures."""
    from lsst.ts.makecalibrations.calib.durations import cost_kind

    detectors = _count(_DETECTORS, job["data_query"])[:n_detectors]
    query = _DETECTORS.sub(f"detector IN ({','.join(detectors)})", job["data_query"])
    n_exposures = len(_count(_EXPOSURES, query))
    request = replay_request(job, f"{tag}-{n_detectors}", query)
    cpu0, t0 = tree_cpu(), time.perf_counter()
    outcome = await executor.run(request)
    return {
        "name": job["name"],
        "kind": cost_kind(job["name"]),
        "detector_images": n_exposures * len(detectors),
        "exposures": n_exposures,
        "detectors": len(detectors),
        "cpu_s": tree_cpu() - cpu0,
        "wall_s": time.perf_counter() - t0,
        "exit_code": outcome.exit_code,
        "message": outcome.message,
    }


async def measure(
    executor: Any, reports: Sequence[Path], detector_counts: Sequence[int], tag: str
) -> list[dict[str, Any]]:
    """Replay every successful job of ``reports`` at each of ``detector_counts`` (in one event loop: a
    warm worker lives across the jobs), printing a line per job; close the executor; return the rows."""
    rows = []
    try:
        # A job first, unmeasured: it starts the executor's worker, if it has one (a warm worker starts
        # once per OCPS, its imports are not a cost of each job).
        first = next(
            j for r in reports for j in json.loads(r.read_text())["jobs"] if j.get("status") == "succeeded"
        )
        warm_up = await replay_at(executor, first, 1, f"{tag}-warmup")
        print(f"warm-up job ({first['name']}, 1 detector): {warm_up['cpu_s']:.1f} s CPU, not fitted")
        print(f"{'job':<14} {'kind':<11} {'exp':>4} {'det':>4} {'det-img':>8} {'CPU s':>8} {'wall s':>8}")
        for report in reports:
            for job in json.loads(report.read_text())["jobs"]:
                if job.get("status") != "succeeded":
                    continue
                for n in detector_counts:
                    row = await replay_at(executor, job, n, tag)
                    rows.append(row)
                    print(
                        f"{row['name']:<14} {row['kind']:<11} {row['exposures']:>4} {row['detectors']:>4} "
                        f"{row['detector_images']:>8} {row['cpu_s']:>8.1f} {row['wall_s']:>8.1f}"
                        + ("" if row["exit_code"] == 0 else f"  FAILED {row['message'][:100]}"),
                        flush=True,
                    )
    finally:
        close = getattr(executor, "close", None)
        if close is not None and asyncio.iscoroutinefunction(close):
            await close()
    return rows


SPECIFIC_DIFFERENCE = 0.2
"""An image type's combine or verification gets an entry of its own when its fit and its kind's differ
by more than this fraction at the largest size it was measured at."""


def _fit(points: Sequence[tuple[int, float]]) -> tuple[float, float, int, int]:
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    if len(set(x)) < 2:
        return (float(y.mean()), float("nan"), len(points), int(x.max()))
    (fixed, per_image), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)
    return (float(fixed), float(per_image), len(points), int(x.max()))


def fit_costs(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float, int, int]]:
    """``{key: (fixed, per_image, n_jobs, largest detector-images)}`` by least squares over the
    successful rows of each cost key of the proposed entry (`calib.durations.cost_keys` of the job's
    name): an image type's combine or verification where it differs from the rest of its kind by
    more than `SPECIFIC_DIFFERENCE` at its largest size, else its kind, fitted over the jobs not split
    off; and ``"all"`` over every job but the gain checks. A key measured at a single size gets its
    mean CPU as fixed cost, per_image NaN."""
    from lsst.ts.makecalibrations.calib.durations import cost_keys

    good = [row for row in rows if row["exit_code"] == 0]

    def points(key: str, split: frozenset[str] = frozenset()) -> list[tuple[int, float]]:
        return [
            (row["detector_images"], row["cpu_s"])
            for row in good
            if key in cost_keys(row["name"]) and not split.intersection(cost_keys(row["name"]))
        ]

    typed = {key for row in good for key in cost_keys(row["name"])[:-1]}
    split: set[str] = set()
    for key in sorted(typed):
        own = _fit(points(key))
        rest = points(key.split("_", 1)[1], frozenset({key}))
        if not np.isfinite(own[1]) or len({x for x, _ in rest}) < 2:
            continue
        others = _fit(rest)
        predicted, kinds = own[0] + own[1] * own[3], others[0] + others[1] * own[3]
        if abs(predicted - kinds) > SPECIFIC_DIFFERENCE * kinds:
            split.add(key)
    fits = {key: _fit(points(key)) for key in sorted(split)}
    for kind in sorted({row["kind"] for row in good}):
        if points(kind, frozenset(split)):
            fits[kind] = _fit(points(kind, frozenset(split)))
    fits["all"] = _fit(
        [(row["detector_images"], row["cpu_s"]) for row in good if row["kind"] != "gain_check"]
    )
    return fits


def _proposal(fits: dict[str, tuple[float, float, int, int]], size: str, executor: str, what: str) -> str:
    """The ``MEASURED_COSTS`` entry of ``fits``, as Python: ``size`` for the ``pipetask`` executor,
    ``size/executor`` for another (`calib.durations.ProcessingCostModel.for_size`)."""
    from lsst.ts.makecalibrations.calib.durations import MEASURED_COSTS

    fixed, per_image, *_ = fits["all"]
    from lsst.ts.makecalibrations.calib.durations import COST_KEYS

    keys = [key for key in COST_KEYS if key in fits and np.isfinite(fits[key][1])]
    kinds = ",\n        ".join(f'"{key}": JobCost({fits[key][0]:.1f}, {fits[key][1]:.3f})' for key in keys)
    ingest = MEASURED_COSTS[size].ingest_wall if size in MEASURED_COSTS else float("nan")
    key = size if executor == "pipetask" else f"{size}/{executor}"
    return (
        f'"{key}": MeasuredCost(\n    {fixed:.1f},\n    {per_image:.3f},\n    {ingest:g},  # OODS: not '
        f'measured here (kept)\n    "{what}",\n    {{\n        {kinds},\n    }},\n),'
    )


def _commit() -> str:
    try:
        command = ["git", "rev-parse", "--short", "HEAD"]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    """Measure and fit; print every job, the fits and the proposed ``MEASURED_COSTS`` entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--size", default="default", help="image size (default: default)")
    parser.add_argument("--detectors", type=int, default=3, help="detectors of the runs (default 3)")
    parser.add_argument(
        "--replay-detectors",
        type=int,
        nargs="+",
        default=[1, 3],
        help="detector counts each job is run again with (default: 1 3)",
    )
    parser.add_argument(
        "--ocps-executor",
        default=None,
        help="the simulated OCPS's executor to measure (default: the simulated observatory's default)",
    )
    parser.add_argument("--reuse", action="store_true", help="reuse the repository and reports in --work")
    parser.add_argument("--keep", action="store_true", help="keep --work (to --reuse it later)")
    args = parser.parse_args(argv)
    if args.reuse and args.work is None:
        parser.error("--reuse needs --work")
    if max(args.replay_detectors) > args.detectors:
        parser.error("--replay-detectors cannot exceed --detectors")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_job_costs_"))
    work.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    try:
        if args.reuse:
            reports = sorted((work / "reports").glob("*.json"))
            if not reports:
                raise SystemExit(f"No report in {work / 'reports'} to reuse.")
        else:
            reports = run_sources(work, args.size, args.detectors)
        from lsst.ts.makecalibrations.sim.observatory import DEFAULT_OCPS_EXECUTOR, SimulatedObservatory
        from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

        executor_name = args.ocps_executor or DEFAULT_OCPS_EXECUTOR
        executor = SimulatedObservatory(
            ObservatoryOptions(size=args.size, ocps_executor=executor_name), repo=work / "repo"
        ).executor
        print(f"executor: {type(executor).__name__}", flush=True)
        rows = asyncio.run(measure(executor, reports, args.replay_detectors, f"cost{int(time.time())}"))
        load1 = os.getloadavg()
        fits = fit_costs(rows)
        print("\nFit (CPU s = fixed + per_image x detector-images):")
        print(f"{'key':<13} {'jobs':>5} {'fixed s':>8} {'per image s':>12} {'largest':>8}")
        for key, (fixed, per_image, n_jobs, largest) in fits.items():
            print(f"{key:<13} {n_jobs:>5} {fixed:>8.1f} {per_image:>12.3f} {largest:>8}")
        what = (
            f"{time.strftime('%Y-%m-%d')}, commit {_commit()}: bench.bench_job_costs, "
            f"{type(executor).__name__}, "
            f"{len(rows)} jobs of make run's two configurations on {args.replay_detectors} of "
            f"{args.detectors} detectors, load {load0[0]:.1f} -> {load1[0]:.1f} on {os.cpu_count()} cores"
        )
        print("\nProposed MEASURED_COSTS entry:\n" + _proposal(fits, args.size, executor_name, what))
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
