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

"""`Remote`: talk to a SAL component — send its commands, read its events and telemetry.

May import: the standard library and the runtime modules `base`, `domain`, `sal_info`, `topics`.
"""

from __future__ import annotations

__all__ = ["Remote"]

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .base import make_done_future
from .domain import Domain
from .sal_info import SalComponent, SalInfo
from .topics import DEFAULT_QUEUE_LEN, RemoteCommand, RemoteEvent, RemoteTelemetry


class Remote(SalComponent):
    """A remote for a SAL component: ``cmd_<name>``, ``evt_<name>`` and ``tel_<name>`` attributes.

    Parameters
    ----------
    domain : `Domain`
        The domain; its identity is the sender identity of the commands.
    name : `str`
        Component name.
    index : `int` or `None`
        SAL index; 0 or None reads all indices of an indexed component.
    readonly : `bool`
        If True, no commands.
    include : iterable of `str` or `None`
        Names of the events and telemetry to read (all if None).
    exclude : iterable of `str` or `None`
        Names of the events and telemetry not to read. Mutually exclusive with ``include``.
    evt_max_history : `int`
        History (late-joiner) length for events; telemetry has none.
    start : `bool`
        Start automatically (``start_task``)?
    num_messages, consume_messages_timeout, discard_out_of_order_telemetry, discard_out_of_order_events
        Accepted for salobj compatibility; unused in-process.

    Raises
    ------
    ValueError
        If both ``include`` and ``exclude`` are given, or the index is invalid.
    """

    def __init__(
        self,
        domain: Domain,
        name: str,
        index: int | None = None,
        *,
        readonly: bool = False,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        evt_max_history: int = 1,
        start: bool = True,
        num_messages: int = 1,
        consume_messages_timeout: float = 0.1,
        discard_out_of_order_telemetry: bool = True,
        discard_out_of_order_events: bool = True,
        queue_len: int = DEFAULT_QUEUE_LEN,
    ) -> None:
        if include is not None and exclude is not None:
            raise ValueError("Cannot specify both include and exclude")
        include_set = None if include is None else set(include)
        exclude_set = set() if exclude is None else set(exclude)

        def is_wanted(topic_name: str) -> bool:
            if include_set is not None:
                return topic_name in include_set
            return topic_name not in exclude_set

        self.salinfo = SalInfo(domain, name, index)
        self.readonly = readonly
        try:
            if not readonly:
                for cmd_name in self.salinfo.command_names:
                    setattr(self, f"cmd_{cmd_name}", RemoteCommand(self.salinfo, cmd_name))
            for evt_name in self.salinfo.event_names:
                if is_wanted(evt_name):
                    setattr(
                        self,
                        f"evt_{evt_name}",
                        RemoteEvent(self.salinfo, evt_name, max_history=evt_max_history, queue_len=queue_len),
                    )
            for tel_name in self.salinfo.telemetry_names:
                if is_wanted(tel_name):
                    setattr(
                        self, f"tel_{tel_name}", RemoteTelemetry(self.salinfo, tel_name, queue_len=queue_len)
                    )
        except Exception:
            self.salinfo.basic_close()
            raise
        if start:
            self.start_task: asyncio.Future = asyncio.create_task(self.start())
        else:
            self.start_task = make_done_future()

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            """Topic attributes are made at run time (tell type checkers)."""

    @property
    def domain(self) -> Domain:
        """The domain."""
        return self.salinfo.domain

    async def start(self) -> None:
        """Start reading (called automatically if ``start=True``)."""
        await self.salinfo.start()

    async def close(self) -> None:
        """Close the SalInfo (not the domain)."""
        await self.salinfo.close()
