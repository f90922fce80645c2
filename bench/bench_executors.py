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

"""Benchmark: the simulated OCPS's two executors, ``pipetask run`` and ``bps submit`` (Parsl), on one set.

Run with ``python -m bench.bench_executors`` (``make bench`` runs it with the defaults: LSSTComCam,
its 9 detectors, tiny size). ``--instrument LSSTCam --detectors all`` is the 189-detector run, when
the package knows that instrument (``sim.repository.ensure_repo(instrument=...)``).

One repository is made (reference calibrations, then ``--n-exposures`` biases, darks and flats of every
detector), then ``cpBias``, ``cpDark`` and ``cpFlat`` run on it, each with both executors one after
the other, as the simulated OCPS runs them: `sim.pipetask_executor.PipetaskExecutor` (``-j`` clamped to
1 as in the simulated observatory, or ``--pipetask-processes``) and `sim.bps_executor.BpsExecutor`
(the Parsl plugin's local site with ``--bps-cores`` cores, one BPS job per ``--bps-detectors-per-job``
detectors and stage). The
dark and flat jobs take the reference calibrations as inputs, so the jobs are independent.

Printed per job and executor: quanta, wall seconds, quanta per wall second, and the CPU seconds of the
job's processes (user + system of the waited-for children of this process; Parsl's worker pools are
re-parented to the job's process-tree guard, which waits for them, so they are counted). Then the
two executors' outputs are compared: the same dataset types and data IDs in every job's RUN
collection, and identical pixels of the ``bias``, ``dark`` and ``flat`` products.

``--repo R --exposures 'bias=ID,ID'`` skips making the repository and runs the jobs on raws already in
``R`` (e.g. those of a ``run_script`` run); ``--config-options`` adds job options (the script's
``-c cpBiasIsr:doDefect=False``) and ``--compare-runs 'bias=u/ocps/<job id>'`` compares each
executor's output with that RUN too (e.g. the script's own ``cpBias`` job).

May import: the standard library, numpy, lsst.daf.butler and this package.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import asyncio
import inspect
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

JOBS = (("bias", "cpBias", "BIAS", 0.0), ("dark", "cpDark", "DARK", 5.0), ("flat", "cpFlat", "FLAT", 2.0))
"""(product, pipeline, image type, exposure time) of the benchmarked jobs."""

DAY_OBS = 20261125


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _instrument_kwargs(instrument: str, function: Any, required: bool = True) -> dict[str, Any]:
    """``instrument=`` for a function that takes it; nothing for LSSTComCam (every function's default)."""
    if instrument == "LSSTComCam":
        return {}
    if "instrument" not in inspect.signature(function).parameters:
        if not required:
            return {}
        raise SystemExit(
            f"This tree has no {instrument} simulation ({function.__qualname__} has no instrument=)."
        )
    return {"instrument": instrument}


def _detector_ids(instrument: str, detectors: str) -> tuple[int, ...]:
    from lsst.ts.makecalibrations.butler import camera

    get_camera = camera.get_camera
    ids = tuple(detector.id for detector in get_camera(**_instrument_kwargs(instrument, get_camera)))
    if detectors == "all":
        return ids
    wanted = tuple(int(item) for item in detectors.split(","))
    unknown = set(wanted) - set(ids)
    if unknown:
        raise SystemExit(f"--detectors: {sorted(unknown)} are not {instrument} detectors.")
    return wanted


async def make_repo(
    repo: Path, instrument: str, detectors: tuple[int, ...], n_exposures: int, products: list[str]
) -> dict[str, list[int]]:
    """Reference calibrations and ``n_exposures`` raws of each type; exposure ids per product."""
    from lsst.ts.makecalibrations.sim.cameras import observatory_spec
    from lsst.ts.makecalibrations.sim.exposure import evening_exposure
    from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
    from lsst.ts.makecalibrations.sim.repository import ensure_repo

    t0 = time.perf_counter()
    kwargs = _instrument_kwargs(instrument, ensure_repo)
    await asyncio.to_thread(ensure_repo, repo, size="tiny", detectors=detectors, filters=["empty"], **kwargs)
    t1 = time.perf_counter()
    # The raw writer may take the instrument from the repository.
    writer = ButlerRawWriter(repo, size="tiny", **_instrument_kwargs(instrument, ButlerRawWriter, False))
    await writer.start()
    ids: dict[str, list[int]] = {}
    prefix = observatory_spec(instrument).obs_id_prefix
    seq = 1
    for product, _, kind, exposure_time in JOBS:
        ids[product] = []
        if product not in products:
            continue
        for _ in range(n_exposures):
            info = evening_exposure(
                seq, kind, exposure_time, day_obs=DAY_OBS, detectors=detectors, obs_id_prefix=prefix
            )
            await writer.write_image(info)
            ids[product].append(info.exposure_id)
            seq += 1
    writer.close()
    print(
        f"repository {repo}: reference calibrations {t1 - t0:.1f} s, "
        f"{len(products) * n_exposures} exposures x {len(detectors)} detectors "
        f"{time.perf_counter() - t1:.1f} s",
        flush=True,
    )
    return ids


def compare(repo: Path, product: str, runs: tuple[str, str]) -> str:
    """Compare two runs of one job: same dataset keys, identical product pixels; a one-line verdict."""
    from lsst.daf.butler import Butler

    from lsst.ts.makecalibrations.butler.images import masked_image_arrays
    from lsst.ts.makecalibrations.butler.readers import datasets_in_run

    butler = Butler.from_config(str(repo))
    first, second = (
        {key: ref for key, ref in datasets_in_run(repo, run).items() if key[0] != "packages"} for run in runs
    )
    if first.keys() != second.keys():
        missing = sorted(map(str, first.keys() - second.keys()))[:3]
        extra = sorted(map(str, second.keys() - first.keys()))[:3]
        return f"DIFFERENT datasets (only in {runs[0]}: {missing}; only in {runs[1]}: {extra})"
    n_images = 0
    for key, ref in first.items():
        if key[0] != product:
            continue
        # image, mask, variance (the metadata holds dates and paths that differ by nature)
        planes = zip(
            masked_image_arrays(butler.get(ref))[:3],
            masked_image_arrays(butler.get(second[key]))[:3],
            strict=True,
        )
        for a, b in planes:
            if not np.array_equal(a, b, equal_nan=True):
                return f"DIFFERENT pixels in {key}"
        n_images += 1
    return f"same {len(first)} datasets, {n_images} {product} images pixel-identical"


async def run_jobs(args: argparse.Namespace, repo: Path, ids: dict[str, list[int]]) -> list[dict[str, Any]]:
    from lsst.ts.makecalibrations.calib.jobs import data_query
    from lsst.ts.makecalibrations.sim.bps_executor import BpsExecutor
    from lsst.ts.makecalibrations.sim.ocps_jobs import JobRequest
    from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor

    log_dir = repo.parent / "jobs"
    executors = {
        "pipetask": PipetaskExecutor(repo, max_processes=args.pipetask_processes, log_dir=log_dir),
        "bps": BpsExecutor(
            repo, max_processes=args.bps_cores, log_dir=log_dir, detectors_per_job=args.bps_detectors_per_job
        ),
    }
    executors = {name: executors[name] for name in args.executors.split(",")}
    rows = []
    for product, pipeline, _, _ in JOBS:
        if product not in args.products:
            continue
        query = data_query(args.instrument, args.detector_ids, ids[product])
        runs = []
        for name, executor in executors.items():
            job_id = f"{product}_{name}"
            progress: list[tuple[int, int, int]] = []
            executor.progress = lambda _, done, failed, total, seen=progress: seen.append(
                (done, failed, total)
            )
            processes = args.bps_cores if name == "bps" else args.pipetask_processes
            request = JobRequest(
                job_id=job_id,
                run_id="1",
                pipeline=f"${{CP_PIPE_DIR}}/pipelines/{args.instrument}/{pipeline}.yaml",
                version="",
                config=f"-j {processes} -i {args.instrument}/calib --register-dataset-types "
                + args.config_options,
                data_query=query,
                output_collection=f"u/ocps/{job_id}",
            )
            cpu0, t0 = _children_cpu(), time.perf_counter()
            outcome = await executor.run(request)
            wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            quanta = progress[-1][2] if progress else 0
            rows.append(
                {
                    "job": pipeline,
                    "executor": name,
                    "exit": outcome.exit_code,
                    "quanta": quanta,
                    "wall": wall,
                    "cpu": cpu,
                    "message": outcome.message,
                }
            )
            runs.append(request.output_collection)
            print(
                f"{pipeline:8s} {name:8s} exit {outcome.exit_code} {quanta:5d} quanta {wall:8.1f} s wall "
                f"{quanta / wall if wall else 0:6.2f} quanta/s {cpu:8.1f} s CPU {outcome.message[:120]}",
                flush=True,
            )
        if len(executors) == 2 and all(row["exit"] == 0 for row in rows[-2:]):
            print(f"{pipeline:8s} pipetask vs bps: {compare(repo, product, tuple(runs))}", flush=True)  # type: ignore[arg-type]
        reference = args.compare_runs.get(product)
        if reference is not None:
            for name, run in zip(executors, runs, strict=True):
                if rows[-len(executors) :][list(executors).index(name)]["exit"] == 0:
                    print(f"{pipeline:8s} {reference} vs {name}: {compare(repo, product, (reference, run))}")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_executors", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--instrument", default="LSSTComCam", help="LSSTComCam (default) or LSSTCam")
    parser.add_argument("--detectors", default="all", help="'all' (default) or ids, e.g. 0,1")
    parser.add_argument("--n-exposures", type=int, default=3, help="biases, darks and flats each (3)")
    parser.add_argument("--pipetask-processes", type=int, default=1, help="pipetask -j (1, as the OCPS)")
    parser.add_argument("--bps-cores", type=int, default=2, help="cores of the local Parsl site (2)")
    parser.add_argument(
        "--bps-detectors-per-job", type=int, default=1, help="detectors in one BPS job (1; 24 for LSSTCam)"
    )
    parser.add_argument("--jobs", default="bias,dark,flat", help="products to make (bias,dark,flat)")
    parser.add_argument("--executors", default="pipetask,bps", help="which to run (pipetask,bps)")
    parser.add_argument("--repo", type=Path, default=None, help="where to make the repository (new)")
    parser.add_argument(
        "--exposures",
        default="",
        help="use the raws already in --repo: product=id,id;... (e.g. 'bias=2026120100007,2026120100008')",
    )
    parser.add_argument(
        "--config-options", default="", help="more job options, e.g. '-c cpBiasIsr:doDefect=False'"
    )
    parser.add_argument(
        "--compare-runs",
        default="",
        help="compare each executor's output with an existing RUN: product=RUN;... (e.g. a script's job)",
    )
    args = parser.parse_args(argv)
    args.compare_runs = dict(item.split("=", 1) for item in args.compare_runs.split(";") if item)
    existing = {
        product: [int(i) for i in ids.split(",")]
        for product, ids in (item.split("=", 1) for item in args.exposures.split(";") if item)
    }
    if existing and args.repo is None:
        parser.error("--exposures needs --repo (the repository that holds them)")
    unknown = set(args.executors.split(",")) - {"pipetask", "bps"}
    if unknown:
        parser.error(f"--executors: unknown {sorted(unknown)}; use pipetask, bps or both")
    args.products = args.jobs.split(",")
    if not set(args.products) <= {job[0] for job in JOBS}:
        parser.error(f"--jobs: {args.jobs!r}; use bias, dark, flat or several")
    args.detector_ids = _detector_ids(args.instrument, args.detectors)
    root = args.repo.parent if args.repo else Path(tempfile.mkdtemp(prefix="bench_executors_"))
    repo = args.repo or root / "repo"
    print(
        f"{args.instrument}, {len(args.detector_ids)} detectors, tiny size, {args.n_exposures} exposures "
        f"per type; pipetask -j {args.pipetask_processes}, bps local site {args.bps_cores} cores, "
        f"{args.bps_detectors_per_job} detector(s) per BPS job",
        flush=True,
    )
    if existing:
        ids = existing
    else:
        made = make_repo(repo, args.instrument, args.detector_ids, args.n_exposures, args.products)
        ids = asyncio.run(made)
    rows = asyncio.run(run_jobs(args, repo, ids))
    print("\nexecutor  quanta  wall s  quanta/s  CPU s")
    for name in args.executors.split(","):
        mine = [row for row in rows if row["executor"] == name]
        quanta = sum(row["quanta"] for row in mine)
        wall = sum(row["wall"] for row in mine)
        cpu = sum(row["cpu"] for row in mine)
        print(f"{name:8s} {quanta:7d} {wall:7.1f} {quanta / wall if wall else 0:9.2f} {cpu:6.1f}")
    print(f"(repository and job logs in {root})")


if __name__ == "__main__":
    main()
