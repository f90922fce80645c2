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
progress line: the costs measured at its image size for its OCPS executor
(`calib.durations.MEASURED_COSTS`), this
machine's CPUs (`os.cpu_count`) shared with the load other processes put on them now
(`background_load`), each job's processes (``pipetask -j 1``: the pipetask executor clamps ``-j`` to its
``max_processes``, 1; the bps executor uses every core) and the time scale.

May import: the standard library and `calib`.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_OCPS_EXECUTOR",
    "OCPS_PROCESSES",
    "SATURATED",
    "background_load",
    "busy_cpus_now",
    "job_processes",
    "simulated_site",
]

import os
import time

from ..calib.durations import ProcessingCostModel, RunSite

DEFAULT_OCPS_EXECUTOR = "warm"
"""The simulated OCPS's executor when none is given: of the observatory
(`observatory.SimulatedObservatory`, which exports it), ``run_script`` and `simulated_site`."""

SATURATED = 0.9
"""A CPU sample at least this fraction of the CPUs busy is saturated (`background_load`)."""

OCPS_PROCESSES = {"pipetask": 1, "warm": 1}
"""Processes one job of each simulated OCPS executor runs (``bps``, not listed: every core)."""


def job_processes(ocps_executor: str) -> int:
    """Processes one job of the simulated OCPS runs with ``ocps_executor``."""
    return OCPS_PROCESSES.get(ocps_executor, os.cpu_count() or 1)


def background_load(sample: float = 0.2) -> float:
    """Busy processes the jobs will share the CPUs with: the 1-minute load average, or the CPUs other
    processes keep busy right now (`busy_cpus_now`, over ``sample`` seconds) where that is lower (0
    where the system tells neither).

    The load average lags by about a minute: just after a run ends it still counts that run's jobs
    (``make run``'s demo, started as the daily default ended, was planned at 665 s with a load of 1.7
    and took 361 s on an idle machine), so a drop is taken from the sample at once; a rise is taken
    as the load average follows it. A sample with every CPU busy (`SATURATED`) says nothing of the
    processes waiting for them and is not used: ``make run``'s daily default was planned at 471 s
    with a load of 2.0 (the sample of 2 busy CPUs) when the load average was 7 to 10.

    Niced processes count fully: on this shared machine they get as much CPU as nice-0 ones of
    another session, as when each session runs in a control group of its own (measured
    2026-12-01: other sessions' ``nice -n 10`` pipetasks got 20-32 % of a core, this run's nice-0
    ones 18-22 %). Weighing them by nice made a daily default's estimate 493 s (load 5.0, weighted
    2.0) for a run still far from done after 9.5 minutes; the load average gave 1041 s for one
    that took 983 s.
    """
    try:
        average = os.getloadavg()[0]
    except OSError:
        average = None
    now = busy_cpus_now(sample)
    if now is not None and now >= SATURATED * (os.cpu_count() or 1):
        # Every CPU busy: the sample cannot tell how many processes wait for them, the average can.
        now = None
    known = [value for value in (average, now) if value is not None]
    return min(known) if known else 0.0


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot from ``/proc/stat``, None where it is not there."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # user nice system idle iowait irq softirq steal (guest time is already in user and nice).
    total = sum(fields[:8])
    return total - idle, total


def busy_cpus_now(sample: float = 0.2) -> float | None:
    """CPUs kept busy by processes other than this one over the next ``sample`` seconds (Linux
    ``/proc/stat``; None elsewhere or if the sample is too short to tell)."""
    start = _cpu_jiffies()
    if start is None:
        return None
    own_start = sum(os.times()[:2])
    time.sleep(sample)
    end = _cpu_jiffies()
    if end is None or end[1] <= start[1]:
        return None
    cpus = os.cpu_count() or 1
    busy = (end[0] - start[0]) / (end[1] - start[1]) * cpus
    own = (sum(os.times()[:2]) - own_start) / sample
    return max(0.0, busy - own)


def simulated_site(
    size: str,
    time_scale: float,
    ocps_executor: str = DEFAULT_OCPS_EXECUTOR,
    max_processes: int | None = None,
) -> RunSite:
    """The simulated observatory at image ``size`` and ``time_scale`` on this machine, now.

    ``max_processes`` (the executor's own, when it is running) overrides `job_processes`.
    """
    load = background_load()
    processes = max_processes if max_processes is not None else job_processes(ocps_executor)
    model = ProcessingCostModel.for_size(
        size,
        cores=os.cpu_count() or 1,
        max_processes=processes,
        background_load=load,
        executor=ocps_executor,
    )
    return RunSite(cost_model=model, time_scale=float(time_scale))
