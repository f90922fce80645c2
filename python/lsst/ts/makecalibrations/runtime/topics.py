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

"""Topic classes: readers (`ReadTopic`, `RemoteEvent`, `RemoteTelemetry`, `ControllerCommand`) and
writers (`WriteTopic`, `ControllerEvent`, `ControllerTelemetry`, `RemoteCommand`).

Semantics follow salobj 7+/8 (https://ts-salobj.lsst.io): one queue per reader (``queue_len`` 100,
oldest dropped), a "current" message for `ReadTopic.get`, concurrent `ReadTopic.next` waiters on an
empty queue all get the same message, callbacks exclude next/aget/flush/get_oldest, and commands are
acknowledged from the outcome of their callback.

May import: the standard library and the runtime modules `base`, `enums`, `data_types`.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_QUEUE_LEN",
    "SetWriteResult",
    "BaseTopic",
    "ReadTopic",
    "RemoteEvent",
    "RemoteTelemetry",
    "ControllerCommand",
    "WriteTopic",
    "ControllerEvent",
    "ControllerTelemetry",
    "RemoteCommand",
    "CommandInfo",
]

import asyncio
import collections
import dataclasses
import inspect
import itertools
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import AckError, AckTimeoutError, ExpectedError, current_tai
from .data_types import BaseMsgType, coerce_message, copy_message, get_data_type, is_ackcmd, values_equal
from .enums import DONE_ACK_CODES, FAILED_ACK_CODES, SalRetCode

if TYPE_CHECKING:
    from .sal_info import SalInfo

#: Default number of messages a reader queues before dropping the oldest.
DEFAULT_QUEUE_LEN = 100

_PREFIXES = {"command": ("cmd_", "command_"), "event": ("evt_", "logevent_"), "telemetry": ("tel_", "")}


@dataclasses.dataclass
class SetWriteResult:
    """Result of `WriteTopic.set_write`.

    Attributes
    ----------
    did_change : `bool`
        Did any field change (always True for the first ``set``)?
    was_written : `bool`
        Was the message written?
    data : `BaseMsgType`
        A copy of the data (as written, if it was).
    """

    did_change: bool
    was_written: bool
    data: Any


class BaseTopic:
    """Base class of all topics.

    Parameters
    ----------
    salinfo : `SalInfo`
        The SAL component information.
    name : `str`
        Bare topic name, e.g. ``summaryState``.
    kind : `str`
        ``command``, ``event`` or ``telemetry``.
    """

    def __init__(self, salinfo: SalInfo, name: str, kind: str) -> None:
        self.salinfo = salinfo
        self.name = name
        self.topic_kind = kind
        attr_prefix, sal_prefix = _PREFIXES[kind]
        self.attr_name = attr_prefix + name
        self.sal_name = sal_prefix + name
        self.DataType = get_data_type(salinfo.component_spec, kind, name)
        self.log = salinfo.log.getChild(self.attr_name)

    @property
    def topic_info(self) -> Any:
        """The topic's field specifications (a tuple of `FieldSpec`, private fields included)."""
        return self.DataType.field_specs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.salinfo.name_index}, {self.attr_name})"


class ReadTopic(BaseTopic):
    """A topic reader.

    Parameters
    ----------
    salinfo, name, kind
        As for `BaseTopic`.
    max_history : `int`
        Number of historical messages to read when started (only the last message per index is kept
        by the bus, so values > 1 matter only for index-0 readers of indexed components).
    queue_len : `int`
        Maximum number of queued messages; the oldest is dropped when full.
    """

    def __init__(
        self, salinfo: SalInfo, name: str, kind: str, max_history: int, queue_len: int = DEFAULT_QUEUE_LEN
    ) -> None:
        super().__init__(salinfo, name, kind)
        if max_history < 0:
            raise ValueError(f"max_history={max_history} must be >= 0")
        if queue_len <= 0:
            raise ValueError(f"queue_len={queue_len} must be positive")
        if max_history > queue_len:
            raise ValueError(f"max_history={max_history} must be <= queue_len={queue_len}")
        self.max_history = max_history
        self.queue_len = queue_len
        self.allow_multiple_callbacks = False
        self.dropped_count = 0
        self._queue: collections.deque[BaseMsgType] = collections.deque(maxlen=queue_len)
        self._current_data: BaseMsgType | None = None
        self._next_waiters: list[asyncio.Future] = []
        self._aget_waiters: list[asyncio.Future] = []
        self._callback: Callable | None = None
        self._callback_task: asyncio.Task | None = None
        self._callback_busy = False
        self._callback_tasks: set[asyncio.Task] = set()
        self._warned_full = False
        self.isopen = True
        salinfo._add_reader(self)

    # Delivery (called by the bus) ---------------------------------------------------------------

    def _deliver(self, data: BaseMsgType) -> None:
        """Receive one message (already a private copy)."""
        if not self.isopen:
            return
        self._current_data = data
        delivered = False
        if self._next_waiters:
            waiters = self._next_waiters
            self._next_waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(data)
                    delivered = True
        if not delivered:
            if len(self._queue) >= self.queue_len:
                self.dropped_count += 1
                if not self._warned_full:
                    self._warned_full = True
                    self.log.warning(
                        f"{self.attr_name} queue is full ({self.queue_len} messages); dropping the oldest"
                    )
            self._queue.append(data)
        if self._aget_waiters:
            waiters = self._aget_waiters
            self._aget_waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(data)

    async def _wait_next(self, timeout: float | None) -> BaseMsgType:
        """Pop the oldest queued message or wait for the next one (shared by concurrent waiters)."""
        if self._queue:
            data = self._queue.popleft()
            if not self._queue:
                self._warned_full = False
            return data
        if not self.isopen:
            raise RuntimeError(f"{self} is closed")
        waiter = asyncio.get_running_loop().create_future()
        self._next_waiters.append(waiter)
        return await self._await_waiter(waiter, self._next_waiters, timeout)

    async def _await_waiter(
        self, waiter: asyncio.Future, waiters: list[asyncio.Future], timeout: float | None
    ) -> BaseMsgType:
        """Await a delivery future; a message that raced with the timeout is still returned."""
        try:
            if timeout is None:
                return await waiter
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return waiter.result()
            raise
        finally:
            if not waiter.done() or waiter.cancelled():
                try:
                    waiters.remove(waiter)
                except ValueError:
                    pass

    def _assert_no_callback(self) -> None:
        if self._callback is not None:
            raise RuntimeError(f"Not allowed because {self.attr_name} has a callback")

    # Public API ---------------------------------------------------------------------------------

    @property
    def has_data(self) -> bool:
        """Has any message been seen?"""
        return self._current_data is not None

    @property
    def nqueued(self) -> int:
        """Number of queued messages."""
        return len(self._queue)

    def get(self) -> BaseMsgType | None:
        """Return the most recent message, or None if none seen; never waits.

        Raises
        ------
        RuntimeError
            If the SalInfo has not been started.
        """
        if not self.salinfo.started:
            raise RuntimeError("Not started")
        return self._current_data

    async def aget(self, timeout: float | None = None) -> BaseMsgType:
        """Return the most recent message, waiting for one if none was ever seen.

        Does not consume the queue.

        Raises
        ------
        TimeoutError
            If no message arrives in time.
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback()
        if self._current_data is not None:
            return self._current_data
        waiter = asyncio.get_running_loop().create_future()
        self._aget_waiters.append(waiter)
        return await self._await_waiter(waiter, self._aget_waiters, timeout)

    async def next(self, *, flush: bool, timeout: float | None = None) -> BaseMsgType:
        """Pop the oldest queued message, or wait for the next one.

        Parameters
        ----------
        flush : `bool`
            Clear the queue first (so only a new message is returned).
        timeout : `float` or `None`
            Maximum time to wait (s); None waits forever.

        Raises
        ------
        TimeoutError
            If no message arrives in time.
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback()
        if flush:
            self.flush()
        return await self._wait_next(timeout)

    def flush(self) -> None:
        """Clear the queue (the current message seen by `get` is kept).

        Raises
        ------
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback()
        self._queue.clear()
        self._warned_full = False

    def get_oldest(self) -> BaseMsgType | None:
        """Pop and return the oldest queued message, or None.

        Raises
        ------
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback()
        if self._queue:
            return self._queue.popleft()
        return None

    @property
    def callback(self) -> Callable | None:
        """Function called with each message (async expected), or None."""
        return self._callback

    @callback.setter
    def callback(self, func: Callable | None) -> None:
        if func is not None:
            if not callable(func):
                raise TypeError(f"callback={func!r} is not callable")
            if not (inspect.iscoroutinefunction(func) or getattr(func, "_is_coroutine", None)):
                is_async_mock = type(func).__name__ == "AsyncMock"
                if not is_async_mock:
                    warnings.warn(
                        f"{self.attr_name} callback {func!r} is not a coroutine function; "
                        "synchronous callbacks are deprecated",
                        DeprecationWarning,
                        stacklevel=2,
                    )
        self._queue.clear()
        self._warned_full = False
        self._callback = func
        if func is None:
            task = self._callback_task
            self._callback_task = None
            if task is not None and not self._callback_busy:
                task.cancel()
        elif self._callback_task is None or self._callback_task.done():
            self._callback_task = asyncio.get_running_loop().create_task(self._callback_loop())

    async def _callback_loop(self) -> None:
        this_task = asyncio.current_task()
        while self.isopen and self._callback is not None and self._callback_task is this_task:
            data = await self._wait_next(None)
            func = self._callback
            if func is None or self._callback_task is not this_task:
                # Callback removed or replaced while waiting: leave the message for the new owner.
                self._queue.appendleft(data)
                return
            if self.allow_multiple_callbacks:
                task = asyncio.get_running_loop().create_task(self._run_callback(func, data))
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)
            else:
                self._callback_busy = True
                try:
                    await self._run_callback(func, data)
                finally:
                    self._callback_busy = False

    async def _run_callback(self, func: Callable, data: BaseMsgType) -> None:
        try:
            result = func(data)
            if inspect.isawaitable(result):
                await result
        except ExpectedError as e:
            self.log.debug(f"Callback {func} failed: {e}")
        except Exception:
            self.log.exception(f"Callback {func} failed with data={data}")

    def close(self) -> None:
        """Stop reading: cancel waiters and the callback loop, clear the queue."""
        if not self.isopen:
            return
        self.isopen = False
        self._callback = None
        for task in (self._callback_task, *self._callback_tasks):
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        self._callback_task = None
        for waiter in self._next_waiters + self._aget_waiters:
            if not waiter.done():
                waiter.cancel()
        self._next_waiters = []
        self._aget_waiters = []
        self._queue.clear()


class RemoteEvent(ReadTopic):
    """An event reader (``evt_<name>`` of a `Remote`).

    Parameters
    ----------
    salinfo : `SalInfo`
        The SAL component information.
    name : `str`
        Bare event name.
    max_history : `int`
        1 to receive the last message written before the reader started.
    queue_len : `int`
        Maximum number of queued messages.
    """

    def __init__(
        self, salinfo: SalInfo, name: str, max_history: int = 1, queue_len: int = DEFAULT_QUEUE_LEN
    ) -> None:
        super().__init__(salinfo, name, "event", max_history=max_history, queue_len=queue_len)


class RemoteTelemetry(ReadTopic):
    """A telemetry reader (``tel_<name>`` of a `Remote`); telemetry has no history."""

    def __init__(self, salinfo: SalInfo, name: str, queue_len: int = DEFAULT_QUEUE_LEN) -> None:
        super().__init__(salinfo, name, "telemetry", max_history=0, queue_len=queue_len)


class ControllerCommand(ReadTopic):
    """A command reader (``cmd_<name>`` of a `Controller`).

    With a callback, each command is acknowledged from the callback's outcome: None ->
    CMD_COMPLETE "Done"; an AckCmd -> that ack; `TimeoutError` -> CMD_TIMEOUT "Timeout";
    `asyncio.CancelledError` -> CMD_ABORTED "Aborted"; any other exception -> CMD_FAILED
    "Failed: <exc>" (traceback logged unless it is an `ExpectedError`).
    """

    def __init__(self, salinfo: SalInfo, name: str, queue_len: int = DEFAULT_QUEUE_LEN) -> None:
        super().__init__(salinfo, name, "command", max_history=0, queue_len=queue_len)
        self.cmdtype = salinfo.command_names.index(name)

    async def next(self, *, timeout: float | None = None) -> BaseMsgType:  # type: ignore[override]
        """Pop the oldest queued command, or wait for the next one.

        Raises
        ------
        TimeoutError
            If no command arrives in time.
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback()
        return await self._wait_next(timeout)

    def ack(self, data: BaseMsgType, ackcmd: BaseMsgType) -> None:
        """Acknowledge a command with an arbitrary ack.

        Parameters
        ----------
        data : `BaseMsgType`
            The command being acknowledged.
        ackcmd : ``AckCmdType``
            The ack (from ``salinfo.make_ackcmd``); routing fields are filled from ``data``.
        """
        ackcmd.private_seqNum = data.private_seqNum
        ackcmd.identity = data.private_identity
        ackcmd.origin = data.private_origin
        ackcmd.cmdtype = self.cmdtype
        self.salinfo._write_ackcmd(ackcmd)

    async def ack_in_progress(self, data: BaseMsgType, timeout: float, result: str = "") -> None:
        """Acknowledge a command as CMD_INPROGRESS.

        Parameters
        ----------
        data : `BaseMsgType`
            The command.
        timeout : `float`
            Estimated remaining duration (s); extends the sender's timeout.
        result : `str`
            Message for the sender.
        """
        ackcmd = self.salinfo.make_ackcmd(
            private_seqNum=data.private_seqNum,
            ack=SalRetCode.CMD_INPROGRESS,
            result=result,
            timeout=timeout,
        )
        self.ack(data, ackcmd)

    async def _run_callback(self, func: Callable, data: BaseMsgType) -> None:
        make_ackcmd = self.salinfo.make_ackcmd
        try:
            result = func(data)
            if inspect.isawaitable(result):
                result = await result
            if is_ackcmd(result):
                ackcmd = result
            else:
                ackcmd = make_ackcmd(
                    private_seqNum=data.private_seqNum, ack=SalRetCode.CMD_COMPLETE, result="Done"
                )
        except asyncio.CancelledError:
            ackcmd = make_ackcmd(
                private_seqNum=data.private_seqNum, ack=SalRetCode.CMD_ABORTED, error=1, result="Aborted"
            )
        except TimeoutError:
            ackcmd = make_ackcmd(
                private_seqNum=data.private_seqNum, ack=SalRetCode.CMD_TIMEOUT, error=1, result="Timeout"
            )
        except Exception as e:
            if not isinstance(e, ExpectedError):
                self.log.exception(f"Callback {getattr(func, '__name__', func)} failed with data={data}")
            ackcmd = make_ackcmd(
                private_seqNum=data.private_seqNum, ack=SalRetCode.CMD_FAILED, error=1, result=f"Failed: {e}"
            )
        if self.salinfo.isopen:
            self.ack(data, ackcmd)


class WriteTopic(BaseTopic):
    """A topic writer.

    Parameters
    ----------
    salinfo, name, kind
        As for `BaseTopic`.
    """

    #: Default ``force_output`` of `set_write`: True writes always (telemetry and commands),
    #: False writes only changes (events).
    default_force_output: bool = True

    def __init__(self, salinfo: SalInfo, name: str, kind: str) -> None:
        super().__init__(salinfo, name, kind)
        self._data = self.DataType()
        self._has_data = False
        self._seq_num = itertools.count(1)
        self._keep_history = kind == "event"

    @property
    def data(self) -> BaseMsgType:
        """The current data (mutable; `write` sends it)."""
        return self._data

    @data.setter
    def data(self, data: BaseMsgType) -> None:
        if not isinstance(data, self.DataType):
            raise TypeError(f"data={data!r} must be an instance of {self.DataType.__name__}")
        self._data = data
        self._has_data = True

    @property
    def has_data(self) -> bool:
        """Has `set` been called (or `data` assigned)?"""
        return self._has_data

    def set(self, **kwargs: Any) -> bool:
        """Set fields of `data`.

        Parameters
        ----------
        **kwargs
            Field name: value. A value of None leaves the field unchanged.

        Returns
        -------
        did_change : `bool`
            True if any field changed, or if this is the first call.

        Raises
        ------
        AttributeError
            If a field name is unknown.
        """
        did_change = not self._has_data
        fields = self._data.__dict__
        field_names = self.DataType.field_names
        array_fields = self.DataType.array_fields
        for name, value in kwargs.items():
            if name not in field_names:
                raise AttributeError(f"{self.DataType.__name__} has no field {name!r}")
            if value is None:
                continue
            old = fields[name]
            if name in array_fields:
                value = list(value)
                if len(value) != len(old):
                    raise ValueError(f"{name} must have {len(old)} items, not {len(value)}")
            if not did_change and not values_equal(old, value):
                did_change = True
            fields[name] = value
        self._has_data = True
        return did_change

    def _write(self) -> BaseMsgType:
        """Stamp, coerce and publish `data`; return a copy (synchronous core of `write`)."""
        salinfo = self.salinfo
        salinfo.assert_running()
        data = self._data
        coerce_message(data)
        now = current_tai()
        data.private_sndStamp = now
        data.private_efdStamp = now
        data.private_kafkaStamp = now
        data.private_seqNum = next(self._seq_num)
        data.private_identity = salinfo.identity
        data.private_origin = salinfo.domain.origin
        index = salinfo.index
        if salinfo.indexed:
            if index != 0:
                data.salIndex = index
            else:
                index = data.salIndex
        self._has_data = True
        salinfo.bus.publish(salinfo.name, self.sal_name, index, copy_message(data), self._keep_history)
        return copy_message(data)

    async def write(self) -> BaseMsgType:
        """Write the current data and return a copy of it.

        Raises
        ------
        RuntimeError
            If the SalInfo is not running.
        """
        return self._write()

    async def set_write(self, *, force_output: bool | None = None, **kwargs: Any) -> SetWriteResult:
        """Set fields and write the data if something changed (events) or always (telemetry).

        Parameters
        ----------
        force_output : `bool` or `None`
            True: write even if nothing changed; False: write only if something changed;
            None: the topic's default (False for events, True for telemetry).
        **kwargs
            Fields to set (see `set`).

        Returns
        -------
        result : `SetWriteResult`
            What changed and what was written.
        """
        did_change = self.set(**kwargs)
        if force_output is None:
            force_output = self.default_force_output
        if did_change or force_output:
            return SetWriteResult(did_change=did_change, was_written=True, data=self._write())
        return SetWriteResult(did_change=did_change, was_written=False, data=copy_message(self._data))


class ControllerEvent(WriteTopic):
    """An event writer (``evt_<name>`` of a `Controller`); `set_write` writes only changes by default."""

    default_force_output = False

    def __init__(self, salinfo: SalInfo, name: str) -> None:
        super().__init__(salinfo, name, "event")


class ControllerTelemetry(WriteTopic):
    """A telemetry writer (``tel_<name>`` of a `Controller`)."""

    def __init__(self, salinfo: SalInfo, name: str) -> None:
        super().__init__(salinfo, name, "telemetry")


class CommandInfo:
    """The acknowledgements of one command sent by a `RemoteCommand`.

    Parameters
    ----------
    remote_command : `RemoteCommand`
        The sender.
    seq_num : `int`
        The command's ``private_seqNum``.
    """

    def __init__(self, remote_command: RemoteCommand, seq_num: int) -> None:
        self.remote_command = remote_command
        self.seq_num = seq_num
        self.last_ackcmd: BaseMsgType | None = None
        self.done = False
        self._acks: collections.deque[BaseMsgType] = collections.deque()
        self._waiter: asyncio.Future | None = None
        self._close_result: str | None = None

    def add_ackcmd(self, ackcmd: BaseMsgType) -> None:
        """Queue an ack (called by the SalInfo)."""
        if ackcmd.ack in DONE_ACK_CODES:
            self.done = True
        self._acks.append(ackcmd)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self, reason: str) -> None:
        """Make current and future waits fail with an `AckError` (SalInfo closing)."""
        self._close_result = reason
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _make_noack(self, result: str) -> BaseMsgType:
        return self.remote_command.salinfo.make_ackcmd(
            private_seqNum=self.seq_num, ack=SalRetCode.CMD_NOACK, result=result
        )

    async def next_ackcmd(self, timeout: float, wait_done: bool) -> BaseMsgType:
        """Return the next ack (or the final one if ``wait_done``).

        Each CMD_INPROGRESS extends the deadline by its ``timeout``.

        Raises
        ------
        AckError
            If the returned ack is a failure.
        AckTimeoutError
            If no suitable ack arrives in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self._acks:
                ackcmd = self._acks.popleft()
                self.last_ackcmd = ackcmd
                if ackcmd.ack == SalRetCode.CMD_INPROGRESS and ackcmd.timeout > 0:
                    deadline += ackcmd.timeout
                if not wait_done or ackcmd.ack in DONE_ACK_CODES:
                    if ackcmd.ack in FAILED_ACK_CODES:
                        raise AckError(msg="Command failed", ackcmd=ackcmd)
                    return ackcmd
            if self._close_result is not None:
                raise AckError(msg=self._close_result, ackcmd=self._make_noack(self._close_result))
            remaining = deadline - loop.time()
            self._waiter = loop.create_future()
            try:
                if remaining <= 0:
                    raise TimeoutError()
                async with asyncio.timeout(remaining):
                    await self._waiter
            except TimeoutError:
                if self._acks or self._close_result is not None:
                    continue
                last_ackcmd = self.last_ackcmd
                if last_ackcmd is None:
                    last_ackcmd = self._make_noack("No command acknowledgement seen")
                raise AckTimeoutError(
                    msg="Timed out waiting for command acknowledgement", ackcmd=last_ackcmd
                ) from None
            finally:
                self._waiter = None


class RemoteCommand(WriteTopic):
    """A command sender (``cmd_<name>`` of a `Remote`)."""

    def __init__(self, salinfo: SalInfo, name: str) -> None:
        super().__init__(salinfo, name, "command")
        salinfo._wants_acks = True

    def set(self, **kwargs: Any) -> bool:
        """Reset `data` to defaults, then set the given fields (None: keep the default).

        Returns
        -------
        did_change : `bool`
            True if any field differs from the previous data.

        Raises
        ------
        AttributeError
            If a field name is unknown.
        """
        old = self._data
        self._data = self.DataType()
        self._has_data = False
        super().set(**kwargs)
        return any(
            not values_equal(getattr(old, name), getattr(self._data, name))
            for name in self.DataType.topic_field_names
        )

    async def start(
        self, data: BaseMsgType | None = None, timeout: float = 3600, wait_done: bool = True
    ) -> BaseMsgType:
        """Send the command and wait for its acknowledgement.

        Parameters
        ----------
        data : `BaseMsgType` or `None`
            Command data; the current `data` if None.
        timeout : `float`
            Time limit (s) for the ack; extended by each CMD_INPROGRESS ack's ``timeout``.
        wait_done : `bool`
            True: return the final ack; False: return the next ack of any kind.

        Returns
        -------
        ackcmd : ``AckCmdType``
            The ack.

        Raises
        ------
        AckError
            If the ack is a failure (FAILED, ABORTED, NOACK, NOPERM, STALLED or TIMEOUT).
        AckTimeoutError
            If no ack arrives in time.
        RuntimeError
            If the SalInfo is not running.
        """
        if data is not None:
            self.data = data
        salinfo = self.salinfo
        salinfo.assert_running()
        seq_num = salinfo.bus.next_cmd_seq_num()
        cmd = self._data
        coerce_message(cmd)
        now = current_tai()
        cmd.private_sndStamp = now
        cmd.private_efdStamp = now
        cmd.private_kafkaStamp = now
        cmd.private_seqNum = seq_num
        cmd.private_identity = salinfo.identity
        cmd.private_origin = salinfo.domain.origin
        index = salinfo.index
        if salinfo.indexed:
            if index != 0:
                cmd.salIndex = index
            else:
                index = cmd.salIndex
        cmd_info = CommandInfo(self, seq_num)
        salinfo._running_cmds[seq_num] = cmd_info
        salinfo.bus.publish(salinfo.name, self.sal_name, index, copy_message(cmd), False)
        return await cmd_info.next_ackcmd(timeout=timeout, wait_done=wait_done)

    async def set_start(self, timeout: float = 3600, wait_done: bool = True, **kwargs: Any) -> BaseMsgType:
        """`set` the fields, then `start` the command (see `start` for the parameters)."""
        self.set(**kwargs)
        return await self.start(timeout=timeout, wait_done=wait_done)

    async def next_ackcmd(
        self, ackcmd: BaseMsgType, timeout: float = 3600, wait_done: bool = True
    ) -> BaseMsgType:
        """Wait for the next (or final) ack of a command started with ``wait_done=False``.

        Parameters
        ----------
        ackcmd : ``AckCmdType``
            An ack of the command (its ``private_seqNum`` identifies the command).
        timeout : `float`
            Time limit (s); extended by CMD_INPROGRESS acks.
        wait_done : `bool`
            True: return the final ack; False: the next ack.

        Raises
        ------
        RuntimeError
            If the command is unknown or its final ack was already received.
        AckError, AckTimeoutError
            As for `start`.
        """
        cmd_info = self.salinfo._running_cmds.get(ackcmd.private_seqNum)
        if cmd_info is None:
            raise RuntimeError(f"Command private_seqNum={ackcmd.private_seqNum} is unknown or finished")
        return await cmd_info.next_ackcmd(timeout=timeout, wait_done=wait_done)

    async def write(self) -> BaseMsgType:
        """Not supported: use `start`."""
        raise NotImplementedError("Use start to send a command")

    async def set_write(self, *, force_output: bool | None = None, **kwargs: Any) -> SetWriteResult:
        """Not supported: use `set_start`."""
        raise NotImplementedError("Use set_start to send a command")
