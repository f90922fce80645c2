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

"""A pytest plugin that names the asyncio tasks a hung test is waiting for.

A test whose script ended can still hang in pytest-asyncio's loop teardown, which cancels every
task left on the loop and waits for all of them: one task that does not end when cancelled holds
the whole suite until CI's time limit, and the Python stacks (faulthandler, py-spy) show only the
idle loop. This plugin starts a timer with every test; when a test has not finished after
``MAKECALIBRATIONS_TEST_WATCHDOG`` seconds (default 600; 0 turns the watchdog off) it asks every
running event loop, from the loop's own thread, to write the stack of each of its tasks to the
test process's stderr and to ``watchdog-<pid>.txt`` in the pytest base temporary directory, then
cancels those tasks once more. If the second cancel lets the test end, the test is reported as an
error at teardown with the dump as its reason: a hang is never silent, and it costs one error
instead of CI's whole time limit.

May import: the standard library and pytest.
"""

from __future__ import annotations

__all__ = ["WatchdogPlugin"]

import asyncio
import gc
import io
import os
import pathlib
import sys
import threading
import time
from collections.abc import Generator

import pluggy
import pytest

DEFAULT_LIMIT = 600.0
"""Seconds a test may take before its tasks are dumped; far above the slowest test under load."""


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    """The event loops of this process that are running now (found through the garbage collector:
    pytest-asyncio keeps its loops to itself)."""
    return [
        obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()
    ]


def _describe_tasks(loop: asyncio.AbstractEventLoop) -> str:
    """The stack of every unfinished task of ``loop``; must run in the loop's thread."""
    out = io.StringIO()
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    out.write(f"{len(tasks)} unfinished task(s) on {loop!r}\n")
    for task in tasks:
        out.write(f"--- {task.get_name()}: {task.get_coro()!r} (cancelling={task.cancelling()})\n")
        task.print_stack(limit=30, file=out)
    return out.getvalue()


class WatchdogPlugin:
    """Dump and re-cancel the asyncio tasks of a test that runs longer than ``limit`` seconds.

    Parameters
    ----------
    limit : `float`
        Seconds after a test's start at which the watchdog fires.
    dump_dir : `pathlib.Path`
        Folder for the dump files.
    """

    def __init__(self, limit: float, dump_dir: pathlib.Path) -> None:
        self.limit = limit
        self.dump_dir = dump_dir
        self.dumps: dict[str, list[str]] = {}

    def _fire(self, nodeid: str) -> None:
        dumps = self.dumps.setdefault(nodeid, [])
        header = f"\nWATCHDOG: {nodeid} still running after {self.limit:.0f} s ({time.ctime()})\n"
        self._write(header)
        dumps.append(header)
        for loop in _running_loops():

            def dump(loop: asyncio.AbstractEventLoop = loop) -> None:
                text = _describe_tasks(loop)
                dumps.append(text)
                self._write(text)
                for task in asyncio.all_tasks(loop):
                    task.cancel("cancelled again by the test watchdog")

            loop.call_soon_threadsafe(dump)

    def _write(self, text: str) -> None:
        if sys.__stderr__ is not None:
            sys.__stderr__.write(text)
            sys.__stderr__.flush()
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        with open(self.dump_dir / f"watchdog-{os.getpid()}.txt", "a") as f:
            f.write(text)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        timer = threading.Timer(self.limit, self._fire, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
        outcome = yield
        report = outcome.get_result()
        dumps = self.dumps.get(item.nodeid)
        if dumps and report.when == "teardown":
            report.outcome = "failed"
            report.longrepr = "".join(dumps) + f"(also in {self.dump_dir}/watchdog-{os.getpid()}.txt)"


def install(config: pytest.Config) -> None:
    """Register the watchdog unless ``MAKECALIBRATIONS_TEST_WATCHDOG`` is 0."""
    limit = float(os.environ.get("MAKECALIBRATIONS_TEST_WATCHDOG", DEFAULT_LIMIT))
    if limit <= 0:
        return
    base = config.option.basetemp or os.environ.get("TMPDIR", "/tmp")
    config.pluginmanager.register(WatchdogPlugin(limit, pathlib.Path(base)), "makecalibrations-watchdog")
