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

"""BaseScript: start events, configure, run outcomes, checkpoints (pause/resume/stop), exit and delays."""

import asyncio
import logging
import time
import unittest
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest
import yaml

from lsst.ts.makecalibrations import runtime as salobj
from lsst.ts.makecalibrations.runtime import SalRetCode, ScriptState
from tests.helpers import wait_until
from tests.runtime.helpers import FAST_SHUTDOWN, EventCollector, SimpleScript, TestCsc, make_remote

INDEX = 17


class Harness:
    """A SimpleScript plus a Remote of it (in another domain) that records every state."""

    def __init__(self, script: SimpleScript, remote: salobj.Remote) -> None:
        self.script = script
        self.remote = remote
        self.states = EventCollector(remote.evt_state)

    def state_values(self) -> list[ScriptState]:
        return [ScriptState(s) for s in self.states.values("state")]

    async def configure(self, **kwargs: Any) -> Any:
        config = yaml.safe_dump(kwargs) if kwargs else ""
        return await self.remote.cmd_configure.set_start(config=config, timeout=5)

    async def configure_and_group(self, **kwargs: Any) -> None:
        await self.configure(**kwargs)
        await self.remote.cmd_setGroupId.set_start(groupId="group-1", timeout=5)

    async def wait_state(self, state: ScriptState) -> None:
        await wait_until(lambda: self.script.state.state == state)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    domain = salobj.Domain()
    remote = await make_remote(domain, "Script", INDEX, evt_max_history=0)
    harness = Harness(SimpleScript(index=INDEX), remote)
    await harness.script.start_task
    await wait_until(lambda: harness.state_values() == [ScriptState.UNCONFIGURED])
    harness.states.messages.clear()
    yield harness
    await harness.script.close()
    await domain.close()
    harness.script.log.setLevel(logging.NOTSET)  # loggers are global: do not leak a level to other tests


async def test_start_events() -> None:
    domain = salobj.Domain()
    remote = await make_remote(domain, "Script", INDEX, evt_max_history=0)
    script = SimpleScript(index=INDEX)
    await script.start_task
    descr = await remote.evt_description.next(flush=False, timeout=1)
    assert (descr.classname, descr.description, descr.help, descr.remotes) == (
        "SimpleScript",
        "A simple test script",
        "help text",
        "",
    )
    state = await remote.evt_state.next(flush=False, timeout=1)
    assert (state.state, state.groupId, state.reason) == (ScriptState.UNCONFIGURED, "", "")
    assert (await remote.evt_logLevel.next(flush=False, timeout=1)).level == logging.INFO
    assert remote.evt_heartbeat.has_data
    assert script.timestamps[ScriptState.UNCONFIGURED] == pytest.approx(salobj.current_tai(), abs=5)
    await script.close()
    await domain.close()


async def test_description_lists_remotes_made_in_init() -> None:
    class ScriptWithRemotes(SimpleScript):
        def __init__(self, index: int) -> None:
            super().__init__(index)
            self.test_remote = salobj.Remote(self.domain, "Test", 2, include=["summaryState"])
            self.camera_remote = salobj.Remote(self.domain, "CCCamera", include=[])

    script = ScriptWithRemotes(index=INDEX)
    await script.start_task
    assert script.test_remote.salinfo.started
    assert script.evt_description.data.remotes == "CCCamera:0,Test:2"
    # Commands from the script's remotes carry the script's identity.
    csc = TestCsc(index=2)
    await csc.start_task
    ackcmd = await script.test_remote.cmd_wait.set_start(duration=0, timeout=5)
    assert ackcmd.identity == f"Script:{INDEX}"
    await script.close()
    assert not script.test_remote.salinfo.isopen
    await csc.close()


async def test_index_zero_is_rejected() -> None:
    with pytest.raises(ValueError, match="nonzero"):
        SimpleScript(index=0)


async def test_configure_success(harness: Harness) -> None:
    remote = harness.remote
    await remote.cmd_configure.set_start(
        config="wait_time: 0\nduration: 3.5\nmetadata: {ignored: true}",
        pauseCheckpoint="p.*",
        stopCheckpoint="s.*",
        blockId="BLOCK-T7",
        logLevel=logging.DEBUG,
        timeout=5,
    )
    script = harness.script
    assert script.state.state == ScriptState.CONFIGURED
    assert script.config.wait_time == 0
    assert script.config.checkpoints == ["start", "end"]  # default filled in
    assert not hasattr(script.config, "metadata")
    assert script.obs_id == "BLOCK-T7"
    metadata = await remote.evt_metadata.next(flush=False, timeout=1)
    assert (metadata.duration, metadata.nimages) == (3.5, 2)
    assert (metadata.coordinateSystem, metadata.rotationSystem, metadata.dome) == (
        salobj.MetadataCoordSys.NONE,
        salobj.MetadataRotSys.NONE,
        salobj.MetadataDome.EITHER,
    )
    checkpoints = await remote.evt_checkpoints.next(flush=False, timeout=1)
    assert (checkpoints.pause, checkpoints.stop) == ("p.*", "s.*")
    assert remote.evt_logLevel.get().level == logging.DEBUG
    await wait_until(lambda: len(harness.states.messages) == 1)
    assert harness.states.messages[0].blockId == "BLOCK-T7"
    async with salobj.assertRaisesAckError(
        ack=SalRetCode.CMD_FAILED,
        result_contains="Cannot configure: state=CONFIGURED instead of UNCONFIGURED",
    ):
        await harness.configure()


async def test_configure_failure(harness: Harness) -> None:
    async with salobj.assertRaisesAckError(ack=SalRetCode.CMD_FAILED, error=1) as _:
        await harness.configure(no_such_key=1)
    script = harness.script
    assert script.state.state == ScriptState.CONFIGURE_FAILED
    assert script.state.reason.startswith("config(no_such_key: 1\n) failed: ")
    assert "no_such_key" in script.state.reason
    await asyncio.wait_for(script.done_task, timeout=5)
    # The final state equals the current one, so no second state event is written.
    assert harness.state_values() == [ScriptState.CONFIGURE_FAILED]
    assert harness.states.messages[-1].reason == script.state.reason
    assert not script.cleanup_called


async def test_configure_failure_ack_result() -> None:
    domain = salobj.Domain()
    remote = await make_remote(domain, "Script", INDEX)
    script = SimpleScript(index=INDEX)
    await script.start_task
    with pytest.raises(salobj.AckError) as exc_info:
        await remote.cmd_configure.set_start(config="wait_time: -1", timeout=5)
    assert exc_info.value.ackcmd.result.startswith("Failed: config(wait_time: -1) failed: ")
    await script.done_task
    await domain.close()


async def test_bad_checkpoint_regex_fails_configure_command(harness: Harness) -> None:
    async with salobj.assertRaisesAckError(result_contains="not a valid regex"):
        await harness.remote.cmd_configure.set_start(pauseCheckpoint="(", timeout=5)
    # The configuration itself succeeded; the script stays UNCONFIGURED.
    assert harness.script.state.state == ScriptState.UNCONFIGURED


async def test_run_requires_group_id_and_configured(harness: Harness) -> None:
    async with salobj.assertRaisesAckError(
        result_contains="Cannot run: state=UNCONFIGURED instead of CONFIGURED"
    ):
        await harness.remote.cmd_run.start(timeout=5)
    async with salobj.assertRaisesAckError(result_contains="Cannot setGroupId: state=UNCONFIGURED"):
        await harness.remote.cmd_setGroupId.set_start(groupId="x", timeout=5)
    await harness.configure()
    async with salobj.assertRaisesAckError(result_contains="Group ID not set"):
        await harness.remote.cmd_run.start(timeout=5)


async def test_successful_run(harness: Harness) -> None:
    await harness.configure_and_group(checkpoints=["one", "two", "three"])
    ackcmd = await harness.remote.cmd_run.start(timeout=5)
    assert ackcmd.ack == SalRetCode.CMD_COMPLETE
    script = harness.script
    assert script.state.state == ScriptState.DONE  # the run ack comes after the final state
    assert harness.state_values() == [
        ScriptState.CONFIGURED,
        ScriptState.CONFIGURED,
        ScriptState.RUNNING,
        ScriptState.RUNNING,
        ScriptState.RUNNING,
        ScriptState.RUNNING,
        ScriptState.ENDING,
        ScriptState.DONE,
    ]
    checkpoint_events = harness.states.messages[3:6]
    assert [(m.lastCheckpoint, m.numCheckpoints) for m in checkpoint_events] == [
        ("one", 1),
        ("two", 2),
        ("three", 3),
    ]
    assert harness.states.messages[1].groupId == "group-1"
    assert script.cleanup_called
    assert set(script.timestamps) >= {ScriptState.RUNNING, ScriptState.ENDING, ScriptState.DONE}
    await asyncio.wait_for(script.done_task, timeout=5)


async def test_pause_and_resume(harness: Harness) -> None:
    await harness.remote.cmd_configure.set_start(
        config=yaml.safe_dump({"checkpoints": ["start", "pause here", "end"]}),
        pauseCheckpoint="pause.*",
        timeout=5,
    )
    await harness.remote.cmd_setGroupId.set_start(groupId="g", timeout=5)
    run_task = asyncio.create_task(harness.remote.cmd_run.start(timeout=5))
    await harness.wait_state(ScriptState.PAUSED)
    assert harness.script.last_checkpoint == "pause here"
    assert harness.script.num_checkpoints == 2
    await asyncio.sleep(0.02)
    assert harness.script.state.state == ScriptState.PAUSED  # stays paused
    await harness.remote.cmd_resume.start(timeout=5)
    await run_task
    assert harness.script.state.state == ScriptState.DONE
    assert ScriptState.PAUSED in harness.state_values()
    paused_index = harness.state_values().index(ScriptState.PAUSED)
    assert harness.state_values()[paused_index + 1] == ScriptState.RUNNING
    async with salobj.assertRaisesAckError(result_contains="Cannot resume"):
        await harness.remote.cmd_resume.start(timeout=5)


async def test_stop_while_paused(harness: Harness) -> None:
    await harness.remote.cmd_configure.set_start(pauseCheckpoint="end", timeout=5)
    await harness.remote.cmd_setGroupId.set_start(groupId="g", timeout=5)
    run_task = asyncio.create_task(harness.remote.cmd_run.start(timeout=5))
    await harness.wait_state(ScriptState.PAUSED)
    await harness.remote.cmd_stop.start(timeout=5)
    ackcmd = await run_task
    assert ackcmd.ack == SalRetCode.CMD_COMPLETE  # run is acked COMPLETE even when stopped
    assert harness.state_values()[-2:] == [ScriptState.STOPPING, ScriptState.STOPPED]
    assert harness.script.cleanup_called
    # stop is a no-op once exiting
    await harness.remote.cmd_stop.start(timeout=5)


async def test_stop_checkpoint(harness: Harness) -> None:
    await harness.remote.cmd_configure.set_start(
        config="checkpoints: [a, b, c]", stopCheckpoint="b", timeout=5
    )
    await harness.remote.cmd_setGroupId.set_start(groupId="g", timeout=5)
    await harness.remote.cmd_run.start(timeout=5)
    assert harness.script.state.state == ScriptState.STOPPED
    assert harness.script.last_checkpoint == "b"
    assert harness.state_values()[-2:] == [ScriptState.STOPPING, ScriptState.STOPPED]


async def test_empty_checkpoint_name_quirk(harness: Harness) -> None:
    # The default stop regex "" fullmatches an empty name: the script stops.
    await harness.configure_and_group(checkpoints=[""])
    await harness.remote.cmd_run.start(timeout=5)
    assert harness.script.state.state == ScriptState.STOPPED


async def test_empty_checkpoint_name_pauses_with_stop_regex_set() -> None:
    domain = salobj.Domain()
    remote = await make_remote(domain, "Script", INDEX)
    script = SimpleScript(index=INDEX)
    await script.start_task
    await remote.cmd_configure.set_start(config="checkpoints: ['']", stopCheckpoint="never", timeout=5)
    await remote.cmd_setGroupId.set_start(groupId="g", timeout=5)
    run_task = asyncio.create_task(remote.cmd_run.start(timeout=5))
    await wait_until(lambda: script.state.state == ScriptState.PAUSED)
    await remote.cmd_resume.start(timeout=5)
    await run_task
    assert script.state.state == ScriptState.DONE
    await script.done_task
    await domain.close()


@pytest.mark.parametrize("configured", [False, True])
async def test_stop_before_run(harness: Harness, configured: bool) -> None:
    if configured:
        await harness.configure()
    await harness.remote.cmd_stop.start(timeout=5)
    script = harness.script
    assert script.state.state == ScriptState.STOPPED
    assert harness.state_values()[-2:] == [ScriptState.STOPPING, ScriptState.STOPPED]
    assert not script.cleanup_called and not script.run_started
    await asyncio.wait_for(script.done_task, timeout=5)
    async with salobj.assertRaisesAckTimeoutError():
        await harness.remote.cmd_run.start(timeout=0.05)  # the script is gone


async def test_run_raises_expected_error(harness: Harness) -> None:
    log_remote = await make_remote(harness.remote.domain, "Script", INDEX, include=["logMessage"])
    messages = EventCollector(log_remote.evt_logMessage)
    await harness.configure_and_group(fail_run="expected")
    ackcmd = await harness.remote.cmd_run.start(timeout=5)
    assert ackcmd.ack == SalRetCode.CMD_COMPLETE
    script = harness.script
    assert script.state.state == ScriptState.FAILED
    assert script.state.reason == "Error in run: expected failure"
    assert harness.state_values()[-2:] == [ScriptState.FAILING, ScriptState.FAILED]
    assert script.cleanup_called
    await wait_until(lambda: any("final state" in m.message for m in messages.messages))
    assert not any(m.traceback for m in messages.messages)


async def test_run_raises_unexpected_error(harness: Harness) -> None:
    log_remote = await make_remote(harness.remote.domain, "Script", INDEX, include=["logMessage"])
    messages = EventCollector(log_remote.evt_logMessage)
    await harness.configure_and_group(fail_run="unexpected")
    await harness.remote.cmd_run.start(timeout=5)
    assert harness.script.state.state == ScriptState.FAILED
    assert harness.script.state.reason == "Error in run: unexpected failure"
    await wait_until(lambda: any(m.message == "Error in run" for m in messages.messages))
    error = next(m for m in messages.messages if m.message == "Error in run")
    assert "RuntimeError: unexpected failure" in error.traceback


async def test_cleanup_failure(harness: Harness) -> None:
    await harness.configure_and_group(fail_cleanup=True)
    await harness.remote.cmd_run.start(timeout=5)
    script = harness.script
    assert script.state.state == ScriptState.FAILED
    assert script.state.reason == "failed in _exit: cleanup failed on purpose"
    with pytest.raises(salobj.ExpectedError, match="cleanup failed on purpose"):
        await asyncio.wait_for(script.done_task, timeout=5)


async def test_cleanup_failure_keeps_run_reason(harness: Harness) -> None:
    await harness.configure_and_group(fail_cleanup=True, fail_run="expected")
    await harness.remote.cmd_run.start(timeout=5)
    assert (
        harness.script.state.reason
        == "Error in run: expected failure; failed in _exit: cleanup failed on purpose"
    )
    with pytest.raises(salobj.ExpectedError):
        await harness.script.done_task


async def test_group_ids(harness: Harness) -> None:
    script = harness.script
    with pytest.raises(RuntimeError):
        script.next_supplemented_group_id()
    await harness.configure_and_group()
    assert script.group_id == "group-1"
    assert [script.next_supplemented_group_id() for _ in range(3)] == ["group-1#1", "group-1#2", "group-1#3"]
    await harness.remote.cmd_setGroupId.set_start(groupId="group-2", timeout=5)
    assert script.next_supplemented_group_id() == "group-2#1"
    await wait_until(lambda: len(harness.states.messages) == 3)
    assert [m.groupId for m in harness.states.messages] == ["", "group-1", "group-2"]


async def test_set_checkpoints_command(harness: Harness) -> None:
    await harness.remote.cmd_setCheckpoints.set_start(pause="x", stop="y", timeout=5)
    assert (harness.script.checkpoints.pause, harness.script.checkpoints.stop) == ("x", "y")
    async with salobj.assertRaisesAckError(result_contains="not a valid regex"):
        await harness.remote.cmd_setCheckpoints.set_start(pause="[", timeout=5)


async def test_checkpoint_outside_run_raises(harness: Harness) -> None:
    with pytest.raises(RuntimeError, match="RUNNING"):
        await harness.script.checkpoint("nope")


async def test_obs_id_setter_is_ignored(harness: Harness) -> None:
    with pytest.warns(DeprecationWarning):
        harness.script.obs_id = "something"
    assert harness.script.obs_id == ""


async def test_metadata_values_are_coerced(harness: Harness) -> None:
    def set_metadata(metadata: Any) -> None:
        metadata.duration = mock.MagicMock()
        metadata.nimages = 4.0

    harness.script.set_metadata = set_metadata
    await harness.configure()
    metadata = await harness.remote.evt_metadata.next(flush=False, timeout=1)
    assert type(metadata.duration) is float and metadata.duration == 1.0
    assert type(metadata.nimages) is int and metadata.nimages == 4


async def test_salobj_delays_by_default() -> None:
    script = SimpleScript(index=INDEX)
    script.final_state_delay = 0.3
    script.shutdown_delay = salobj.SHUTDOWN_DELAY
    assert salobj.SHUTDOWN_DELAY == 1.0
    await script.start_task
    await script.do_configure(script.cmd_configure.DataType())
    await script.do_setGroupId(script.cmd_setGroupId.DataType(groupId="g"))
    t0 = time.monotonic()
    await script.do_run(script.cmd_run.DataType())
    t_final = time.monotonic()
    assert t_final - t0 >= 0.3  # final_state_delay before the final state
    assert script.state.state == ScriptState.DONE
    assert not script.done_task.done()
    await script.done_task
    assert time.monotonic() - t_final >= 0.99  # SHUTDOWN_DELAY before closing


class TestBaseScriptTestCase(salobj.BaseScriptTestCase, unittest.IsolatedAsyncioTestCase):
    """The BaseScriptTestCase mixin works without Kafka."""

    script_shutdown_delay = FAST_SHUTDOWN

    async def basic_make_script(self, index: int) -> list[Any]:
        self.script = SimpleScript(index=index)
        self.script.shutdown_delay = 5  # overridden by script_shutdown_delay
        return [self.script]

    async def test_configure_and_run(self) -> None:
        async with self.make_script():
            config = await self.configure_script(wait_time=0.001, checkpoints=["a"])
            assert config.wait_time == 0.001
            assert self.script.group_id != ""
            # configure_script can be called again (it resets the state to UNCONFIGURED)
            await self.configure_script(checkpoints=["a", "b"])
            assert self.script.config.checkpoints == ["a", "b"]
            t0 = time.monotonic()
            await self.run_script()
            assert time.monotonic() - t0 < 0.5
            assert self.script.num_checkpoints == 2

    async def test_configure_failure_and_expected_final_state(self) -> None:
        async with self.make_script():
            with pytest.raises(salobj.ExpectedError):
                await self.configure_script(fail_run="no such option")
        async with self.make_script():
            await self.configure_script(fail_run="expected")
            await self.run_script(expected_final_state=ScriptState.FAILED)
        async with self.make_script():
            await self.configure_script(fail_run="expected")
            with pytest.raises(AssertionError, match="final state=FAILED instead of DONE"):
                await self.run_script()

    def test_indices_increase(self) -> None:
        first = self.next_index()
        assert self.next_index() == first + 1
