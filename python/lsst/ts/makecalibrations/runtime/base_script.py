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

"""`BaseScript`: base class of SAL Scripts, with the ScriptState machine (salobj ``base_script.py``).

May import: the standard library, PyYAML and the runtime modules `base`, `enums`, `controller`,
`validator`.
"""

from __future__ import annotations

__all__ = ["SCRIPT_HEARTBEAT_INTERVAL", "SIGNAL_REPEAT_WINDOW", "BaseScript"]

import abc
import argparse
import asyncio
import re
import signal
import sys
import threading
import time
import types
import warnings
from collections.abc import Sequence
from typing import Any

import yaml

from .base import ExpectedError, current_tai
from .controller import Controller
from .enums import MetadataCoordSys, MetadataDome, MetadataRotSys, ScriptState
from .validator import DefaultingValidator

#: Interval (s) between Script heartbeats.
SCRIPT_HEARTBEAT_INTERVAL = 5.0

#: Seconds after a SIGINT/SIGTERM during which another one is the same interrupt (``timeout -s INT``
#: and a terminal's Ctrl-C signal the whole process group, so one interrupt may arrive twice).
SIGNAL_REPEAT_WINDOW = 1.0

_FINAL_STATES = {
    ScriptState.ENDING: ScriptState.DONE,
    ScriptState.STOPPING: ScriptState.STOPPED,
    ScriptState.FAILING: ScriptState.FAILED,
    ScriptState.CONFIGURE_FAILED: ScriptState.CONFIGURE_FAILED,
}


class BaseScript(Controller, abc.ABC):
    """Base class of a SAL Script: ``configure`` -> ``setGroupId`` -> ``run``, with checkpoints.

    Parameters
    ----------
    index : `int`
        Script SAL index (nonzero).
    descr : `str`
        Short description.
    help : `str`
        Detailed help.

    Raises
    ------
    ValueError
        If ``index`` is 0.

    Attributes
    ----------
    final_state_delay : `float`
        Seconds to wait before writing the final state (0.3, as salobj).
    num_checkpoints : `int`
        Number of checkpoints seen.
    last_checkpoint : `str`
        Name of the last checkpoint.
    timestamps : `dict` [`ScriptState`, `float`]
        TAI time each state was entered.
    config_validator : `DefaultingValidator` or `None`
        Validator of the configuration, or None if the script has no schema.
    """

    def __init__(self, index: int, descr: str, help: str = "") -> None:
        if index == 0:
            raise ValueError("index must be nonzero")
        schema = type(self).get_schema()
        self.config_validator = None if schema is None else DefaultingValidator(schema)
        self.final_state_delay = 0.3
        self.num_checkpoints = 0
        self.last_checkpoint = ""
        self.timestamps: dict[ScriptState, float] = {}
        self._run_task: asyncio.Task | None = None
        self._pause_future: asyncio.Future | None = None
        self._is_exiting = False
        self._sub_group_id = 0
        self._heartbeat_task: asyncio.Task | None = None
        self._pause_regex = re.compile("")
        self._stop_regex = re.compile("")
        self._signal_stop_task: asyncio.Future | None = None
        self._first_signal_time = 0.0
        super().__init__("Script", index, do_callbacks=True)
        self._install_signal_handlers()
        self.evt_description.set(classname=type(self).__name__, description=descr, help=help)

    def _install_signal_handlers(self) -> None:
        """Make SIGINT/SIGTERM stop the script (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._signal_handler)
            except (NotImplementedError, RuntimeError, ValueError):
                return

    def _signal_handler(self) -> None:
        """SIGINT/SIGTERM: stop the script as the ``stop`` command does (the ScriptQueue stops a
        script process with a signal): a running script goes STOPPING, runs `cleanup` (the report)
        and ends STOPPED. A repeat within `SIGNAL_REPEAT_WINDOW` is the same interrupt; a later one,
        while the stop is still in progress, quits at once (``done_task`` resolved).
        """
        now = time.monotonic()
        if self._signal_stop_task is None:
            self._first_signal_time = now
            self.log.warning("Signal received: stopping the script")
            self._signal_stop_task = asyncio.ensure_future(self._stop_on_signal())
            return
        if now - self._first_signal_time < SIGNAL_REPEAT_WINDOW:
            return
        self.log.warning("Second signal received: quitting now")
        if not self.done_task.done():
            self.done_task.set_result(None)

    async def _stop_on_signal(self) -> None:
        try:
            await self.do_stop(None)
        except Exception:
            self.log.exception("Stopping on a signal failed; quitting")
            if not self.done_task.done():
                self.done_task.set_result(None)

    # Abstract API -------------------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def get_schema(cls) -> dict[str, Any] | None:
        """Return the configuration schema (a draft-07 JSON schema dict) or None."""
        raise NotImplementedError()

    @abc.abstractmethod
    async def configure(self, config: types.SimpleNamespace) -> None:
        """Configure the script from the validated configuration (top-level keys as attributes)."""
        raise NotImplementedError()

    @abc.abstractmethod
    def set_metadata(self, metadata: Any) -> None:
        """Fill in the metadata event data in place (e.g. ``metadata.duration``)."""
        raise NotImplementedError()

    @abc.abstractmethod
    async def run(self) -> None:
        """Do the work (call `checkpoint` to allow pausing and stopping)."""
        raise NotImplementedError()

    async def cleanup(self) -> None:
        """Clean up after `run` (called by `_exit` only if run was started); does nothing here."""

    # Properties ---------------------------------------------------------------------------------

    @property
    def state(self) -> Any:
        """The state event data (``state``, ``reason``, ``groupId``, ``blockId``, ...)."""
        return self.evt_state.data

    @property
    def state_name(self) -> str:
        """Name of the current state, or ``UNKNOWN(<n>)``."""
        try:
            return ScriptState(self.state.state).name
        except ValueError:
            return f"UNKNOWN({self.state.state})"

    @property
    def checkpoints(self) -> Any:
        """The checkpoints event data (``pause``, ``stop`` regexes)."""
        return self.evt_checkpoints.data

    @property
    def group_id(self) -> str:
        """The group id (set by ``setGroupId``), or ``""``."""
        return self.evt_state.data.groupId

    @property
    def obs_id(self) -> str:
        """The ``blockId`` given to the ``configure`` command."""
        return self.evt_state.data.blockId

    @obs_id.setter
    def obs_id(self, value: Any) -> None:
        warnings.warn("obs_id cannot be set; the value is ignored", DeprecationWarning, stacklevel=2)
        self.log.warning("obs_id cannot be set; the value is ignored")

    def next_supplemented_group_id(self) -> str:
        """Return ``<group_id>#<n>`` with n = 1, 2, ... (reset by ``setGroupId``).

        Raises
        ------
        RuntimeError
            If there is no group id.
        """
        if not self.group_id:
            raise RuntimeError("No group ID")
        self._sub_group_id += 1
        return f"{self.group_id}#{self._sub_group_id}"

    # Start --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start: heartbeat, wait for remotes made in ``__init__``, state UNCONFIGURED, description."""
        await super().start()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        others = [s for s in list(self.domain.salinfo_set) if s is not self.salinfo]
        if others:
            await asyncio.gather(*[s.start_task for s in others])
        await self.set_state(ScriptState.UNCONFIGURED)
        remotes = ",".join(sorted(f"{s.name}:{s.index}" for s in others))
        await self.evt_description.set_write(remotes=remotes, force_output=True)

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.evt_heartbeat.write()
            except RuntimeError:
                return
            await asyncio.sleep(SCRIPT_HEARTBEAT_INTERVAL)

    # State --------------------------------------------------------------------------------------

    async def set_state(
        self,
        state: ScriptState | int | None = None,
        reason: str | None = None,
        keep_old_reason: bool = False,
        force_output: bool = False,
    ) -> None:
        """Write the state event.

        Parameters
        ----------
        state : `ScriptState` or `None`
            New state; None keeps the state.
        reason : `str` or `None`
            Reason; None keeps the old reason.
        keep_old_reason : `bool`
            Append ``reason`` to the old reason after ``"; "``.
        force_output : `bool`
            Write even if nothing changed.
        """
        if state is not None:
            state = ScriptState(state)
            self.timestamps[state] = current_tai()
        if keep_old_reason and reason is not None:
            old_reason = self.evt_state.data.reason
            reason = f"{old_reason}; {reason}" if old_reason else reason
        await self.evt_state.set_write(
            state=state,
            reason=reason,
            lastCheckpoint=self.last_checkpoint,
            numCheckpoints=self.num_checkpoints,
            force_output=force_output,
        )

    def assert_state(self, action: str, states: Sequence[ScriptState]) -> None:
        """Raise `ExpectedError` if exiting or not in one of ``states``."""
        if self._is_exiting:
            raise ExpectedError(f"Cannot {action}: script is exiting")
        if self.state.state not in states:
            states_str = ", ".join(ScriptState(s).name for s in states)
            raise ExpectedError(f"Cannot {action}: state={self.state_name} instead of {states_str}")

    # Commands -----------------------------------------------------------------------------------

    async def do_configure(self, data: Any) -> None:
        """Configure the script (state UNCONFIGURED -> CONFIGURED, or CONFIGURE_FAILED and exit)."""
        self.assert_state("configure", [ScriptState.UNCONFIGURED])
        try:
            if self.config_validator is None:
                if data.config:
                    raise RuntimeError("This script has no configuration schema but config was specified")
                config = types.SimpleNamespace()
            else:
                user_config = yaml.safe_load(data.config) if data.config else {}
                if isinstance(user_config, dict):
                    user_config.pop("metadata", None)
                full_config = self.config_validator.validate(user_config)
                config = types.SimpleNamespace(**full_config)
            await self.configure(config)
        except Exception as e:
            errmsg = f"config({data.config}) failed"
            self.log.exception(errmsg)
            full_errmsg = f"{errmsg}: {e}"
            await self.set_state(ScriptState.CONFIGURE_FAILED, reason=full_errmsg)
            await self._exit()
            raise ExpectedError(full_errmsg) from e

        await self._set_checkpoints(pause=data.pauseCheckpoint, stop=data.stopCheckpoint)
        if data.logLevel != 0:
            self.log.setLevel(data.logLevel)
            await self.put_log_level()
        self.evt_metadata.set(
            coordinateSystem=MetadataCoordSys.NONE,
            rotationSystem=MetadataRotSys.NONE,
            filters="",
            dome=MetadataDome.EITHER,
            duration=0,
        )
        self.set_metadata(self.evt_metadata.data)
        self.evt_state.set(blockId=data.blockId)
        await self.evt_metadata.write()
        await self.set_state(ScriptState.CONFIGURED)
        await asyncio.sleep(0.001)

    async def do_setGroupId(self, data: Any) -> None:
        """Set the group id (CONFIGURED only) and reset the supplemented group id counter."""
        self.assert_state("setGroupId", [ScriptState.CONFIGURED])
        self._sub_group_id = 0
        await self.evt_state.set_write(groupId=data.groupId, force_output=True)

    async def do_run(self, data: Any) -> None:
        """Run the script, then exit. Acked COMPLETE even if run fails (see the state event)."""
        self.assert_state("run", [ScriptState.CONFIGURED])
        if not self.group_id:
            raise ExpectedError("Group ID not set")
        try:
            await self.set_state(ScriptState.RUNNING)
            self._run_task = asyncio.create_task(self.run())
            await self._run_task
            await self.set_state(ScriptState.ENDING)
        except asyncio.CancelledError:
            if self.state.state != ScriptState.STOPPING:
                await self.set_state(ScriptState.STOPPING)
        except Exception as e:
            if not isinstance(e, ExpectedError):
                self.log.exception("Error in run")
            await self.set_state(ScriptState.FAILING, reason=f"Error in run: {e}")
        await asyncio.sleep(0.001)
        await self._exit()

    async def do_resume(self, data: Any) -> None:
        """Resume a paused script."""
        self.assert_state("resume", [ScriptState.PAUSED])
        if self._pause_future is not None and not self._pause_future.done():
            self._pause_future.set_result(None)

    async def do_setCheckpoints(self, data: Any) -> None:
        """Set the pause and stop checkpoint regexes (deprecated; use ``configure``)."""
        self.assert_state(
            "setCheckpoints",
            [ScriptState.UNCONFIGURED, ScriptState.CONFIGURED, ScriptState.RUNNING, ScriptState.PAUSED],
        )
        await self._set_checkpoints(pause=data.pause, stop=data.stop)

    async def do_stop(self, data: Any) -> None:
        """Stop the script: cancel run if running, else go STOPPING -> STOPPED."""
        if self._is_exiting:
            return
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()
        else:
            await self.set_state(ScriptState.STOPPING)
            await self._exit()

    async def _set_checkpoints(self, *, pause: str, stop: str) -> None:
        try:
            pause_regex = re.compile(pause)
        except re.error as e:
            raise ExpectedError(f"pause={pause!r} not a valid regex: {e}") from e
        try:
            stop_regex = re.compile(stop)
        except re.error as e:
            raise ExpectedError(f"stop={stop!r} not a valid regex: {e}") from e
        self._pause_regex = pause_regex
        self._stop_regex = stop_regex
        await self.evt_checkpoints.set_write(pause=pause, stop=stop, force_output=True)

    # Checkpoints --------------------------------------------------------------------------------

    async def checkpoint(self, name: str = "") -> None:
        """Await this at points where the script may be paused or stopped.

        Parameters
        ----------
        name : `str`
            Checkpoint name, matched (``re.fullmatch``) against the stop then the pause regex.
            Note the default regexes are ``""``, which match an empty name: always give a name.

        Raises
        ------
        RuntimeError
            If the state is not RUNNING or run is not running.
        asyncio.CancelledError
            If the stop regex matches.
        """
        if self.state.state != ScriptState.RUNNING:
            raise RuntimeError(f"checkpoint error: state={self.state_name} instead of RUNNING")
        if self._run_task is None or self._run_task.done():
            raise RuntimeError("checkpoint error: run is not running")
        self.num_checkpoints += 1
        self.last_checkpoint = name
        if self._stop_regex.fullmatch(name):
            await self.set_state(ScriptState.STOPPING)
            raise asyncio.CancelledError(
                f"stop by request: checkpoint {name!r} matches {self.checkpoints.stop!r}"
            )
        elif self._pause_regex.fullmatch(name):
            self._pause_future = asyncio.get_running_loop().create_future()
            await self.set_state(ScriptState.PAUSED)
            await self._pause_future
            await self.set_state(ScriptState.RUNNING)
        else:
            await self.set_state(force_output=True)
            await asyncio.sleep(0.001)

    # Exit ---------------------------------------------------------------------------------------

    async def _exit(self) -> None:
        """Run cleanup (if run started), write the final state, then close (once)."""
        if self._is_exiting:
            return
        self._is_exiting = True
        try:
            if self._run_task is not None:
                await self.cleanup()
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
            reason = None
            final_state = _FINAL_STATES.get(self.state.state)
            if final_state is None:
                reason = f"unexpected state for _exit {self.state_name}"
                final_state = ScriptState.FAILED
            await asyncio.sleep(self.final_state_delay)
            self.log.info(f"Setting final state to {final_state!r}")
            await self.set_state(final_state, reason=reason, keep_old_reason=True)
            asyncio.create_task(self.close())
        except Exception as e:
            if not isinstance(e, ExpectedError):
                self.log.exception("Error in run")
            await self.set_state(ScriptState.FAILED, reason=f"failed in _exit: {e}", keep_old_reason=True)
            asyncio.create_task(self.close(exception=e))

    async def close_tasks(self) -> None:
        """Stop the heartbeat and the run task."""
        await super().close_tasks()
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()

    # Command line -------------------------------------------------------------------------------

    @classmethod
    def make_from_cmd_line(cls, **kwargs: Any) -> BaseScript | None:
        """Make a script from the command line: ``<index> [--schema]``.

        Parameters
        ----------
        **kwargs
            Constructor arguments other than ``index``.

        Returns
        -------
        script : `BaseScript` or `None`
            The script, or None if ``--schema`` was given (the schema is printed as YAML).

        Raises
        ------
        RuntimeError
            If ``index`` is in ``kwargs``.
        """
        if "index" in kwargs:
            raise RuntimeError("Do not specify index as a keyword argument")
        parser = argparse.ArgumentParser(description=f"Run {cls.__name__} from the command line")
        parser.add_argument(
            "index", type=int, help="Script SAL Component index; must be unique among running Scripts"
        )
        parser.add_argument(
            "--schema", action="store_true", help="Print the configuration schema to stdout and quit"
        )
        args = parser.parse_args()
        if args.schema:
            schema = cls.get_schema()
            if schema is not None:
                print(yaml.safe_dump(schema))
            return None
        return cls(index=args.index, **kwargs)

    @classmethod
    async def amain(cls, **kwargs: Any) -> None:
        """Run a script from the command line; exit code 1 unless it ends DONE or STOPPED.

        Parameters
        ----------
        **kwargs
            Constructor arguments other than ``index``.
        """
        script = cls.make_from_cmd_line(**kwargs)
        if script is None:
            return
        failed = False
        try:
            await script.done_task
        except Exception:
            failed = True
        await script.close()
        if failed:
            if script.state.state != ScriptState.FAILED:
                warnings.warn(
                    f"Script failed with state={script.state_name} (expected FAILED)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            sys.exit(1)
        if script.state.state not in (ScriptState.DONE, ScriptState.STOPPED):
            sys.exit(1)
