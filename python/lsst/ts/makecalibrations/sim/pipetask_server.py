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

"""The warm pipetask worker: one process that imports the stack once and forks one child per job.

Run as ``python -m lsst.ts.makecalibrations.sim.pipetask_server [LABEL]`` (LABEL, the repository it
serves, is only shown by ``ps``; by `sim.warm_executor`, which
spawns it with a fresh interpreter: it is never forked from the asyncio process of the OCPS). At start
it imports what every ``pipetask run`` of the simulated OCPS imports before its first quantum
(`PRELOADED`: lsst.daf.butler, lsst.pipe.base, lsst.ctrl.mpexec and its ``run`` command, lsst.images,
this package's pipeline task modules) and asks lsst.utils once for the package versions
(`lsst.utils.packages.Packages.fromSystem`, which imports the modules it reports on and fills the
metadata caches of `importlib.metadata`; every job still records its own ``packages`` dataset, computed
by pipetask in the job itself from the modules the job has imported). The one part of that record
that is the same for every job, the standard library's map of import names to the installed
distributions (`importlib.metadata.packages_distributions`, which reads the metadata and ``RECORD``
of every installed distribution at each call: 0.5 s of CPU a job, 2.6 s profiled), is computed
once here and handed to lsst.utils as a cached copy (`cache_package_distributions`; the children
share the worker's interpreter and ``sys.path``, so the map is the one they would compute). The
worker does not open the repository's butler before forking: measured, that made each job's own
butler start dearer, not cheaper (a GAIN verify job 1.4-1.7 s of CPU without, 1.7-2.0 s with). Then
it reads requests, one JSON object a line, from its standard input and answers on its standard
output, one JSON object a line:

* at start: ``{"ready": true, "pid": P, "cpu_s": C, "wall_s": W, "threads": T, "frozen": F, ...}`` (CPU
  and wall seconds the imports took; the threads alive at that point, 1 when forking is safe; the
  objects it froze for the garbage collector, `_preload`);
* ``{"run": ID, "argv": [...], "log": PATH, "cwd": DIR, "env": {...}}``: fork a child that becomes the
  leader of a new session (its own process group, as ``start_new_session``), asks the kernel to kill
  it when the worker dies (``PR_SET_PDEATHSIG``), takes ``cwd`` and ``env``, appends its standard
  output and error to ``PATH`` (standard input: ``/dev/null``) and runs ctrl_mpexec's own command-line
  entry point (``lsst.ctrl.mpexec.cli.pipetask.main``) with ``argv`` as ``sys.argv[1:]``; its exit
  status is pipetask's. Answer ``{"started": ID, "pid": N}`` (or ``{"failed": ID, "error": "..."}``);
* when that child ends: ``{"exited": ID, "pid": N, "code": C, "cpu_s": S}`` with ``C`` as
  `os.waitstatus_to_exitcode` gives it (``-signal`` when killed) and ``S`` the child's user + system
  CPU seconds (its waited-for children included, from ``wait4``).

The worker is single-threaded (a `selectors` loop over its standard input and one pidfd per child),
so forking it is safe. At end of input (the OCPS closed the pipe or died) it kills the process group of
every child still running, reaps them and exits; a child whose worker dies is killed by the kernel.

Linux only (``os.pidfd_open``, ``prctl``). May import: the standard library at module level; the stack
and this package's task modules when the server starts.
"""

from __future__ import annotations

__all__ = ["JOB_IMPORTS", "PRELOADED", "cache_package_distributions", "main"]

import atexit
import ctypes
import gc
import importlib
import importlib.metadata
import json
import logging
import os
import pkgutil
import resource
import selectors
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

PRELOADED = (
    "lsst.daf.butler",
    "lsst.daf.butler.cli.butler",
    "lsst.pipe.base",
    "lsst.pipe.base.mp_graph_executor",
    "lsst.pipe.base.single_quantum_executor",
    "lsst.ctrl.mpexec",
    "lsst.ctrl.mpexec.cli.pipetask",
    "lsst.ctrl.mpexec.cli.cmd",
    "lsst.ctrl.mpexec.cli.script.run",
    "lsst.ctrl.mpexec.cli.script.qgraph",
    "lsst.images",
    "lsst.images.fits",
    "lsst.ts.makecalibrations.butler.formatters",
    "lsst.ts.makecalibrations.butler.instrument",
)
"""Modules the worker imports once (plus every module of `lsst.ts.makecalibrations.pipelines.tasks`)."""

JOB_IMPORTS = (
    "lsst.daf.butler.direct_butler",
    "lsst.daf.butler.datastores.fileDatastore",
    "lsst.daf.butler.datastores.file_datastore.get",
    "lsst.daf.butler.datastores.file_datastore.transfer",
    "lsst.daf.butler.registry.attributes",
    "lsst.daf.butler.registry.collections.synthIntKey",
    "lsst.daf.butler.registry.datasets.byDimensions",
    "lsst.daf.butler.registry.dimensions.static",
    "lsst.daf.butler.registry.queries._query_datasets",
    "lsst.daf.butler.registry.queries._query_data_coordinates",
    "lsst.daf.butler.registry.queries._query_dimension_records",
    "lsst.daf.butler.formatters.json",
    "lsst.daf.butler.formatters.logs",
    "lsst.daf.butler.formatters.packages",
    "lsst.daf.butler.formatters.yaml",
    "lsst.pipe.base.formatters.pexConfig",
    "lsst.pipe.base.tests.mocks",
    "lsst.resources.http",
)
"""Modules every job imports when its butlers start and its quanta run (the direct butler, its file
datastore and registry managers, the formatters of the metadata/log/config/packages datasets, pipe_base's
mock check, lsst.resources' HTTP support), imported by the worker too so that no child pays for them:
found by listing what a forked BIAS-verify and a GAIN job imported after `PRELOADED` (the same 159
modules, 0.15-0.2 s of CPU in each child). Only a speed-up: one that a later stack no longer has is
skipped (`_preload`)."""

TASK_PACKAGE = "lsst.ts.makecalibrations.pipelines.tasks"

_PR_SET_PDEATHSIG = 1


def cache_package_distributions() -> Callable[[], dict[str, list[str]]]:
    """Compute `importlib.metadata.packages_distributions` once and make lsst.utils use that map.

    Returns
    -------
    cached : callable
        What `lsst.utils.packages` now calls for the map: a new copy of the map computed here at each
        call (the caller may change it), so the forked jobs' ``packages`` records are what the
        uncached call would have given in the same interpreter. Call it in the worker only: a process
        that installs or removes distributions while it runs would keep the old map.
    """
    from lsst.utils import packages

    computed = importlib.metadata.packages_distributions()

    def cached() -> dict[str, list[str]]:
        return {name: list(distributions) for name, distributions in computed.items()}

    packages.packages_distributions = cached
    return cached


def _preload() -> None:
    """Import `PRELOADED`, `JOB_IMPORTS`, this package's task modules, ask lsst.utils for the package
    versions, then move everything alive into the garbage collector's permanent generation
    (`gc.freeze`).

    Frozen objects are never traversed again by a collection, in the worker or in the children forked
    after: without it, each full collection of a job walks the whole imported stack (about 240,000
    objects), 0.3-0.4 s of CPU a BIAS-verify job in its two full collections, 0.08 s with it
    (measured on a forked job, two times each). Nothing a job computes depends on it.
    """
    for name in PRELOADED:
        importlib.import_module(name)
    for name in JOB_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    package = importlib.import_module(TASK_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{TASK_PACKAGE}.{info.name}")
    from lsst.utils.packages import Packages

    cache_package_distributions()
    Packages.fromSystem()
    gc.collect()
    gc.freeze()


def _send(reply_fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(reply_fd, data) :]


def _exit_code(value: object) -> int:
    """The process exit status `SystemExit` with ``value`` gives (as the interpreter does)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _child(request: dict[str, Any], server_pid: int, close_fds: list[int]) -> None:
    """Body of a forked child: become the job (see the module docstring); never returns."""
    code = 1
    try:
        os.setsid()
        if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(125)
        if os.getppid() != server_pid:
            os._exit(125)
        # The signal dispositions a fresh interpreter starts with.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        script = os.path.join(os.path.dirname(sys.executable), "pipetask")
        sys.argv = [script, *request["argv"]]
        from lsst.ctrl.mpexec.cli.pipetask import main as pipetask_main

        try:
            pipetask_main()
            code = 0
        except SystemExit as stop:
            code = _exit_code(stop.code)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


class _Server:
    """The worker's loop (see the module docstring)."""

    def __init__(self, reply_fd: int) -> None:
        self.reply_fd = reply_fd
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, tuple[str, int]] = {}
        """pidfd -> (request id, pid)."""
        self.buffer = b""

    def serve(self) -> int:
        self.selector.register(0, selectors.EVENT_READ, "input")
        open_input = True
        while open_input or self.children:
            for key, _ in self.selector.select():
                if key.data == "input":
                    open_input = self._read_input()
                    if not open_input:
                        self.selector.unregister(0)
                        self._kill_children()
                else:
                    self._reap(key.fd)
        return 0

    def _read_input(self) -> bool:
        chunk = os.read(0, 65536)
        if not chunk:
            return False
        self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                self._start(json.loads(line))
        return True

    def _start(self, request: dict[str, Any]) -> None:
        job = str(request.get("run"))
        close_fds = [self.reply_fd, self.selector.fileno(), *self.children]
        server_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as e:
            _send(self.reply_fd, {"failed": job, "error": f"fork failed: {e}"})
            return
        if pid == 0:
            _child(request, server_pid, close_fds)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (job, pid)
        self.selector.register(pidfd, selectors.EVENT_READ, "child")
        _send(self.reply_fd, {"started": job, "pid": pid})

    def _reap(self, pidfd: int) -> None:
        job, pid = self.children.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        cpu = usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        _send(self.reply_fd, {"exited": job, "pid": pid, "code": code, "cpu_s": round(cpu, 3)})

    def _kill_children(self) -> None:
        for _, pid in self.children.values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def main() -> int:
    """Start the worker (see the module docstring); return its exit status."""
    if not hasattr(os, "pidfd_open"):
        print("pipetask_server: needs Linux (os.pidfd_open)", file=sys.stderr)
        return 2
    # Standard output is the answers' channel: keep it apart, send stray prints to standard error.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        _preload()
    except Exception:
        traceback.print_exc()
        return 1
    _send(
        reply_fd,
        {
            "ready": True,
            "pid": os.getpid(),
            "cpu_s": round(time.process_time() - cpu0, 3),
            "wall_s": round(time.perf_counter() - wall0, 3),
            "threads": threading.active_count(),
            "frozen": gc.get_freeze_count(),
            "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
    )
    return _Server(reply_fd).serve()


if __name__ == "__main__":
    sys.exit(main())
