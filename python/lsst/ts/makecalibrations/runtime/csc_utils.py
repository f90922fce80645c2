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

"""CSC helpers: `make_state_transition_dict` and `set_summary_state` (salobj ``csc_utils.py``).

May import: the standard library and the runtime module `enums`.
"""

from __future__ import annotations

__all__ = ["make_state_transition_dict", "set_summary_state"]

from typing import Any

from .enums import State

_ORDER = (State.OFFLINE, State.STANDBY, State.DISABLED, State.ENABLED)
_UP = {State.OFFLINE: "enterControl", State.STANDBY: "start", State.DISABLED: "enable"}
_DOWN = {State.ENABLED: "disable", State.DISABLED: "standby", State.STANDBY: "exitControl"}


def make_state_transition_dict() -> dict[tuple[State, State], list[tuple[str, State]]]:
    """Return the commands to go between summary states.

    Returns
    -------
    transitions : `dict`
        (current state, desired state) -> list of (command name, state after the command).
        FAULT can only be left (via ``standby``); it is never a destination.
    """
    transitions: dict[tuple[State, State], list[tuple[str, State]]] = {}
    for i, start in enumerate(_ORDER):
        for j, end in enumerate(_ORDER):
            steps: list[tuple[str, State]] = []
            if j > i:
                for k in range(i, j):
                    steps.append((_UP[_ORDER[k]], _ORDER[k + 1]))
            elif j < i:
                for k in range(i, j, -1):
                    steps.append((_DOWN[_ORDER[k]], _ORDER[k - 1]))
            transitions[(start, end)] = steps
    for end in _ORDER:
        transitions[(State.FAULT, end)] = [("standby", State.STANDBY)] + transitions[(State.STANDBY, end)]
    return transitions


_TRANSITIONS = make_state_transition_dict()


async def set_summary_state(
    remote: Any, state: State | int, override: str = "", timeout: float = 30
) -> list[State]:
    """Command a CSC to a summary state, through all the intermediate states.

    Parameters
    ----------
    remote : `Remote`
        Remote of the CSC (must read ``summaryState`` and send the transition commands).
    state : `State` or `int`
        Desired state (not FAULT).
    override : `str`
        ``configurationOverride`` for the ``start`` command.
    timeout : `float`
        Time limit (s) for reading the current state and for each command.

    Returns
    -------
    states : `list` [`State`]
        The initial state followed by the state after each command.

    Raises
    ------
    RuntimeError
        If the current state cannot be read.
    ValueError
        If ``state`` is FAULT or not a state.
    AckError
        If a command fails.
    """
    state = State(state)
    if state == State.FAULT:
        raise ValueError("Cannot command a CSC to FAULT")
    try:
        data = await remote.evt_summaryState.aget(timeout=timeout)
    except TimeoutError:
        raise RuntimeError(f"Cannot get summaryState from {remote.salinfo.name_index}") from None
    current = State(data.summaryState)
    states = [current]
    for cmd_name, new_state in _TRANSITIONS[(current, state)]:
        cmd = getattr(remote, f"cmd_{cmd_name}")
        if cmd_name == "start":
            await cmd.set_start(configurationOverride=override, timeout=timeout)
        else:
            await cmd.set_start(timeout=timeout)
        states.append(new_state)
    return states
