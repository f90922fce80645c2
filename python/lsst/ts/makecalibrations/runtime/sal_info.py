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

"""`SalInfo`: one SAL component (name + index) in a `Domain`, with its readers and running commands.

May import: the standard library and the runtime modules `base`, `enums`, `interfaces`, `data_types`,
`domain`.
"""

from __future__ import annotations

__all__ = ["SalInfo", "SalComponent"]

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Self

from .base import MAX_SAL_INDEX, current_tai
from .data_types import coerce_message, get_ackcmd_type
from .domain import Domain
from .enums import SalRetCode
from .interfaces import get_component_spec

if TYPE_CHECKING:
    from .data_types import BaseMsgType
    from .topics import CommandInfo, ReadTopic


class SalInfo:
    """Information about one SAL component: its interface, identity, readers and running commands.

    Parameters
    ----------
    domain : `Domain`
        The domain; its ``default_identity`` becomes this SalInfo's ``identity``.
    name : `str`
        Component name (must be defined in `interfaces`).
    index : `int` or `None`
        SAL index; None means 0. 0 reads all indices of an indexed component.
    write_only : `bool`
        If True, no readers may be added.
    log : `logging.Logger` or `None`
        Logger; a logger named after the component if None.

    Raises
    ------
    ValueError
        If the component is unknown, or a non-indexed component gets a nonzero index.
    """

    def __init__(
        self,
        domain: Domain,
        name: str,
        index: int | None = 0,
        *,
        write_only: bool = False,
        log: logging.Logger | None = None,
    ) -> None:
        self.component_spec = get_component_spec(name)
        index = 0 if index is None else int(index)
        if not self.component_spec.indexed and index != 0:
            raise ValueError(f"{name} is not indexed, so index={index} must be 0 or None")
        if not 0 <= index <= MAX_SAL_INDEX:
            raise ValueError(f"index={index} must be in [0, {MAX_SAL_INDEX}]")
        self.domain = domain
        self.name = name
        self.index = index
        self.indexed = self.component_spec.indexed
        self.write_only = write_only
        self.identity = domain.default_identity
        self.log = log if log is not None else logging.getLogger(f"lsst.ts.makecalibrations.runtime.{name}")
        self.bus = domain.bus
        self.command_names = tuple(sorted(self.component_spec.commands))
        self.event_names = tuple(sorted(self.component_spec.events))
        self.telemetry_names = tuple(sorted(self.component_spec.telemetry))
        self.AckCmdType = get_ackcmd_type(self.component_spec)
        loop = asyncio.get_running_loop()
        self.start_task: asyncio.Future = loop.create_future()
        self.done_task: asyncio.Future = loop.create_future()
        self.isopen = True
        self._started = False
        self._wants_acks = False
        self._read_topics: list[ReadTopic] = []
        self._running_cmds: dict[int, CommandInfo] = {}
        self.num_acks_received = 0
        domain.add_salinfo(self)

    @property
    def name_index(self) -> str:
        """``Name`` for index 0, else ``Name:index``."""
        return f"{self.name}:{self.index}" if self.index else self.name

    @property
    def started(self) -> bool:
        """Has `start` been called?"""
        return self._started

    @property
    def running(self) -> bool:
        """Started and not closed."""
        return self._started and self.isopen

    def assert_running(self) -> None:
        """Raise `RuntimeError` if not started or closed."""
        if not self._started:
            raise RuntimeError(f"{self.name_index} is not started")
        if not self.isopen:
            raise RuntimeError(f"{self.name_index} is closed")

    def make_ackcmd(
        self, private_seqNum: int, ack: int, error: int = 0, result: str = "", timeout: float = 0.0
    ) -> BaseMsgType:
        """Make a command acknowledgement.

        Parameters
        ----------
        private_seqNum : `int`
            The command's sequence number.
        ack : `SalRetCode` or `int`
            Ack code.
        error : `int`
            Error code (0, or 1 on failure).
        result : `str`
            Message.
        timeout : `float`
            Remaining duration for CMD_INPROGRESS (s).
        """
        return self.AckCmdType(
            private_seqNum=private_seqNum, ack=ack, error=error, result=result, timeout=timeout
        )

    def _add_reader(self, topic: ReadTopic) -> None:
        if self.write_only:
            raise RuntimeError(f"{self.name_index} is write-only; cannot add reader {topic.attr_name}")
        if self._started:
            raise RuntimeError(f"Cannot add reader {topic.attr_name} after {self.name_index} is started")
        self._read_topics.append(topic)

    async def start(self) -> None:
        """Start reading: register the readers (late joiners get history) and the ack route.

        Raises
        ------
        RuntimeError
            If already started or closed.
        """
        if self._started:
            raise RuntimeError(f"{self.name_index} already started")
        if not self.isopen:
            raise RuntimeError(f"{self.name_index} is closed")
        self._started = True
        if self._wants_acks:
            self.bus.add_ack_route(self)
        for topic in self._read_topics:
            self.bus.add_reader(topic)
        if not self.start_task.done():
            self.start_task.set_result(None)

    def _handle_ackcmd(self, ackcmd: BaseMsgType) -> None:
        """Dispatch an ack (called by the bus) to the command that is waiting for it."""
        self.num_acks_received += 1
        cmd_info = self._running_cmds.get(ackcmd.private_seqNum)
        if cmd_info is None:
            return
        if ackcmd.ack in (SalRetCode.CMD_INPROGRESS, SalRetCode.CMD_ACK):
            cmd_info.add_ackcmd(ackcmd)
        else:
            # A final ack: the command leaves the running set at once, even if nobody read it yet.
            del self._running_cmds[ackcmd.private_seqNum]
            cmd_info.add_ackcmd(ackcmd)

    def _write_ackcmd(self, ackcmd: BaseMsgType) -> None:
        """Publish an ack to its sender."""
        if not self.isopen:
            return
        now = current_tai()
        ackcmd.private_sndStamp = now
        ackcmd.private_efdStamp = now
        ackcmd.private_kafkaStamp = now
        ackcmd.private_identity = self.identity
        ackcmd.private_origin = self.domain.origin
        if self.indexed:
            ackcmd.salIndex = self.index
        coerce_message(ackcmd)
        self.bus.publish_ack(self.name, ackcmd)

    def basic_close(self) -> None:
        """Close synchronously: unregister readers and fail running commands."""
        if not self.isopen:
            return
        self.isopen = False
        bus = self.bus
        if self._wants_acks:
            bus.remove_ack_route(self)
        for topic in self._read_topics:
            bus.remove_reader(topic)
            topic.close()
        running = list(self._running_cmds.values())
        self._running_cmds.clear()
        for cmd_info in running:
            cmd_info.close(f"{self.name_index} closed while waiting for the command ack")
        self.domain.remove_salinfo(self)
        if not self.start_task.done():
            self.start_task.cancel()
        if not self.done_task.done():
            self.done_task.set_result(None)

    async def close(self) -> None:
        """Close: stop reading and fail commands still waiting for an ack."""
        self.basic_close()

    async def __aenter__(self) -> SalInfo:
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SalInfo({self.name_index}, identity={self.identity!r})"


class SalComponent:
    """Base of `Controller` and `Remote` (this runtime's own; salobj has none): one component's
    `SalInfo` and the task that starts it.

    ``async with`` waits for ``start_task`` and closes at exit; the repr names the class and the
    component.
    """

    salinfo: SalInfo
    start_task: asyncio.Future

    async def close(self) -> None:
        """Release what the component holds (each subclass says what)."""
        raise NotImplementedError()

    async def __aenter__(self) -> Self:
        await self.start_task
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.salinfo.name_index})"
