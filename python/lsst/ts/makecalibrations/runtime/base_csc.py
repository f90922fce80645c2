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

"""`BaseCsc`: a Commandable SAL Component with the summary state machine (salobj ``base_csc.py``).

May import: the standard library and the runtime modules `base`, `enums`, `controller`.
"""

from __future__ import annotations

__all__ = ["HEARTBEAT_INTERVAL", "BaseCsc"]

import asyncio
from typing import Any

from .base import ExpectedError
from .controller import Controller
from .enums import State

#: Interval (s) between CSC heartbeats.
HEARTBEAT_INTERVAL = 1.0

#: Transition command -> (allowed current states, new state).
_TRANSITIONS: dict[str, tuple[tuple[State, ...], State]] = {
    "start": ((State.STANDBY,), State.DISABLED),
    "enable": ((State.DISABLED,), State.ENABLED),
    "disable": ((State.ENABLED,), State.DISABLED),
    "standby": ((State.DISABLED, State.FAULT), State.STANDBY),
    "exitControl": ((State.STANDBY,), State.OFFLINE),
    "enterControl": ((State.OFFLINE,), State.STANDBY),
}


class BaseCsc(Controller):
    """Base class of a CSC: summary state, generic commands, heartbeat, errorCode, `fault`.

    Parameters
    ----------
    name : `str`
        Component name.
    index : `int` or `None`
        SAL index (indexed components).
    check_if_duplicate : `bool`
        Accepted for salobj compatibility; unused.
    initial_state : `State` or `int` or `None`
        State to reach at start; ``default_initial_state`` if None. FAULT is not allowed.
    override : `str`
        ``configurationOverride`` for the ``start`` command run to reach DISABLED/ENABLED.
    simulation_mode : `int`
        Must be in ``valid_simulation_modes``.
    allow_missing_callbacks : `bool`
        Commands without ``do_`` methods are acked FAILED "This command is not supported".

    Raises
    ------
    ValueError
        If ``initial_state`` is FAULT or invalid, or ``simulation_mode`` is not valid.
    RuntimeError
        If the class has no ``version``.

    Notes
    -----
    Subclasses set the class attribute ``version`` and may override ``begin_<cmd>``/``end_<cmd>``
    (async, called before/after the state changes; a failing ``end_`` reverts the state) and
    `handle_summary_state`.
    """

    valid_simulation_modes: tuple[int, ...] = (0,)
    default_initial_state: State = State.STANDBY
    enable_cmdline_state: bool = False
    simulation_help: str | None = None
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    version: str

    def __init__(
        self,
        name: str,
        index: int | None = None,
        check_if_duplicate: bool = False,
        initial_state: State | int | None = None,
        override: str = "",
        simulation_mode: int = 0,
        allow_missing_callbacks: bool = False,
    ) -> None:
        if not isinstance(getattr(type(self), "version", None), str):
            raise RuntimeError(f"{type(self).__name__} must set the class attribute version (a str)")
        if initial_state is None:
            initial_state = self.default_initial_state
        try:
            initial_state = State(initial_state)
        except ValueError:
            raise ValueError(f"initial_state={initial_state!r} is not a valid State") from None
        if initial_state == State.FAULT:
            raise ValueError("initial_state cannot be FAULT")
        if simulation_mode not in self.valid_simulation_modes:
            raise ValueError(
                f"simulation_mode={simulation_mode} not in "
                f"valid_simulation_modes={self.valid_simulation_modes}"
            )
        self._initial_state = initial_state
        self._override = override
        self._simulation_mode = simulation_mode
        self._summary_state = State.OFFLINE if initial_state == State.OFFLINE else State.STANDBY
        self._heartbeat_task: asyncio.Task | None = None
        super().__init__(name, index, do_callbacks=True, allow_missing_callbacks=allow_missing_callbacks)

    # Properties ---------------------------------------------------------------------------------

    @property
    def summary_state(self) -> State:
        """The current summary state."""
        return self._summary_state

    @property
    def simulation_mode(self) -> int:
        """The simulation mode."""
        return self._simulation_mode

    @property
    def disabled_or_enabled(self) -> bool:
        """Is the state DISABLED or ENABLED?"""
        return self._summary_state in (State.DISABLED, State.ENABLED)

    # Start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start: heartbeat, simulationMode and softwareVersions events."""
        await super().start()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        await self.evt_simulationMode.set_write(mode=self._simulation_mode, force_output=True)
        await self.evt_softwareVersions.set_write(
            salVersion="embedded",
            xmlVersion="embedded",
            cscVersion=self.version,
            subsystemVersions="",
            force_output=True,
        )

    async def start_phase2(self) -> None:
        """Report the initial state, then run the transitions to ``initial_state``."""
        await self.handle_summary_state()
        await self._report_summary_state()
        target = self._initial_state
        if target in (State.DISABLED, State.ENABLED):
            await self._do_change_state(
                self.cmd_start.DataType(configurationOverride=self._override), "start"
            )
        if target == State.ENABLED:
            await self._do_change_state(self.cmd_enable.DataType(), "enable")

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.evt_heartbeat.write()
            except RuntimeError:
                return  # closed
            await asyncio.sleep(self.heartbeat_interval)

    async def close_tasks(self) -> None:
        """Stop the heartbeat."""
        await super().close_tasks()
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()

    # State machine ------------------------------------------------------------------------------

    async def do_start(self, data: Any) -> None:
        """STANDBY -> DISABLED."""
        await self._do_change_state(data, "start")

    async def do_enable(self, data: Any) -> None:
        """DISABLED -> ENABLED."""
        await self._do_change_state(data, "enable")

    async def do_disable(self, data: Any) -> None:
        """ENABLED -> DISABLED."""
        await self._do_change_state(data, "disable")

    async def do_standby(self, data: Any) -> None:
        """DISABLED or FAULT -> STANDBY."""
        await self._do_change_state(data, "standby")

    async def do_exitControl(self, data: Any) -> None:
        """STANDBY -> OFFLINE, then close."""
        await self._do_change_state(data, "exitControl")
        asyncio.create_task(self.close())

    async def do_enterControl(self, data: Any) -> None:
        """OFFLINE -> STANDBY (only for components with the enterControl command)."""
        await self._do_change_state(data, "enterControl")

    async def _do_change_state(self, data: Any, cmd_name: str) -> None:
        allowed, new_state = _TRANSITIONS[cmd_name]
        curr_state = self._summary_state
        if curr_state not in allowed:
            raise ExpectedError(f"{cmd_name} not allowed in state {curr_state!r}")
        await getattr(self, f"begin_{cmd_name}")(data)
        self._summary_state = new_state
        try:
            await getattr(self, f"end_{cmd_name}")(data)
        except Exception:
            self._summary_state = curr_state
            raise
        await self.handle_summary_state()
        await self._report_summary_state()

    async def _report_summary_state(self) -> None:
        await self.evt_summaryState.set_write(summaryState=self._summary_state)
        if self._summary_state != State.FAULT:
            await self.evt_errorCode.set_write(errorCode=0, errorReport="", traceback="")

    async def handle_summary_state(self) -> None:
        """Called after each summary state change (a hook; does nothing here)."""

    async def begin_start(self, data: Any) -> None:
        """Called before STANDBY -> DISABLED."""

    async def end_start(self, data: Any) -> None:
        """Called after STANDBY -> DISABLED (failure reverts the state)."""

    async def begin_enable(self, data: Any) -> None:
        """Called before DISABLED -> ENABLED."""

    async def end_enable(self, data: Any) -> None:
        """Called after DISABLED -> ENABLED."""

    async def begin_disable(self, data: Any) -> None:
        """Called before ENABLED -> DISABLED."""

    async def end_disable(self, data: Any) -> None:
        """Called after ENABLED -> DISABLED."""

    async def begin_standby(self, data: Any) -> None:
        """Called before DISABLED/FAULT -> STANDBY."""

    async def end_standby(self, data: Any) -> None:
        """Called after DISABLED/FAULT -> STANDBY."""

    async def begin_exitControl(self, data: Any) -> None:
        """Called before STANDBY -> OFFLINE."""

    async def end_exitControl(self, data: Any) -> None:
        """Called after STANDBY -> OFFLINE."""

    async def begin_enterControl(self, data: Any) -> None:
        """Called before OFFLINE -> STANDBY."""

    async def end_enterControl(self, data: Any) -> None:
        """Called after OFFLINE -> STANDBY."""

    # Faults -------------------------------------------------------------------------------------

    async def fault(self, code: int | None, report: str, traceback: str = "") -> None:
        """Go to FAULT: write errorCode (always) and summaryState, then `handle_summary_state`.

        Parameters
        ----------
        code : `int` or `None`
            Error code; if None, errorCode is not written.
        report : `str`
            Description of the fault.
        traceback : `str`
            Optional traceback.
        """
        self._summary_state = State.FAULT
        try:
            if code is not None:
                await self.evt_errorCode.set_write(
                    errorCode=code, errorReport=report, traceback=traceback, force_output=True
                )
            await self._report_summary_state()
            await self.handle_summary_state()
        except Exception:
            self.log.exception("Failed to report the fault")

    def assert_enabled(self, action: str = "") -> None:
        """Raise `ExpectedError` unless ENABLED.

        Parameters
        ----------
        action : `str`
            What was attempted (for the message).
        """
        state = self._summary_state
        if state == State.ENABLED:
            return
        what = f"{action} not allowed" if action else "Not allowed"
        if state == State.FAULT:
            err = self.evt_errorCode.data
            raise ExpectedError(
                f"{what} in state={state!r}; errorCode={err.errorCode}, errorReport={err.errorReport!r}"
            )
        raise ExpectedError(f"{what} in state={state!r}")

    @classmethod
    async def amain(cls, index: int | None, **kwargs: Any) -> None:
        """Run the CSC until it is closed (e.g. by exitControl).

        Parameters
        ----------
        index : `int` or `None`
            SAL index, or None for a non-indexed component.
        **kwargs
            Constructor arguments.
        """
        if index is None:
            csc = cls(**kwargs)
        else:
            csc = cls(index=index, **kwargs)
        await csc.done_task
