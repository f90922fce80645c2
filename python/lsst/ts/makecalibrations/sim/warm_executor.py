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

"""The OCPS job executor that runs ``pipetask run`` in a warm worker instead of a new interpreter.

`WarmPipetaskExecutor` is a `pipetask_executor.PipetaskExecutor` (same checks of the request, same
command line, job log, progress from the log, exit codes, outputs check and abort) whose jobs are not
started as ``pipetask`` subprocesses but forked, one per job, by a long-lived `pipetask_server`
process that imported the stack once. Each OCPS process (each executor) has its own worker, spawned
as a new interpreter (never forked from the asyncio process) on the first job and kept until
`WarmPipetaskExecutor.close`; it dies with the OCPS process (the death-guard wrapper of
`pipetask_executor.guarded_command`), and a job's child dies with the worker (``PR_SET_PDEATHSIG``).
The worker's command line names the repository (so ``ps``, and a search of the processes using a
repository, find it and the jobs' children, which share it).

The child runs exactly the job's ``pipetask`` command line (ctrl_mpexec's entry point called in the
child with the same arguments, in its own session and process group, output appended to the job log,
the OCPS process's environment and working directory of the moment), so the job log, the progress
lines, the exit status and the datasets are pipetask's; the log also says
``[ocps] run by the warm pipetask worker (pid N)``. An abort signals the child's process group as it
signals a subprocess's (``SIGTERM``, then ``SIGKILL`` after 5 s).

When the worker cannot start (or dies while a job is being started), the job runs as a plain
``pipetask`` subprocess and its log says why. When the worker dies while a job runs, that job fails
(exit code 1, its message names the worker's exit status) instead of waiting; the next job starts a
new worker. A custom ``pipetask`` command (the executor's ``pipetask`` argument) always runs as a
subprocess. Linux only; elsewhere every job runs as a subprocess.

May import: the standard library, `.job_heap`, `.pipetask_executor`, `.pipetask_server` (its module
name only).
"""

from __future__ import annotations

__all__ = ["WarmJob", "WarmPipetaskExecutor", "WarmWorker", "WorkerError"]

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import job_heap, pipetask_server
from .pipetask_executor import JobProcess, PipetaskExecutor, PreparedJob, _default_pipetask, guarded_command

START_TIMEOUT = 600.0
"""Wall seconds the worker may take to import the stack (minutes on a loaded machine)."""

CLOSE_TIMEOUT = 10.0
"""Wall seconds a closed worker gets to exit before it is killed."""


class WorkerError(RuntimeError):
    """The warm worker could not start, or died."""


class WarmJob:
    """A job's child in the warm worker, as `pipetask_executor.JobProcess` (pid = process group)."""

    def __init__(self, pid: int, exited: asyncio.Future[tuple[int, float]]) -> None:
        self._pid = pid
        self._exited = exited
        self._returncode: int | None = None
        self.lost = ""
        """Why the job's exit status is unknown (the worker died), or empty."""
        self.cpu_s: float | None = None
        """User + system CPU seconds of the child (and its children), once it exited."""
        self.on_exit: Callable[[float], None] | None = None
        """Called with `cpu_s` when the child's exit is known (not when the worker died)."""

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._returncode

    async def wait(self) -> int:
        """Wait for the child to end; return its exit status (``-9`` if the worker died)."""
        if self._returncode is not None:
            return self._returncode
        try:
            code, cpu = await asyncio.shield(self._exited)
            if self.on_exit is not None:
                self.on_exit(cpu)
        except WorkerError as e:
            self.lost = str(e)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, signal.SIGKILL)  # the kernel already did (PR_SET_PDEATHSIG)
            self._returncode = -signal.SIGKILL
            return self._returncode
        self._returncode, self.cpu_s = code, cpu
        return code


class WarmWorker:
    """One `pipetask_server` process and the conversation with it.

    Parameters
    ----------
    log_path : `pathlib.Path`
        Where the worker's own standard error goes (its import errors, for example).
    label : `str`, optional
        Shown on the worker's command line (``ps``; the executor gives its repository), nothing else.
    """

    def __init__(self, log_path: Path, label: str = "") -> None:
        self.log_path = log_path
        self.label = label
        self.process: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        """The worker's ``ready`` message (its pid, import CPU and wall seconds, threads)."""
        self.starts = 0
        """Workers started so far."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: asyncio.Task | None = None
        self._started: dict[str, asyncio.Future[int]] = {}
        self._exited: dict[str, asyncio.Future[tuple[int, float]]] = {}
        self._next_id = 0
        self._lock: asyncio.Lock | None = None
        self._dead = ""

    @property
    def pid(self) -> int | None:
        """Pid of the worker process (of its death-guard wrapper, which ``exec``s it: the same)."""
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        """Is the worker running and answering in this event loop?"""
        return (
            self.process is not None
            and self.process.returncode is None
            and not self._dead
            and self._loop is asyncio.get_running_loop()
        )

    async def ensure_started(self) -> None:
        """Start the worker unless it is alive; raise `WorkerError` when it cannot start."""
        if self._lock is None or self._loop is not asyncio.get_running_loop():
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.alive:
                return
            self._forget()
            await self._start()

    async def _start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        label = [self.label] if self.label else []
        command = guarded_command([sys.executable, "-m", pipetask_server.__name__, *label])
        with open(self.log_path, "ab") as stderr:
            try:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=stderr,
                    start_new_session=True,
                    # Its forked job children inherit the allocator's settings (job_heap).
                    env=job_heap.job_environment(os.environ),
                )
            except OSError as e:
                raise WorkerError(f"cannot start {pipetask_server.__name__}: {e}") from e
        self.process, self._loop, self._dead = process, asyncio.get_running_loop(), ""
        self.starts += 1
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=START_TIMEOUT)
            message = json.loads(line) if line.strip() else {}
        except (TimeoutError, ValueError) as e:
            await self.close()
            raise WorkerError(f"the worker did not get ready ({e!r}); its log: {self.log_path}") from e
        if not message.get("ready"):
            code = await process.wait()
            self._dead = f"exited with {code} before it was ready; its log: {self.log_path}"
            raise WorkerError(f"the worker {self._dead}")
        self.ready = message
        self._reader = asyncio.create_task(self._read_answers(process))

    async def _read_answers(self, process: asyncio.subprocess.Process) -> None:
        """Hand the worker's answers to the jobs waiting for them; fail them all when it dies."""
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                message = json.loads(line)
                if "started" in message:
                    self._resolve(self._started.pop(message["started"], None), int(message["pid"]))
                elif "failed" in message:
                    future = self._started.pop(message["failed"], None)
                    self._exited.pop(message["failed"], None)
                    if future is not None and not future.done():
                        future.set_exception(WorkerError(message.get("error", "fork failed")))
                elif "exited" in message:
                    answer = (int(message["code"]), float(message["cpu_s"]))
                    self._resolve(self._exited.pop(message["exited"], None), answer)
            code = await process.wait()
            reason = f"the warm pipetask worker (pid {process.pid}) exited with {code}"
        except Exception as e:  # a garbled answer: treat the worker as lost
            reason = f"the warm pipetask worker (pid {process.pid}) answered badly: {e!r}"
        self._dead = reason
        pending: list[asyncio.Future[Any]] = [*self._started.values(), *self._exited.values()]
        for future in pending:
            if not future.done():
                future.set_exception(WorkerError(reason))
        self._started.clear()
        self._exited.clear()

    @staticmethod
    def _resolve(future: asyncio.Future[Any] | None, value: Any) -> None:
        if future is not None and not future.done():
            future.set_result(value)

    async def run(self, argv: Sequence[str], log_path: Path) -> WarmJob:
        """Fork a child running ``pipetask <argv>`` with its output appended to ``log_path``."""
        await self.ensure_started()
        process = self.process
        assert process is not None and process.stdin is not None
        self._next_id += 1
        request_id = str(self._next_id)
        loop = asyncio.get_running_loop()
        started: asyncio.Future[int] = loop.create_future()
        exited: asyncio.Future[tuple[int, float]] = loop.create_future()
        exited.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        self._started[request_id] = started
        self._exited[request_id] = exited
        request = {
            "run": request_id,
            "argv": list(argv),
            "log": str(log_path),
            "cwd": os.getcwd(),
            "env": dict(os.environ),
        }
        try:
            process.stdin.write((json.dumps(request) + "\n").encode())
            await process.stdin.drain()
        except (ConnectionError, RuntimeError) as e:
            self._started.pop(request_id, None)
            self._exited.pop(request_id, None)
            raise WorkerError(f"cannot send the job to the warm pipetask worker: {e!r}") from e
        pid = await started
        return WarmJob(pid, exited)

    def _forget(self) -> None:
        """Drop a worker of another event loop or a dead one (killed and reaped if still there)."""
        process = self.process
        self.process, self._reader, self._dead = None, None, ""
        self._started.clear()
        self._exited.clear()
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(process.pid, 0)

    async def close(self) -> None:
        """End the worker: close its input (it kills the jobs still running) and wait for it."""
        process = self.process
        if process is None:
            return
        if self._loop is not asyncio.get_running_loop():
            self._forget()
            return
        if process.returncode is None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), timeout=CLOSE_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self.process = None


class WarmPipetaskExecutor(PipetaskExecutor):
    """Runs OCPS jobs with ``pipetask run`` in a warm worker (see the module docstring).

    Takes the parameters of `pipetask_executor.PipetaskExecutor`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker = WarmWorker(self.log_dir / "pipetask-worker.log", label=str(self.repo))
        self.job_cpu: dict[str, float] = {}
        """CPU seconds (user + system) of each job's child, by job id, as the worker measured them."""
        self._warm = sys.platform.startswith("linux") and self.pipetask == _default_pipetask()

    async def start_process(
        self, job: PreparedJob, command: Sequence[str], log: Any, note: Callable[[str], None]
    ) -> JobProcess:
        """Fork the job in the warm worker (a subprocess if that cannot be done: see the module
        docstring)."""
        if self._warm:
            argv = list(command[len(self.pipetask) :])
            try:
                await self.worker.ensure_started()
                note(f"run by the warm pipetask worker (pid {self.worker.pid})")
                log.flush()
                process = await self.worker.run(argv, job.log_path)
            except WorkerError as e:
                note(f"the warm pipetask worker is not available ({e}); pipetask runs as a subprocess")
                log.flush()
            else:
                process.on_exit = lambda cpu: self.job_cpu.__setitem__(job.request.job_id, cpu)
                return process
        return await super().start_process(job, command, log, note)

    def exit_message(self, process: JobProcess, returncode: int, log_path: Path) -> str:
        """As `pipetask_executor.PipetaskExecutor.exit_message`, naming a lost worker."""
        lost = getattr(process, "lost", "")
        if lost:
            return f"{self.tool} was lost: {lost}; its log: {log_path}"
        return super().exit_message(process, returncode, log_path)

    async def close(self) -> None:
        """End the warm worker (the next job would start a new one)."""
        await self.worker.close()
