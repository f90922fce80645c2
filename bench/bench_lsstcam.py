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

"""Benchmark: the LSSTCam script end to end over all 189 detectors (bias + dark + flat, tiny size).

Run with ``python -m bench.bench_lsstcam`` (not part of ``make bench``: about an hour on a shared
two-core machine). It runs

    run_script maintel/make_lsstcam_calibrations.py -c <config> --size tiny --repo REPO

with ``--n`` (default 2) biases, darks and flats, no discarded images, internal verification
(``do_verify``) and certification (``generate_calibrations``) into a new ``calib_collection``, every
detector (``detectors`` not given: all 189), the OCPS executor of ``--ocps-executor`` (``pipetask``
by default, ``bps``). The repository is made by ``run_script`` on the first run (reference
calibrations of all 189 detectors) and reused by later runs (``--repo``).

Printed: the script's final state (the benchmark fails unless DONE), the run's wall seconds and CPU
seconds (user + system of ``run_script`` and every process it waited for: the OCPS's ``pipetask``
processes), per OCPS job its quanta (pipetask's ``Executed N quanta`` line in the job log), its wall
seconds (the report's job duration) and quanta per wall second, and the products read back from the
calibration collection with ``butler.get`` (one ``bias``, ``dark`` and ``flat`` per detector, each
with the raw-trimmed shape and finite pixels). ``--report REPORT`` prints the same for a run made
before (its wall and CPU are then not known).

May import: the standard library, numpy, lsst.daf.butler and this package.
"""

from __future__ import annotations

__all__ = ["main", "job_quanta", "read_products"]

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .bench_daily import _run_script, run_measured

IN_MAKE_BENCH = False
"""``make bench`` (`run_all` without names) skips this one: it takes about an hour."""

SCRIPT = "maintel/make_lsstcam_calibrations.py"
PRODUCTS = ("bias", "dark", "flat")
FILTER = "r_57"

_EXECUTED = re.compile(r"Executed (?P<done>\d+) quanta successfully, (?P<failed>\d+) failed")


def config_text(n: int, calib_collection: str) -> str:
    """The run's configuration: ``n`` of each image type, verified and certified (no detectors key)."""
    return (
        f"script_mode: BIAS_DARK_FLAT\nn_bias: {n}\nn_discard_bias: 0\nn_dark: {n}\nn_discard_dark: 0\n"
        f"exp_times_dark: 5\nn_flat: {n}\nn_discard_flat: 0\nexp_times_flat: 5\nfilter: {FILTER}\n"
        "do_verify: true\ngenerate_calibrations: true\ndo_gain_from_flat_pairs: false\n"
        f"calib_collection: {calib_collection}\n"
        'certify_calib_begin_date: "2026-11-25"\ncertify_calib_end_date: "2026-11-26"\n'
    )


def job_quanta(log_uri: str) -> tuple[int, int] | None:
    """``(done, failed)`` quanta of the last ``Executed ...`` line of an OCPS job log (``file://``).

    For a ``bps`` job the counts are summed over its BPS jobs' logs (under ``bps/submit/logs``).
    """
    path = Path(log_uri.removeprefix("file://"))
    logs = [path]
    bps_logs = path.parent.parent / "bps" / "submit" / "logs"
    if bps_logs.is_dir():
        logs = [log for log in sorted(bps_logs.rglob("*.stderr")) if log.parent.name != "pipetaskInit"]
    done = failed = 0
    found = False
    for log in logs:
        try:
            matches = list(_EXECUTED.finditer(log.read_text(errors="replace")))
        except OSError:
            continue
        if matches:
            found = True
            done += int(matches[-1]["done"])
            failed += int(matches[-1]["failed"])
    return (done, failed) if found else None


def read_products(repo: str, calib_collection: str, detectors: list[int]) -> dict[str, int]:
    """Read every detector's ``bias``, ``dark`` and ``flat`` back with ``butler.get``; count them.

    Raises
    ------
    SystemExit
        If a product is missing, or not finite, or not of one shape for all detectors.
    """
    from lsst.daf.butler import Butler

    butler = Butler.from_config(repo, collections=[calib_collection], instrument="LSSTCam")
    exposures: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for product in PRODUCTS:
        refs = {
            int(ref.dataId["detector"]): ref
            for ref in butler.query_datasets(product, collections=calib_collection, find_first=False)
        }
        missing = sorted(set(detectors) - set(refs))
        if missing:
            raise SystemExit(f"{product}: no certified dataset for detectors {missing[:10]}...")
        shapes = set()
        for detector in detectors:
            image = butler.get(refs[detector])
            array = image.image.array
            if not np.isfinite(array).all():
                raise SystemExit(f"{product} of detector {detector} has non-finite pixels")
            shapes.add(array.shape)
        exposures[product] = shapes
        counts[product] = len(detectors)
    print(
        "products read back with butler.get: "
        + ", ".join(f"{n} {p} {exposures[p]}" for p, n in counts.items())
    )
    return counts


def print_report(report_path: Path) -> dict[str, Any]:
    """Print the final state and the per-job figures of a run report; return the report."""
    report = json.loads(report_path.read_text())
    print(f"final state {report['final_state']} ({report.get('failure_reason') or 'no failure'})")
    total_quanta = 0
    print(f"{'job':14s} {'status':10s} {'quanta':>7s} {'wall s':>8s} {'quanta/s':>9s}")
    for job in report["jobs"]:
        counts = job_quanta(job.get("log_uri", "")) if job.get("log_uri") else None
        done = counts[0] if counts else 0
        total_quanta += done
        wall = float(job.get("duration") or 0.0)
        rate = done / wall if wall else 0.0
        print(f"{job['name']:14s} {job['status']:10s} {done:7d} {wall:8.1f} {rate:9.2f}")
    jobs_wall = sum(float(job.get("duration") or 0.0) for job in report["jobs"])
    print(
        f"{'all jobs':14s} {'':10s} {total_quanta:7d} {jobs_wall:8.1f} "
        f"{total_quanta / jobs_wall if jobs_wall else 0:9.2f}"
    )
    report["total_quanta"] = total_quanta
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_lsstcam", description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=None, help="butler repository (made on the first run)")
    parser.add_argument("--n", type=int, default=2, help="biases, darks and flats each (2)")
    parser.add_argument("--ocps-executor", default="pipetask", choices=("pipetask", "bps"))
    parser.add_argument("--report", type=Path, default=None, help="print the figures of this run's report")
    args = parser.parse_args(argv)
    if args.report is not None:
        report = print_report(args.report)
        repo = report["config"]["repo"]
    else:
        root = args.repo.parent if args.repo else Path(tempfile.mkdtemp(prefix="bench_lsstcam_"))
        repo = str(args.repo or root / "repo")
        report_dir = root / "reports"
        collection = f"LSSTCam/calib/bench.{time.strftime('%Y%m%dT%H%M%S')}"
        config = root / "lsstcam_189.yaml"
        config.write_text(config_text(args.n, collection))
        command = [_run_script(), SCRIPT, "-c", str(config), "--size", "tiny", "--repo", repo]
        command += ["--report-dir", str(report_dir), "--no-progress", "--ocps-executor", args.ocps_executor]
        figures = run_measured(command, report_dir)
        print(
            f"run_script: {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU "
            f"(load averages {figures['load_averages'][0]})"
        )
        report = print_report(figures["report"])
        wall = figures["wall_s"]
        print(
            f"whole run: {report['total_quanta']} quanta, "
            f"{report['total_quanta'] / wall:.2f} quanta per wall second"
        )
    if report["final_state"] != "DONE":
        return 1
    read_products(repo, report["config"]["calib_collection"], list(range(189)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
