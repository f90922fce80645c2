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

"""Test helpers: ack assertions, topic subname, and a `BaseScriptTestCase` mixin without Kafka.

May import: the standard library, PyYAML, astropy.time and the runtime modules.
"""

from __future__ import annotations

__all__ = [
    "assertRaisesAckError",
    "assertRaisesAckTimeoutError",
    "set_test_topic_subname",
    "set_random_lsst_dds_partition_prefix",
    "BaseScriptTestCase",
]

import abc
import asyncio
import base64
import contextlib
import os
import secrets
import time
import types
import warnings
from collections.abc import AsyncIterator, Iterable
from typing import Any

import yaml

from .base import AckError, AckTimeoutError, index_generator
from .enums import ScriptState


@contextlib.asynccontextmanager
async def assertRaisesAckError(
    ack: int | None = None, error: int | None = None, result_contains: str | None = None
) -> AsyncIterator[None]:
    """Assert that the body raises `AckError` (not `AckTimeoutError`) with the given fields.

    Parameters
    ----------
    ack : `int` or `None`
        Expected ``ackcmd.ack`` (not checked if None).
    error : `int` or `None`
        Expected ``ackcmd.error`` (not checked if None).
    result_contains : `str` or `None`
        Text expected in ``ackcmd.result`` (not checked if None).
    """
    try:
        yield
    except AckTimeoutError as e:
        raise AssertionError(f"Expected AckError, got AckTimeoutError: {e}") from e
    except AckError as e:
        if ack is not None and e.ackcmd.ack != ack:
            raise AssertionError(f"ack={e.ackcmd.ack} instead of {ack}") from e
        if error is not None and e.ackcmd.error != error:
            raise AssertionError(f"error={e.ackcmd.error} instead of {error}") from e
        if result_contains is not None and result_contains not in e.ackcmd.result:
            raise AssertionError(f"result={e.ackcmd.result!r} does not contain {result_contains!r}") from e
    else:
        raise AssertionError("AckError not raised")


@contextlib.asynccontextmanager
async def assertRaisesAckTimeoutError(
    ack: int | None = None, error: int | None = None
) -> AsyncIterator[None]:
    """Assert that the body raises `AckTimeoutError` with the given fields.

    Parameters
    ----------
    ack : `int` or `None`
        Expected ``ackcmd.ack`` of the last ack seen (CMD_NOACK if none); not checked if None.
    error : `int` or `None`
        Expected ``ackcmd.error``; not checked if None.
    """
    try:
        yield
    except AckTimeoutError as e:
        if ack is not None and e.ackcmd.ack != ack:
            raise AssertionError(f"ack={e.ackcmd.ack} instead of {ack}") from e
        if error is not None and e.ackcmd.error != error:
            raise AssertionError(f"error={e.ackcmd.error} instead of {error}") from e
    else:
        raise AssertionError("AckTimeoutError not raised")


def set_test_topic_subname(randomize: bool = False) -> None:
    """Set env ``LSST_TOPIC_SUBNAME`` to ``test_<id>`` (the pid, or random bytes if ``randomize``)."""
    raw = secrets.token_bytes(12) if randomize else os.getpid().to_bytes(8, "big")
    encoded = base64.urlsafe_b64encode(raw).decode().replace("=", "").replace("-", "")
    os.environ["LSST_TOPIC_SUBNAME"] = f"test_{encoded}"


def set_random_lsst_dds_partition_prefix() -> None:
    """Deprecated alias of ``set_test_topic_subname(randomize=True)``."""
    warnings.warn("Use set_test_topic_subname", DeprecationWarning, stacklevel=2)
    set_test_topic_subname(randomize=True)


class BaseScriptTestCase(metaclass=abc.ABCMeta):
    """Mixin for testing SAL Scripts, to use with `unittest.IsolatedAsyncioTestCase`.

    Subclasses implement `basic_make_script`, which sets ``self.script`` and returns the objects to
    start and close (each with ``start_task`` and ``close()``).

    Attributes
    ----------
    script_shutdown_delay : `float` or `None`
        If not None, ``script.shutdown_delay`` and ``script.final_state_delay`` are set to this value
        (seconds) in `make_script`, to make tests faster. None keeps the salobj delays (1 s + 0.3 s).
    """

    _index_iter = index_generator()
    script_shutdown_delay: float | None = None
    script: Any

    @abc.abstractmethod
    async def basic_make_script(self, index: int) -> Iterable[Any]:
        """Make the script (set ``self.script``) and return the items to start and close."""
        raise NotImplementedError()

    async def close(self) -> None:  # noqa: B027 (an optional hook)
        """Called before the items are closed (a hook)."""

    def next_index(self) -> int:
        """Return the next script index (1, 2, ...)."""
        return next(self._index_iter)

    @contextlib.asynccontextmanager
    async def make_script(
        self,
        log_level: int = 20,
        timeout: float = 90,
        verbose: bool = False,
        randomize_topic_subname: bool = False,
    ) -> AsyncIterator[None]:
        """Make and start the script and its items; close them on exit.

        Parameters
        ----------
        log_level : `int`
            Log level of the script.
        timeout : `float`
            Time limit (s) to start the items.
        verbose : `bool`
            Print timing information.
        randomize_topic_subname : `bool`
            Set a random ``LSST_TOPIC_SUBNAME``.
        """
        set_test_topic_subname(randomize=randomize_topic_subname)
        items = list(await self.basic_make_script(index=self.next_index()))
        if self.script_shutdown_delay is not None:
            self.script.shutdown_delay = self.script_shutdown_delay
            self.script.final_state_delay = self.script_shutdown_delay
        self.script.log.setLevel(log_level)
        try:
            await self.wait_for(
                asyncio.gather(*[item.start_task for item in items]),
                timeout=timeout,
                description="start items",
                verbose=verbose,
            )
            yield
        finally:
            await self.close()
            for item in items:
                await item.close()

    async def configure_script(self, **kwargs: Any) -> types.SimpleNamespace:
        """Configure the script directly (no bus), set a group id, and return the config.

        Parameters
        ----------
        **kwargs
            Configuration (YAML-dumped into the configure command).

        Raises
        ------
        ExpectedError
            If configuration fails.
        """
        script = self.script
        await script.set_state(ScriptState.UNCONFIGURED)
        config_data = script.cmd_configure.DataType()
        config_data.config = yaml.safe_dump(kwargs) if kwargs else ""
        await script.do_configure(config_data)
        assert script.state.state == ScriptState.CONFIGURED, script.state_name
        if hasattr(script, "cmd_setGroupId"):
            from astropy.time import Time

            group_id_data = script.cmd_setGroupId.DataType(groupId=Time.now().isot)
            await script.do_setGroupId(group_id_data)
        return types.SimpleNamespace(**kwargs)

    async def run_script(self, expected_final_state: ScriptState = ScriptState.DONE) -> None:
        """Run the script directly (no bus), wait until it is done and check the final state."""
        script = self.script
        await script.do_run(script.cmd_run.DataType())
        await script.done_task
        assert script.state.state == expected_final_state, (
            f"final state={script.state_name} instead of {ScriptState(expected_final_state).name}; "
            f"reason={script.state.reason!r}"
        )

    async def check_executable(self, script_path: str | os.PathLike) -> None:
        """Check that a script file exists and is executable.

        If env ``LSST_SAL_SCRIPT_CHECK_BIN`` is set, also run ``<script> <index> --schema`` as a
        process and check that it exits 0 (the embedded bus is per process, so the salobj check of
        the first state event over the bus cannot be done).
        """
        set_test_topic_subname()
        path = os.path.abspath(os.fspath(script_path))
        assert os.path.isfile(path), f"{path} is not a file"
        assert os.access(path, os.X_OK), f"{path} is not executable"
        if os.environ.get("LSST_SAL_SCRIPT_CHECK_BIN") is None:
            return
        process = await asyncio.create_subprocess_exec(
            path,
            str(self.next_index()),
            "--schema",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
        except TimeoutError:
            process.terminate()
            raise
        assert process.returncode == 0, f"{path} --schema failed: {stderr.decode()}"

    async def wait_for(self, coro: Any, timeout: float, description: str, verbose: bool = False) -> Any:
        """`asyncio.wait_for` with optional timing printout."""
        t0 = time.monotonic()
        if verbose:
            print(f"{description} starting")
        result = await asyncio.wait_for(coro, timeout=timeout)
        if verbose:
            print(f"{description} took {time.monotonic() - t0:0.2f} s")
        return result
