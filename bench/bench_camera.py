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

"""Benchmark: a 63-image calibration sequence through the ComCam client on the simulated camera.

Takes 21 biases, 21 x 5 s darks and 21 x 5 s flats at time scale 100 and compares the wall time with
the ideal ``sum(exptime + readout) / time_scale``. Run with ``python -m bench.bench_camera``.
"""

from __future__ import annotations

__all__ = ["main", "run"]

import asyncio
import logging
import os
import time

N_PER_TYPE = 21
EXPTIME = 5.0
READ_OUT_TIME = 2.0
TIME_SCALE = 100.0


async def run(time_scale: float = TIME_SCALE) -> dict[str, float]:
    """Take the sequence and return the timings (wall seconds)."""
    from lsst.ts.makecalibrations.control.clients import ComCam
    from lsst.ts.makecalibrations.sim.exposure import RecordingSink
    from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
    from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

    announced: list[str] = []

    async def count(data: object) -> None:
        announced.append(data.obsid)  # type: ignore[attr-defined]

    sink = RecordingSink()
    async with SimulatedObservatory(ObservatoryOptions(time_scale=time_scale), shutdown_delay=0.0, sink=sink):
        async with ComCam() as comcam:
            comcam.rem.ccoods.evt_imageInOODS.callback = count
            t0 = time.perf_counter()
            ids = await comcam.take_bias(N_PER_TYPE)
            t_bias = time.perf_counter()
            ids += await comcam.take_darks(EXPTIME, N_PER_TYPE)
            t_dark = time.perf_counter()
            ids += await comcam.take_flats(EXPTIME, N_PER_TYPE)
            t_taken = time.perf_counter()
            n_expected = len(ids) * 9
            while len(announced) < n_expected:
                await asyncio.sleep(0.001)
            t_announced = time.perf_counter()
            n_images = len(sink.images)
    ideal = N_PER_TYPE * ((0.0 + READ_OUT_TIME) + 2 * (EXPTIME + READ_OUT_TIME)) / time_scale
    return {
        "n_ids": float(len(ids)),
        "n_images": float(n_images),
        "ideal": ideal,
        "bias": t_bias - t0,
        "dark": t_dark - t_bias,
        "flat": t_taken - t_dark,
        "taken": t_taken - t0,
        "announced": t_announced - t0,
    }


def main() -> None:
    """Run the benchmark and print the figures."""
    os.environ.setdefault("TS_MAKECALIBRATIONS_SAL_BACKEND", "embedded")
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run())
    ideal = result["ideal"]
    print(
        f"63-image sequence (21 bias, 21 x {EXPTIME:g} s dark, 21 x {EXPTIME:g} s flat), "
        f"time scale {TIME_SCALE:g}"
    )
    print(f"  exposure ids returned: {int(result['n_ids'])}, images written: {int(result['n_images'])}")
    print(f"  ideal sum(exptime + readout) / scale : {ideal:7.3f} s")
    for key in ("bias", "dark", "flat"):
        part_ideal = N_PER_TYPE * ((EXPTIME if key != "bias" else 0.0) + READ_OUT_TIME) / TIME_SCALE
        print(f"  {key:5s} series                          : {result[key]:7.3f} s (ideal {part_ideal:.3f} s)")
    taken = result["taken"]
    print(f"  measured, all ids returned           : {taken:7.3f} s  ratio {taken / ideal:.3f}")
    print(
        f"  measured, all 9 x 63 imageInOODS     : {result['announced']:7.3f} s  "
        f"ratio {result['announced'] / ideal:.3f}"
    )


if __name__ == "__main__":
    main()
