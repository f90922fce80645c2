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

"""The in-process message bus: one per asyncio event loop, shared by every Domain in that loop.

The bus fans each written message out to the started readers of the same (component, topic) whose
index is 0 (all indices) or equal to the message's index, keeps the last message per
(component, topic, index) for late-joining event readers, and routes command acknowledgements only
to the SalInfos whose (identity, origin) match the command's sender.

May import: the standard library and `data_types`.
"""

from __future__ import annotations

__all__ = ["Bus", "get_bus"]

import asyncio
import itertools
import weakref
from typing import TYPE_CHECKING

from .data_types import BaseMsgType, copy_message

if TYPE_CHECKING:
    from .sal_info import SalInfo
    from .topics import ReadTopic

_buses: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Bus] = weakref.WeakKeyDictionary()


def get_bus() -> Bus:
    """Return the bus of the running event loop, creating it if needed.

    Raises
    ------
    RuntimeError
        If there is no running event loop.
    """
    loop = asyncio.get_running_loop()
    bus = _buses.get(loop)
    if bus is None:
        bus = Bus()
        _buses[loop] = bus
    return bus


class Bus:
    """Per-event-loop fan-out of messages to readers.

    Attributes
    ----------
    num_published : `int`
        Number of messages published (commands, events, telemetry and acks).
    """

    def __init__(self) -> None:
        # (component, sal_name) -> readers (a tuple, replaced on change, so delivery can iterate safely)
        self._readers: dict[tuple[str, str], tuple[ReadTopic, ...]] = {}
        # (component, sal_name) -> {index: last message}; dict order = order of the last write
        self._history: dict[tuple[str, str], dict[int, BaseMsgType]] = {}
        # (component, identity, origin) -> SalInfos that receive these acks
        self._ack_routes: dict[tuple[str, str, int], tuple[SalInfo, ...]] = {}
        self._cmd_seq_num = itertools.count(1)
        self.num_published = 0

    def next_cmd_seq_num(self) -> int:
        """Return a command sequence number unique on this bus."""
        return next(self._cmd_seq_num)

    def add_reader(self, reader: ReadTopic) -> None:
        """Start delivering messages to ``reader``; send it history if it wants some.

        Parameters
        ----------
        reader : `ReadTopic`
            The reader; uses ``reader.salinfo.name``, ``reader.sal_name``, ``reader.salinfo.index``
            and ``reader.max_history``.
        """
        key = (reader.salinfo.name, reader.sal_name)
        self._readers[key] = self._readers.get(key, ()) + (reader,)
        if reader.max_history > 0:
            history = self._history.get(key)
            if history:
                index = reader.salinfo.index
                if index == 0:
                    messages = list(history.values())[-reader.max_history :]
                else:
                    msg = history.get(index)
                    messages = [] if msg is None else [msg]
                for msg in messages:
                    reader._deliver(copy_message(msg))

    def remove_reader(self, reader: ReadTopic) -> None:
        """Stop delivering messages to ``reader`` (no error if it was not added)."""
        key = (reader.salinfo.name, reader.sal_name)
        readers = self._readers.get(key, ())
        if reader in readers:
            self._readers[key] = tuple(r for r in readers if r is not reader)

    def publish(
        self, component: str, sal_name: str, index: int, msg: BaseMsgType, keep_history: bool
    ) -> None:
        """Deliver a message to the matching readers.

        Parameters
        ----------
        component : `str`
            Component name.
        sal_name : `str`
            Topic SAL name, e.g. ``logevent_summaryState``.
        index : `int`
            SAL index of the message (0 for non-indexed components).
        msg : `BaseMsgType`
            The message; the bus owns it (the writer must pass a copy). Each reader gets its own copy.
        keep_history : `bool`
            Keep the message as the last one of (component, topic, index) for late joiners.
        """
        self.num_published += 1
        key = (component, sal_name)
        msg.private_rcvStamp = msg.private_sndStamp
        if keep_history:
            history = self._history.get(key)
            if history is None:
                history = self._history[key] = {}
            else:
                history.pop(index, None)
            history[index] = msg
        readers = [r for r in self._readers.get(key, ()) if r.salinfo.index == 0 or r.salinfo.index == index]
        if not readers:
            return
        for reader in readers[:-1]:
            reader._deliver(copy_message(msg))
        # The last reader may own the bus copy unless it is kept as history.
        readers[-1]._deliver(copy_message(msg) if keep_history else msg)

    def get_history(self, component: str, sal_name: str, index: int) -> BaseMsgType | None:
        """Return a copy of the last message written for (component, topic, index), or None."""
        msg = self._history.get((component, sal_name), {}).get(index)
        return None if msg is None else copy_message(msg)

    def add_ack_route(self, salinfo: SalInfo) -> None:
        """Deliver acks addressed to ``(salinfo.identity, salinfo.domain.origin)`` to ``salinfo``."""
        key = (salinfo.name, salinfo.identity, salinfo.domain.origin)
        self._ack_routes[key] = self._ack_routes.get(key, ()) + (salinfo,)

    def remove_ack_route(self, salinfo: SalInfo) -> None:
        """Stop delivering acks to ``salinfo`` (no error if it was not added)."""
        key = (salinfo.name, salinfo.identity, salinfo.domain.origin)
        routes = self._ack_routes.get(key, ())
        if salinfo in routes:
            remaining = tuple(s for s in routes if s is not salinfo)
            if remaining:
                self._ack_routes[key] = remaining
            else:
                del self._ack_routes[key]

    def publish_ack(self, component: str, ackcmd: BaseMsgType) -> None:
        """Deliver a command acknowledgement to its sender only.

        Parameters
        ----------
        component : `str`
            Component name.
        ackcmd : `BaseMsgType`
            The ack; its ``identity`` and ``origin`` select the receivers.
        """
        self.num_published += 1
        ackcmd.private_rcvStamp = ackcmd.private_sndStamp
        index = getattr(ackcmd, "salIndex", 0)
        for salinfo in self._ack_routes.get((component, ackcmd.identity, ackcmd.origin), ()):
            if salinfo.index == 0 or salinfo.index == index:
                salinfo._handle_ackcmd(copy_message(ackcmd))
