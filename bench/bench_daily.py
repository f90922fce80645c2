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

"""Benchmark: CPU seconds per processed detector-image of the daily default, end to end and per job.

Run with ``python -m bench.bench_daily`` (``make bench`` runs it with the defaults). Two measurements:

1. **End to end.** ``run_script maintel/make_comcam_calibrations.py`` with the daily default reduced
   to ``--detectors`` (default 2 detectors, 5 biases, 5 darks, 6 flats) at ``--size`` (default
   ``default``) and time scale 100 (``--time-scale``), in a subprocess, on a repository made
   beforehand (its creation is measured and printed apart). The CPU figure is user + system time of
   ``run_script`` *and of every process it waited for* (``resource.getrusage(RUSAGE_CHILDREN)``: the
   OCPS's ``pipetask`` processes are children of ``run_script`` and are waited for, so their time is
   included). Wall time on a shared machine is printed but is not the figure to compare. Two wall
   times end at the last job's end: from the last exposure's end in the report, and from the last raw
   written into the repository (its file's time: when the simulated camera's pixels of the last image
   exist and the OODS announces it; at full size the simulated camera makes about one detector-image
   a second, so at time scale 100 the pixels of the images come long after the compressed exposures).
2. **Per job, replayed.** Every OCPS job of that run is run again, one after the other, with this
   tree's code (`sim.pipetask_executor.PipetaskExecutor`, as the simulated OCPS runs it) on the *same
   raws*, into new output runs; its CPU (children of this process) is printed per job. The replayed
   outputs are compared with the run's own: every ``verify*Stats`` value and test result, and every
   per-pair gain and noise (``cpPtcPartial``, or ``cpPtcExtract`` in older runs). Keeping the run
   (``--keep``) and replaying it later with ``--replay REPORT`` after a code change is how "the same
   verification decisions and gains on the same raws" is checked: the comparison is then between the
   old code's outputs and the new code's.

"Processed detector-image" counts each kept exposure once per detector (biases + darks + flats, times
detectors): 2 x 16 = 32 for the default. Discarded exposures are not processed.

May import: the standard library, numpy, yaml, lsst.daf.butler and this package.
"""

from __future__ import annotations

__all__ = ["compare_outputs", "main", "replay", "replay_request", "run_measured", "script_command"]

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "maintel/make_comcam_calibrations.py"
_PAIR_DATASETS = ("cpPtcPartial", "cpPtcExtract")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _children_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _tree_rss_mib(root_pid: int) -> float:
    """Summed resident set size (MiB) of ``root_pid`` and all its descendants (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        rss[int(entry.name)] = int(statm.split()[1]) * page
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / 2**20


class TreeRssSampler:
    """Samples the summed RSS of a process tree every ``interval`` seconds (its peak is ``peak_mib``)."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval, self.peak_mib = pid, interval, 0.0
        self.load_averages: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.interval):
            self.peak_mib = max(self.peak_mib, _tree_rss_mib(self.pid))
            if n % 30 == 0:
                self.load_averages.append(os.getloadavg())
            n += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.load_averages.append(os.getloadavg())


class ProcFileDropper:
    """Deletes the files of the verify jobs' processed images (``verify*Proc``) once written.

    Only for runs the benchmark throws away and that the disk cannot hold: at full size every
    ``verify*Proc`` is 195 MB, 60 per detector, about 105 GB for nine detectors. The jobs still write
    every one of them (the CPU and wall figures include it); a file is deleted ``age`` seconds after
    its last change, from a thread of this process, and its registry entry is left dangling. Nothing
    of the daily default reads them again (the statistics are measured in the ISR quantum,
    `pipelines.tasks.verify_isr_task`): a run that needed one would fail, and the benchmark then
    says so with its final state.
    """

    def __init__(self, repo: Path, interval: float = 5.0, age: float = 20.0) -> None:
        self.repo, self.interval, self.age = repo, interval, age
        self.files, self.bytes = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sweep(self) -> None:
        now = time.time()
        for path in self.repo.glob("u/ocps/*/verify*Proc/**/*.fits"):
            try:
                stat = path.stat()
                if now - stat.st_mtime > self.age:
                    path.unlink()
                    self.files, self.bytes = self.files + 1, self.bytes + stat.st_size
            except FileNotFoundError:
                pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sweep()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _python() -> str:
    return str(Path(sys.executable))


def _run_script() -> str:
    candidate = Path(sys.executable).parent / "run_script"
    return str(candidate)


def make_repo(repo: Path, size: str, detectors: list[int] | None = None) -> dict[str, float]:
    """Create the truth-seeded repository in a subprocess; return its wall and CPU seconds.

    Reference calibrations are made for ``detectors`` only (all nine when `None`).
    """
    cpu0, t0 = _children_cpu(), time.perf_counter()
    code = (
        "import json, sys; from lsst.ts.makecalibrations.sim.repository import ensure_repo; "
        "ensure_repo(sys.argv[1], size=sys.argv[2], detectors=json.loads(sys.argv[3]))"
    )
    subprocess.run([_python(), "-c", code, str(repo), size, json.dumps(detectors)], check=True, cwd=ROOT)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _children_cpu() - cpu0}


def run_daily(
    repo: Path,
    report_dir: Path,
    size: str,
    detectors: list[int],
    n_bias: int,
    n_dark: int,
    n_flat: int,
    ocps_executor: str | None = None,
    time_scale: float = 100.0,
) -> dict[str, Any]:
    """Run the reduced daily default with ``run_script``; return its figures and report path."""
    params = [
        f"detectors={json.dumps(detectors)}",
        f"n_bias={n_bias}",
        f"n_dark={n_dark}",
        f"n_flat={n_flat}",
    ]
    return run_measured(
        script_command(repo, report_dir, size, params, ocps_executor=ocps_executor, time_scale=time_scale),
        report_dir,
    )


def script_command(
    repo: Path,
    report_dir: Path,
    size: str,
    params: list[str],
    config: Path | None = None,
    ocps_executor: str | None = None,
    time_scale: float = 100.0,
) -> list[str]:
    """The ``run_script`` command line of the ComCam script at ``size`` and ``time_scale``, without
    progress lines, with the OCPS executor ``ocps_executor`` (the default if `None`), the
    configuration file ``config`` (if any) and the ``-p`` ``params``."""
    command = [_run_script(), SCRIPT, "--repo", str(repo), "--size", size, "--time-scale", f"{time_scale:g}"]
    command += ["--report-dir", str(report_dir), "--no-progress"]
    if ocps_executor:
        command += ["--ocps-executor", ocps_executor]
    if config is not None:
        command += ["-c", str(config)]
    return command + ["-p", *params]


def run_measured(command: list[str], report_dir: Path) -> dict[str, Any]:
    """Run ``command`` (a ``run_script`` command line writing its report into ``report_dir``); return
    its wall and CPU seconds (the waited-for process tree), peak RSS, load averages and report path."""
    before = set(report_dir.glob("*.json")) if report_dir.exists() else set()
    load0 = os.getloadavg()
    cpu0, t0 = _children_cpu(), time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeRssSampler(process.pid)
    stdout, _ = process.communicate()
    sampler.stop()
    completed = subprocess.CompletedProcess(command, process.returncode, stdout, "")
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    if completed.returncode != 0:
        raise SystemExit(f"run_script failed ({completed.returncode}):\n{completed.stdout[-4000:]}")
    reports = sorted(set(report_dir.glob("*.json")) - before)
    if not reports:
        raise SystemExit(f"run_script wrote no report into {report_dir}.")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "report": reports[-1],
        "peak_rss_mib": _children_maxrss_mib(),
        "tree_peak_rss_mib": sampler.peak_mib,
        "load_averages": [load0, *sampler.load_averages],
    }


def _jobs(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [job for job in report["jobs"] if job.get("status") == "succeeded" or job.get("exit_code") == 0]


def copy_raws(source: Path, target: Path, report: dict[str, Any]) -> int:
    """Make ``target`` (same simulation as ``source``) and copy the report's raws into it; return how many."""
    from lsst.daf.butler import Butler

    from lsst.ts.makecalibrations.sim.repository import ensure_repo, read_simulation_config

    config = read_simulation_config(source)
    ensure_repo(target, size=config.get("size"), seed=config.get("seed"))
    src = Butler.from_config(str(source))
    dst = Butler.from_config(str(target), writeable=True)
    ids = [int(e["exposure_id"]) for e in report["exposures"]]
    refs = src.query_datasets(
        "raw",
        collections="LSSTComCam/raw/all",
        where=f"instrument = 'LSSTComCam' AND exposure IN ({', '.join(map(str, ids))})",
        with_dimension_records=True,
        explain=False,
    )
    dst.transfer_from(src, refs, transfer="copy", transfer_dimensions=True)
    return len(refs)


def replay_request(job: dict[str, Any], tag: str, data_query: str | None = None) -> Any:
    """The `sim.ocps_jobs.JobRequest` that runs a report's ``job`` again (on ``data_query``, the job's
    own by default), as job ``<job_id>-<tag>`` into ``<output_collection>/<tag>``. Its ``-c`` labels
    are translated as today's job builder sends them (`calib.jobs.translate_isr_label`): a report
    written before the gain job's subset became ``cpPtcExtract`` alone names ``cpPtcIsr``."""
    from lsst.ts.makecalibrations.calib.jobs import ISR_LABELS, translate_isr_label
    from lsst.ts.makecalibrations.sim.ocps_jobs import JobRequest

    pipeline_file = job["pipeline"].rsplit("/", 1)[-1]
    config = job["config"]
    if pipeline_file in ISR_LABELS:
        config = translate_isr_label(config, pipeline_file)
    return JobRequest(
        job_id=f"{job['job_id']}-{tag}",
        run_id=f"bench-{tag}",
        pipeline=job["pipeline"],
        version="",
        config=config,
        data_query=job["data_query"] if data_query is None else data_query,
        output_collection=f"{job['output_collection']}/{tag}",
    )


def replay(repo: Path, report_path: Path, tag: str, executor: str = "pipetask") -> list[dict[str, Any]]:
    """Run every successful job of a report again, in turn, into ``<output>/<tag>``; return figures.

    ``executor`` is how the simulated OCPS runs them: ``pipetask`` (a subprocess per job, whose CPU is
    that of the children waited for) or ``warm`` (the warm worker: each job's CPU is its child's, as
    the worker measured it; the worker's own start, its imports, is the extra row ``warm worker
    start``, measured when it is closed and reaped).
    """
    from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor
    from lsst.ts.makecalibrations.sim.warm_executor import WarmPipetaskExecutor

    report = json.loads(report_path.read_text())
    log_dir = Path(tempfile.mkdtemp(prefix="bench_daily_logs_"))
    runner = (
        WarmPipetaskExecutor(repo, log_dir=log_dir)
        if executor == "warm"
        else PipetaskExecutor(repo, log_dir=log_dir)
    )
    rows: list[dict[str, Any]] = []

    async def run_all() -> None:
        cpu_start = _children_cpu()
        for job in _jobs(report):
            output = f"{job['output_collection']}/{tag}"
            request = replay_request(job, tag)
            cpu0, t0 = _children_cpu(), time.perf_counter()
            outcome = await runner.run(request)
            cpu = (
                runner.job_cpu.get(request.job_id, 0.0)
                if isinstance(runner, WarmPipetaskExecutor)
                else _children_cpu() - cpu0
            )
            row = {
                "name": job["name"],
                "original": job["output_collection"],
                "replayed": output,
                "wall_s": time.perf_counter() - t0,
                "cpu_s": cpu,
                "exit_code": outcome.exit_code,
                "message": outcome.message,
            }
            rows.append(row)
            print(
                f"  {job['name']:<28} cpu {row['cpu_s']:7.1f} s  wall {row['wall_s']:7.1f} s  "
                f"exit {outcome.exit_code} {outcome.message[:120]}",
                flush=True,
            )
        if isinstance(runner, WarmPipetaskExecutor):
            ready = dict(runner.worker.ready)
            await runner.close()
            rest = _children_cpu() - cpu_start - sum(row["cpu_s"] for row in rows)
            rows.append(
                {
                    "name": "warm worker start",
                    "cpu_s": rest,
                    "wall_s": ready.get("wall_s", 0.0),
                    "exit_code": None,
                }
            )
            print(
                f"  {'warm worker start':<28} cpu {rest:7.1f} s  (imports "
                f"{ready.get('cpu_s', 0.0):.1f} s CPU, {ready.get('wall_s', 0.0):.1f} s wall; "
                f"{runner.worker.starts} start(s))",
                flush=True,
            )

    asyncio.run(run_all())
    return rows


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}/{key}"))
        return out
    if isinstance(value, list | tuple):
        out = {}
        for i, sub in enumerate(value):
            out.update(_flatten(sub, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _same(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-6)
    return a == b


def _verify_stats(butler: Any, collection: str) -> dict[str, Any]:
    """Every ``verify*Stats`` dataset of a collection, by dataset type name."""
    out = {}
    names = [f"verify{kind}{level}Stats" for kind in ("Bias", "Dark", "Flat") for level in ("", "Exp", "Det")]
    for name in names:
        refs = list(butler.query_datasets(name, collections=collection, explain=False))
        for ref in refs:
            out[f"{name} {ref.dataId}"] = butler.get(ref)
    return out


def _pair_gains(butler: Any, collection: str) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name in _PAIR_DATASETS:
        try:
            refs = list(butler.query_datasets(name, collections=collection, explain=False))
        except Exception:
            continue
        for ref in refs:
            ptc = butler.get(ref)
            for amp in ptc.amp_names if hasattr(ptc, "amp_names") else ptc.gain:
                key = f"exp {ref.dataId['exposure']} det {ref.dataId['detector']} {amp}"
                out[key] = (float(ptc.gain[amp]), float(ptc.noise[amp]))
    return out


def compare_outputs(
    repo: Path, rows: list[dict[str, Any]], rtol: float = 2e-6, original_repo: Path | None = None
) -> dict[str, int]:
    """Compare each replayed job's verification stats and pair gains with the original's; print a summary."""
    from lsst.daf.butler import Butler

    butler = Butler.from_config(str(repo))
    original = Butler.from_config(str(original_repo)) if original_repo is not None else butler
    totals = {"values": 0, "differ": 0, "tests": 0, "tests_differ": 0, "gains": 0, "max_gain_rel": 0}
    max_rel = 0.0
    for row in rows:
        if row["exit_code"] != 0:
            continue
        old = _flatten(_verify_stats(original, row["original"]))
        new = _flatten(_verify_stats(butler, row["replayed"]))
        if set(old) != set(new):
            print(f"  {row['name']}: verification keys differ ({len(old)} vs {len(new)})")
            totals["differ"] += len(set(old) ^ set(new))
        for key in set(old) & set(new):
            totals["values"] += 1
            is_test = isinstance(old[key], bool)
            totals["tests"] += is_test
            if not _same(old[key], new[key], rtol):
                totals["differ"] += 1
                totals["tests_differ"] += is_test
                if totals["differ"] <= 5:
                    print(f"  {row['name']}: {key}: {old[key]!r} -> {new[key]!r}")
        old_g, new_g = _pair_gains(original, row["original"]), _pair_gains(butler, row["replayed"])
        if set(old_g) != set(new_g):
            print(f"  {row['name']}: pair gains differ in keys ({len(old_g)} vs {len(new_g)})")
            totals["differ"] += len(set(old_g) ^ set(new_g))
        for key in set(old_g) & set(new_g):
            totals["gains"] += 1
            for a, b in zip(old_g[key], new_g[key], strict=True):
                if np.isfinite(a) and a != 0:
                    max_rel = max(max_rel, abs(b - a) / abs(a))
    print(
        f"Compared {totals['values']} verification values ({totals['tests']} pass/fail results): "
        f"{totals['differ']} differ beyond rtol {rtol:g} ({totals['tests_differ']} results); "
        f"{totals['gains']} per-pair amp gains, max relative difference {max_rel:.2e}"
    )
    totals["max_gain_rel"] = max_rel  # type: ignore[assignment]
    return totals


def _last_image_to_end(report: dict[str, Any]) -> float | None:
    """Seconds from the last exposure's end to the last job's end (report TAIs), if both are known."""
    ends = [job.get("end_tai") for job in report.get("jobs", []) if job.get("end_tai")]
    images = [a.get("end_tai") for a in report.get("acquisitions", []) if a.get("end_tai")]
    if not ends or not images:
        return None
    return float(max(ends) - max(images))


def _last_raw_to_end(repo: Path, report: dict[str, Any]) -> float | None:
    """Seconds from the last raw of the run written into the repository (its file's modification
    time: when the simulated camera's image reached the OODS) to the last job's end (report TAI)."""
    import astropy.time

    ends = [job.get("end_tai") for job in report.get("jobs", []) if job.get("end_tai")]
    mtimes = [
        path.stat().st_mtime
        for exposure in report.get("exposures", [])
        for path in repo.glob(f"*/raw/all/raw/*/{exposure['obs_id']}/*.fits")
    ]
    if not ends or not mtimes:
        return None
    last_raw_tai = float(astropy.time.Time(max(mtimes), format="unix").unix_tai)
    return float(max(ends) - last_raw_tai)


def _processed(report: dict[str, Any], n_detectors: int) -> int:
    kept = [e for e in report.get("exposures", []) if not e.get("discarded")]
    return len(kept) * n_detectors


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="default", choices=["tiny", "default", "full"])
    parser.add_argument("--detectors", default="0,1", help="comma-separated detector ids")
    parser.add_argument("--n-bias", type=int, default=5)
    parser.add_argument("--n-dark", type=int, default=5)
    parser.add_argument("--n-flat", type=int, default=6)
    parser.add_argument("--work", type=Path, help="directory of the repo and reports (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-replay", action="store_true", help="skip the per-job replay")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=100.0,
        help="the simulated observatory's time scale (default 100; 1: exposures and readouts in real time)",
    )
    parser.add_argument(
        "--drop-proc-files",
        action="store_true",
        help="delete each verify*Proc file once written (a disk too small for the run; see ProcFileDropper)",
    )
    parser.add_argument(
        "--fresh-repo",
        action="store_true",
        help="with --replay: copy the raws into a new repository (--work/repo-fresh) and replay there",
    )
    parser.add_argument(
        "--intermediate-format",
        action="store_true",
        help="with --replay: first map the repo's intermediates to the uncompressed formatter",
    )
    parser.add_argument(
        "--ocps-executor",
        choices=["warm", "pipetask"],
        default=None,
        help="how the run's simulated OCPS runs its jobs (default: run_script's, the warm worker)",
    )
    parser.add_argument(
        "--replay-executor",
        choices=["pipetask", "warm"],
        default="pipetask",
        help="how the replay runs the jobs: a pipetask subprocess each (default) or the warm worker",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="REPORT",
        help="only replay the jobs of this report (repo: --work/repo)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    detectors = [int(d) for d in args.detectors.split(",") if d.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_daily_"))
    repo, reports = work / "repo", work / "reports"
    try:
        if args.replay:
            report = json.loads(args.replay.read_text())
            n_images = _processed(report, len(report["config"].get("detectors") or detectors))
            if args.intermediate_format:
                from lsst.ts.makecalibrations.butler.repository import enable_intermediate_formatters

                added = enable_intermediate_formatters(repo)
                print(f"Intermediate formatter mapped for {len(added)} dataset types of {repo}.")
            original_repo = None
            if args.fresh_repo:
                original_repo, repo = repo, work / "repo-fresh"
                shutil.rmtree(repo, ignore_errors=True)
                print(f"Copied {copy_raws(original_repo, repo, report)} raws into a new repository {repo}.")
            print(f"Replaying the jobs of {args.replay} on {repo} with this tree's code:")
            rows = replay(repo, args.replay, f"replay{int(time.time())}", args.replay_executor)
            _print_jobs(rows, n_images)
            compare_outputs(repo, rows, original_repo=original_repo)
            return 0
        created = make_repo(repo, args.size, detectors)
        print(
            f"Repository ({args.size}) ready in {created['wall_s']:.0f} s wall, {created['cpu_s']:.0f} s CPU "
            "(not counted below)."
        )
        dropper = ProcFileDropper(repo) if args.drop_proc_files else None
        try:
            result = run_daily(
                repo,
                reports,
                args.size,
                detectors,
                args.n_bias,
                args.n_dark,
                args.n_flat,
                args.ocps_executor,
                args.time_scale,
            )
        finally:
            if dropper is not None:
                dropper.stop()
        report = json.loads(Path(result["report"]).read_text())
        n_images = _processed(report, len(detectors))
        print(
            f"\nDaily default, {len(detectors)} detectors x ({args.n_bias} biases + {args.n_dark} darks + "
            f"{args.n_flat} flats) at size {args.size}: final state {report.get('final_state')}"
        )
        print(f"  processed detector-images       {n_images}")
        print(f"  wall, run_script start to end   {result['wall_s']:.1f} s (shared machine)")
        print(f"  OCPS executor                   {args.ocps_executor or 'run_script default (warm)'}")
        print(f"  CPU, run_script + children      {result['cpu_s']:.1f} s")
        print(f"  CPU per processed detector-image {result['cpu_s'] / max(1, n_images):.2f} s")
        print(f"  largest process peak RSS        {result['peak_rss_mib']:.0f} MiB")
        print(f"  peak RSS of the process tree    {result['tree_peak_rss_mib']:.0f} MiB (sampled every 1 s)")
        loads = [f"{a:.1f}" for a, _, _ in result["load_averages"]]
        print(f"  1-min load average (every 30 s) {' '.join(loads)} (2 cores, shared machine)")
        last = _last_image_to_end(report)
        if last is not None:
            print(f"  wall, last image to end         {last:.1f} s (report TAIs)")
        last_raw = _last_raw_to_end(repo, report)
        if last_raw is not None:
            print(f"  wall, last raw written to end   {last_raw:.1f} s (the raw file's time)")
        if dropper is not None:
            gigabytes = dropper.bytes / 1e9
            print(f"  verify*Proc files deleted      {dropper.files} ({gigabytes:.1f} GB, --drop-proc-files)")
        for job in report["jobs"]:
            print(
                f"  job {job['name']:<26} {job['end_tai'] - job['start_tai']:7.1f} s wall ({job['status']})"
            )
        print(f"  report: {result['report']}")
        if not args.no_replay:
            print("\nEach OCPS job again, in turn, on the same raws:")
            rows = replay(repo, Path(result["report"]), "replay", args.replay_executor)
            _print_jobs(rows, n_images)
            compare_outputs(repo, rows)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"Work directory kept: {work}")
    return 0


def _print_jobs(rows: list[dict[str, Any]], n_images: int) -> None:
    total = sum(row["cpu_s"] for row in rows)  # the warm worker's start included
    print(
        f"  OCPS jobs alone: {total:.1f} s CPU, {total / max(1, n_images):.2f} s per processed detector-image"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
