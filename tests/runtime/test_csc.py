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

"""BaseCsc: start sequence, summary state machine, wrong-state errors, fault(), set_summary_state."""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lsst.ts.makecalibrations import runtime as salobj
from lsst.ts.makecalibrations.runtime import SalRetCode, State
from tests.helpers import wait_until
from tests.runtime.helpers import FAST_SHUTDOWN, EventCollector, TestCsc, make_remote


@pytest.fixture
async def domain() -> AsyncIterator[salobj.Domain]:
    domain = salobj.Domain()
    yield domain
    await domain.close()


async def test_start_events_and_initial_state(domain: salobj.Domain) -> None:
    remote = await make_remote(domain, "Test", 1, evt_max_history=0)
    states = EventCollector(remote.evt_summaryState)
    csc = TestCsc(initial_state=State.ENABLED, simulation_mode=0)
    await csc.start_task
    assert csc.summary_state == State.ENABLED
    await wait_until(lambda: len(states.messages) == 3)
    assert states.values("summaryState") == [State.STANDBY, State.DISABLED, State.ENABLED]
    late = await make_remote(domain, "Test", 1)
    assert late.evt_summaryState.get().summaryState == State.ENABLED
    assert late.evt_errorCode.get().errorCode == 0
    assert late.evt_simulationMode.get().mode == 0
    assert late.evt_softwareVersions.get().cscVersion == "1.2.3"
    assert late.evt_logLevel.get().level == logging.INFO
    assert late.evt_heartbeat.has_data
    await csc.close()


async def test_heartbeat_repeats(domain: salobj.Domain) -> None:
    csc = TestCsc()
    csc.heartbeat_interval = 0.01
    remote = await make_remote(domain, "Test", 1, evt_max_history=0)
    await csc.start_task
    for _ in range(3):
        await remote.evt_heartbeat.next(flush=False, timeout=1)
    await csc.close()


@pytest.mark.parametrize(
    "bad", [{"initial_state": State.FAULT}, {"initial_state": 99}, {"simulation_mode": 1}]
)
async def test_invalid_constructor_arguments(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TestCsc(**bad)


async def test_missing_version_or_callbacks() -> None:
    class NoVersion(salobj.BaseCsc):
        pass

    with pytest.raises(RuntimeError, match="version"):
        NoVersion("CCOODS")

    class MissingCallbacks(salobj.BaseCsc):
        version = "1"

    with pytest.raises(TypeError, match="setScalars"):
        MissingCallbacks("Test", 1)

    class ExtraCallback(TestCsc):
        async def do_no_such_command(self, data: Any) -> None:
            pass

    with pytest.raises(TypeError, match="no_such_command"):
        ExtraCallback()


async def test_allow_missing_callbacks(domain: salobj.Domain) -> None:
    class Partial(salobj.BaseCsc):
        version = "1"

    csc = Partial("Test", 4, allow_missing_callbacks=True)
    csc.shutdown_delay = FAST_SHUTDOWN
    remote = await make_remote(domain, "Test", 4)
    await csc.start_task
    async with salobj.assertRaisesAckError(ack=SalRetCode.CMD_FAILED, result_contains="not supported"):
        await remote.cmd_setScalars.start(timeout=5)
    await csc.close()


async def test_transitions_and_wrong_states(domain: salobj.Domain) -> None:
    csc = TestCsc()
    remote = await make_remote(domain, "Test", 1)
    await csc.start_task
    assert csc.summary_state == State.STANDBY
    async with salobj.assertRaisesAckError(
        ack=SalRetCode.CMD_FAILED, result_contains="enable not allowed in state <State.STANDBY: 5>"
    ):
        await remote.cmd_enable.start(timeout=5)
    async with salobj.assertRaisesAckError(
        result_contains="setScalars not allowed in state=<State.STANDBY: 5>"
    ):
        await remote.cmd_setScalars.start(timeout=5)
    for cmd, expected in [
        ("start", State.DISABLED),
        ("enable", State.ENABLED),
        ("disable", State.DISABLED),
        ("standby", State.STANDBY),
    ]:
        await getattr(remote, f"cmd_{cmd}").start(timeout=5)
        assert csc.summary_state == expected
        assert remote.evt_summaryState.get().summaryState == expected
    for cmd in ("disable", "standby", "enable"):
        async with salobj.assertRaisesAckError(result_contains=f"{cmd} not allowed in state"):
            await getattr(remote, f"cmd_{cmd}").start(timeout=5)
    await remote.cmd_exitControl.start(timeout=5)
    assert csc.summary_state == State.OFFLINE
    await asyncio.wait_for(csc.done_task, timeout=5)
    assert not csc.salinfo.isopen


async def test_failing_end_hook_reverts_state(domain: salobj.Domain) -> None:
    csc = TestCsc(initial_state=State.DISABLED)
    remote = await make_remote(domain, "Test", 1)
    await csc.start_task
    csc.fail_end_enable = True
    async with salobj.assertRaisesAckError(result_contains="end_enable failed on purpose"):
        await remote.cmd_enable.start(timeout=5)
    assert csc.summary_state == State.DISABLED
    assert remote.evt_summaryState.get().summaryState == State.DISABLED
    await csc.close()


async def test_fault_and_recovery(domain: salobj.Domain) -> None:
    csc = TestCsc(initial_state=State.ENABLED)
    remote = await make_remote(domain, "Test", 1)
    await csc.start_task
    error_codes = EventCollector(remote.evt_errorCode)
    await remote.cmd_fault.start(timeout=5)
    assert csc.summary_state == State.FAULT
    assert remote.evt_summaryState.get().summaryState == State.FAULT
    await wait_until(lambda: len(error_codes.messages) == 1)
    err = error_codes.messages[0]
    assert (err.errorCode, err.errorReport, err.traceback) == (42, "Faulted on purpose", "tb")
    with pytest.raises(salobj.ExpectedError, match="errorCode=42"):
        csc.assert_enabled("work")
    async with salobj.assertRaisesAckError(
        result_contains="setScalars not allowed in state=<State.FAULT: 3>"
    ):
        await remote.cmd_setScalars.start(timeout=5)
    # errorCode is written even if unchanged (force_output)
    await csc.fault(code=42, report="Faulted on purpose", traceback="tb")
    await wait_until(lambda: len(error_codes.messages) == 2)
    remote.evt_errorCode.callback = None
    states = await salobj.set_summary_state(remote, State.ENABLED, timeout=5)
    assert states == [State.FAULT, State.STANDBY, State.DISABLED, State.ENABLED]
    assert csc.summary_state == State.ENABLED
    assert remote.evt_errorCode.get().errorCode == 0  # reset on leaving FAULT
    await csc.close()


async def test_set_summary_state_chains(domain: salobj.Domain) -> None:
    csc = TestCsc()
    remote = await make_remote(domain, "Test", 1)
    await csc.start_task
    assert await salobj.set_summary_state(remote, State.ENABLED, override="x.yaml", timeout=5) == [
        State.STANDBY,
        State.DISABLED,
        State.ENABLED,
    ]
    assert await salobj.set_summary_state(remote, State.STANDBY, timeout=5) == [
        State.ENABLED,
        State.DISABLED,
        State.STANDBY,
    ]
    assert await salobj.set_summary_state(remote, State.STANDBY, timeout=5) == [State.STANDBY]
    with pytest.raises(ValueError):
        await salobj.set_summary_state(remote, State.FAULT)
    no_csc = await make_remote(domain, "Test", 7)
    with pytest.raises(RuntimeError, match="summaryState"):
        await salobj.set_summary_state(no_csc, State.ENABLED, timeout=0.01)
    await csc.close()


def test_state_transition_dict() -> None:
    transitions = salobj.make_state_transition_dict()
    assert transitions[(State.STANDBY, State.ENABLED)] == [
        ("start", State.DISABLED),
        ("enable", State.ENABLED),
    ]
    assert transitions[(State.ENABLED, State.OFFLINE)] == [
        ("disable", State.DISABLED),
        ("standby", State.STANDBY),
        ("exitControl", State.OFFLINE),
    ]
    assert transitions[(State.OFFLINE, State.STANDBY)] == [("enterControl", State.STANDBY)]
    assert transitions[(State.FAULT, State.DISABLED)] == [
        ("standby", State.STANDBY),
        ("start", State.DISABLED),
    ]
    assert transitions[(State.DISABLED, State.DISABLED)] == []


async def test_enter_control_for_components_that_have_it(domain: salobj.Domain) -> None:
    class Camera(salobj.BaseCsc):
        version = "2"

    camera = Camera("CCCamera", initial_state=State.OFFLINE, allow_missing_callbacks=True)
    camera.shutdown_delay = FAST_SHUTDOWN
    remote = await make_remote(domain, "CCCamera")
    await camera.start_task
    assert remote.evt_summaryState.get().summaryState == State.OFFLINE
    states = await salobj.set_summary_state(remote, State.ENABLED, timeout=5)
    assert states == [State.OFFLINE, State.STANDBY, State.DISABLED, State.ENABLED]
    assert camera.summary_state == State.ENABLED
    await camera.close()
    # A component without enterControl has no such command.
    assert "enterControl" not in salobj.get_component_spec("Test").commands


async def test_log_messages_and_set_log_level(domain: salobj.Domain) -> None:
    csc = TestCsc()
    remote = await make_remote(domain, "Test", 1, evt_max_history=0)
    await csc.start_task
    csc.log.info("hello %s", "world")
    msg = await remote.evt_logMessage.next(flush=False, timeout=1)
    assert (msg.message, msg.level, msg.name) == ("hello world", logging.INFO, "Test.1")
    assert msg.functionName == "test_log_messages_and_set_log_level"
    await remote.cmd_setLogLevel.set_start(level=logging.DEBUG, timeout=5)
    assert (await remote.evt_logLevel.next(flush=False, timeout=1)).level == logging.DEBUG
    csc.log.debug("debug now")
    assert (await remote.evt_logMessage.next(flush=False, timeout=1)).message == "debug now"
    await csc.close()
    csc.log.info("after close")  # no error, nothing written
    assert remote.evt_logMessage.nqueued == 0


async def test_log_records_before_start_are_buffered(domain: salobj.Domain) -> None:
    remote = await make_remote(domain, "Test", 1, evt_max_history=0)
    csc = TestCsc()
    for i in range(12):
        csc.log.warning(f"early {i}")
    await csc.start_task
    messages = [remote.evt_logMessage.get_oldest().message for _ in range(remote.evt_logMessage.nqueued)]
    assert messages == [f"early {i}" for i in range(2, 12)]  # at most 10 kept
    await csc.close()


async def test_log_records_from_other_threads(domain: salobj.Domain) -> None:
    csc = TestCsc()
    remote = await make_remote(domain, "Test", 1, evt_max_history=0)
    await csc.start_task
    await asyncio.to_thread(csc.log.warning, "from a thread")
    msg = await remote.evt_logMessage.next(flush=False, timeout=1)
    assert msg.message == "from a thread"
    await csc.close()


async def test_controller_context_manager_and_done_task() -> None:
    async with TestCsc(index=3) as csc:
        assert csc.salinfo.running
    assert csc.done_task.done()
    assert not csc.salinfo.isopen
    await csc.close()  # idempotent


async def test_close_with_exception_sets_done_task() -> None:
    csc = TestCsc(index=5)
    await csc.start_task
    await csc.close(exception=RuntimeError("closing badly"))
    with pytest.raises(RuntimeError, match="closing badly"):
        await csc.done_task
