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

"""`Controller`: the component side of SAL — read commands, write events and telemetry.

May import: the standard library and the runtime modules `base`, `domain`, `sal_info`, `topics`,
`sal_log_handler`.
"""

from __future__ import annotations

__all__ = ["SHUTDOWN_DELAY", "Controller"]

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .base import ExpectedError
from .domain import Domain
from .sal_info import SalComponent, SalInfo
from .sal_log_handler import SalLogHandler
from .topics import ControllerCommand, ControllerEvent, ControllerTelemetry

#: Time (s) `Controller.close` waits before closing the domain, so final messages get out (as salobj).
SHUTDOWN_DELAY = 1.0

# Generic commands that base classes may implement even if a component lacks them.
_OPTIONAL_GENERIC_COMMANDS = frozenset({"enterControl"})


class Controller(SalComponent):
    """A SAL component: ``cmd_<name>`` readers, ``evt_<name>`` and ``tel_<name>`` writers.

    Parameters
    ----------
    name : `str`
        Component name.
    index : `int` or `None`
        SAL index (must be nonzero... for indexed components it selects the commands read).
    do_callbacks : `bool`
        Assign ``do_<command>`` methods as command callbacks; the set of methods must match the set
        of commands.
    write_only : `bool`
        No command readers (and no callbacks).
    allow_missing_callbacks : `bool`
        With ``do_callbacks``, commands without a ``do_`` method are acked FAILED
        "This command is not supported".
    extra_commands : iterable of `str`
        ``do_`` methods allowed without a matching command.

    Attributes
    ----------
    shutdown_delay : `float`
        Seconds `close` waits before closing the domain (class attribute; `SHUTDOWN_DELAY`).
    start_task : `asyncio.Task`
        Runs `start` then `start_phase2`.
    done_task : `asyncio.Future`
        Done when closed (exception if `close` got one).
    """

    shutdown_delay: float = SHUTDOWN_DELAY

    def __init__(
        self,
        name: str,
        index: int | None = None,
        *,
        do_callbacks: bool = False,
        write_only: bool = False,
        allow_missing_callbacks: bool = False,
        extra_commands: Iterable[str] = frozenset(),
    ) -> None:
        loop = asyncio.get_running_loop()
        self.start_called = False
        self.done_task: asyncio.Future = loop.create_future()
        self._closing = False
        self._close_done: asyncio.Future = loop.create_future()
        self._do_callbacks = do_callbacks and not write_only
        self._allow_missing_callbacks = allow_missing_callbacks
        domain = Domain()
        index = 0 if index is None else int(index)
        domain.default_identity = f"{name}:{index}" if index else name
        log_name = f"{name}.{index}" if index else name
        self.log = logging.getLogger(log_name)
        try:
            self.salinfo = SalInfo(domain, name, index, write_only=write_only, log=self.log)
            if self.log.getEffectiveLevel() > logging.INFO:
                self.log.setLevel(logging.INFO)
            if self._do_callbacks:
                self._check_callbacks(extra_commands)
            if not write_only:
                for cmd_name in self.salinfo.command_names:
                    setattr(self, f"cmd_{cmd_name}", ControllerCommand(self.salinfo, cmd_name))
            for evt_name in self.salinfo.event_names:
                setattr(self, f"evt_{evt_name}", ControllerEvent(self.salinfo, evt_name))
            for tel_name in self.salinfo.telemetry_names:
                setattr(self, f"tel_{tel_name}", ControllerTelemetry(self.salinfo, tel_name))
            if not hasattr(self, "evt_logMessage") or not hasattr(self, "evt_logLevel"):
                raise RuntimeError(f"{name} lacks the logMessage or logLevel event")
        except Exception:
            domain.basic_close()
            raise
        self._log_handler = SalLogHandler(self)
        self.log.addHandler(self._log_handler)
        self.start_task: asyncio.Task = loop.create_task(self._protected_start())

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            """Topic attributes are made at run time (tell type checkers)."""

    @property
    def domain(self) -> Domain:
        """The controller's own domain (identity ``Name[:index]``)."""
        return self.salinfo.domain

    def _check_callbacks(self, extra_commands: Iterable[str]) -> None:
        cls = type(self)
        do_names = {
            attr[3:] for attr in dir(cls) if attr.startswith("do_") and callable(getattr(cls, attr, None))
        }
        cmd_names = set(self.salinfo.command_names)
        missing = cmd_names - do_names
        if missing and not self._allow_missing_callbacks:
            raise TypeError(f"{cls.__name__} lacks do_ methods for commands {sorted(missing)}")
        extra = do_names - cmd_names - set(extra_commands) - _OPTIONAL_GENERIC_COMMANDS
        if extra:
            raise TypeError(f"{cls.__name__} has do_ methods for unknown commands {sorted(extra)}")

    async def _unsupported_command(self, data: Any) -> None:
        raise ExpectedError("This command is not supported")

    def _assign_callbacks(self) -> None:
        for cmd_name in self.salinfo.command_names:
            func = getattr(self, f"do_{cmd_name}", None)
            if func is None:
                func = self._unsupported_command
            getattr(self, f"cmd_{cmd_name}").callback = func

    async def _protected_start(self) -> None:
        try:
            await self.start()
            await self.start_phase2()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.log.exception("Start failed")
            await self.close(exception=e)
            raise

    async def start(self) -> None:
        """Start: wait for the domain's other SalInfos, start reading, assign callbacks, write logLevel.

        Subclasses may override to do more (call ``await super().start()`` first).
        """
        if self.start_called:
            raise RuntimeError("start already called")
        self.start_called = True
        others = [s.start_task for s in list(self.domain.salinfo_set) if s is not self.salinfo]
        if others:
            await asyncio.gather(*others)
        if self._do_callbacks:
            self._assign_callbacks()
        await self.salinfo.start()
        self._log_handler.flush_buffer()
        await self.put_log_level()

    async def start_phase2(self) -> None:
        """Second start phase, run after `start` (a hook; does nothing here)."""

    async def put_log_level(self) -> None:
        """Write ``evt_logLevel`` with the effective log level."""
        await self.evt_logLevel.set_write(level=self.log.getEffectiveLevel(), subsystem="", force_output=True)

    async def do_setLogLevel(self, data: Any) -> None:
        """Set the log level of ``self.log`` and report it."""
        self.log.setLevel(data.level)
        await self.put_log_level()

    async def close_tasks(self) -> None:
        """Stop background tasks (a hook for subclasses; called first by `close`)."""

    async def close(self, exception: BaseException | None = None, cancel_start: bool = True) -> None:
        """Shut down: `close_tasks`, remove the log handler, wait `shutdown_delay`, close the domain.

        Idempotent: later calls wait for the first to finish.

        Parameters
        ----------
        exception : `BaseException` or `None`
            If given, ``done_task`` gets this exception.
        cancel_start : `bool`
            Cancel ``start_task`` if it is still running.
        """
        if self._closing:
            await asyncio.shield(self._close_done)
            return
        self._closing = True
        try:
            if cancel_start and not self.start_task.done() and asyncio.current_task() is not self.start_task:
                self.start_task.cancel()
            await self.close_tasks()
            self.log.removeHandler(self._log_handler)
            await asyncio.sleep(self.shutdown_delay)
            await self.domain.close()
        except Exception:
            self.log.exception("Error while closing")
        finally:
            if not self.done_task.done():
                if exception is not None:
                    self.done_task.set_exception(exception)
                else:
                    self.done_task.set_result(None)
            if not self._close_done.done():
                self._close_done.set_result(None)
