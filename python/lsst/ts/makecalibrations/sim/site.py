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

"""The simulated observatory of this machine as its runs' estimates see it: a `calib.durations.RunSite`.

`simulated_site` is the one place that says how the simulated observatory runs its jobs, for the
plan's estimated duration (``run_script --plan``), the script's own estimate (``run_script`` gives the
script the observatory's `SimulatedObservatory.run_site` before configure) and ``run_script``'s
progress line: the costs measured at its image size (`calib.durations.MEASURED_COSTS`), this
machine's CPUs (`os.cpu_count`) shared with the load other processes put on them now
(`background_load`), each job's processes (``pipetask -j 1``: the pipetask executor clamps ``-j`` to its
``max_processes``, 1; the bps executor uses every core) and the time scale.

May import: the standard library and `calib`.
"""

from __future__ import annotations

__all__ = ["OCPS_PROCESSES", "background_load", "job_processes", "simulated_site"]

import os
import pathlib
import time

from ..calib.durations import ProcessingCostModel, RunSite

OCPS_PROCESSES = {"pipetask": 1}
"""Processes one job of each simulated OCPS executor runs (``bps``, not listed: every core)."""


def job_processes(ocps_executor: str) -> int:
    """Processes one job of the simulated OCPS runs with ``ocps_executor``."""
    return OCPS_PROCESSES.get(ocps_executor, os.cpu_count() or 1)


def _runnable_weights() -> tuple[int, float]:
    """Processes of other programs ready to run now, and their CPU weights (1 at nice 0)."""
    own = os.getpid()
    count, weight = 0, 0.0
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if fields[0] != "R" or int(stat.parent.name) == own:
            continue
        count += 1
        weight += 1.25 ** -int(fields[16])  # the kernel's CFS weight ratio per nice level
    return count, weight


def background_load(samples: int = 3, interval: float = 0.05) -> float:
    """Busy processes that the jobs will share the CPUs with, in nice-0 processes.

    The 1-minute load average counts niced processes (benchmarks at ``nice -n 10``) as fully as
    others, but the kernel gives a nice-10 process about a tenth of a nice-0 job's share. So the load
    average is scaled by the weight of the processes ready to run (``/proc/<pid>/stat``, sampled
    ``samples`` times ``interval`` seconds apart) over their number; the load average alone where
    ``/proc`` is missing.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 0.0
    count, weight = 0, 0.0
    for i in range(samples):
        if i:
            time.sleep(interval)
        n, w = _runnable_weights()
        count, weight = count + n, weight + w
    return load * weight / count if count else load


def simulated_site(
    size: str,
    time_scale: float,
    ocps_executor: str = "pipetask",
    max_processes: int | None = None,
) -> RunSite:
    """The simulated observatory at image ``size`` and ``time_scale`` on this machine, now.

    ``max_processes`` (the executor's own, when it is running) overrides `job_processes`.
    """
    load = background_load()
    processes = max_processes if max_processes is not None else job_processes(ocps_executor)
    model = ProcessingCostModel.for_size(
        size, cores=os.cpu_count() or 1, max_processes=processes, background_load=load
    )
    return RunSite(cost_model=model, time_scale=float(time_scale))
