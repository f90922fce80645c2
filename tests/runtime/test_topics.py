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

"""Read and write topic semantics: history, queues, callbacks, set/set_write, copies, the per-loop bus."""

import asyncio
import math
from collections.abc import AsyncIterator
from unittest import mock

import pytest

from lsst.ts.makecalibrations import runtime as salobj
from tests.runtime.helpers import FAST_SHUTDOWN, make_remote


@pytest.fixture
async def controller() -> AsyncIterator[salobj.Controller]:
    controller = salobj.Controller("Test", 1)
    controller.shutdown_delay = FAST_SHUTDOWN
    await controller.start_task
    yield controller
    await controller.close()


@pytest.fixture
async def domain() -> AsyncIterator[salobj.Domain]:
    domain = salobj.Domain()
    yield domain
    await domain.close()


async def test_late_joiner_history(controller: salobj.Controller, domain: salobj.Domain) -> None:
    await controller.evt_scalars.set_write(int0=1)
    await controller.evt_scalars.set_write(int0=2)
    await controller.tel_scalars.set_write(int0=3)
    remote = await make_remote(domain, "Test", 1)
    # Events: only the most recent message is delivered to a late joiner.
    assert remote.evt_scalars.get().int0 == 2
    assert remote.evt_scalars.nqueued == 1
    assert (await remote.evt_scalars.next(flush=False, timeout=1)).int0 == 2
    # Telemetry has no history.
    assert remote.tel_scalars.get() is None
    assert not remote.tel_scalars.has_data
    with pytest.raises(TimeoutError):
        await remote.tel_scalars.aget(timeout=0.01)
    # evt_max_history=0: no history either.
    no_history = await make_remote(domain, "Test", 1, evt_max_history=0)
    assert no_history.evt_scalars.get() is None
    assert no_history.evt_scalars.nqueued == 0
    # New messages reach everybody.
    await controller.evt_scalars.set_write(int0=4)
    await controller.tel_scalars.set_write(int0=5)
    assert no_history.evt_scalars.get().int0 == 4
    assert remote.tel_scalars.get().int0 == 5


async def test_index_zero_reads_all_indices(domain: salobj.Domain) -> None:
    controllers = [salobj.Controller("Test", i) for i in (1, 2)]
    for c in controllers:
        c.shutdown_delay = FAST_SHUTDOWN
    await asyncio.gather(*[c.start_task for c in controllers])
    await controllers[1].evt_scalars.set_write(int0=20)
    await controllers[0].evt_scalars.set_write(int0=10)
    remote_all = await make_remote(domain, "Test", 0)
    remote_2 = await make_remote(domain, "Test", 2)
    # Index 0: the most recent message of any index; index 2: only its own.
    assert remote_all.evt_scalars.get().int0 == 10
    assert remote_2.evt_scalars.get().int0 == 20
    await controllers[1].evt_scalars.set_write(int0=21)
    await controllers[0].evt_scalars.set_write(int0=11)
    assert remote_2.evt_scalars.get().int0 == 21
    queued = [remote_all.evt_scalars.get_oldest() for _ in range(remote_all.evt_scalars.nqueued)]
    assert [(msg.salIndex, msg.int0) for msg in queued] == [(1, 10), (2, 21), (1, 11)]
    await asyncio.gather(*[c.close() for c in controllers])


async def test_include_exclude_readonly(domain: salobj.Domain) -> None:
    remote = salobj.Remote(domain, "Test", 1, include=["scalars", "summaryState"], start=False)
    assert hasattr(remote, "evt_scalars") and hasattr(remote, "tel_scalars")
    assert hasattr(remote, "evt_summaryState")
    assert not hasattr(remote, "evt_arrays") and not hasattr(remote, "tel_arrays")
    assert not hasattr(remote, "evt_heartbeat")
    assert hasattr(remote, "cmd_setArrays")  # commands are not filtered
    remote = salobj.Remote(domain, "Test", 1, exclude=["arrays"], readonly=True, start=False)
    assert hasattr(remote, "evt_scalars") and not hasattr(remote, "evt_arrays")
    assert hasattr(remote, "evt_heartbeat")
    assert not hasattr(remote, "cmd_setScalars")
    with pytest.raises(ValueError):
        salobj.Remote(domain, "Test", 1, include=["scalars"], exclude=["arrays"])
    with pytest.raises(ValueError):
        salobj.Remote(domain, "CCCamera", 1)
    with pytest.raises(ValueError):
        salobj.Remote(domain, "NoSuchComponent", 0)


async def test_concurrent_next_waiters_share_a_message(
    controller: salobj.Controller, domain: salobj.Domain
) -> None:
    remote = await make_remote(domain, "Test", 1)
    topic = remote.evt_scalars
    waiters = [asyncio.create_task(topic.next(flush=False, timeout=5)) for _ in range(3)]
    await asyncio.sleep(0.01)
    await controller.evt_scalars.set_write(int0=1)
    results = await asyncio.gather(*waiters)
    assert [r.int0 for r in results] == [1, 1, 1]
    assert results[0] is results[1] is results[2]
    assert topic.nqueued == 0
    # A message already queued is popped by only one caller.
    await controller.evt_scalars.set_write(int0=2)
    assert topic.nqueued == 1
    first = await topic.next(flush=False, timeout=1)
    assert first.int0 == 2
    with pytest.raises(TimeoutError):
        await topic.next(flush=False, timeout=0.01)


async def test_next_timeout_does_not_lose_messages(
    controller: salobj.Controller, domain: salobj.Domain
) -> None:
    remote = await make_remote(domain, "Test", 1)
    with pytest.raises(TimeoutError):
        await remote.evt_scalars.next(flush=False, timeout=0.01)
    await controller.evt_scalars.set_write(int0=3)
    assert remote.evt_scalars.nqueued == 1
    assert (await remote.evt_scalars.next(flush=False, timeout=1)).int0 == 3


async def test_flush_get_aget_get_oldest(controller: salobj.Controller, domain: salobj.Domain) -> None:
    remote = salobj.Remote(domain, "Test", 1, start=False)
    with pytest.raises(RuntimeError, match="Not started"):
        remote.evt_scalars.get()
    await remote.start()
    topic = remote.evt_scalars
    aget_task = asyncio.create_task(topic.aget(timeout=5))
    await asyncio.sleep(0.01)
    for i in range(3):
        await controller.evt_scalars.set_write(int0=i)
    assert (await aget_task).int0 == 0
    assert topic.nqueued == 3  # aget does not consume
    assert (await topic.aget()).int0 == 2
    assert topic.get_oldest().int0 == 0
    topic.flush()
    assert topic.nqueued == 0
    assert topic.get_oldest() is None
    assert topic.get().int0 == 2  # flush keeps the current message
    await controller.evt_scalars.set_write(int0=3)
    next_task = asyncio.create_task(topic.next(flush=True, timeout=5))
    await asyncio.sleep(0.01)
    assert not next_task.done()  # the queued message was flushed
    await controller.evt_scalars.set_write(int0=4)
    assert (await next_task).int0 == 4


async def test_callback_excludes_reading(controller: salobj.Controller, domain: salobj.Domain) -> None:
    remote = await make_remote(domain, "Test", 1)
    topic = remote.evt_scalars
    await controller.evt_scalars.set_write(int0=1)
    assert topic.nqueued == 1
    received = []

    async def callback(data: salobj.BaseMsgType) -> None:
        received.append(data.int0)

    topic.callback = callback
    assert topic.nqueued == 0  # setting a callback clears the queue
    for coro_func in (
        lambda: topic.next(flush=False, timeout=0.01),
        lambda: topic.aget(timeout=0.01),
    ):
        with pytest.raises(RuntimeError):
            await coro_func()
    with pytest.raises(RuntimeError):
        topic.flush()
    with pytest.raises(RuntimeError):
        topic.get_oldest()
    await controller.evt_scalars.set_write(int0=2)
    await controller.evt_scalars.set_write(int0=3)
    await asyncio.sleep(0.01)
    assert received == [2, 3]
    assert topic.get().int0 == 3  # get still works
    topic.callback = None
    await controller.evt_scalars.set_write(int0=4)
    await asyncio.sleep(0.01)
    assert received == [2, 3]
    assert (await topic.next(flush=False, timeout=1)).int0 == 4


async def test_sync_callback_warns_and_errors_are_logged(
    controller: salobj.Controller, domain: salobj.Domain, caplog: pytest.LogCaptureFixture
) -> None:
    remote = await make_remote(domain, "Test", 1)
    received = []

    def sync_callback(data: salobj.BaseMsgType) -> None:
        received.append(data.int0)
        if data.int0 == 2:
            raise ValueError("callback error")
        if data.int0 == 3:
            raise salobj.ExpectedError("expected callback error")

    with pytest.warns(DeprecationWarning):
        remote.evt_scalars.callback = sync_callback
    for i in (1, 2, 3, 4):
        await controller.evt_scalars.set_write(int0=i)
    await asyncio.sleep(0.01)
    assert received == [1, 2, 3, 4]  # the loop survives callback errors
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "callback error" in str(errors[0].exc_info[1])


async def test_queue_overflow_drops_oldest(controller: salobj.Controller, domain: salobj.Domain) -> None:
    remote = await make_remote(domain, "Test", 1)
    topic = remote.evt_scalars
    assert topic.queue_len == salobj.DEFAULT_QUEUE_LEN == 100
    for i in range(105):
        await controller.evt_scalars.set_write(int0=i)
    assert topic.nqueued == 100
    assert topic.dropped_count == 5
    assert topic.get_oldest().int0 == 5
    small = await make_remote(domain, "Test", 1, queue_len=3, evt_max_history=0)
    for i in range(5):
        await controller.evt_scalars.set_write(int0=100 + i)
    assert [small.evt_scalars.get_oldest().int0 for _ in range(3)] == [102, 103, 104]


async def test_set_and_set_write(controller: salobj.Controller, domain: salobj.Domain) -> None:
    remote = await make_remote(domain, "Test", 1)
    evt = controller.evt_scalars
    assert not evt.has_data
    result = await evt.set_write(int0=0)  # the first set always counts as a change
    assert (result.did_change, result.was_written) == (True, True)
    assert evt.has_data
    result = await evt.set_write(int0=0)
    assert (result.did_change, result.was_written) == (False, False)
    result = await evt.set_write(int0=0, force_output=True)
    assert (result.did_change, result.was_written) == (False, True)
    result = await evt.set_write(int0=1, force_output=False)  # False means "only if changed"
    assert (result.did_change, result.was_written) == (True, True)
    assert result.data.int0 == 1
    assert evt.set(float0=math.nan) is True
    assert evt.set(float0=math.nan) is False  # NaN equals NaN
    assert evt.set(string0=None) is False  # None keeps the value
    with pytest.raises(AttributeError):
        evt.set(no_such_field=1)
    assert evt.set(int0=[1, 2][0]) is False
    arrays = controller.evt_arrays
    assert arrays.set(int0=[1, 2, 3, 4, 5]) is True
    assert arrays.set(int0=(1, 2, 3, 4, 5)) is False
    with pytest.raises(ValueError):
        arrays.set(int0=[1, 2])
    # Telemetry is written even if nothing changed.
    tel = controller.tel_scalars
    for _ in range(3):
        result = await tel.set_write(int0=7)
        assert result.was_written
    await asyncio.sleep(0)
    assert remote.tel_scalars.nqueued == 3
    # Written message: private fields are stamped.
    written = await evt.write()
    assert written.private_identity == "Test:1"
    assert written.private_origin == controller.domain.origin
    assert written.salIndex == 1
    assert written.private_sndStamp == pytest.approx(salobj.current_tai(), abs=5)
    received = remote.evt_scalars.get()
    assert received.private_seqNum == written.private_seqNum
    assert received.private_rcvStamp >= received.private_sndStamp


async def test_readers_do_not_share_mutable_messages(
    controller: salobj.Controller, domain: salobj.Domain
) -> None:
    remote1 = await make_remote(domain, "Test", 1)
    remote2 = await make_remote(domain, "Test", 1)
    written = await controller.evt_arrays.set_write(int0=[1, 2, 3, 4, 5])
    msg1 = remote1.evt_arrays.get()
    msg2 = remote2.evt_arrays.get()
    assert msg1 is not msg2
    msg1.int0[0] = 99
    msg1.float0 = [9.0] * 5
    assert msg2.int0 == [1, 2, 3, 4, 5]
    assert controller.evt_arrays.data.int0 == [1, 2, 3, 4, 5]
    assert written.data.int0 == [1, 2, 3, 4, 5]
    controller.evt_arrays.data.int0[1] = 77
    assert msg2.int0[1] == 2
    # History given to late joiners is not affected either.
    late = await make_remote(domain, "Test", 1)
    assert late.evt_arrays.get().int0 == [1, 2, 3, 4, 5]


async def test_write_coerces_and_rejects(controller: salobj.Controller, domain: salobj.Domain) -> None:
    remote = await make_remote(domain, "Test", 1)
    controller.evt_scalars.set(float0=mock.MagicMock(), int0=salobj.State.FAULT, boolean0=0)
    await controller.evt_scalars.write()
    msg = remote.evt_scalars.get()
    assert type(msg.float0) is float and msg.float0 == 1.0  # as float(MagicMock())
    assert type(msg.int0) is int and msg.int0 == 3
    assert msg.boolean0 is False
    controller.evt_scalars.set(string0=3)
    with pytest.raises(TypeError, match="string0"):
        await controller.evt_scalars.write()


async def test_write_requires_running(controller: salobj.Controller) -> None:
    other = salobj.Controller("Test", 2)
    other.shutdown_delay = FAST_SHUTDOWN
    with pytest.raises(RuntimeError, match="not started"):
        await other.evt_scalars.set_write(int0=1)
    await other.start_task
    await other.close()
    with pytest.raises(RuntimeError, match="closed"):
        await other.evt_scalars.write()


async def test_domains_in_one_loop_share_the_bus(domain: salobj.Domain) -> None:
    other = salobj.Domain()
    assert other.bus is domain.bus is salobj.get_bus()
    assert other.origin == domain.origin
    await other.close()


def test_each_event_loop_has_its_own_bus() -> None:
    async def write_then_read(expect_history: bool) -> tuple[object, bool]:
        controller = salobj.Controller("Test", 9)
        controller.shutdown_delay = 0
        await controller.start_task
        domain = salobj.Domain()
        remote = await make_remote(domain, "Test", 9)
        had_history = remote.evt_scalars.has_data
        await controller.evt_scalars.set_write(int0=5)
        await controller.close()
        await domain.close()
        return salobj.get_bus(), had_history

    bus1, history1 = asyncio.run(write_then_read(False))
    bus2, history2 = asyncio.run(write_then_read(False))
    assert bus1 is not bus2
    assert not history1 and not history2  # the second loop did not see the first loop's event


async def test_close_cancels_waiters(controller: salobj.Controller, domain: salobj.Domain) -> None:
    remote = await make_remote(domain, "Test", 1)
    task = asyncio.create_task(remote.evt_scalars.next(flush=False))
    await asyncio.sleep(0.01)
    await remote.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    await controller.evt_scalars.set_write(int0=1)  # no error writing with a closed reader
    assert remote.evt_scalars.get() is None
