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

"""Where the CPU of one small daily default goes: ``run_script`` itself, the warm worker's start, each job.

Run with ``python -m bench.cpu_breakdown --work DIR [--detectors 0,1]``. Makes a new repository in
``DIR/repo`` (as ``bench.bench_daily`` does; its creation is not counted), then runs the reduced daily
default (5 biases, 5 darks, 6 flats, default size, time scale 100, warm OCPS executor) with
``run_script``'s own ``main`` in a child process, and prints user + system CPU seconds of:

* ``run_script`` itself (``RUSAGE_SELF`` at its end: the script, the embedded bus, the simulated CSCs
  and camera, raw simulation and writing, the OCPS's bookkeeping, the report and its plots);
* the warm pipetask worker's start (its imports, as the worker reports them in its ready message);
* each OCPS job's child, as the worker measured it with ``wait4`` (`sim.warm_executor`'s ``job_cpu``);
* everything waited for (``RUSAGE_CHILDREN``), whose sum with the first is ``bench_daily``'s figure.

Only measures: the child reads the worker's figures when the simulated OCPS closes its executor
(`sim.warm_executor.WarmPipetaskExecutor.close` is wrapped for that); nothing the run does changes.
Not part of ``make bench``.

May import: the standard library and this package.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_MARK = "CPU_BREAKDOWN "


def _child(argv: list[str]) -> int:
    """Run ``run_script <argv>`` in this process and print its breakdown as one JSON line."""
    from lsst.ts.makecalibrations.cli import run_script
    from lsst.ts.makecalibrations.sim import warm_executor

    seen: dict[str, Any] = {"jobs": {}, "worker_starts": []}
    close = warm_executor.WarmPipetaskExecutor.close

    async def recording_close(self: Any) -> None:
        seen["jobs"].update(self.job_cpu)
        if self.worker.ready:
            seen["worker_starts"].append(float(self.worker.ready.get("cpu_s", 0.0)))
        await close(self)

    warm_executor.WarmPipetaskExecutor.close = recording_close  # type: ignore[method-assign]
    sys.argv = ["run_script", *argv]
    try:
        code = run_script.main()
    finally:
        own = resource.getrusage(resource.RUSAGE_SELF)
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        seen["run_script_s"] = own.ru_utime + own.ru_stime
        seen["children_s"] = waited.ru_utime + waited.ru_stime
        print(_MARK + json.dumps(seen), flush=True)
    return int(code or 0)


def main(argv: list[str] | None = None) -> int:
    """Make the repository, run the small daily default and print where its CPU went."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    from .bench_daily import _processed, make_repo, script_command

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--work", type=Path, required=True, help="directory of the new repo and reports")
    parser.add_argument("--detectors", default="0,1", help="comma-separated detector ids")
    args = parser.parse_args(argv)
    detectors = [int(d) for d in args.detectors.split(",")]
    repo, reports = args.work / "repo", args.work / "reports"
    if repo.exists():
        raise SystemExit(f"{repo} exists: give a new --work directory.")
    made = make_repo(repo, "default", detectors)
    print(f"Repository ready in {made['wall_s']:.0f} s wall, {made['cpu_s']:.0f} s CPU (not counted below).")
    params = [f"detectors={json.dumps(detectors)}", "n_bias=5", "n_dark=5", "n_flat=6"]
    command = script_command(repo, reports, "default", params)
    child = [sys.executable, "-m", "bench.cpu_breakdown", "--child", *command[1:]]
    done = subprocess.run(child, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        tail = done.stdout[-3000:] + done.stderr[-2000:]
        raise SystemExit(f"run_script failed ({done.returncode}):\n{tail}")
    seen = json.loads(lines[-1][len(_MARK) :])
    report = json.loads(sorted(reports.glob("*.json"))[-1].read_text())
    names = {job["job_id"]: job["name"] for job in report["jobs"]}
    total = seen["run_script_s"] + seen["children_s"]
    images = _processed(report, len(detectors))
    print(f"  run_script itself                 {seen['run_script_s']:6.1f} s")
    for cpu in seen["worker_starts"]:
        print(f"  warm worker start (imports)       {cpu:6.1f} s")
    for job_id, cpu in seen["jobs"].items():
        print(f"  job {names.get(job_id, job_id):<29} {cpu:6.1f} s")
    print(f"  all waited-for processes          {seen['children_s']:6.1f} s")
    print(
        f"  total (bench_daily's figure)      {total:6.1f} s = {total / images:.2f} s per "
        f"processed detector-image (final state {report['final_state']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
