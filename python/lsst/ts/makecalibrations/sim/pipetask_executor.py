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

"""The OCPS job executor that really runs the pipelines: ``pipetask run`` against the butler repo.

`PipetaskExecutor` implements `ocps_jobs.JobExecutor`. For each `ocps_jobs.JobRequest` it

1. parses ``config`` with `calib.options.parse_job_options` (`shlex`, never a shell; the grammar the
   script's configuration is checked with) and accepts only ``-j N``, ``-i a,b``,
   ``-c label:field=value`` and ``--register-dataset-types``; anything else (another option, a shell
   character, a control character, an invalid collection name) is refused with exit code 1 and a
   message naming it;
2. expands ``${CP_PIPE_DIR}`` / ``${CP_VERIFY_DIR}`` (`pipelines.locations`), keeping a ``#subset``;
3. checks the ``-c`` labels against the pipeline's tasks: a label that is not a task of the pipeline
   (including the seed's bare ``isr``, which the script's job builder translates into the pipeline's
   ISR labels, `calib.jobs.translate_isr_label`) is refused with exit code 1, as pipetask does;
4. keeps repositories made by older code working (`pipelines.repo_compat.pipeline_for_repo`): where
   the repository registered a label's ``<label>_metadata`` with other quantum dimensions than the
   pipeline's (ISR per exposure; cp_verify statistics per exposure, before they were measured in the
   ISR quanta), the job runs a copy of the pipeline (in the job directory) with the earlier task
   split (same config fields, same outputs) and says so in the job log;
5. clamps ``-j`` to ``max_processes`` (on 2 cores a spawned process per quantum is slower than
   ``-j 1``) and says so in the job log;
6. runs ``pipetask run -b REPO -p PIPELINE -i LSSTComCam/raw/all,<inputs> --output-run
   u/ocps/<job_id> -d QUERY -j N [-c ...] [--register-dataset-types]`` as an asyncio subprocess in
   its own process group, its output going to ``<log_dir or REPO/ocps>/<job_id>/outs/ocps.log``
   (as the real OCPS's ``/scratch/uws/<job_id>/outs/ocps.log``), which ``log_uri`` points to;
7. while pipetask runs, reads its log every ``progress_interval`` seconds for the line the middleware
   writes after every quantum ("Executed N quanta successfully, F failed and R remain out of total T
   quanta"; pipetask offers no other progress hook) and calls ``progress(job_id, N, F, T)`` when it
   changed;
8. turns the result into a `ocps_jobs.JobOutcome`: a non-zero exit is a failure (exit code 1) with the
   last error line of the log as message; a zero exit that wrote no dataset other than
   configs/metadata/logs (pipetask exits 0 when nothing matched the query) is also a failure;
   ``abort`` kills the process group and the job ends with exit code 255, phase ``aborted``.

No job outlives the process that started it. On Linux the job is started through a tiny wrapper
(`_DEATH_GUARD`, run by this Python with ``-S``) that asks the kernel (``prctl(PR_SET_PDEATHSIG,
SIGKILL)`` through ctypes) to kill it when its parent dies, checks the parent is still the one that
started it, then ``exec``s pipetask (the setting survives ``exec``), so even a SIGKILL of the parent
leaves no job behind; the wrapper is used instead of a ``preexec_fn``, which is unsafe in a process
with threads. At interpreter exit (`atexit`) the process group of every job still running is killed.
With ``-j`` above 1 pipetask's own workers are in the job's process group, which these kills reach
(the parent-death signal reaches pipetask itself only).

Jobs are independent subprocesses, so several may run at once against one repo (SQLite locking is
handled by the butler); a subprocess also makes abort a kill. An in-process executor
(``SimplePipelineExecutor``) saves the ~2 s start-up per job but cannot be aborted and shares the
event loop's process; the subprocess is used.

May import: the standard library, yaml, lsst.daf.butler, lsst.pipe.base, `calib.options`,
`pipelines.locations`, `pipelines.repo_compat`, `butler.repository`, `.clock`, `.job_heap`, `.ocps_jobs`.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "JobProcess",
    "ParsedConfig",
    "PipetaskExecutor",
    "PreparedJob",
    "guarded_command",
    "parse_config",
]

import asyncio
import atexit
import contextlib
import dataclasses
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..butler.repository import make_butler, raw_run, repo_instrument
from ..calib.options import OptionsError as ConfigError
from ..calib.options import ParsedOptions as ParsedConfig
from ..calib.options import parse_job_options as parse_config
from ..pipelines.locations import expand_pipeline_uri, pipeline_path
from ..pipelines.repo_compat import pipeline_for_repo
from . import job_heap
from .ocps_jobs import PIPETASK_PROGRESS, JobOutcome, JobRequest, ProgressCallback

_DEATH_GUARD = (
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0) != 0 or os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(125)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)
"""Wrapper run as ``python -S -c _DEATH_GUARD <parent pid> <command...>``: PR_SET_PDEATHSIG (1) =
SIGKILL (9), exit if the parent already died, then exec the command (see the module docstring)."""

_LIVE_GROUPS: dict[int, int] = {}
"""Process groups of the jobs running in this process, and the signal they get at exit."""


@atexit.register
def _kill_live_groups() -> None:
    for pgid, sig in list(_LIVE_GROUPS.items()):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def guarded_command(command: Sequence[str]) -> list[str]:
    """``command`` wrapped so that it dies with this process (Linux); unchanged elsewhere."""
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-S", "-c", _DEATH_GUARD, str(os.getpid()), *command]


class JobProcess(Protocol):
    """The running program of a job: an `asyncio.subprocess.Process`, or what stands for one
    (`sim.warm_executor`): the pid, which is also the job's process group, its exit status once
    known (``-signal`` when killed), and a wait for it."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class PreparedJob:
    """A job checked and ready to run: what `PipetaskExecutor.job_command` turns into a command.

    Attributes
    ----------
    request : `ocps_jobs.JobRequest`
        The ``execute`` command.
    pipeline : `str`
        Pipeline file (absolute path, ``#subset`` kept).
    inputs : `list` [`str`]
        Input collections, the raws first.
    processes : `int`
        Processes to use (``-j``, clamped to ``max_processes``).
    overrides : `list` [`str`]
        ``label:field=value`` config overrides (labels checked against the pipeline).
    register_dataset_types : `bool`
        Whether ``--register-dataset-types`` was asked for.
    job_dir : `pathlib.Path`
        The job's own directory (``<log_dir>/<job_id>``).
    log_path : `pathlib.Path`
        The job log (``<job_dir>/outs/ocps.log``).
    """

    request: JobRequest
    pipeline: str
    inputs: list[str]
    processes: int
    overrides: list[str]
    register_dataset_types: bool
    job_dir: Path
    log_path: Path


class _LogProgress:
    """Reads pipetask's per-quantum progress line from the job log (only what was added since)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.offset = 0
        self.last: tuple[int, int, int] | None = None

    def __call__(self) -> tuple[int, int, int] | None:
        try:
            with open(self.log_path, "rb") as stream:
                stream.seek(self.offset)
                chunk = stream.read()
        except OSError:
            return self.last
        # Only whole lines: a line being written is read again next time.
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        # The executor's own ``[ocps]`` notes (e.g. the command line) are not pipetask's progress.
        lines = chunk[:end].decode(errors="replace").splitlines()
        text = "\n".join(line for line in lines if not line.startswith("[ocps]"))
        matches = list(PIPETASK_PROGRESS.finditer(text))
        if matches:
            last = matches[-1]
            self.last = (int(last["done"]), int(last["failed"]), int(last["total"]))
        return self.last


_BOOKKEEPING_SUFFIXES = ("_config", "_metadata", "_log")
_BOOKKEEPING_NAMES = {"packages"}


def _pipeline_labels(pipeline_uri: str) -> list[str]:
    """Task labels of a pipeline file (with its ``#subset`` applied)."""
    from lsst.pipe.base import Pipeline

    return list(Pipeline.from_uri(pipeline_uri).task_labels)


def _output_dataset_types(repo: str, run: str) -> list[str] | None:
    """Names of the dataset types with datasets in ``run`` (bookkeeping excluded); None if no run.

    Only the dataset types of the run's collection summary are queried (the registry adds a type to a
    collection's summary when it inserts a dataset of that type; it may keep a type whose datasets
    were removed, hence the query of each), not every dataset type of the repository."""
    from lsst.daf.butler import MissingCollectionError

    butler = make_butler(repo, instrument="")  # every instrument's outputs, as before
    try:
        butler.registry.getCollectionType(run)
    except MissingCollectionError:
        return None
    names = set()
    for dataset_type in butler.registry.getCollectionSummary(run).dataset_types:
        name = dataset_type.name
        if name in _BOOKKEEPING_NAMES or name.endswith(_BOOKKEEPING_SUFFIXES):
            continue
        refs = butler.registry.queryDatasets(name, collections=run, findFirst=False)
        if next(iter(refs), None) is not None:
            names.add(name)
    return sorted(names)


class PipetaskExecutor:
    """Runs OCPS jobs with ``pipetask run`` (see the module docstring).

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Butler repository the jobs read and write.
    clock : `SimClock`, optional
        Simulated clock for the start/end TAI; the system clock when `None`.
    max_processes : `int`, optional
        Upper limit of ``-j``.
    log_dir : `str` or `os.PathLike`, optional
        Root of the job directories; ``REPO/ocps`` when `None`.
    pipetask : `~collections.abc.Sequence` [`str`], optional
        Command that runs pipetask; default: the ``pipetask`` script of this Python environment.
    """

    def __init__(
        self,
        repo: str | os.PathLike[str],
        clock: Any = None,
        max_processes: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
        pipetask: Sequence[str] | None = None,
    ) -> None:
        if max_processes < 1:
            raise ValueError(f"max_processes must be >= 1, got {max_processes}.")
        self.repo = Path(repo).resolve()
        self.clock = clock
        self.max_processes = int(max_processes)
        self.log_dir = Path(log_dir).resolve() if log_dir is not None else self.repo / "ocps"
        self.pipetask = list(pipetask) if pipetask is not None else _default_pipetask()
        self._processes: dict[str, JobProcess] = {}
        self._aborted: set[str] = set()
        self._last_progress: dict[str, tuple[int, int, int]] = {}
        self.progress: ProgressCallback | None = None
        """Called with ``(job_id, done, failed, total)`` as quanta finish (the OCPS sets it)."""
        self.progress_interval = 2.0
        """Wall seconds between two reads of a running job's log for its progress."""

    def _tai(self) -> float:
        if self.clock is not None:
            return float(self.clock.tai())
        return time.time() + 37.0

    def log_path(self, job_id: str) -> Path:
        """Path of the log of job ``job_id``."""
        return self.log_dir / job_id / "outs" / "ocps.log"

    def estimate_wall_duration(self, request: JobRequest) -> float:
        """Generous wall-time estimate of a job (used by the OCPS for the in-progress ack timeout)."""
        n_exposures = max(1, len(re.findall(r"\d{13}", request.data_query)))
        detectors = re.search(r"detector\s+IN\s*\(([^)]*)\)", request.data_query, re.IGNORECASE)
        n_detectors = len([d for d in detectors.group(1).split(",") if d.strip()]) if detectors else 9
        return 60.0 + 6.0 * n_exposures * n_detectors

    async def abort(self, job_id: str) -> None:
        """Kill the process group of a running job; its `run` returns exit code 255."""
        self._aborted.add(job_id)
        process = self._processes.get(job_id)
        if process is None or process.returncode is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=5.0)
        except TimeoutError:
            _signal_group(process, signal.SIGKILL)

    async def run(self, request: JobRequest) -> JobOutcome:
        """Run one job to completion (never raises for a job failure)."""
        start_tai = self._tai()
        log_path = self.log_path(request.job_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_uri = log_path.as_uri()
        with open(log_path, "a", buffering=1) as log:

            def note(line: str) -> None:
                log.write(f"[ocps] {line}\n")

            def finish(
                exit_code: int, phase: str, message: str, outputs: list[str] | None = None
            ) -> JobOutcome:
                note(f"exit_code={exit_code} phase={phase} {message}".rstrip())
                return JobOutcome(
                    exit_code=exit_code,
                    phase=phase,
                    message=message,
                    log_uri=log_uri,
                    start_tai=start_tai,
                    end_tai=self._tai(),
                    outputs=outputs or [],
                    command=self.command_name,
                )

            note(f"job {request.job_id} run {request.run_id}")
            note(f"pipeline: {request.pipeline}")
            note(f"config: {request.config}")
            note(f"data_query: {request.data_query}")
            note(f"output run: {request.output_collection}")
            try:
                parsed = parse_config(request.config)
                pipeline = expand_pipeline_uri(request.pipeline)
            except ValueError as e:
                return finish(1, "error", f"Job refused: {e}")
            if not pipeline_path(pipeline).is_file():
                return finish(
                    1, "error", f"Job refused: pipeline file {pipeline_path(pipeline)} does not exist."
                )
            if request.job_id in self._aborted:
                return finish(255, "aborted", "Aborted before start.")
            try:
                labels = await asyncio.to_thread(_pipeline_labels, pipeline)
                overrides = self._resolve_overrides(parsed, labels, note)
            except ConfigError as e:
                return finish(1, "error", f"Job refused: {e}")
            except Exception as e:
                return finish(1, "error", f"Cannot load pipeline {pipeline}: {e}")
            try:
                pipeline, compat_notes = await asyncio.to_thread(
                    pipeline_for_repo, str(self.repo), pipeline, log_path.parent.parent
                )
            except Exception as e:
                # pipetask will report an unusable repository itself, in its own words.
                note(f"WARNING: cannot read the repository's dataset types ({e}); pipeline run as is.")
                compat_notes = []
            for line in compat_notes:
                note(line)
            processes = parsed.processes or 1
            if processes > self.max_processes:
                note(f"-j {processes} requested; running with -j {self.max_processes} (max_processes).")
                processes = self.max_processes
            raws = raw_run(repo_instrument(self.repo))
            job = PreparedJob(
                request=request,
                pipeline=pipeline,
                inputs=[raws] + [name for name in parsed.inputs if name != raws],
                processes=processes,
                overrides=overrides,
                register_dataset_types=parsed.register_dataset_types,
                job_dir=log_path.parent.parent,
                log_path=log_path,
            )
            try:
                command = self.job_command(job)
            except (OSError, ValueError) as e:
                return finish(1, "error", f"Job refused: {e}")
            note("command: " + shlex.join(command))
            log.flush()
            if request.job_id in self._aborted:
                return finish(255, "aborted", "Aborted before start.")
            if shutil.which(command[0]) is None:
                # Checked here: the death-guard wrapper would start and only then fail to find it.
                return finish(1, "error", f"Cannot start {self.tool} ({command[0]}): command not found")
            try:
                process = await self.start_process(job, command, log, note)
            except OSError as e:
                return finish(1, "error", f"Cannot start {self.tool} ({command[0]}): {e}")
            self._processes[request.job_id] = process
            _LIVE_GROUPS[process.pid] = self.exit_signal
            if request.job_id in self._aborted:
                # Aborted while the process was being started: it had no pid to kill then.
                _signal_group(process, signal.SIGKILL)
            progress = self.progress_reader(job)
            watcher = asyncio.create_task(self._watch_progress(request.job_id, progress))
            try:
                returncode = await process.wait()
            except asyncio.CancelledError:
                _signal_group(process, self.exit_signal)
                raise
            finally:
                self._processes.pop(request.job_id, None)
                _LIVE_GROUPS.pop(process.pid, None)
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            self._report_progress(request.job_id, progress)  # the lines after the last read
            if request.job_id in self._aborted:
                return finish(255, "aborted", f"Aborted: {self.tool} was killed.")
            if returncode != 0:
                return finish(1, "error", self.exit_message(process, returncode, log_path))
            problem = self.quanta_problem(job, progress)
            if problem:
                return finish(1, "error", problem)
            try:
                outputs = await asyncio.to_thread(
                    _output_dataset_types, str(self.repo), request.output_collection
                )
            except Exception as e:
                return finish(1, "error", f"{self.tool} succeeded but its outputs cannot be listed: {e}")
            if not outputs:
                return finish(
                    1,
                    "error",
                    f"{self.tool} ran but produced no output datasets "
                    f"(nothing matched {request.data_query!r}, or every quantum found no work).",
                )
            return finish(0, "completed", "", outputs)

    # Hooks a subclass running the job another way (`sim.bps_executor.BpsExecutor`) overrides.

    tool = "pipetask"
    """Name of the program that runs a job (in the job log and the outcome's messages)."""

    command_name = "pipetask run"
    """The UWS ``parameters.command`` of the job (`ocps_jobs.JobOutcome.command`)."""

    exit_signal = signal.SIGKILL
    """Signal sent to the job's process group when this process exits or the job is cancelled."""

    def job_command(self, job: PreparedJob) -> list[str]:
        """The command that runs ``job`` (``pipetask run ...``)."""
        command = [
            *self.pipetask,
            "run",
            "-b",
            str(self.repo),
            "-p",
            job.pipeline,
            "-i",
            ",".join(job.inputs),
            "--output-run",
            job.request.output_collection,
            "-d",
            job.request.data_query,
            "-j",
            str(job.processes),
        ]
        for override in job.overrides:
            command += ["-c", override]
        if job.register_dataset_types:
            command.append("--register-dataset-types")
        return command

    async def start_process(
        self, job: PreparedJob, command: Sequence[str], log: Any, note: Callable[[str], None]
    ) -> JobProcess:
        """Start ``command`` (``job``'s, from `job_command`) in its own session, its output going to
        the open job log ``log`` (``note`` writes an ``[ocps]`` line there); the pid is also its process
        group's. Raise `OSError` when it cannot start."""
        return await asyncio.create_subprocess_exec(
            *self.guard(command),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=self.job_environment(),
        )

    def exit_message(self, process: JobProcess, returncode: int, log_path: Path) -> str:
        """The outcome's message for a job whose process exited with ``returncode`` (not 0)."""
        reason = _last_error_line(log_path)
        what = f"killed by signal {-returncode}" if returncode < 0 else f"exited with {returncode}"
        return f"{self.tool} {what}: {reason}".rstrip(": ")

    def guard(self, command: Sequence[str]) -> list[str]:
        """``command`` wrapped so that it dies with this process (`guarded_command`)."""
        return guarded_command(command)

    def job_environment(self) -> dict[str, str] | None:
        """Environment of the job's process: this process's with the job heap policy
        (`job_heap.job_environment`)."""
        return job_heap.job_environment(os.environ)

    def progress_reader(self, job: PreparedJob) -> Callable[[], tuple[int, int, int] | None]:
        """A callable returning the job's ``(done, failed, total)`` quanta so far, or `None`."""
        return _LogProgress(job.log_path)

    def quanta_problem(self, job: PreparedJob, progress: Callable[[], tuple[int, int, int] | None]) -> str:
        """Why a job whose program exited 0 still failed, or an empty string (pipetask: its exit
        code says it all)."""
        return ""

    async def _watch_progress(self, job_id: str, progress: Callable[[], tuple[int, int, int] | None]) -> None:
        """Report the job's progress until cancelled."""
        while True:
            await asyncio.sleep(self.progress_interval)
            self._report_progress(job_id, progress)

    def _report_progress(self, job_id: str, progress: Callable[[], tuple[int, int, int] | None]) -> None:
        """Report the job's progress if it changed since the last report."""
        if self.progress is None:
            return
        counts = progress()
        if counts is not None and counts != self._last_progress.get(job_id):
            self._last_progress[job_id] = counts
            done, failed, total = counts
            self.progress(job_id, done, failed, total)

    def _resolve_overrides(self, parsed: ParsedConfig, labels: list[str], note: Any) -> list[str]:
        """Return the ``label:field=value`` overrides to pass to pipetask (see module docstring)."""
        result: list[str] = []
        for label, field, value in parsed.overrides:
            if label in labels:
                result.append(f"{label}:{field}={value}")
            else:
                raise ConfigError(
                    f"-c {label}:{field}={value}: the pipeline has no task labelled {label!r} "
                    f"(tasks: {', '.join(labels)})."
                )
        return result


def _default_pipetask() -> list[str]:
    script = Path(sys.executable).parent / "pipetask"
    if script.exists():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from lsst.ctrl.mpexec.cli.pipetask import main; sys.exit(main())",
    ]


def _signal_group(process: JobProcess, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _last_error_line(log_path: Path, max_chars: int = 300) -> str:
    """The most informative line of a failed pipetask log (last exception / error line)."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    lines = [line for line in lines if not line.startswith("[ocps]")]
    for line in reversed(lines):
        if re.search(r"(Error|Exception|error:|FAILED|failed)", line):
            return line[:max_chars]
    return lines[-1][:max_chars] if lines else ""
