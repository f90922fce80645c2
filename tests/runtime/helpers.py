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

"""Helpers shared by the runtime tests: a Test CSC, a minimal script and event collectors.

May import: the runtime package, the standard library, PyYAML.
"""

__all__ = [
    "FAST_SHUTDOWN",
    "TestCsc",
    "SimpleScript",
    "EventCollector",
    "make_remote",
]

import asyncio
from typing import Any

import yaml

from lsst.ts.makecalibrations import runtime as salobj

#: Shutdown delay (s) used by most tests instead of salobj's 1 s.
FAST_SHUTDOWN = 0.01


class TestCsc(salobj.BaseCsc):
    """A CSC for the ``Test`` component.

    setScalars/setArrays (ENABLED only) write the ``scalars``/``arrays`` event and telemetry;
    wait acks in progress then sleeps ``duration``; fault calls `fault`.
    """

    __test__ = False  # not a pytest test class
    version = "1.2.3"

    def __init__(self, index: int = 1, **kwargs: Any) -> None:
        super().__init__("Test", index, **kwargs)
        self.shutdown_delay = FAST_SHUTDOWN
        self.fail_end_enable = False

    async def do_setScalars(self, data: Any) -> None:
        self.assert_enabled("setScalars")
        fields = {name: getattr(data, name) for name in ("boolean0", "int0", "float0", "string0")}
        await self.evt_scalars.set_write(**fields)
        await self.tel_scalars.set_write(**fields)

    async def do_setArrays(self, data: Any) -> None:
        self.assert_enabled("setArrays")
        fields = {name: getattr(data, name) for name in ("boolean0", "int0", "float0")}
        await self.evt_arrays.set_write(**fields)
        await self.tel_arrays.set_write(**fields)

    async def do_wait(self, data: Any) -> None:
        await self.cmd_wait.ack_in_progress(data, timeout=data.duration + 1, result="waiting")
        await asyncio.sleep(data.duration)

    async def do_fault(self, data: Any) -> None:
        await self.fault(code=42, report="Faulted on purpose", traceback="tb")

    async def end_enable(self, data: Any) -> None:
        if self.fail_end_enable:
            raise RuntimeError("end_enable failed on purpose")


class SimpleScript(salobj.BaseScript):
    """A script whose run passes named checkpoints and can fail in run or cleanup.

    Configuration: ``wait_time`` (s), ``checkpoints`` (names, in order), ``fail_run`` ("" | "expected" |
    "unexpected"), ``fail_cleanup`` (bool).
    """

    def __init__(self, index: int) -> None:
        super().__init__(index=index, descr="A simple test script", help="help text")
        self.config: Any = None
        self.cleanup_called = False
        self.run_started = False
        self.shutdown_delay = FAST_SHUTDOWN
        self.final_state_delay = FAST_SHUTDOWN

    @classmethod
    def get_schema(cls) -> dict[str, Any]:
        return yaml.safe_load(
            """
            $schema: http://json-schema.org/draft-07/schema#
            type: object
            properties:
              wait_time: {type: number, default: 0, minimum: 0}
              checkpoints:
                type: array
                items: {type: string}
                default: ["start", "end"]
              fail_run: {type: string, enum: ["", "expected", "unexpected"], default: ""}
              fail_cleanup: {type: boolean, default: false}
              duration: {type: number, default: 12.5}
            additionalProperties: false
            """
        )

    async def configure(self, config: Any) -> None:
        self.config = config

    def set_metadata(self, metadata: Any) -> None:
        metadata.duration = self.config.duration
        metadata.nimages = len(self.config.checkpoints)

    async def run(self) -> None:
        self.run_started = True
        for name in self.config.checkpoints:
            await self.checkpoint(name)
            await asyncio.sleep(self.config.wait_time)
        if self.config.fail_run == "expected":
            raise salobj.ExpectedError("expected failure")
        if self.config.fail_run == "unexpected":
            raise RuntimeError("unexpected failure")

    async def cleanup(self) -> None:
        self.cleanup_called = True
        if self.config.fail_cleanup:
            raise salobj.ExpectedError("cleanup failed on purpose")


class EventCollector:
    """Collect every message of a reader with a callback."""

    def __init__(self, topic: Any) -> None:
        self.messages: list[Any] = []
        self.topic = topic
        topic.callback = self._callback

    async def _callback(self, data: Any) -> None:
        self.messages.append(data)

    def values(self, field: str) -> list[Any]:
        """Return the values of one field of the collected messages."""
        return [getattr(msg, field) for msg in self.messages]


async def make_remote(
    domain: salobj.Domain, name: str, index: int | None = None, **kwargs: Any
) -> salobj.Remote:
    """Make a Remote and wait until it is started."""
    remote = salobj.Remote(domain, name, index, **kwargs)
    await remote.start_task
    return remote
