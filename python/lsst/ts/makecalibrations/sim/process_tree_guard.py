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

"""Run a command so that every process it starts dies with it, even those that leave its group.

Used as a script: ``python -I -S process_tree_guard.py <parent pid> <command...>`` (`tree_guard_command`
builds that line). The death-guard wrapper of `pipetask_executor` only reaches the job's process
group; a workflow system starts processes outside it: Parsl's ``LocalProvider`` launches each worker
pool through ``bash -c '... &'`` in a new process group (``setpgrp``), and the backgrounded pool is
orphaned as soon as that bash returns. This guard

1. asks the kernel for ``PR_SET_CHILD_SUBREAPER``, so every orphaned descendant is re-parented to the
   guard instead of to init and stays findable, and for ``PR_SET_PDEATHSIG = SIGTERM``, so the guard
   hears of its parent's death (also a ``SIGKILL`` of it); it exits at once if that parent is already
   gone;
2. starts the command as its child and reaps every child (the command's orphans included) until the
   command exits;
3. then, or as soon as it gets ``SIGTERM``/``SIGINT`` (an abort, or the parent's death), kills every
   descendant still alive with ``SIGKILL``, walking ``/proc`` again until none is left (a process being
   killed may have just started another), and exits with the command's exit status (128 + the signal
   number when it was stopped by one).

Linux only (``prctl`` and ``/proc``); `tree_guard_command` leaves the command unwrapped elsewhere.

May import: the standard library only (the script runs with ``-I -S``: no site-packages, no
current-directory imports).
"""

from __future__ import annotations

__all__ = ["GUARD_SCRIPT", "descendants", "is_alive", "tree_guard_command"]

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

GUARD_SCRIPT = Path(__file__).resolve()
"""This file, run as the guard script."""

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_KILL_ROUNDS = 200
"""At most this many walks of /proc (50 ms apart) to see every descendant gone."""


def tree_guard_command(command: Sequence[str]) -> list[str]:
    """``command`` run under this guard (Linux); unchanged elsewhere."""
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-I", "-S", str(GUARD_SCRIPT), str(os.getpid()), *command]


def _parent_and_state(pid: int) -> tuple[int, str] | None:
    """(ppid, state letter) of a process from ``/proc/<pid>/stat``; `None` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            text = stream.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[1]), fields[0]


def is_alive(pid: int) -> bool:
    """Is process ``pid`` running (neither gone nor a zombie)?"""
    found = _parent_and_state(pid)
    return found is not None and found[1] != "Z"


def descendants(root: int) -> list[int]:
    """Live (not zombie) descendants of process ``root``, from ``/proc``."""
    children: dict[int, list[int]] = {}
    states: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        found = _parent_and_state(int(entry))
        if found is not None:
            children.setdefault(found[0], []).append(int(entry))
            states[int(entry)] = found[1]
    result: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if states.get(pid) != "Z":
            result.append(pid)
        todo.extend(children.get(pid, []))
    return result


def _reap() -> None:
    """Reap every child that has exited (orphans re-parented to the guard included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_descendants() -> None:
    for _ in range(_KILL_ROUNDS):
        pids = descendants(os.getpid())
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
        _reap()


class _StopRequestedError(Exception):
    """Raised by the signal handler: stop now."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: object) -> None:
    raise _StopRequestedError(signum)


def main(argv: Sequence[str]) -> int:
    """Run ``argv[2:]`` under the guard for parent ``argv[1]``; return the exit status."""
    if len(argv) < 3:
        print("usage: process_tree_guard.py PARENT_PID COMMAND...", file=sys.stderr)
        return 125
    libc = ctypes.CDLL(None, use_errno=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("process_tree_guard: PR_SET_CHILD_SUBREAPER refused", file=sys.stderr)
        return 125
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0 or os.getppid() != int(argv[1]):
        return 125
    status = 125
    try:
        try:
            child = subprocess.Popen(list(argv[2:]))
        except OSError as e:
            print(f"process_tree_guard: cannot start {argv[2]}: {e}", file=sys.stderr)
            return 127
        while True:
            pid, wait_status = os.waitpid(-1, 0)
            if pid == child.pid:
                child.returncode = 0  # reaped here; keep Popen from waiting for it again
                code = os.waitstatus_to_exitcode(wait_status)
                status = code if code >= 0 else 128 - code
                break
    except _StopRequestedError as stop:
        status = 128 + stop.signum
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _kill_descendants()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
