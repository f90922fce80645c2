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

"""CPU and CR_NOISE of the cosmic-ray finder of the cp_verify statistics against the old stand-in.

Run with ``.venv/bin/python -m bench.bench_cosmic_rays`` (or ``make bench``). On a default-size amp
(200 x 250), a default-size detector (1600 x 500) and a full-size detector (4072 x 4000) of Gaussian
read noise (6.5 e-), with and without injected cosmic rays (single pixels and 2-8 px tracks of
200-3000 e-, 30 per full-size detector, the same density on the smaller frames), it prints the
process CPU time (best of ``--repeat``) of

* ``stand-in``: the 3x3-median stand-in the verification used until the finder replaced it (kept here
  as `median_stand_in`, the baseline; run per amp, as it was);
* ``finder``: `pipelines.cosmic_rays.find_cosmic_rays` (on the whole image, as cp_verify's
  ``RepairTask``);
* ``det_stats``: the whole DARK statistics of the detector (`pipelines.verify.detector_stats`:
  clipped statistics, the finder, the tests);

and the plain stdev after each repair against the stdev of the same image without cosmic rays
(what CR_NOISE should be), and the number of pixels the finder replaced. It asserts nothing.

May import: numpy, scipy and this package.
"""

from __future__ import annotations

__all__ = ["main", "median_stand_in"]

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

READ_NOISE = 6.5
CRS_PER_FULL_DETECTOR = 30


def median_stand_in(
    image: np.ndarray, excluded: np.ndarray, sigma: float, background: float
) -> tuple[np.ndarray, np.ndarray]:
    """The former stand-in (baseline): a pixel above the background and its 3x3 median by
    ``max(6 sigma, 150)``, grown to neighbours above ``2.5 sigma``, replaced by the 5x5 median."""
    threshold = max(6.0 * sigma, 150.0)
    repaired = np.array(image, dtype=np.float32, copy=True)
    candidates = (image - background > threshold) & ~excluded
    if not candidates.any():
        return repaired, candidates
    core = candidates & (image - ndimage.median_filter(image, size=3, mode="nearest") > threshold)
    if not core.any():
        return repaired, core
    near = ndimage.binary_dilation(core, structure=np.ones((3, 3), dtype=bool))
    cr_mask = core | (near & (image - background > 2.5 * sigma) & ~excluded)
    usable = ~(cr_mask | excluded)
    rows, cols = np.nonzero(cr_mask)
    padded = np.pad(np.where(usable, image, np.nan), 2, mode="constant", constant_values=np.nan)
    windows = np.stack([padded[rows + dy, cols + dx] for dy in range(5) for dx in range(5)])
    with np.errstate(all="ignore"):
        fill = np.nanmedian(windows, axis=0)
    repaired[rows, cols] = np.where(np.isfinite(fill), fill, background)
    return repaired, cr_mask


def _image(shape: tuple[int, int], n_crs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = rng.normal(0.0, READ_NOISE, size=shape).astype(np.float32)
    hit = clean.copy()
    for _ in range(n_crs):
        y, x = int(rng.integers(2, shape[0] - 10)), int(rng.integers(2, shape[1] - 10))
        length, charge = int(rng.integers(1, 9)), float(rng.uniform(200.0, 3000.0))
        step = [(0, 1), (1, 0), (1, 1)][int(rng.integers(0, 3))]
        for k in range(length):
            hit[y + k * step[0], x + k * step[1]] += charge
    return clean, hit


def _best_cpu(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    from lsst.ts.makecalibrations.butler.camera import amp_geometry, get_camera

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Best of this many runs.")
    args = parser.parse_args(argv)
    detector = get_camera()[0]
    full = amp_geometry("full")
    default = amp_geometry("default")
    cases = [
        ("default amp", (default.ny, default.nx), None),
        ("default det", default.detector_shape, default),
        ("full detector", full.detector_shape, full),
    ]
    print(
        f"{'frame':14} {'CRs':>4} {'stand-in s':>10} {'finder s':>9} {'det_stats s':>11} "
        f"{'clean std':>9} {'stand-in std':>12} {'finder std':>10} {'CR px':>6}"
    )
    for name, shape, geometry in cases:
        n_pixels = shape[0] * shape[1]
        expected = CRS_PER_FULL_DETECTOR * n_pixels / float(np.prod(full.detector_shape))
        for n_crs in (0, max(1, round(expected))):
            clean, hit = _image(shape, n_crs, seed=n_crs + n_pixels % 97)
            boxes = None if geometry is None else [amp.bbox_slices(geometry) for amp in detector]
            print(f"{name:14} {n_crs:4d} " + _measure(clean, hit, boxes, detector, args.repeat))


def _measure(clean: np.ndarray, hit: np.ndarray, boxes: list | None, detector: Any, repeat: int) -> str:
    """One row of the table after the frame and CR columns."""
    from lsst.ts.makecalibrations.pipelines.cosmic_rays import find_cosmic_rays
    from lsst.ts.makecalibrations.pipelines.verify import detector_stats

    excluded = np.zeros(hit.shape, dtype=bool)

    def stand_in() -> np.ndarray:
        out = hit.copy()
        for box in boxes or [(slice(None), slice(None))]:
            out[box] = median_stand_in(hit[box], excluded[box], READ_NOISE, 0.0)[0]
        return out

    cpu_old, old = _best_cpu(stand_in, repeat)
    cpu_new, found = _best_cpu(lambda: find_cosmic_rays(hit, READ_NOISE, excluded, 0.0), repeat)
    det_cell = "-"
    if boxes is not None:
        cpu_det, _ = _best_cpu(lambda: detector_stats("DARK", hit, excluded, detector, {}), repeat)
        det_cell = f"{cpu_det:.3f}"
    return (
        f"{cpu_old:10.3f} {cpu_new:9.3f} {det_cell:>11} {clean.std(ddof=1):9.4f} {old.std(ddof=1):12.4f} "
        f"{found.repaired.std(ddof=1):10.4f} {int(found.mask.sum()):6d}"
    )


if __name__ == "__main__":
    main()
