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

"""BaseScript command line: ``--schema`` output, amain exit codes (in-process and as a real process)."""

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
from unittest import mock

import pytest
import yaml

from lsst.ts.makecalibrations import runtime as salobj
from lsst.ts.makecalibrations.runtime import ScriptState
from tests.helpers import wait_until
from tests.runtime.helpers import SimpleScript, make_remote

REPO_ROOT = pathlib.Path(__file__).parents[2]

SCRIPT_TEXT = f'''#!/usr/bin/env python
"""A self-driving test script: env SCRIPT_TEST_MODE = done | expected | stop | long | (empty: wait)."""
import asyncio
import os
import sys

import yaml

sys.path.insert(0, {str(REPO_ROOT)!r})
from tests.runtime.helpers import SimpleScript  # noqa: E402


class SelfDriving(SimpleScript):
    async def start(self):
        await super().start()
        print("started", flush=True)
        mode = os.environ.get("SCRIPT_TEST_MODE", "")
        if mode:
            self.drive_task = asyncio.create_task(self.drive(mode))

    async def cleanup(self):
        print(f"cleanup in {{self.state_name}}", flush=True)

    async def drive(self, mode):
        fail_run = "expected" if mode == "expected" else ""
        wait_time = 60 if mode == "long" else 0
        config = self.cmd_configure.DataType(
            config=yaml.safe_dump({{"fail_run": fail_run, "wait_time": wait_time}})
        )
        await self.do_configure(config)
        if mode == "stop":
            await self.do_stop(self.cmd_stop.DataType())
            return
        await self.do_setGroupId(self.cmd_setGroupId.DataType(groupId="g"))
        if mode == "long":
            print("running", flush=True)
        await self.do_run(self.cmd_run.DataType())


asyncio.run(SelfDriving.amain())
'''


@pytest.fixture
def script_path(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "self_driving_script.py"
    path.write_text(SCRIPT_TEXT)
    path.chmod(0o755)
    return path


def run_script_process(path: pathlib.Path, *args: str, mode: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, SCRIPT_TEST_MODE=mode)
    return subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_schema_option_prints_yaml(script_path: pathlib.Path) -> None:
    result = run_script_process(script_path, "5", "--schema")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == SimpleScript.get_schema()
    assert "started" not in result.stdout  # no script was made


def test_index_is_required(script_path: pathlib.Path) -> None:
    result = run_script_process(script_path, "--schema")
    assert result.returncode == 2
    assert "index" in result.stderr


@pytest.mark.parametrize("mode, returncode", [("done", 0), ("stop", 0), ("expected", 1)])
def test_process_exit_codes(script_path: pathlib.Path, mode: str, returncode: int) -> None:
    result = run_script_process(script_path, "7", mode=mode)
    assert result.returncode == returncode, result.stderr
    assert result.stdout.startswith("started")


def signal_process(script_path: pathlib.Path, index: str, mode: str, wait_for: list[str], signals: int):
    """Start the self-driving script, wait for the ``wait_for`` lines, send ``signals`` SIGTERMs at once;
    return the exit code and the rest of the output."""
    env = dict(os.environ, SCRIPT_TEST_MODE=mode)
    with subprocess.Popen(
        [sys.executable, str(script_path), index],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            for line in wait_for:
                assert process.stdout.readline().strip() == line
            for _ in range(signals):
                process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=30)
            return returncode, process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()


def test_sigterm_ends_the_process(script_path: pathlib.Path) -> None:
    returncode, _ = signal_process(script_path, "8", "", ["started"], 1)
    # SIGTERM stops the script as the stop command does: STOPPED, which amain counts as a success.
    assert returncode == 0


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_while_running_stops_like_the_stop_command(script_path: pathlib.Path, signals: int) -> None:
    """SIGTERM (as the ScriptQueue sends) stops a running script: cleanup runs, STOPPED, exit code 0.
    A second signal at once (a process-group signal seen twice) is the same interrupt."""
    returncode, rest = signal_process(script_path, "9", "long", ["started", "running"], signals)
    assert returncode == 0
    assert "cleanup in STOPPING" in rest


async def test_amain_in_process(capsys: pytest.CaptureFixture) -> None:
    with mock.patch.object(sys, "argv", ["script", "31", "--schema"]):
        await SimpleScript.amain()
    assert yaml.safe_load(capsys.readouterr().out) == SimpleScript.get_schema()
    with pytest.raises(RuntimeError, match="index"):
        await SimpleScript.amain(index=3)

    domain = salobj.Domain()
    remote = await make_remote(domain, "Script", 31)
    for config, expected_state, exit_code in [
        ("{}", ScriptState.DONE, None),
        ("fail_run: expected", ScriptState.FAILED, 1),
        ("fail_cleanup: true", ScriptState.FAILED, 1),
    ]:
        remote.evt_state.flush()
        # amain must run in the test's own task: SystemExit raised inside a Task escapes the loop.
        driver = asyncio.create_task(drive_script(remote, config))
        with mock.patch.object(sys, "argv", ["script", "31"]):
            if exit_code is None:
                assert await SimpleScript.amain() is None
            else:
                with pytest.raises(SystemExit) as exc_info:
                    await SimpleScript.amain()
                assert exc_info.value.code == exit_code
        await driver
        assert remote.evt_state.get().state == expected_state
    await domain.close()


async def drive_script(remote: salobj.Remote, config: str) -> None:
    """Configure, set the group id and run a script over the bus."""
    state = await remote.evt_state.next(flush=False, timeout=5)
    assert state.state == ScriptState.UNCONFIGURED
    await remote.cmd_configure.set_start(config=config, timeout=5)
    await remote.cmd_setGroupId.set_start(groupId="g", timeout=5)
    await remote.cmd_run.start(timeout=5)


async def test_signal_handler_only_in_main_thread() -> None:
    errors: list[BaseException] = []

    def make_in_thread() -> None:
        async def make() -> None:
            script = SimpleScript(index=40)
            await script.start_task
            await script.close()

        try:
            asyncio.run(make())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    await asyncio.to_thread(make_in_thread)
    assert errors == []
    # In the main thread the handler ends the script (done_task gets a result).
    script = SimpleScript(index=41)
    await script.start_task
    # Never send SIGTERM to the test process unless a handler is installed.
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    os.kill(os.getpid(), signal.SIGTERM)
    await wait_until(lambda: script.done_task.done(), timeout=5)
    assert script.done_task.result() is None
    await script.close()
