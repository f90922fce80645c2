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

"""Benchmark: how long the script takes to refuse each bad input of the corpus.

Sends every configuration of ``tests/data/bad_inputs.yaml`` to MakeComCamCalibrations over the
embedded bus (a ``Remote("Script")`` as the ScriptQueue uses, one new script per case, one simulated
observatory for all) and prints the wall time from the ``configure`` command to the
``CONFIGURE_FAILED`` state, with the number of images the camera started (always 0). Target: every
case under 2 s, the 10 MB note and the YAML alias bomb included.

Run with ``python -m bench.bench_bad_input``.
"""

from __future__ import annotations

__all__ = ["main", "run"]

import asyncio
import logging
import pathlib
import time
from typing import Any

import yaml

CORPUS_PATH = pathlib.Path(__file__).parents[1] / "tests" / "data" / "bad_inputs.yaml"


def load_corpus() -> list[dict[str, Any]]:
    """The corpus entries, with ``text`` the configuration text to send."""
    entries = yaml.safe_load(CORPUS_PATH.read_text())
    for entry in entries:
        entry["text"] = entry["config"].replace("xxxx", "x" * entry.get("note_chars", 4))
    return entries


async def run() -> list[tuple[str, float, str, int]]:
    """Refuse every case; return (id, seconds, final state, images started)."""
    from lsst.ts.makecalibrations.sal import ScriptState, salobj
    from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations
    from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
    from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

    salobj.set_test_topic_subname(randomize=True)
    results = []
    async with SimulatedObservatory(ObservatoryOptions(time_scale=500.0, size="tiny")) as observatory:
        camera = observatory.camera
        if camera is None:
            raise RuntimeError("the simulated observatory started without a camera")
        async with salobj.Domain() as domain:
            for index, entry in enumerate(load_corpus(), start=1):
                remote = salobj.Remote(domain, "Script", index, evt_max_history=0, exclude=["heartbeat"])
                await remote.start_task
                final = asyncio.get_running_loop().create_future()

                def state_callback(data: Any, final: asyncio.Future = final) -> None:
                    if data.state == ScriptState.CONFIGURE_FAILED and not final.done():
                        final.set_result(ScriptState(data.state).name)

                remote.evt_state.callback = state_callback
                script = MakeComCamCalibrations(index=index)
                script.shutdown_delay = 0.0
                script.final_state_delay = 0.0
                await script.start_task
                t0 = time.perf_counter()
                try:
                    await remote.cmd_configure.set_start(config=entry["text"], timeout=60)
                except salobj.AckError:
                    pass
                state = await asyncio.wait_for(final, timeout=60)
                elapsed = time.perf_counter() - t0
                results.append((entry["id"], elapsed, state, camera.images_started))
                await script.close()
                await remote.close()
    return results


def main() -> None:
    """Print the time to refuse each case."""
    logging.basicConfig(level=logging.CRITICAL)
    results = asyncio.run(run())
    print(f"{'case':40s} {'seconds':>8s}  final state        images")
    for name, seconds, state, images in results:
        print(f"{name:40s} {seconds:8.3f}  {state:18s} {images}")
    slowest = max(results, key=lambda r: r[1])
    print(f"{len(results)} cases; slowest {slowest[0]} {slowest[1]:.3f} s; all under 2 s: {slowest[1] < 2}")


if __name__ == "__main__":
    main()
