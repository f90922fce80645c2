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

"""Benchmark: acquisition overhead of the daily default run of MakeComCamCalibrations.

Runs the script (over the embedded bus, like ``run_script``) with the daily default exposure
sequence — 1 + 20 biases, 1 + 20 darks of 5 s, 1 + 20 flats of 5 s, one ``take_imgtype`` call per
exposure — against the simulated camera, and compares the simulated time from the start of the first
integration to the end of the last readout (from the camera's own events) with the floor
Σ(exptime + readout). The OCPS runs the sleep executor (jobs overlap the acquisition as in a real
run, but produce nothing), and verification is off so the run ends DONE; the ratio measures what the
script and the camera client add between exposures. Target: overhead ≤ 1.02.

Run with ``python -m bench.bench_acquisition [time_scale ...]`` (default: 10 and 100).
"""

from __future__ import annotations

__all__ = ["main", "run"]

import asyncio
import logging
import sys
import tempfile
import time
from typing import Any

import yaml

TIME_SCALES = (10.0, 100.0)


async def run(time_scale: float) -> dict[str, float]:
    """Run the daily-default acquisition once; return the figures (simulated seconds)."""
    from lsst.ts.makecalibrations.calib.config import parse_config_text
    from lsst.ts.makecalibrations.calib.plan import CalibrationPlan
    from lsst.ts.makecalibrations.sal import ScriptState, salobj
    from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations
    from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
    from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

    salobj.set_test_topic_subname(randomize=True)
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as report_dir:
        config = {"do_verify": False, "do_gain_from_flat_pairs": False, "report_dir": report_dir}
        plan = CalibrationPlan.from_config(parse_config_text(yaml.safe_dump(config)))
        async with SimulatedObservatory(ObservatoryOptions(time_scale=time_scale)) as observatory:
            async with salobj.Domain() as domain:
                camera = salobj.Remote(
                    domain,
                    "CCCamera",
                    readonly=True,
                    include=["startIntegration", "endReadout"],
                    evt_max_history=0,
                )
                script_remote = salobj.Remote(domain, "Script", 1, evt_max_history=0)
                await asyncio.gather(camera.start_task, script_remote.start_task)

                async def on_start(data: Any) -> None:
                    starts[data.imageName] = data.timestampAcquisitionStart

                async def on_end(data: Any) -> None:
                    ends[data.imageName] = data.timestampEndOfReadout

                camera.evt_startIntegration.callback = on_start
                camera.evt_endReadout.callback = on_end
                script = MakeComCamCalibrations(index=1)
                script.shutdown_delay = 0.0
                await script.start_task
                await script_remote.cmd_configure.set_start(config=yaml.safe_dump(config), timeout=60)
                await script_remote.cmd_setGroupId.set_start(groupId="bench", timeout=5)
                wall0 = time.perf_counter()
                await script_remote.cmd_run.set_start(timeout=3600)
                wall = time.perf_counter() - wall0
                await script.done_task
                state = ScriptState(script.state.state).name
                await script.close()
            await observatory.wait_idle()
    images = [name for name in starts if name in ends]
    measured = max(ends[n] for n in images) - min(starts[n] for n in images)
    floor = plan.exposure_readout_sum()
    return {
        "time_scale": time_scale,
        "images": float(len(images)),
        "planned_images": float(plan.n_images),
        "floor": floor,
        "measured": measured,
        "ratio": measured / floor,
        "wall": wall,
        "done": float(state == "DONE"),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the figures for each time scale."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("Script.1").setLevel(logging.WARNING)
    scales = [float(a) for a in argv] if argv else list(TIME_SCALES)
    print(
        "Daily default acquisition (63 images, one take_imgtype per exposure) on the simulated camera:\n"
        f"{'time scale':>10} {'images':>7} {'Σ(exp+readout) s':>17} {'measured s':>11} {'overhead':>9} "
        f"{'wall s':>7} {'final':>6}"
    )
    for scale in scales:
        figures = asyncio.run(run(scale))
        print(
            f"{figures['time_scale']:>10g} {int(figures['images']):>7d} {figures['floor']:>17.1f} "
            f"{figures['measured']:>11.1f} {figures['ratio']:>9.4f} {figures['wall']:>7.2f} "
            f"{'DONE' if figures['done'] else 'FAILED':>6}",
            flush=True,
        )
    print("Target: overhead = measured / Σ(exptime + readout) ≤ 1.02")


if __name__ == "__main__":
    main(sys.argv[1:])
