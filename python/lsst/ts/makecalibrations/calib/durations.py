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

"""How long a run takes: a processing cost model and a schedule of the OCPS jobs on shared CPUs.

`ProcessingCostModel` gives the CPU seconds of one OCPS job from the number of processed
detector-images (a kept exposure on one detector), plus a fixed cost per job (starting ``pipetask``,
importing the stack, building the quantum graph), and the wall seconds the OODS takes to announce one
detector-image. The two figures depend on what the job does: each *kind* of job (`JOB_KINDS`:
combine, verify, defects, PTC, gain, the gain check; `cost_kind` names the kind of a job from its
name, ``BIAS combine``, ``GAIN verify``...) has its own `JobCost` where it was measured, and a
combine or verification of one image type its own (``flat_combine``: `COST_KEYS`, `cost_keys`)
where the benchmark found it to differ from its kind's; the size's overall figures otherwise.
`ProcessingCostModel.for_size` returns the figures measured for an image
size (``tiny``, ``default``, ``full``): `MEASURED_COSTS` is the one place they are written, each with
the date, commit and run it was measured on (``python -m bench.bench_job_costs`` measures each kind
and prints the entry it proposes; doc/benchmarks.rst, "Duration model", has the figures).

`RunSite` is where a run happens, as its estimates see it: the cost model and the time scale
(simulated seconds per wall second). The script's default, `RunSite.observatory`, is the real
observatory: full-size images, real time, each job on its own CPUs. The simulated observatory makes
its own (``sim.site``: its image size, this machine's cores and load, its OCPS's processes, its time
scale) and ``run_script`` gives it to the script before configure, to ``--plan`` and to the progress
line, so the three estimates are one.

`schedule` plays the jobs of a run on ``cores`` CPUs shared by the running jobs (processor sharing:
``n`` jobs on ``c`` cores each progress at ``min(1, c / n)`` CPU seconds per wall second; a job
never uses more than ``parallel`` CPUs), each job starting once its images are announced and the
jobs it waits for are done (a certification adds ``certification`` seconds after its job). It
returns when each job starts and ends. The plan's estimated duration and ``run_script``'s
remaining-time estimate both come from it (the latter from the jobs left, with the CPU seconds
scaled by what the finished jobs measured).

May import: the standard library.
"""

from __future__ import annotations

__all__ = [
    "GAIN_CHECK",
    "JOB_KINDS",
    "JobCost",
    "COST_KEYS",
    "cost_keys",
    "cost_kind",
    "MeasuredCost",
    "MEASURED_COSTS",
    "OBSERVATORY_SIZE",
    "ProcessingCostModel",
    "RunSite",
    "ScheduledJob",
    "schedule",
]

import dataclasses
import math
from collections.abc import Mapping, Sequence

GAIN_CHECK = "GAIN verify"
"""The name of the gain check job after a PTC or gain job (`calib.plan.CalibrationPlan.scheduled_jobs`)."""

JOB_KINDS = ("combine", "verify", "defects", "ptc", "gain", "gain_check")
"""The kinds of OCPS job whose costs are measured apart (`cost_kind`)."""

_TYPED_KINDS = ("combine", "verify")
COST_KEYS = JOB_KINDS + tuple(f"{t}_{k}" for t in ("bias", "dark", "flat") for k in _TYPED_KINDS)
"""The keys of the measured job costs: the kinds, and the combine and verification of each image
type (``bias_combine``...), most specific first in `cost_keys`."""


def cost_kind(job_name: str) -> str:
    """The kind (`JOB_KINDS`) of the job named ``job_name`` (as `calib.jobs.JobSpec.name` and the
    plan name them): ``BIAS combine`` -> ``combine``, ``FLAT verify`` -> ``verify``, `GAIN_CHECK`
    -> ``gain_check``, ``PTC`` -> ``ptc``.

    Raises
    ------
    ValueError
        For a name of no known kind.
    """
    if job_name == GAIN_CHECK:
        return "gain_check"
    words = job_name.split()
    kind = words[-1].lower() if words else ""
    if kind not in JOB_KINDS or (len(words) > 1 and kind not in ("combine", "verify")):
        raise ValueError(f"No job kind for the job name {job_name!r}; kinds: {JOB_KINDS}.")
    return kind


def cost_keys(job_name: str) -> tuple[str, ...]:
    """The `COST_KEYS` of the job named ``job_name``, most specific first: ``FLAT combine`` ->
    ``("flat_combine", "combine")``, ``PTC`` -> ``("ptc",)`` (`cost_kind` for a name of no kind)."""
    kind = cost_kind(job_name)
    words = job_name.split()
    if kind in _TYPED_KINDS and len(words) == 2 and f"{words[0].lower()}_{kind}" in COST_KEYS:
        return (f"{words[0].lower()}_{kind}", kind)
    return (kind,)


@dataclasses.dataclass(frozen=True)
class JobCost:
    """The CPU cost of one kind of job: ``fixed + per_image x detector-images`` seconds.

    Attributes
    ----------
    fixed : `float`
        CPU seconds of a job besides its images (start-up, imports, quantum graph).
    per_image : `float`
        CPU seconds per processed detector-image (a kept exposure on one detector).
    """

    fixed: float
    per_image: float

    def cpu(self, detector_images: int) -> float:
        """CPU seconds of a job of ``detector_images`` detector-images."""
        return self.fixed + self.per_image * detector_images


@dataclasses.dataclass(frozen=True)
class MeasuredCost:
    """The measured costs of one image size.

    Attributes
    ----------
    job_cpu : `float`
        CPU seconds of a job besides its images (start-up, imports, quantum graph), for a kind not
        in ``kinds``.
    image_cpu : `float`
        CPU seconds per processed detector-image, for a kind not in ``kinds``.
    ingest_wall : `float`
        Wall seconds the OODS takes per detector-image to announce it, with the CPUs to itself.
    measured : `str`
        When, at which commit and on which runs the figures were measured.
    kinds : `~collections.abc.Mapping` [`str`, `JobCost`]
        The costs of the kinds of job (`COST_KEYS`: `JOB_KINDS` and per image type) measured apart.
        A gain check
        (``verifyGainFromFlatPairs``) reads the per-pair gains of the PTC or gain job, not the images:
        its cost per detector-image is a small fraction of the others'.
    """

    job_cpu: float
    image_cpu: float
    ingest_wall: float
    measured: str
    kinds: Mapping[str, JobCost] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(COST_KEYS))
        if unknown:
            raise ValueError(f"Costs for unknown job kinds {unknown}; kinds: {COST_KEYS}.")


MEASURED_COSTS: Mapping[str, MeasuredCost] = {
    "tiny": MeasuredCost(
        9.0,
        0.17,
        0.10,
        "2026-12-01, before commit 6d8f7eb: the tiny daily default (239 s CPU, 5 jobs, 180 "
        "detector-images); gain check as at the default size",
        {"gain_check": JobCost(9.0, 0.05)},
    ),
    "default": MeasuredCost(
        6.5,
        0.471,
        0.18,
        "2026-12-01, main c68420f (bench at 0f6142f): bench.bench_job_costs, PipetaskExecutor, 28 jobs of "
        "make run's two configurations replayed on 1 and 3 detectors, load 6.1 -> 7.8 on 2 cores; OODS "
        "from commit 87cc0a5's daily default and a59ec40's demo (0.83 and 0.78 s per detector-image at a "
        "load of about 8, / (1 + 8) / 2)",
        {
            "combine": JobCost(5.0, 0.323),
            "verify": JobCost(6.7, 0.510),
            "defects": JobCost(4.3, 0.358),
            "ptc": JobCost(2.5, 0.796),
            "gain": JobCost(5.1, 0.600),
            "gain_check": JobCost(7.1, 0.064),
            "flat_combine": JobCost(5.0, 0.717),
        },
    ),
    "default/warm": MeasuredCost(
        2.8,
        0.420,
        0.18,  # OODS: not measured by bench_job_costs (the "default" entry's figure)
        "2026-12-01, commit e77be3a: bench.bench_job_costs, WarmPipetaskExecutor, 28 jobs of make run's "
        "two configurations replayed on 1 and 3 of 3 detectors, load 0.6 -> 1.2 on 2 cores (the "
        "worker's own start, about 5 s once per OCPS, is in the unfitted warm-up job)",
        {
            "combine": JobCost(2.6, 0.306),
            "verify": JobCost(1.9, 0.462),
            "defects": JobCost(2.6, 0.285),
            "ptc": JobCost(0.5, 0.692),
            "gain": JobCost(1.1, 0.575),
            "gain_check": JobCost(2.7, 0.026),
            "bias_combine": JobCost(2.1, 0.281),
            # Two points: the intercept is the fit's, within its error of zero.
            "flat_combine": JobCost(-0.4, 0.855),
        },
    ),
    "full": MeasuredCost(
        9.0,
        4.3,
        0.5,
        "2026-12-02, commit f68f1f4: the full-size one-detector daily default's jobs replayed through "
        "the warm worker (BIAS, DARK, FLAT verify and GAIN: 376.9 s CPU for 80 detector-images, "
        "(376.9 - 4 x 9.0) / 80); job overhead as before 6d8f7eb; gain check as at the default size",
        {"gain_check": JobCost(9.0, 0.05)},
    ),
}
"""The measured costs per simulated image size (``<size>``: OCPS jobs as one ``pipetask`` process
each), and per size and executor where an executor's jobs cost otherwise (``<size>/<executor>``):
the one place they are written (doc/benchmarks.rst, "Duration model", has the runs and how to
measure them again with ``python -m bench.bench_job_costs``)."""

OBSERVATORY_SIZE = "full"
"""The image size of the real cameras (the costs `RunSite.observatory` uses)."""


@dataclasses.dataclass(frozen=True)
class ProcessingCostModel:
    """The cost of the OCPS jobs of a run, for the duration estimates.

    A job costs ``job_overhead + per_image_detector * n_detector_images`` CPU seconds, or its kind's
    `JobCost` where ``kinds`` has one (`cost`), spread over
    at most ``min(n_processes, n_detectors)`` CPUs; certifying costs ``certification`` wall seconds,
    and the end of the run (reading the gains, drawing the plots, writing the report) ``wrap_up``.
    ``cores`` is the number of CPUs the jobs share (`math.inf`: each job has its own).
    ``ingest_per_image_detector`` is the wall time the OODS needs per detector-image with the CPUs to
    itself (its announcements follow one another; on ``cores`` shared with ``background_load`` it
    takes longer, `ingest_wall`); a job starts once its images are announced.
    ``max_processes`` caps a job's processes (the simulated OCPS runs ``pipetask -j 1``); ``size``
    names the measured figures used (empty: the defaults, not measured at the observatory).
    ``background_load`` is the number of other busy processes sharing ``cores`` (`schedule`).
    """

    job_overhead: float = MEASURED_COSTS[OBSERVATORY_SIZE].job_cpu
    per_image_detector: float = MEASURED_COSTS[OBSERVATORY_SIZE].image_cpu
    certification: float = 2.0
    wrap_up: float = 15.0
    cores: float = math.inf
    ingest_per_image_detector: float = 0.0
    max_processes: float = math.inf
    size: str = ""
    background_load: float = 0.0
    kinds: Mapping[str, JobCost] = dataclasses.field(
        default_factory=lambda: dict(MEASURED_COSTS[OBSERVATORY_SIZE].kinds)
    )

    @classmethod
    def for_size(
        cls,
        size: str,
        cores: float = math.inf,
        max_processes: float = math.inf,
        background_load: float = 0.0,
        executor: str = "",
    ) -> ProcessingCostModel:
        """The measured model of a simulated image size (`MEASURED_COSTS`), on ``cores`` CPUs that
        ``background_load`` other busy processes share, for the jobs of ``executor``: the entry
        ``<size>/<executor>`` where there is one (the simulated OCPS's warm worker, ``default/warm``),
        else ``<size>`` (measured with a ``pipetask`` process per job)."""
        sizes = {key.split("/")[0] for key in MEASURED_COSTS}
        if size not in sizes:
            raise ValueError(f"No measured costs for size {size!r}; known: {sorted(sizes)}.")
        costs = MEASURED_COSTS.get(f"{size}/{executor}", MEASURED_COSTS[size])
        return cls(
            job_overhead=costs.job_cpu,
            per_image_detector=costs.image_cpu,
            cores=float(cores),
            ingest_per_image_detector=costs.ingest_wall,
            max_processes=float(max_processes),
            size=size,
            background_load=float(background_load),
            kinds=dict(costs.kinds),
        )

    def describe(self, job_names: Sequence[str] | None = None) -> str:
        """The model in a few words, for the plan: the costs of the jobs named ``job_names`` (every
        cost when `None`)."""
        text = f"{self.job_overhead:g} s per job + {self.per_image_detector:g} CPU s per detector-image"
        if self.kinds:
            if job_names is None:
                used = sorted(self.kinds, key=COST_KEYS.index) + [""]
            else:
                keys = {next((k for k in cost_keys(name) if k in self.kinds), "") for name in job_names}
                used = sorted(keys - {""}, key=COST_KEYS.index) + ([""] if "" in keys else [])
            text = "CPU s per job + per detector-image: " + ", ".join(
                f"{key or 'other jobs'} {cost.fixed:g} + {cost.per_image:g}"
                for key, cost in ((key, self.kinds.get(key) or self.cost()) for key in used)
            )
        if self.cores != math.inf:
            text += f" on {self.cores:g} cores"
            if self.background_load:
                text += f" with a load of {self.background_load:.1f} from other processes"
        return text + (
            f", measured at size {self.size}" if self.size else ", not measured at the observatory"
        )

    def cost(self, job_name: str = "") -> JobCost:
        """The cost of the job named ``job_name`` (``FLAT combine``...; ``""``: of no particular kind):
        its most specific measured `cost_keys`, else the overall figures."""
        for key in cost_keys(job_name) if job_name else ():
            if key in self.kinds:
                return self.kinds[key]
        return JobCost(self.job_overhead, self.per_image_detector)

    def job_cpu(self, n_images: int, n_detectors: int, job_name: str = "") -> float:
        """CPU seconds of the job named ``job_name`` processing ``n_images`` exposures of
        ``n_detectors`` detectors."""
        return self.cost(job_name).cpu(n_images * n_detectors)

    def ingest_wall(self, n_detectors: int) -> float:
        """Wall seconds the OODS takes to announce one image of ``n_detectors`` detectors: its CPU
        share shrinks as other processes (``background_load``) and itself exceed ``cores``."""
        contention = 1.0
        if self.cores != math.inf:
            contention = max(1.0, (1.0 + self.background_load) / self.cores)
        return self.ingest_per_image_detector * n_detectors * contention


@dataclasses.dataclass(frozen=True)
class RunSite:
    """Where a run takes and processes its images, for its duration estimates.

    Attributes
    ----------
    cost_model : `ProcessingCostModel`
        What its OCPS jobs cost, on which CPUs.
    time_scale : `float`
        Simulated seconds per wall second (1 at the observatory).
    """

    cost_model: ProcessingCostModel = dataclasses.field(
        default_factory=lambda: ProcessingCostModel.for_size(OBSERVATORY_SIZE)
    )
    time_scale: float = 1.0

    @classmethod
    def observatory(cls) -> RunSite:
        """The real observatory: full-size images (`OBSERVATORY_SIZE`), real time, each job on CPUs of
        its own (the OCPS at the data facility)."""
        return cls()

    def __post_init__(self) -> None:
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError(f"time_scale must be a positive number, not {self.time_scale!r}.")


@dataclasses.dataclass(frozen=True)
class ScheduledJob:
    """One job to schedule.

    Attributes
    ----------
    name : `str`
        Its name (``BIAS combine``...).
    cpu : `float`
        CPU seconds it needs.
    parallel : `float`
        Most CPUs it uses at once.
    ready : `float`
        Wall seconds from the start of the run before its images are all announced.
    after : `tuple` [`int`, ...]
        Indices of the jobs it waits for.
    delay : `float`
        Wall seconds between the end of the jobs it waits for and its start (certifications).
    inputs : `tuple` [`str`, ...]
        Image types (``BIAS``...) whose images it processes.
    """

    name: str
    cpu: float
    parallel: float = 1.0
    ready: float = 0.0
    after: tuple[int, ...] = ()
    delay: float = 0.0
    inputs: tuple[str, ...] = ()


def schedule(
    jobs: Sequence[ScheduledJob], cores: float = math.inf, background: float = 0.0
) -> list[tuple[float, float]]:
    """``(start, end)`` wall seconds of each job (see the module docstring).

    ``background`` other busy processes share the cores with the jobs (as many as the load
    average counts): ``n`` running jobs then have ``cores * n / (n + background)`` CPUs between
    them when ``n + background`` exceeds ``cores``. A job whose dependencies never end (a cycle)
    gets ``(inf, inf)``.
    """
    n = len(jobs)
    start = [math.inf] * n
    end = [math.inf] * n
    left = [max(0.0, job.cpu) for job in jobs]
    running: set[int] = set()
    pending = set(range(n))
    now = 0.0

    def release_time(i: int) -> float:
        job = jobs[i]
        if any(end[j] == math.inf for j in job.after):
            return math.inf
        return max([job.ready] + [end[j] + job.delay for j in job.after])

    while pending or running:
        for i in sorted(pending):
            if release_time(i) <= now + 1e-9:
                pending.discard(i)
                running.add(i)
                start[i] = now
        n_running = len(running)
        available = cores
        if n_running and n_running + background > cores:
            available = cores * n_running / (n_running + background)
        rates = _rates([jobs[i].parallel for i in sorted(running)], available)
        rate = dict(zip(sorted(running), rates, strict=True))
        next_release = min((release_time(i) for i in pending), default=math.inf)
        next_end = min((now + left[i] / rate[i] for i in running if rate[i] > 0), default=math.inf)
        step_to = min(next_release, next_end)
        if step_to == math.inf:
            break
        for i in running:
            left[i] -= rate[i] * (step_to - now)
        now = step_to
        for i in sorted(running):
            if left[i] <= 1e-9:
                running.discard(i)
                end[i] = now
    return list(zip(start, end, strict=True))


def _rates(parallel: Sequence[float], cores: float) -> list[float]:
    """CPU seconds per wall second of each running job: fair shares of ``cores``, capped by each
    job's own ``parallel`` (water filling)."""
    rates = [0.0] * len(parallel)
    remaining = cores
    open_jobs = sorted(range(len(parallel)), key=lambda i: parallel[i])
    while open_jobs:
        share = remaining / len(open_jobs)
        i = open_jobs[0]
        if parallel[i] <= share:
            rates[i] = parallel[i]
            remaining -= parallel[i]
            open_jobs.pop(0)
        else:
            for j in open_jobs:
                rates[j] = share
            break
    return rates
