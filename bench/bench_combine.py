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

"""Benchmark of the calibration combine at full ComCam size (4072 x 4000 per detector).

Run with ``.venv/bin/python -m bench.bench_combine`` (or ``make bench``). It writes up to 40
ISR-like frames of one detector (float32 e-: a fixed bias pattern, 8 e- read noise, a per-frame offset
and a few cosmic rays) as ``MaskedImageV2`` datasets into a scratch butler repository, then measures,
each in a fresh subprocess so the peak RSS belongs to that measurement alone:

* the pipeline combine (`CalibCombineTask.run` on ``deferLoad`` handles: row bands read through the
  butler, 3-sigma clipped mean) and then, in the same process, a plain ``numpy.median`` over the
  stacked frames (each read whole through the butler), for 20 frames: CPU and wall of each and their
  ratio (the machine's load affects both alike);
* the combine alone for 10, 20 and 40 frames, for its peak memory against the number of frames.

The frames are ``cpBiasProc`` datasets in a repository made with this package's configuration, so
they are written uncompressed by `butler.formatters.IntermediateImageFormatter`, as the ISR of a
combine job writes them. It prints CPU, wall time, peak RSS (``ru_maxrss``) and the RSS growth over the
process's state just before the combine (imports and butler set-up excluded), plus the rms difference
of the two 20-frame results.

May import: numpy, lsst.daf.butler, lsst.images and this package.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROWS, COLS = 4000, 4072
DATASET = "cpBiasProc"  # an ISR output the cpBias combine reads: written uncompressed
DETECTOR = 0
DAY_OBS = 20261125
FIRST_ID = int(f"{DAY_OBS}00001")


def _rss_mb() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _make_repo(root: Path, n_frames: int, rows: int, cols: int) -> None:
    """Create the scratch repo with ``n_frames`` frames (kept between runs)."""
    import astropy.time
    from lsst.daf.butler import Butler, DatasetType, Timespan

    from lsst.ts.makecalibrations.butler.images import make_masked_image
    from lsst.ts.makecalibrations.butler.instrument import LsstComCam
    from lsst.ts.makecalibrations.butler.repository import repo_seed_config

    marker = root / "frames.json"
    wanted = {"n": n_frames, "rows": rows, "cols": cols, "dataset": DATASET}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    if (root / "butler.yaml").exists():
        raise SystemExit(f"{root} holds an incompatible benchmark repo; remove it first.")
    # The repository's own configuration: cpBiasProc is written by the intermediate (uncompressed)
    # formatter, as the ISR of a cpBias job writes it.
    Butler.makeRepo(str(root), config=repo_seed_config())
    butler = Butler.from_config(str(root), writeable=True, run="bench/frames")
    LsstComCam().register(butler.registry)
    butler.registry.registerDatasetType(
        DatasetType(
            DATASET, ("instrument", "exposure", "detector"), "MaskedImageV2", universe=butler.dimensions
        )
    )
    begin = astropy.time.Time("2026-11-25T12:00:00", scale="tai")
    day = astropy.time.TimeDelta(86400.0, format="sec")
    butler.registry.syncDimensionData(
        "day_obs",
        {"instrument": "LSSTComCam", "id": DAY_OBS, "timespan": Timespan(begin, begin + day)},
    )
    butler.registry.syncDimensionData("group", {"instrument": "LSSTComCam", "name": "bench"})
    rng = np.random.default_rng(2026)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    pattern = (3.0 * np.sin(xx / 300.0) + 2.0 * yy / rows).astype(np.float32)
    for i in range(n_frames):
        exposure_id = FIRST_ID + i
        t0 = begin + astropy.time.TimeDelta(60.0 * i, format="sec")
        butler.registry.syncDimensionData(
            "exposure",
            {
                "instrument": "LSSTComCam",
                "id": exposure_id,
                "obs_id": f"CC_O_{DAY_OBS}_{i + 1:06d}",
                "physical_filter": "empty",
                "group": "bench",
                "day_obs": DAY_OBS,
                "exposure_time": 0.0,
                "dark_time": 0.0,
                "observation_type": "bias",
                "observation_reason": "bench",
                "seq_num": i + 1,
                "seq_start": i + 1,
                "seq_end": i + 1,
                "has_simulated": True,
                "can_see_sky": False,
                "timespan": Timespan(t0, t0 + astropy.time.TimeDelta(1.0, format="sec")),
            },
        )
        image = pattern + rng.normal(0.0, 8.0, size=(rows, cols)).astype(np.float32)
        image += np.float32(rng.normal(0.0, 0.5))
        cr_y, cr_x = rng.integers(0, rows, 200), rng.integers(0, cols, 200)
        image[cr_y, cr_x] += 2000.0
        metadata = {"EXPTIME": 0.0, "DARKTIME": 0.0, "IMGTYPE": "BIAS", "DATE-OBS": t0.isot}
        masked = make_masked_image(image, variance=np.full((rows, cols), 64.0, np.float32), metadata=metadata)
        butler.put(masked, DATASET, instrument="LSSTComCam", exposure=exposure_id, detector=DETECTOR)
        print(f"  wrote frame {i + 1}/{n_frames}", flush=True)
    marker.write_text(json.dumps(wanted))


def _refs(root: Path, n: int) -> tuple[object, list]:
    from lsst.daf.butler import Butler

    butler = Butler.from_config(str(root), collections=["bench/frames"])
    refs = sorted(
        butler.query_datasets(DATASET, instrument="LSSTComCam", detector=DETECTOR),
        key=lambda ref: ref.dataId["exposure"],
    )[:n]
    if len(refs) < n:
        raise SystemExit(f"Only {len(refs)} frames in {root}; {n} needed.")
    return butler, refs


def _combine(butler: object, refs: list, budget_mb: float) -> tuple[np.ndarray, dict]:
    from lsst.ts.makecalibrations.butler.images import masked_image_arrays
    from lsst.ts.makecalibrations.pipelines.tasks.combine_task import CalibCombineConfig, CalibCombineTask

    config = CalibCombineConfig()
    config.memoryBudgetMB = budget_mb
    task = CalibCombineTask(config=config)
    handles = [butler.getDeferred(ref) for ref in refs]  # type: ignore[attr-defined]
    result = task.run(handles, exposure_ids=[int(r.dataId["exposure"]) for r in refs], detector_id=DETECTOR)
    image, _, _, md = masked_image_arrays(result.outputData)
    return image, {"band_rows": md["LSST CALIB COMBINE BAND ROWS"]}


def _median(butler: object, refs: list) -> np.ndarray:
    stack = np.stack([np.asarray(butler.get(ref).image.array, dtype=np.float32) for ref in refs])  # type: ignore[attr-defined]
    image = np.median(stack, axis=0)
    del stack
    return image


def _timed(function: Any, *args: Any) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    value = function(*args)
    return value, time.perf_counter() - t0, time.process_time() - c0


def _worker(mode: str, root: Path, n: int, budget_mb: float, out: Path | None) -> dict:
    """Run one measurement in this (fresh) process and return its figures.

    ``both`` runs the combine and then ``numpy.median`` on the same frames in this one process (the
    ratio of the two is the figure: machine load affects both alike); the peak RSS is read after the
    combine, before the median stacks the frames.
    """
    butler, refs = _refs(root, n)
    # Import what both methods use before timing either: module imports are a per-process cost
    # (lsst.images alone takes seconds), not part of the combine or of the median.
    import lsst.images  # noqa: F401

    import lsst.ts.makecalibrations.pipelines.tasks.combine_task  # noqa: F401

    rss_before = _current_rss_mb()
    figures: dict = {"mode": mode, "n": n, "rss_before_mb": rss_before}
    if mode in ("combine", "both"):
        combined, wall, cpu = _timed(_combine, butler, refs, budget_mb)
        image, extra = combined
        figures.update(extra, wall_s=wall, cpu_s=cpu, peak_rss_mb=_rss_mb())
        if out is not None:
            np.save(out, image)
        del image
    if mode in ("median", "both"):
        median, wall, cpu = _timed(_median, butler, refs)
        figures.update(median_wall_s=wall, median_cpu_s=cpu, median_peak_rss_mb=_rss_mb())
        if out is not None:
            np.save(out.with_name("median.npy"), median)
    return figures


def _measure(mode: str, root: Path, n: int, budget_mb: float, out: Path | None = None) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.bench_combine",
        "--worker",
        mode,
        "--repo",
        str(root),
        "-n",
        str(n),
    ]
    command += ["--budget-mb", str(budget_mb)]
    if out is not None:
        command += ["--out", str(out)]
    cwd = Path(__file__).resolve().parent.parent
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"worker {mode} n={n} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Write the frames (once), run the measurements and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repo", type=Path, default=Path(tempfile.gettempdir()) / f"bench_combine_{os.getuid()}"
    )
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--frames", type=str, default="10,20,40", help="frame counts for the memory table")
    parser.add_argument("--budget-mb", type=float, default=256.0, help="combine memoryBudgetMB")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--cols", type=int, default=COLS)
    parser.add_argument("--worker", choices=["combine", "median", "both"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else [])
    if args.worker:
        print(json.dumps(_worker(args.worker, args.repo, args.n, args.budget_mb, args.out)))
        return 0

    counts = sorted({int(c) for c in args.frames.split(",")} | {args.n})
    print(f"Frames of {args.rows} x {args.cols} float32 in {args.repo} (kept for reuse; delete when done).")
    t0 = time.perf_counter()
    _make_repo(args.repo, max(counts), args.rows, args.cols)
    print(f"Frames ready in {time.perf_counter() - t0:.0f} s.\n")

    with tempfile.TemporaryDirectory() as tmp:
        combine_out = Path(tmp) / "combine.npy"
        both = _measure("both", args.repo, args.n, args.budget_mb, combine_out)
        difference = np.load(combine_out) - np.load(combine_out.with_name("median.npy"))
        rms = float(np.sqrt(np.mean(difference**2)))
    frame_mb = args.rows * args.cols * 4 / 2**20
    print(f"Combining {args.n} frames of one detector ({frame_mb:.0f} MiB of float32 each), one process:")
    print(f"{'method':<34}{'CPU (s)':>9}{'wall (s)':>10}{'peak RSS (MiB)':>16}")
    print(
        f"{'MEANCLIP combine, row bands':<34}{both['cpu_s']:>9.1f}{both['wall_s']:>10.1f}"
        f"{both['peak_rss_mb']:>16.0f}"
    )
    print(
        f"{'numpy.median over the stack':<34}{both['median_cpu_s']:>9.1f}{both['median_wall_s']:>10.1f}"
        f"{both['median_peak_rss_mb']:>16.0f}"
    )
    print(
        f"median / combine: CPU {both['median_cpu_s'] / both['cpu_s']:.2f}x, "
        f"wall {both['median_wall_s'] / both['wall_s']:.2f}x (above 1: the combine is faster); "
        f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"rms(combine - median) = {rms:.3f} e- (read noise 8 e-; both estimate the same bias)\n")
    side = [both]

    print(f"Peak memory of the combine vs number of frames (memoryBudgetMB = {args.budget_mb:g}):")
    header = f"{'frames':>8}{'band rows':>11}{'wall (s)':>10}{'peak RSS (MiB)':>16}{'growth (MiB)':>14}"
    print(header + f"{'stack (MiB)':>13}")
    for n in sorted(set(int(c) for c in args.frames.split(","))):
        row = side[0] if n == args.n else _measure("combine", args.repo, n, args.budget_mb)
        growth = row["peak_rss_mb"] - row["rss_before_mb"]
        print(
            f"{n:>8}{row['band_rows']:>11}{row['wall_s']:>10.1f}{row['peak_rss_mb']:>16.0f}"
            f"{growth:>14.0f}{n * frame_mb:>13.0f}"
        )
    print("\n'stack' is what holding every frame at once would take (numpy.median needs about twice that).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
