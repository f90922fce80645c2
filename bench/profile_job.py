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

"""CPU-time profile of one OCPS job of a run, as the simulated OCPS runs it (``pipetask run -j 1``).

Run with ``python -m bench.profile_job REPO REPORT [--job BIAS] [--top 12] [--output job.prof]``:
takes the job whose name starts with ``--job`` from the run report (as written by
``bench.bench_daily --keep``), runs it again with the simulated OCPS's executor into a new output run,
with ``pipetask`` under `cProfile` in its own process and `time.process_time` as the clock (CPU
seconds, so the figures do not depend on the load of a shared machine), and prints where the CPU went
(task work, butler reads and writes, graph building, imports) and the top functions by own time.
``--warm`` profiles the job as the warm pipetask worker runs it: the wrapper first imports what the
worker imports before it forks a job (`sim.pipetask_server`), outside the profile. Not part of
``make bench``.

May import: the standard library and this package.
"""

from __future__ import annotations

__all__ = ["main", "summarize"]

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import runpy
import sys
import time
from pathlib import Path

_GROUPS = {
    "quanta executed (runQuantum)": lambda k: k[2] == "runQuantum",
    "  ISR pixel math (run_isr)": lambda k: k[2] == "run_isr",
    "  verification statistics (detector_stats)": lambda k: k[2] == "detector_stats",
    "  butler reads (QuantumContext.get)": lambda k: k[0].endswith("_quantumContext.py") and k[2] == "get",
    "  butler writes (QuantumContext.put)": lambda k: k[0].endswith("_quantumContext.py") and k[2] == "put",
    "    of which FITS encoding (write_archive)": lambda k: k[2] == "write_archive",
    "graph building (qgraph)": lambda k: k[0].endswith("script/qgraph.py") and k[2] == "qgraph",
    "imports": lambda k: k[2] == "_find_and_load",
}


def summarize(stats: pstats.Stats, top: int) -> str:
    """Text of the grouped summary and the ``top`` functions by own time."""
    entries = stats.stats  # type: ignore[attr-defined]
    total = max(value[3] for value in entries.values())
    lines = [f"total CPU {total:.1f} s"]
    for name, match in _GROUPS.items():
        cumulative = max((value[3] for key, value in entries.items() if match(key)), default=0.0)
        summed = sum(value[3] for key, value in entries.items() if match(key))
        # Recursive entries (imports) would count twice if summed: take the outermost for those.
        value = cumulative if name == "imports" else summed
        lines.append(f"  {name:<46} {value:6.1f} s")
    stream = io.StringIO()
    stats.stream = stream  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    body = [line for line in stream.getvalue().splitlines() if line.strip()]
    lines += body[-(top + 1) :]
    return "\n".join(lines)


def _wrapped_pipetask(profile_path: str, arguments: list[str], warm: bool = False) -> int:
    """Run ``pipetask <arguments>`` in this process under a CPU-time profile saved to ``profile_path``;
    with ``warm``, first (not profiled) import what the warm pipetask worker imports before it forks a
    job (`sim.pipetask_server`), so the profile is that of a job's child in the worker."""
    if warm:
        from lsst.ts.makecalibrations.sim import pipetask_server

        pipetask_server._preload()
    script = str(Path(sys.executable).parent / "pipetask")
    profile = cProfile.Profile(time.process_time)
    sys.argv = [script, *arguments]
    code: int | str | None = 0
    try:
        profile.runcall(runpy.run_path, script, run_name="__main__")
    except SystemExit as e:
        code = e.code
    profile.dump_stats(profile_path)
    return int(code or 0) if not isinstance(code, str) else 1


def main(argv: list[str] | None = None) -> int:
    """Profile one job (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--wrap"], ["--wrap-warm"]):
        return _wrapped_pipetask(argv[1], argv[2:], warm=argv[0] == "--wrap-warm")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("repo", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--job", default="BIAS", help="prefix of the job name in the report")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--output", type=Path, default=Path("job.prof"), help="raw profile file")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="profile the job as the warm pipetask worker runs it (its imports done before the profile)",
    )
    args = parser.parse_args(argv)

    from lsst.ts.makecalibrations.sim.ocps_jobs import JobRequest
    from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor

    report = json.loads(args.report.read_text())
    job = next(j for j in report["jobs"] if j["name"].startswith(args.job))
    tag = f"profile{int(time.time())}"
    # The simulated OCPS's own executor builds the command (labels, -i, clamps); only the pipetask
    # it starts is this module, which profiles pipetask in its process.
    wrap = "--wrap-warm" if args.warm else "--wrap"
    wrapper = [sys.executable, str(Path(__file__).resolve()), wrap, str(args.output.resolve())]
    executor = PipetaskExecutor(args.repo, log_dir=args.output.resolve().parent / tag, pipetask=wrapper)
    request = JobRequest(
        job_id=tag,
        run_id=tag,
        pipeline=job["pipeline"],
        version="",
        config=job["config"],
        data_query=job["data_query"],
        output_collection=f"{job['output_collection']}/{tag}",
    )
    outcome = asyncio.run(executor.run(request))
    if outcome.exit_code != 0:
        raise SystemExit(f"job failed: {outcome.message}")
    print(f"Profile of job {job['name']} ({job['pipeline']}), {tag}:")
    print(summarize(pstats.Stats(str(args.output)), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
