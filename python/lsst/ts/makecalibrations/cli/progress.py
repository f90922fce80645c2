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

"""Live progress of a calibration run for ``run_script``, observed on the bus without touching the Script.

`ProgressState` is a pure state machine fed with events (script state, image started/read out,
OCPS job started/finished) and wall-clock times; from the plan of the run (totals per image type,
number of OCPS jobs, exposure times) it tells how many images of each type were taken, how many OCPS
jobs are queued, running and done (with the quanta done of each running job), how many of the images
taken the OODS announced, the elapsed time and an estimate of the time left.

`ProgressReporter` feeds it from the bus, in the ``run_script`` process, with its own read-only
Remotes (LSSTComCam's names; the camera's own for LSSTCam and LATISS): ``CCCamera``
``startIntegration``/``endReadout`` (the image type is read from
``additionalKeys``/``additionalValues``), ``CCOODS`` ``imageInOODS`` (an image is announced once any
of its detectors is), ``OCPS:<index>`` ``job_result`` and ``logMessage`` (the simulated OCPS publishes
each job's quanta done of total there, `sim.ocps_jobs.format_quanta_progress`; the real OCPS does
not, and the line then shows no quanta), and the Script's ``state`` and ``logMessage`` (a job is
running from the Script's ``<name> job <id> started`` message until its ``job_result``). So as not to
drown the log messages it prints one compact line when something changed, at most every
``min_interval`` seconds, and at least every ``max_silence`` seconds while the run goes on (so a long
job never leaves the terminal silent), plus a last line when the run ends.

The time left is an estimate learnt from measured rates: the images not taken yet at the pace
observed so far (wall seconds per simulated second of exposure and readout, else ``1 / time_scale``);
each running job's quanta left at the rate its quanta were measured to finish (else half the mean
duration of the finished jobs); and the queued jobs at the mean duration of the finished ones,
divided by the largest number seen running at once. Before any job has finished, the longest
duration predicted for a running job from its quanta rate stands in for that mean; without any rate,
the age of the oldest running job does, and the estimate is shown as a lower bound (``>=``).

May import: `sal`, `calib`, `sim.ocps_jobs` and the standard library.
"""

from __future__ import annotations

__all__ = [
    "ProgressState",
    "ProgressReporter",
    "build_plan",
    "parse_image_type",
    "JOB_STARTED",
]

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

from ..calib.durations import RunSite, ScheduledJob, schedule
from ..calib.plan import CalibrationPlan
from ..sim.ocps_jobs import QUANTA_PROGRESS

JOB_STARTED = re.compile(r"^(?P<name>.+?) job (?P<job_id>[0-9A-Za-z_-]+) started:")
"""The Script's log message announcing a job sent to the OCPS (`scripts.ocps_client`)."""

_IMAGE_TYPES = ("BIAS", "DARK", "FLAT")

_FINAL_STATES = {"DONE", "FAILED", "STOPPED", "CONFIGURE_FAILED"}


def parse_image_type(additional_keys: str, additional_values: str) -> str | None:
    """The ``imageType`` of a camera image event, or `None`.

    The camera joins keys and values with ``:``; a value may itself hold colons (the group id is an
    ISO time), so the value at the key's position is used when it is a known type, else the first
    known type among the values.
    """
    keys = additional_keys.split(":")
    values = additional_values.split(":")
    if "imageType" in keys:
        index = keys.index("imageType")
        if index < len(values) and values[index].strip().upper() in _IMAGE_TYPES:
            return values[index].strip().upper()
    return next((v.strip().upper() for v in values if v.strip().upper() in _IMAGE_TYPES), None)


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressState:
    """What a run has done so far, and how long it may still take.

    Parameters
    ----------
    totals : `dict` [`str`, `int`]
        Images to take per type (``BIAS``...), discarded ones included, in acquisition order.
    n_jobs : `int`
        OCPS jobs the plan sends.
    image_durations : `dict` [`str`, `list` [`float`]], optional
        Simulated seconds (exposure + readout) of each planned image, per type.
    recovered : `dict` [`str`, `int`], optional
        Types whose images are reused from an earlier run, with their number.
    time_scale : `float`, optional
        Simulated seconds per wall second, for the estimate before any image was taken.
    planned_jobs : `list` [`calib.durations.ScheduledJob`], optional
        The plan's jobs and their modelled costs: with them, the time left is the schedule of the
        jobs not finished yet (`remaining`); without, it comes from the measured job durations only.
    cores : `float`, optional
        CPUs the jobs share, for that schedule.
    wrap_up : `float`, optional
        Wall seconds the end of the run takes after its last job, by the model.
    background : `float`, optional
        Other busy processes sharing ``cores`` when the plan was made, for that schedule.
    ingest_per_image : `float`, optional
        Wall seconds the OODS takes to announce one image (all its detectors), by the model: a
        type's jobs wait for its images not announced yet.
    """

    def __init__(
        self,
        totals: dict[str, int],
        n_jobs: int,
        image_durations: dict[str, list[float]] | None = None,
        recovered: dict[str, int] | None = None,
        time_scale: float = 1.0,
        planned_jobs: list[ScheduledJob] | None = None,
        cores: float = float("inf"),
        wrap_up: float = 0.0,
        background: float = 0.0,
        ingest_per_image: float = 0.0,
    ) -> None:
        self.planned_jobs = list(planned_jobs or [])
        """The plan's jobs with their modelled costs (`calib.plan.CalibrationPlan.scheduled_jobs`)."""
        self.cores = float(cores)
        self.wrap_up = float(wrap_up)
        self.background = float(background)
        self.ingest_per_image = float(ingest_per_image)
        self._planned_wall: list[float] = [
            end - start for start, end in schedule(self.planned_jobs, self.cores, self.background)
        ]
        self.totals = dict(totals)
        self.n_jobs = int(n_jobs)
        self.image_durations = {k: list(v) for k, v in (image_durations or {}).items()}
        self.recovered = dict(recovered or {})
        self.time_scale = float(time_scale)
        self.taken: dict[str, int] = {t: 0 for t in self.totals}
        self.exposing: str | None = None
        self.script_state = ""
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.jobs_started: dict[str, float | None] = {}
        self.jobs_finished: dict[str, int] = {}
        self.job_durations: list[float] = []
        self._finish_times: dict[str, float] = {}
        self.max_running = 0
        self.acquisition_wall = 0.0
        self.job_names: dict[str, str] = {}
        self.quanta: dict[str, tuple[int, int, int]] = {}
        """``job_id: (done, failed, total)`` as last reported."""
        self._first_quanta: dict[str, tuple[float, int]] = {}
        self._last_quanta: dict[str, tuple[float, int]] = {}
        self.announced: set[str] = set()
        """Images (obsid) the OODS announced."""
        self.acquisition_sim = 0.0
        self._image_start: float | None = None
        self.version = 0
        """Incremented at every change worth showing."""

    @classmethod
    def from_plan(cls, plan: CalibrationPlan, time_scale: float | None = None) -> ProgressState:
        """The state of a run about to follow ``plan`` (at its time scale unless ``time_scale``)."""
        if time_scale is None:
            time_scale = plan.time_scale
        totals: dict[str, int] = {}
        durations: dict[str, list[float]] = {}
        recovered: dict[str, int] = {}
        for acq in plan.acquisitions:
            name = acq.image_type.value
            totals[name] = len(acq.exposures)
            durations[name] = [e.exp_time + plan.read_out_time for e in acq.exposures]
            if acq.recovered:
                recovered[name] = len(acq.recovered_ids)
        jobs = plan.scheduled_jobs()
        return cls(
            totals,
            plan.n_jobs,
            durations,
            recovered,
            time_scale,
            planned_jobs=jobs,
            cores=plan.cost_model.cores,
            wrap_up=plan.cost_model.wrap_up,
            background=plan.cost_model.background_load,
            ingest_per_image=plan.cost_model.ingest_wall(plan.config.n_detectors),
        )

    # --- events ----------------------------------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1

    def on_script_state(self, state: str, now: float) -> None:
        """The Script's state (a `ScriptState` name)."""
        if state == self.script_state:
            return
        self.script_state = state
        if state == "RUNNING" and self.start_time is None:
            self.start_time = now
        if state in _FINAL_STATES and self.end_time is None:
            self.end_time = now
        self._changed()

    def on_image_started(self, image_type: str | None, now: float) -> None:
        """``startIntegration`` of an image."""
        self._image_start = now
        if self.start_time is None:
            self.start_time = now
        self.exposing = image_type
        self._changed()

    def on_image_read(self, image_type: str | None, now: float) -> None:
        """``endReadout`` of an image: one more taken."""
        if image_type is None:
            return
        self.taken[image_type] = self.taken.get(image_type, 0) + 1
        number = self.taken[image_type]
        planned = self.image_durations.get(image_type, [])
        if self._image_start is not None and 0 < number <= len(planned):
            self.acquisition_wall += max(0.0, now - self._image_start)
            self.acquisition_sim += planned[number - 1]
        self._image_start = None
        self.exposing = None
        self._changed()

    def on_image_in_oods(self, obsid: str, now: float) -> None:
        """``imageInOODS`` of one detector of an image."""
        if obsid and obsid not in self.announced:
            self.announced.add(obsid)
            self._changed()

    def on_job_quanta(self, job_id: str, done: int, failed: int, total: int, now: float) -> None:
        """A running job's quanta done (successfully), failed, and in all."""
        if job_id in self.jobs_finished or self.quanta.get(job_id) == (done, failed, total):
            return
        self.quanta[job_id] = (done, failed, total)
        finished = done + failed
        self._first_quanta.setdefault(job_id, (now, finished))
        self._last_quanta[job_id] = (now, finished)
        self._changed()

    def quanta_rate(self, job_id: str) -> float | None:
        """Quanta per wall second of a running job, measured between its first and last report."""
        first, last = self._first_quanta.get(job_id), self._last_quanta.get(job_id)
        if first is None or last is None or last[0] <= first[0] or last[1] <= first[1]:
            return None
        return (last[1] - first[1]) / (last[0] - first[0])

    def on_job_started(self, job_id: str, now: float, name: str = "") -> None:
        """The Script sent a job to the OCPS."""
        if job_id in self.jobs_started:
            return
        self.jobs_started[job_id] = now
        if name:
            self.job_names[job_id] = name
        self.max_running = max(self.max_running, self.n_running)
        self._changed()

    def on_job_finished(self, job_id: str, exit_code: int, now: float) -> None:
        """``job_result`` of a job (one not seen starting counts as started then)."""
        if job_id in self.jobs_finished:
            return
        start = self.jobs_started.setdefault(job_id, None)
        self.jobs_finished[job_id] = int(exit_code)
        self._finish_times[job_id] = now
        if start is not None:
            self.job_durations.append(max(0.0, now - start))
        self._changed()

    # --- figures ---------------------------------------------------------------------------------

    @property
    def n_running(self) -> int:
        """Jobs sent and not finished."""
        return len([j for j in self.jobs_started if j not in self.jobs_finished])

    @property
    def n_done(self) -> int:
        """Jobs finished (whatever their exit code)."""
        return len(self.jobs_finished)

    @property
    def n_failed(self) -> int:
        """Jobs finished with a non-zero exit code."""
        return len([c for c in self.jobs_finished.values() if c != 0])

    @property
    def n_queued(self) -> int:
        """Planned jobs not sent yet."""
        return max(0, self.n_jobs - len(self.jobs_started))

    @property
    def finished(self) -> bool:
        """True once the Script reached a final state."""
        return self.script_state in _FINAL_STATES

    def elapsed(self, now: float) -> float:
        """Wall seconds since the run started (0 before)."""
        if self.start_time is None:
            return 0.0
        return max(0.0, (self.end_time if self.end_time is not None else now) - self.start_time)

    def remaining(self, now: float) -> tuple[float, bool]:
        """Estimated wall seconds left, and whether it is complete (False: a lower bound).

        Before any job has finished, the longest duration predicted for a running job from its
        quanta rate stands in for the mean job duration; without a rate either, the age of the oldest
        running job does (a lower bound).
        """
        if self.finished:
            return 0.0, True
        if self.planned_jobs:
            return self._remaining_from_plan(now), True
        ratio = (
            self.acquisition_wall / self.acquisition_sim
            if self.acquisition_sim > 0
            else 1.0 / self.time_scale
        )
        sim_left = 0.0
        for image_type, durations in self.image_durations.items():
            sim_left += sum(durations[self.taken.get(image_type, 0) :])
        left = sim_left * ratio
        jobs_left = self.n_queued + self.n_running
        if not jobs_left:
            return left, True
        parallel = max(1, self.max_running)
        running = [j for j in self.jobs_started if j not in self.jobs_finished]
        # A running job's time left at its measured quanta rate, and its whole predicted duration.
        predicted: dict[str, tuple[float, float]] = {}
        for job_id in running:
            rate = self.quanta_rate(job_id)
            started = self.jobs_started[job_id]
            if rate is not None and started is not None:
                done, failed, total = self.quanta[job_id]
                last_time = self._last_quanta[job_id][0]
                job_left = max(0.0, (total - done - failed) / rate - (now - last_time))
                predicted[job_id] = (job_left, now - started + job_left)
        measured = bool(self.job_durations) or bool(predicted)
        if self.job_durations:
            mean = sum(self.job_durations) / len(self.job_durations)
        elif predicted:
            mean = max(total for _, total in predicted.values())
        else:
            ages = [now - t for j, t in self.jobs_started.items() if t is not None and j in running]
            mean = max(ages, default=0.0)
        running_left = sum(predicted[j][0] if j in predicted else 0.5 * mean for j in running)
        left += (self.n_queued * mean + running_left) / parallel
        return left, measured

    def _wall_per_sim(self) -> float:
        """Wall seconds per simulated second of acquisition, as measured (else ``1 / time_scale``)."""
        if self.acquisition_sim > 0:
            return self.acquisition_wall / self.acquisition_sim
        return 1.0 / self.time_scale

    def speed_factor(self) -> float:
        """Measured wall duration of the finished jobs over the plan's schedule of them (1 before any).

        The plan's schedule already counts the jobs sharing the CPUs; the factor learns the rest
        (other load on the machine, a model off for these images).
        """
        by_name = {job.name: i for i, job in enumerate(self.planned_jobs)}
        measured = modelled = 0.0
        for job_id, start in self.jobs_started.items():
            index = by_name.get(self.job_names.get(job_id, ""))
            if start is None or index is None or job_id not in self.jobs_finished:
                continue
            end = self._finish_times.get(job_id)
            if end is None:
                continue
            measured += end - start
            modelled += self._planned_wall[index]
        return measured / modelled if measured > 0 and modelled > 0 else 1.0

    def _remaining_from_plan(self, now: float) -> float:
        """The jobs not finished, scheduled from now with the plan's costs times `speed_factor`,
        after the images not taken yet (at the measured acquisition pace)."""
        factor = self.speed_factor()
        ratio = self._wall_per_sim()
        # When the images of each type will all be taken, from now (wall seconds).
        ready_in: dict[str, float] = {}
        clock = 0.0
        # The OODS announces the images in turn: a type is ready once its last image is.
        to_announce = -len(self.announced)
        for image_type, durations in self.image_durations.items():
            clock += sum(durations[self.taken.get(image_type, 0) :]) * ratio
            to_announce += len(durations)
            ready_in[image_type] = max(clock, max(0, to_announce) * self.ingest_per_image)
        images_left = clock
        status: dict[str, tuple[str, float]] = {}
        for job_id, start in self.jobs_started.items():
            name = self.job_names.get(job_id, "")
            if job_id in self.jobs_finished:
                status[name] = ("done", 0.0)
            elif name not in status:
                status[name] = ("running", now - start if start is not None else 0.0)
        index_of: dict[int, int] = {}
        residual: list[ScheduledJob] = []
        for i, job in enumerate(self.planned_jobs):
            kind, age = status.get(job.name, ("queued", 0.0))
            if kind == "done":
                continue
            cpu = job.cpu * factor
            ready = 0.0
            if kind == "running":
                # The share of its modelled duration not elapsed yet, but never nothing.
                done = min(0.9, age / max(1e-9, self._planned_wall[i] * factor))
                cpu *= 1.0 - done
            else:
                ready = max((ready_in.get(t, 0.0) for t in job.inputs), default=0.0)
            index_of[i] = len(residual)
            residual.append(dataclasses.replace(job, cpu=cpu, ready=ready, delay=job.delay * factor))
        residual = [
            dataclasses.replace(job, after=tuple(index_of[a] for a in job.after if a in index_of))
            for job in residual
        ]
        ends = [end for _, end in schedule(residual, self.cores, self.background)]
        # The end of the run (gains, plots, report) after the last job, as slow as the jobs were.
        if ends:
            tail = max(ends) + self.wrap_up * factor
        else:
            last = max(self._finish_times.values(), default=now)
            tail = max(0.0, self.wrap_up * factor - (now - last))
        return max(images_left, tail)

    def line(self, now: float) -> str:
        """One compact status line."""
        parts = []
        for image_type, total in self.totals.items():
            if image_type in self.recovered:
                parts.append(f"{image_type} reused {self.recovered[image_type]}")
            else:
                mark = "*" if self.exposing == image_type else ""
                parts.append(f"{image_type} {self.taken.get(image_type, 0)}/{total}{mark}")
        images = " ".join(parts) if parts else "no image"
        if sum(self.taken.values()):
            images += f" | OODS {len(self.announced)}/{sum(self.taken.values())}"
        jobs = f"jobs {self.n_queued} queued, {self.n_running} running"
        quanta = [
            f"{self.job_names.get(j, j[:8])} {self.quanta[j][0]}/{self.quanta[j][2]}"
            for j in self.jobs_started
            if j not in self.jobs_finished and j in self.quanta
        ]
        if quanta:
            jobs += f" ({', '.join(quanta)} quanta)"
        jobs += f", {self.n_done} done"
        if self.n_failed:
            jobs += f" ({self.n_failed} failed)"
        jobs += f" of {max(self.n_jobs, len(self.jobs_started))}"
        text = f"progress: {images} | {jobs} | elapsed {_format_seconds(self.elapsed(now))}"
        if self.finished:
            text += f" | {self.script_state}"
        elif self.script_state == "STOPPING":
            text += " | STOPPING: aborting the running jobs, waiting for the images taken"
        else:
            left, complete = self.remaining(now)
            text += f", {'~' if complete else '>='}{_format_seconds(left)} left"
        return text


def build_plan(script_class: type, config_text: str, site: RunSite | None = None) -> CalibrationPlan | None:
    """The plan ``config_text`` gives ``script_class`` (`calib.prepare.prepare_run`, as ``--plan``),
    at ``site`` (the simulated observatory's `sim.observatory.SimulatedObservatory.run_site`; the
    real observatory by default), as the script's configure makes it.

    `None` if the script has no calibration plan or the configuration is not valid (a `ConfigError`:
    the Script's configure will say why); any other error is raised.
    """
    get_instrument = getattr(script_class, "get_instrument", None)
    if get_instrument is None:
        return None
    from ..calib.config import ConfigError
    from ..calib.prepare import prepare_run
    from ..sal import current_tai

    try:
        return prepare_run(config_text, get_instrument(), current_tai(), site=site).plan
    except ConfigError:
        return None


class ProgressReporter:
    """Observe a run on the bus and print `ProgressState` lines; see the module docstring.

    Parameters
    ----------
    domain : `salobj.Domain`
        Domain for the Remotes.
    state : `ProgressState`
        The state to feed.
    script_index : `int`
        SAL index of the Script.
    ocps_index : `int`
        SAL index of the OCPS.
    say : `~collections.abc.Callable` [[`str`], `None`]
        Prints one line.
    min_interval : `float`, optional
        Least wall seconds between two lines.
    max_silence : `float`, optional
        Most wall seconds without a line while the run goes on.
    clock : `~collections.abc.Callable` [[], `float`], optional
        Wall clock (``time.monotonic``).
    camera, oods : `str`, optional
        Camera and OODS components (``CCCamera``/``CCOODS``; ``MTCamera``/``MTOODS``, ...).
    """

    def __init__(
        self,
        domain: Any,
        state: ProgressState,
        script_index: int,
        ocps_index: int,
        say: Callable[[str], None],
        min_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_silence: float = 25.0,
        camera: str = "CCCamera",
        oods: str = "CCOODS",
    ) -> None:
        from ..sal import ScriptState, salobj

        self.state = state
        self.say = say
        self.min_interval = float(min_interval)
        self.max_silence = float(max_silence)
        self._keepalive: asyncio.Task | None = None
        self.clock = clock
        self._script_state = ScriptState
        self._printed_version = -1
        self._last_print = -float("inf")
        self._flush_handle: asyncio.TimerHandle | None = None
        self._camera = salobj.Remote(
            domain,
            camera,
            readonly=True,
            include=["startIntegration", "endReadout"],
            evt_max_history=0,
        )
        self._oods = salobj.Remote(domain, oods, readonly=True, include=["imageInOODS"], evt_max_history=0)
        self._ocps = salobj.Remote(
            domain, "OCPS", ocps_index, readonly=True, include=["job_result", "logMessage"], evt_max_history=0
        )
        self._script = salobj.Remote(
            domain, "Script", script_index, readonly=True, include=["state", "logMessage"], evt_max_history=0
        )
        self._camera.evt_startIntegration.callback = self._on_start_integration
        self._camera.evt_endReadout.callback = self._on_end_readout
        self._oods.evt_imageInOODS.callback = self._on_image_in_oods
        self._ocps.evt_job_result.callback = self._on_job_result
        self._ocps.evt_logMessage.callback = self._on_ocps_log
        self._script.evt_state.callback = self._on_state
        self._script.evt_logMessage.callback = self._on_log

    async def start(self) -> None:
        """Wait until the Remotes listen."""
        await asyncio.gather(
            self._camera.start_task, self._oods.start_task, self._ocps.start_task, self._script.start_task
        )
        self._keepalive = asyncio.create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        """Print the line again whenever ``max_silence`` passed without one, until the run ends."""
        while not self.state.finished:
            await asyncio.sleep(max(0.05, self.max_silence / 5))
            if self.state.start_time is not None and self.clock() - self._last_print >= self.max_silence:
                self.state.version += 1
                self._update()

    async def close(self) -> None:
        """Print the last line (if anything changed since) and close the Remotes."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._print()
        for remote in (self._camera, self._oods, self._ocps, self._script):
            with contextlib.suppress(Exception):
                await remote.close()

    # --- callbacks -------------------------------------------------------------------------------

    async def _on_start_integration(self, data: Any) -> None:
        image_type = parse_image_type(data.additionalKeys, data.additionalValues)
        self.state.on_image_started(image_type, self.clock())
        self._update()

    async def _on_end_readout(self, data: Any) -> None:
        image_type = parse_image_type(data.additionalKeys, data.additionalValues)
        self.state.on_image_read(image_type, self.clock())
        self._update()

    async def _on_image_in_oods(self, data: Any) -> None:
        self.state.on_image_in_oods(str(data.obsid), self.clock())
        self._update()

    async def _on_ocps_log(self, data: Any) -> None:
        match = QUANTA_PROGRESS.match(str(data.message))
        if match:
            done, failed, total = int(match["done"]), int(match["failed"]), int(match["total"])
            self.state.on_job_quanta(match["job_id"], done, failed, total, self.clock())
            self._update()

    async def _on_job_result(self, data: Any) -> None:
        self.state.on_job_finished(str(data.job_id), int(data.exit_code), self.clock())
        self._update()

    async def _on_state(self, data: Any) -> None:
        try:
            name = self._script_state(data.state).name
        except ValueError:
            return
        self.state.on_script_state(name, self.clock())
        self._update(force=self.state.finished)

    async def _on_log(self, data: Any) -> None:
        match = JOB_STARTED.match(str(data.message))
        if match:
            self.state.on_job_started(match["job_id"], self.clock(), match["name"])
            self._update()

    # --- printing --------------------------------------------------------------------------------

    def _print(self) -> None:
        if self.state.version == self._printed_version or self.state.start_time is None:
            return
        self._printed_version = self.state.version
        self._last_print = self.clock()
        self.say(self.state.line(self._last_print))

    def _update(self, force: bool = False) -> None:
        """Print now if allowed, else once the interval has passed (one pending print at most)."""
        wait = self._last_print + self.min_interval - self.clock()
        if force or wait <= 0:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            self._print()
        elif self._flush_handle is None:

            def flush() -> None:
                self._flush_handle = None
                self._print()

            self._flush_handle = asyncio.get_running_loop().call_later(wait, flush)
