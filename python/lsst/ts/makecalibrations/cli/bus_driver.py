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

"""Drive one SAL Script over the bus, as the ScriptQueue's ``run_one_script`` does.

`BusDriver` holds a ``Remote("Script", index)``: it follows the script's ``state`` (every change,
the ``UNCONFIGURED`` it starts in, ``PAUSED``, the final state) and ``logMessage`` events, and sends
``configure``, ``setLogLevel``, ``setGroupId``, ``run``, ``stop`` and ``resume``. ``run_script``
and the script tests (``tests/scripts/driver.py``) both drive the script through it.

May import: `sal`, the standard library.
"""

from __future__ import annotations

__all__ = ["FINAL_STATES", "BusDriver"]

import asyncio
from collections.abc import Callable
from typing import Any

from ..sal import ScriptState, salobj

FINAL_STATES = frozenset(
    {ScriptState.DONE, ScriptState.FAILED, ScriptState.STOPPED, ScriptState.CONFIGURE_FAILED}
)
"""States a script does not leave."""


class BusDriver:
    """Follows and commands one script over the bus.

    Parameters
    ----------
    domain : ``salobj.Domain``
        Domain of the remote.
    index : `int`
        SAL index of the script.
    on_state : callable, optional
        ``on_state(state, reason)``, called at each change of state.
    on_log : callable, optional
        ``on_log(data)``, called with each ``logMessage``.

    Attributes
    ----------
    states : `list` [`ScriptState`]
        Every state the script reported, in order (a state repeated in a row counts once).
    unconfigured, final : `asyncio.Future`
        Done when the script reports ``UNCONFIGURED``; when it reaches a state of `FINAL_STATES`
        (its result: ``(state, reason)``).
    paused : `asyncio.Event`
        Set when the script reports ``PAUSED``.
    """

    def __init__(
        self,
        domain: Any,
        index: int,
        *,
        on_state: Callable[[ScriptState, str], None] | None = None,
        on_log: Callable[[Any], None] | None = None,
    ) -> None:
        # Nobody reads the heartbeats: leave them out rather than let their queue overflow.
        self.remote = salobj.Remote(domain, "Script", index, evt_max_history=0, exclude=["heartbeat"])
        self.on_state = on_state
        self.on_log = on_log
        self.states: list[ScriptState] = []
        loop = asyncio.get_running_loop()
        self.unconfigured: asyncio.Future = loop.create_future()
        self.final: asyncio.Future = loop.create_future()
        self.paused = asyncio.Event()

    async def start(self) -> None:
        """Wait for the remote to be ready, then follow the events."""
        await self.remote.start_task
        self.remote.evt_state.callback = self._state_callback
        self.remote.evt_logMessage.callback = self._log_callback

    async def _state_callback(self, data: Any) -> None:
        state = ScriptState(data.state)
        if not self.states or self.states[-1] != state:
            self.states.append(state)
            if self.on_state is not None:
                self.on_state(state, data.reason)
        if state == ScriptState.UNCONFIGURED and not self.unconfigured.done():
            self.unconfigured.set_result(None)
        if state == ScriptState.PAUSED:
            self.paused.set()
        if state in FINAL_STATES and not self.final.done():
            self.final.set_result((state, data.reason))

    async def _log_callback(self, data: Any) -> None:
        if self.on_log is not None:
            self.on_log(data)

    async def configure(self, config: str, pause_checkpoint: str = "", timeout: float = 120.0) -> None:
        """Send ``configure``; raise ``salobj.AckError`` if the script refuses it."""
        await self.remote.cmd_configure.set_start(
            config=config,
            logLevel=0,
            pauseCheckpoint=pause_checkpoint,
            stopCheckpoint="",
            blockId="",
            timeout=timeout,
        )

    async def set_log_level(self, level: int) -> None:
        """Send ``setLogLevel``."""
        await self.remote.cmd_setLogLevel.set_start(level=level, timeout=5)

    async def set_group_id(self, group_id: str) -> None:
        """Send ``setGroupId``."""
        await self.remote.cmd_setGroupId.set_start(groupId=group_id, timeout=5)

    def run(self, timeout: float) -> asyncio.Future:
        """Send ``run``; the returned future ends with the command (when the script ends)."""
        return asyncio.ensure_future(self.remote.cmd_run.set_start(timeout=timeout))

    async def stop(self, timeout: float = 30.0) -> None:
        """Send ``stop``."""
        await self.remote.cmd_stop.set_start(timeout=timeout)

    async def resume(self, timeout: float = 10.0) -> None:
        """Send ``resume``."""
        await self.remote.cmd_resume.set_start(timeout=timeout)
