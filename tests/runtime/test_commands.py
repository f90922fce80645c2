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

"""Command round trips: callback outcome -> ack, in-progress acks, next_ackcmd, timeouts, ack routing."""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lsst.ts.makecalibrations import runtime as salobj
from lsst.ts.makecalibrations.runtime import SalRetCode
from tests.helpers import wait_until
from tests.runtime.helpers import FAST_SHUTDOWN, EventCollector, make_remote


class Pair:
    """A plain Controller of Test:1 and a Remote of it in another domain."""

    def __init__(self, controller: salobj.Controller, remote: salobj.Remote, domain: salobj.Domain) -> None:
        self.controller = controller
        self.remote = remote
        self.domain = domain


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    controller = salobj.Controller("Test", 1)
    controller.shutdown_delay = FAST_SHUTDOWN
    await controller.start_task
    domain = salobj.Domain()
    remote = await make_remote(domain, "Test", 1)
    yield Pair(controller, remote, domain)
    await domain.close()
    await controller.close()


async def _return_none(data: Any) -> None:
    return None


@pytest.mark.parametrize(
    "outcome, ack, error, result",
    [
        ("none", SalRetCode.CMD_COMPLETE, 0, "Done"),
        ("timeout", SalRetCode.CMD_TIMEOUT, 1, "Timeout"),
        ("cancelled", SalRetCode.CMD_ABORTED, 1, "Aborted"),
        ("runtime", SalRetCode.CMD_FAILED, 1, "Failed: went wrong"),
        ("expected", SalRetCode.CMD_FAILED, 1, "Failed: not allowed now"),
    ],
)
async def test_callback_outcome_to_ack(pair: Pair, outcome: str, ack: int, error: int, result: str) -> None:
    async def callback(data: Any) -> None:
        if outcome == "timeout":
            raise TimeoutError()
        if outcome == "cancelled":
            raise asyncio.CancelledError()
        if outcome == "runtime":
            raise RuntimeError("went wrong")
        if outcome == "expected":
            raise salobj.ExpectedError("not allowed now")

    pair.controller.cmd_fault.callback = callback
    if ack == SalRetCode.CMD_COMPLETE:
        ackcmd = await pair.remote.cmd_fault.start(timeout=5)
    else:
        with pytest.raises(salobj.AckError) as exc_info:
            await pair.remote.cmd_fault.start(timeout=5)
        assert not isinstance(exc_info.value, salobj.AckTimeoutError)
        ackcmd = exc_info.value.ackcmd
    assert (ackcmd.ack, ackcmd.error, ackcmd.result) == (ack, error, result)
    assert ackcmd.identity == pair.domain.default_identity
    assert ackcmd.origin == pair.domain.origin
    assert ackcmd.cmdtype == pair.controller.salinfo.command_names.index("fault")
    assert ackcmd.salIndex == 1


async def test_traceback_logged_only_for_unexpected_errors(pair: Pair) -> None:
    remote = await make_remote(pair.domain, "Test", 1, readonly=True, include=["logMessage"])
    log_messages = EventCollector(remote.evt_logMessage)

    async def fail_expected(data: Any) -> None:
        raise salobj.ExpectedError("quiet")

    async def fail_unexpected(data: Any) -> None:
        raise ValueError("loud")

    pair.controller.cmd_fault.callback = fail_expected
    async with salobj.assertRaisesAckError(ack=SalRetCode.CMD_FAILED, result_contains="quiet"):
        await pair.remote.cmd_fault.start(timeout=5)
    pair.controller.cmd_fault.callback = fail_unexpected
    async with salobj.assertRaisesAckError(ack=SalRetCode.CMD_FAILED, error=1, result_contains="loud"):
        await pair.remote.cmd_fault.start(timeout=5)
    await wait_until(lambda: len(log_messages.messages) > 0)
    assert all("fail_expected" not in msg.message for msg in log_messages.messages)
    loud = [msg for msg in log_messages.messages if "fail_unexpected" in msg.message]
    assert len(loud) == 1
    assert "ValueError: loud" in loud[0].traceback
    assert loud[0].level == logging.ERROR


async def test_returned_ackcmd_is_sent(pair: Pair) -> None:
    async def callback(data: Any) -> Any:
        return pair.controller.salinfo.make_ackcmd(
            private_seqNum=data.private_seqNum, ack=SalRetCode.CMD_COMPLETE, result=f"int0={data.int0}"
        )

    pair.controller.cmd_setScalars.callback = callback
    ackcmd = await pair.remote.cmd_setScalars.set_start(int0=7, timeout=5)
    assert ackcmd.ack == SalRetCode.CMD_COMPLETE
    assert ackcmd.result == "int0=7"

    async def stalled(data: Any) -> Any:
        return pair.controller.salinfo.make_ackcmd(
            private_seqNum=data.private_seqNum, ack=SalRetCode.CMD_STALLED, error=3, result="stuck"
        )

    pair.controller.cmd_setScalars.callback = stalled
    async with salobj.assertRaisesAckError(ack=SalRetCode.CMD_STALLED, error=3, result_contains="stuck"):
        await pair.remote.cmd_setScalars.set_start(int0=8, timeout=5)


async def test_in_progress_then_next_ackcmd(pair: Pair) -> None:
    release = asyncio.Event()

    async def callback(data: Any) -> None:
        await pair.controller.cmd_wait.ack_in_progress(data, timeout=12.5, result='{"job_id": "abc"}')
        await release.wait()

    pair.controller.cmd_wait.callback = callback
    ack1 = await pair.remote.cmd_wait.set_start(duration=1, wait_done=False, timeout=5)
    assert ack1.ack == SalRetCode.CMD_INPROGRESS
    assert ack1.timeout == pytest.approx(12.5)
    assert ack1.result == '{"job_id": "abc"}'
    next_task = asyncio.create_task(pair.remote.cmd_wait.next_ackcmd(ack1, timeout=5))
    await asyncio.sleep(0.01)
    assert not next_task.done()
    release.set()
    ack2 = await next_task
    assert ack2.ack == SalRetCode.CMD_COMPLETE
    assert ack2.private_seqNum == ack1.private_seqNum
    # The final ack was received: the command is finished.
    with pytest.raises(RuntimeError, match=f"private_seqNum={ack1.private_seqNum} is unknown or finished"):
        await pair.remote.cmd_wait.next_ackcmd(ack1, timeout=1)


async def test_next_ackcmd_after_unread_final_ack_raises(pair: Pair) -> None:
    async def callback(data: Any) -> None:
        await pair.controller.cmd_wait.ack_in_progress(data, timeout=1)

    pair.controller.cmd_wait.callback = callback
    ack1 = await pair.remote.cmd_wait.set_start(wait_done=False, timeout=5)
    assert ack1.ack == SalRetCode.CMD_INPROGRESS
    # Let the final ack arrive before anyone asks for it.
    await asyncio.sleep(0.02)
    with pytest.raises(RuntimeError, match="unknown or finished"):
        await pair.remote.cmd_wait.next_ackcmd(ack1, timeout=1)


async def test_wait_done_false_returns_final_ack_if_first(pair: Pair) -> None:
    pair.controller.cmd_wait.callback = _return_none
    ackcmd = await pair.remote.cmd_wait.start(wait_done=False, timeout=5)
    assert ackcmd.ack == SalRetCode.CMD_COMPLETE


async def test_next_ackcmd_wait_done_false(pair: Pair) -> None:
    release = asyncio.Event()

    async def callback(data: Any) -> None:
        await pair.controller.cmd_wait.ack_in_progress(data, timeout=1, result="first")
        await pair.controller.cmd_wait.ack_in_progress(data, timeout=1, result="second")
        await release.wait()

    pair.controller.cmd_wait.callback = callback
    ack1 = await pair.remote.cmd_wait.start(wait_done=False, timeout=5)
    ack2 = await pair.remote.cmd_wait.next_ackcmd(ack1, wait_done=False, timeout=5)
    assert (ack1.result, ack2.result) == ("first", "second")
    release.set()
    ack3 = await pair.remote.cmd_wait.next_ackcmd(ack2, timeout=5)
    assert ack3.ack == SalRetCode.CMD_COMPLETE


async def test_timeout_without_controller_gives_synthetic_noack() -> None:
    domain = salobj.Domain()
    remote = await make_remote(domain, "Test", 3)
    with pytest.raises(salobj.AckTimeoutError) as exc_info:
        await remote.cmd_wait.set_start(duration=1, timeout=0.05)
    ackcmd = exc_info.value.ackcmd
    assert ackcmd.ack == SalRetCode.CMD_NOACK
    assert ackcmd.result == "No command acknowledgement seen"
    assert str(exc_info.value) == (
        "msg='Timed out waiting for command acknowledgement', "
        f"ackcmd=(ackcmd private_seqNum={ackcmd.private_seqNum}, ack=<SalRetCode.CMD_NOACK: -301>, "
        "error=0, result='No command acknowledgement seen')"
    )
    async with salobj.assertRaisesAckTimeoutError(ack=SalRetCode.CMD_NOACK):
        await remote.cmd_wait.start(timeout=0.01)
    await domain.close()


async def test_in_progress_extends_timeout(pair: Pair) -> None:
    async def slow_with_progress(data: Any) -> None:
        await pair.controller.cmd_wait.ack_in_progress(data, timeout=data.duration * 4)
        await asyncio.sleep(data.duration)

    pair.controller.cmd_wait.callback = slow_with_progress
    # The base timeout (0.05 s) is shorter than the command (0.15 s); the in-progress ack extends it.
    ackcmd = await pair.remote.cmd_wait.set_start(duration=0.15, timeout=0.05)
    assert ackcmd.ack == SalRetCode.CMD_COMPLETE

    async def slow_with_short_progress(data: Any) -> None:
        await pair.controller.cmd_wait.ack_in_progress(data, timeout=0.01)
        await asyncio.sleep(data.duration)

    pair.controller.cmd_wait.callback = slow_with_short_progress
    # The timeout error carries the last ack seen (the in-progress one).
    async with salobj.assertRaisesAckTimeoutError(ack=SalRetCode.CMD_INPROGRESS):
        await pair.remote.cmd_wait.set_start(duration=0.3, timeout=0.05)


async def test_acks_only_reach_the_sender(pair: Pair) -> None:
    other_domain = salobj.Domain()
    other_domain.default_identity = "someone-else"
    other = await make_remote(other_domain, "Test", 1)
    seen_identities = []

    async def callback(data: Any) -> None:
        seen_identities.append(data.private_identity)

    pair.controller.cmd_wait.callback = callback
    for _ in range(3):
        await pair.remote.cmd_wait.start(timeout=5)
    assert pair.remote.salinfo.num_acks_received == 3
    assert other.salinfo.num_acks_received == 0
    await other.cmd_wait.start(timeout=5)
    assert other.salinfo.num_acks_received == 1
    assert pair.remote.salinfo.num_acks_received == 3
    assert seen_identities == [pair.domain.default_identity] * 3 + ["someone-else"]
    await other_domain.close()


async def test_controller_identity_is_name_index() -> None:
    csc = salobj.Controller("Test", 5)
    csc.shutdown_delay = FAST_SHUTDOWN
    target = salobj.Controller("Test", 6)
    target.shutdown_delay = FAST_SHUTDOWN
    await asyncio.gather(csc.start_task, target.start_task)
    remote = await make_remote(csc.domain, "Test", 6)
    identities = []

    async def callback(data: Any) -> None:
        identities.append((data.private_identity, data.salIndex))

    target.cmd_wait.callback = callback
    await remote.cmd_wait.start(timeout=5)
    assert identities == [("Test:5", 6)]
    await asyncio.gather(csc.close(), target.close())
    assert not remote.salinfo.isopen  # closed with the controller's domain


async def test_commands_are_serial_unless_allow_multiple(pair: Pair) -> None:
    running = 0
    max_running = 0

    async def callback(data: Any) -> None:
        nonlocal running, max_running
        running += 1
        max_running = max(max_running, running)
        await asyncio.sleep(0.02)
        running -= 1

    cmd = pair.controller.cmd_wait
    cmd.callback = callback
    await asyncio.gather(*[pair.remote.cmd_wait.start(timeout=5) for _ in range(3)])
    assert max_running == 1
    cmd.allow_multiple_callbacks = True
    max_running = 0
    await asyncio.gather(*[pair.remote.cmd_wait.start(timeout=5) for _ in range(3)])
    assert max_running == 3


async def test_indexed_commands_reach_only_their_index() -> None:
    controllers = [salobj.Controller("Test", i) for i in (1, 2)]
    received: dict[int, list[int]] = {1: [], 2: []}
    for controller in controllers:
        controller.shutdown_delay = FAST_SHUTDOWN

        async def callback(data: Any, index: int = controller.salinfo.index) -> None:
            received[index].append(data.int0)

        controller.cmd_setScalars.callback = callback
    await asyncio.gather(*[c.start_task for c in controllers])
    domain = salobj.Domain()
    remote2 = await make_remote(domain, "Test", 2)
    remote_all = await make_remote(domain, "Test", 0)
    await remote2.cmd_setScalars.set_start(int0=22, timeout=5)
    # An index-0 remote must set salIndex itself (as run_one_script does).
    await remote_all.cmd_setScalars.set_start(int0=11, salIndex=1, timeout=5)
    assert received == {1: [11], 2: [22]}
    await domain.close()
    await asyncio.gather(*[c.close() for c in controllers])


async def test_remote_command_set_and_errors(pair: Pair) -> None:
    cmd = pair.remote.cmd_setScalars
    assert cmd.set(int0=3, string0="a") is True
    assert (cmd.data.int0, cmd.data.string0) == (3, "a")
    # set resets the other fields to their defaults
    cmd.set(float0=1.5)
    assert (cmd.data.int0, cmd.data.string0, cmd.data.float0) == (0, "", 1.5)
    cmd.set(float0=None)
    assert cmd.data.float0 == 0.0
    with pytest.raises(AttributeError):
        cmd.set(no_such_field=1)
    with pytest.raises(NotImplementedError):
        await cmd.write()
    with pytest.raises(NotImplementedError):
        await cmd.set_write(int0=1)
    not_started = salobj.Remote(pair.domain, "Test", 1, start=False)
    with pytest.raises(RuntimeError, match="not started"):
        await not_started.cmd_wait.start(timeout=1)


async def test_close_fails_waiting_commands(pair: Pair) -> None:
    async def never(data: Any) -> None:
        await asyncio.sleep(10)

    pair.controller.cmd_wait.callback = never
    task = asyncio.create_task(pair.remote.cmd_wait.start(timeout=5))
    await asyncio.sleep(0.01)
    await pair.remote.close()
    with pytest.raises(salobj.AckError, match="closed"):
        await task


async def test_command_fields_are_coerced(pair: Pair) -> None:
    got = []

    async def callback(data: Any) -> None:
        got.append(data)

    pair.controller.cmd_setScalars.callback = callback
    await pair.remote.cmd_setScalars.set_start(int0=salobj.State.ENABLED, float0=3, boolean0=1, timeout=5)
    data = got[0]
    assert type(data.int0) is int and data.int0 == 2
    assert type(data.float0) is float and data.float0 == 3.0
    assert data.boolean0 is True
    with pytest.raises(TypeError, match="string0"):
        await pair.remote.cmd_setScalars.set_start(string0=5, timeout=5)
    with pytest.raises(TypeError, match="int0"):
        await pair.remote.cmd_setScalars.set_start(int0=2.5, timeout=5)
