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

"""The processing cost model and the schedule of the OCPS jobs on shared CPUs."""

from __future__ import annotations

import math
import os

import pytest

from lsst.ts.makecalibrations.calib.config import parse_config_text
from lsst.ts.makecalibrations.calib.durations import (
    MEASURED_COSTS,
    OBSERVATORY_SIZE,
    ProcessingCostModel,
    RunSite,
    ScheduledJob,
    schedule,
)
from lsst.ts.makecalibrations.calib.instrument import COMCAM
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan
from lsst.ts.makecalibrations.calib.prepare import prepare_run
from lsst.ts.makecalibrations.cli.progress import ProgressState


def test_processor_sharing() -> None:
    two = [ScheduledJob("a", 10.0), ScheduledJob("b", 10.0)]
    # One core shared by two jobs: each progresses at half speed.
    assert schedule(two, cores=1) == [(0.0, 20.0), (0.0, 20.0)]
    assert schedule(two, cores=2) == [(0.0, 10.0), (0.0, 10.0)]
    # Two other busy processes on the two cores leave the jobs one core between them.
    assert schedule(two, cores=2, background=2) == [(0.0, 20.0), (0.0, 20.0)]
    # A job alone uses at most its own processes; the one left after the short job speeds up.
    mixed = [ScheduledJob("a", 30.0, parallel=2), ScheduledJob("b", 5.0)]
    (a_start, a_end), (b_start, b_end) = schedule(mixed, cores=2)
    assert b_end == pytest.approx(5.0) and a_end == pytest.approx(5.0 + 25.0 / 2)
    # Dependencies, a delay after them (a certification), a ready time (images announced).
    chain = [
        ScheduledJob("combine", 10.0, ready=5.0),
        ScheduledJob("next", 4.0, after=(0,), delay=2.0),
        ScheduledJob("late", 1.0, ready=100.0),
    ]
    assert schedule(chain) == [(5.0, 15.0), (17.0, 21.0), (100.0, 101.0)]
    cycle = [ScheduledJob("x", 1.0, after=(1,)), ScheduledJob("y", 1.0, after=(0,))]
    assert schedule(cycle) == [(math.inf, math.inf)] * 2


def plan_of(text: str, model: ProcessingCostModel, time_scale: float = 1.0) -> CalibrationPlan:
    plan = CalibrationPlan.from_config(parse_config_text(text), cost_model=model)
    return CalibrationPlan(**{**plan.__dict__, "time_scale": time_scale})


def test_plan_schedules_its_jobs() -> None:
    model = ProcessingCostModel(job_overhead=10, per_image_detector=1, certification=2, cores=2, wrap_up=5)
    external = plan_of(
        "script_mode: BIAS_DARK\nn_bias: 4\nn_dark: 4\ndetectors: [0, 1]\nn_processes: 1\n", model, 10.0
    )
    jobs = external.scheduled_jobs()
    assert [(j.name, j.cpu, j.after, j.inputs) for j in jobs] == [
        ("BIAS verify", 10 + 8, (), ("BIAS",)),
        ("DARK verify", 10 + 8, (), ("DARK",)),
    ]
    bias_done = external.acquisitions[0].duration(external.read_out_time)
    assert jobs[0].ready == pytest.approx(bias_done / 10.0)
    assert external.estimated_duration() == pytest.approx(max(end for _, end in external.schedule()) + 5)

    chain = plan_of(
        "script_mode: BIAS_DARK\nn_bias: 4\nn_dark: 4\ndetectors: [0, 1]\nn_processes: 1\n"
        "generate_calibrations: true\n",
        model,
    )
    names = [j.name for j in chain.scheduled_jobs()]
    assert names == ["BIAS combine", "BIAS verify", "DARK combine", "DARK verify"]
    times = dict(zip(names, chain.schedule(), strict=True))
    # The dark combine waits for the bias verification and its certification.
    assert times["DARK combine"][0] == pytest.approx(
        max(times["BIAS verify"][1] + 2, chain.scheduled_jobs()[2].ready)
    )
    # + its certification and the end of the run
    assert chain.estimated_duration() == pytest.approx(times["DARK verify"][1] + 2 + 5)
    assert f"Estimated duration: {chain.estimated_duration():.0f} s" in chain.describe()


def test_measured_sizes() -> None:
    assert {key.split("/")[0] for key in MEASURED_COSTS} == {"tiny", "default", "full"}
    tiny, full = ProcessingCostModel.for_size("tiny"), ProcessingCostModel.for_size("full")
    assert tiny.job_cpu(20, 9) < full.job_cpu(20, 9)
    assert "measured at size tiny" in tiny.describe()
    # Each figure says when and at which commit it was measured.
    assert all("2026-" in costs.measured and "commit" in costs.measured for costs in MEASURED_COSTS.values())
    with pytest.raises(ValueError, match="No measured costs for size 'huge'"):
        ProcessingCostModel.for_size("huge")


def test_the_estimate_is_the_site_s() -> None:
    """The plan's estimate follows where the run happens: the real observatory (full size, real time,
    each job on CPUs of its own) by default, the simulated observatory's size and time scale when given."""
    text = "script_mode: BIAS_DARK_FLAT\nn_bias: 20\nn_dark: 20\nn_flat: 20\n"
    observatory = prepare_run(text, COMCAM, 0.0).plan
    assert observatory.cost_model == ProcessingCostModel.for_size(OBSERVATORY_SIZE) == RunSite().cost_model
    assert observatory.time_scale == 1.0
    # 20 exposures of 9 detectors per job at full size, plus the acquisition in real time.
    full = MEASURED_COSTS[OBSERVATORY_SIZE]
    first = observatory.scheduled_jobs()[0]
    assert first.cpu == pytest.approx(full.job_cpu + full.image_cpu * 20 * 9)
    assert first.parallel == min(observatory.config.n_processes, 9)
    assert observatory.estimated_duration() > observatory.acquisition_duration()
    model = ProcessingCostModel.for_size("tiny", cores=2, max_processes=1)
    simulated = prepare_run(text, COMCAM, 0.0, site=RunSite(model, time_scale=100.0)).plan
    assert simulated.cost_model == model and simulated.time_scale == 100.0
    jobs = simulated.scheduled_jobs()
    tiny = MEASURED_COSTS["tiny"]
    assert jobs[0].cpu == pytest.approx(tiny.job_cpu + tiny.image_cpu * 20 * 9) and jobs[0].parallel == 1
    assert simulated.estimated_duration() < observatory.estimated_duration() / 3
    with pytest.raises(ValueError, match="time_scale"):
        RunSite(model, time_scale=0.0)


def test_remaining_learns_from_finished_jobs() -> None:
    """The time left is the plan's schedule of the jobs left, scaled by what the finished ones took."""
    model = ProcessingCostModel(job_overhead=10, per_image_detector=0, certification=0, cores=1, wrap_up=0)
    plan = plan_of("script_mode: BIAS_DARK\nn_bias: 2\nn_dark: 2\ndetectors: [0]\n", model, 1e6)
    state = ProgressState.from_plan(plan, time_scale=1e6)
    state.on_script_state("RUNNING", 0.0)
    for image_type in ("BIAS", "BIAS", "BIAS", "DARK", "DARK", "DARK"):
        state.on_image_started(image_type, 0.0)
        state.on_image_read(image_type, 0.0)
    # Two 10 s jobs sharing one core: 20 s by the model.
    assert state.remaining(0.0) == (pytest.approx(20.0, rel=1e-4), True)
    state.on_job_started("b", 0.0, "BIAS verify")
    state.on_job_started("d", 0.0, "DARK verify")
    assert state.remaining(5.0)[0] == pytest.approx(15.0, rel=1e-4)
    # The bias job took 40 s where the model said 20: the machine is twice slower.
    state.on_job_finished("b", 0, 40.0)
    assert state.speed_factor() == pytest.approx(2.0, rel=1e-4)
    # The dark job, 40 s old of its 40 s, has its last tenth (never nothing) left: 2 s of CPU.
    assert state.remaining(40.0)[0] == pytest.approx(0.1 * 10 * 2.0, abs=1e-3)
    state.on_script_state("STOPPING", 41.0)
    assert state.line(41.0).endswith("STOPPING: aborting the running jobs, waiting for the images taken")


def test_simulated_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated observatory's site: its size and time scale, this machine's cores and load."""
    from lsst.ts.makecalibrations.sim import site

    monkeypatch.setattr(site.os, "getloadavg", lambda: (4.0, 3.0, 2.0))
    # The load average, or the CPUs busy right now where fewer (the average lags a run that ended).
    monkeypatch.setattr(site, "busy_cpus_now", lambda sample=0.2: 1.5)
    assert site.background_load() == 1.5
    monkeypatch.setattr(site, "busy_cpus_now", lambda sample=0.2: None)
    assert site.background_load() == 4.0
    monkeypatch.setattr(site, "busy_cpus_now", lambda sample=0.2: 6.0)
    assert site.background_load() == 4.0
    simulated = site.simulated_site("default", 100.0, "pipetask")
    assert simulated.time_scale == 100.0 and simulated.cost_model.size == "default"
    assert simulated.cost_model.max_processes == 1 and simulated.cost_model.background_load == 4.0
    assert site.simulated_site("tiny", 10.0, "bps").cost_model.max_processes == (site.os.cpu_count() or 1)
    # Every CPU busy: the sample cannot count the processes waiting for them; the average can.
    monkeypatch.setattr(site.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(site, "busy_cpus_now", lambda sample=0.2: 1.95)
    assert site.background_load() == 4.0
    monkeypatch.setattr(site, "busy_cpus_now", lambda sample=0.2: 1.5)
    assert site.background_load() == 1.5


def test_time_left_waits_for_the_oods_and_counts_the_load() -> None:
    """The progress line's time left agrees with the plan at the start (same schedule, the other
    processes' load included) and waits for the images the OODS has not announced yet."""
    model = ProcessingCostModel(
        job_overhead=10,
        per_image_detector=0,
        certification=0,
        cores=1,
        wrap_up=0,
        ingest_per_image_detector=2.0,
        background_load=1.0,
    )
    plan = plan_of("script_mode: BIAS\nn_bias: 4\ndetectors: [0]\n", model, 1e6)
    # One image of one detector takes 2 s x (1 + 1 busy process) / 1 core to be announced.
    assert model.ingest_wall(1) == 4.0
    state = ProgressState.from_plan(plan)
    assert state.time_scale == 1e6 and state.background == 1.0
    state.on_script_state("RUNNING", 0.0)
    for _ in range(5):
        state.on_image_started("BIAS", 0.0)
        state.on_image_read("BIAS", 0.0)
    # 5 images to announce (20 s), then the job sharing the core with the other process (20 s).
    left, complete = state.remaining(0.0)
    assert complete and left == pytest.approx(40.0, rel=1e-3)
    assert left == pytest.approx(plan.estimated_duration(), rel=1e-3)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="busy_cpus_now reads Linux /proc/stat")
def test_busy_cpus_now_does_not_count_this_process() -> None:
    """A sample while this process only sleeps: between 0 and the CPU count, whatever else runs; a
    busy loop of this process in a thread does not make it larger than the other processes' load."""
    import threading

    from lsst.ts.makecalibrations.sim import site

    cpus = os.cpu_count() or 1
    idle = site.busy_cpus_now(0.2)
    assert idle is not None and 0.0 <= idle <= cpus
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        spinning = site.busy_cpus_now(0.3)
    finally:
        stop.set()
        thread.join()
    assert spinning is not None and 0.0 <= spinning <= cpus
    # This process's own spinning core is not "other load" (0.6 CPU of slack for other processes
    # starting or stopping between the two samples on a shared machine).
    assert spinning <= max(idle, site.busy_cpus_now(0.2) or 0.0) + 0.6
