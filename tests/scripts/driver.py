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

"""Drive MakeComCamCalibrations over the embedded bus against the simulated observatory.

`run_calibrations` starts a `SimulatedObservatory` (sleep executor and recording sink without a
repo; raw writer and pipetask executor with one), a ``Remote("Script", index)`` and the script, then
sends ``configure``, ``setGroupId`` and ``run`` over the bus through ``run_script``'s own driver
(`cli.bus_driver.BusDriver`, as ``run_one_script`` does), optionally
stopping it when a condition holds, and returns what happened. No mock stands in for the camera or
the OCPS.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import functools
import json
import pathlib
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from lsst.ts.makecalibrations.calib.report import RunReport
from lsst.ts.makecalibrations.cli.bus_driver import BusDriver
from lsst.ts.makecalibrations.sal import ScriptState, salobj
from lsst.ts.makecalibrations.scripts import BaseMakeCalibrations, MakeComCamCalibrations
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
from lsst.ts.makecalibrations.sim.options import ObservatoryOptions
from tests.helpers import SIM_START_TAI


@dataclasses.dataclass
class RunResult:
    """What a script run did."""

    script: BaseMakeCalibrations
    observatory: SimulatedObservatory
    states: list[ScriptState]
    final_state: ScriptState
    reason: str
    configure_error: str
    report: RunReport | None
    metadata: Any
    log_messages: list[str]
    job_results: list[dict[str, Any]]

    @property
    def images(self) -> list[Any]:
        """ExposureInfo of every image the camera read out (recording sink only)."""
        return list(getattr(self.observatory.sink, "images", []))

    @property
    def job_requests(self) -> list[Any]:
        """OCPS jobs the sleep executor ran (not those a fault made fail)."""
        return list(getattr(self.observatory.executor, "requests", []))

    def sent_jobs(self) -> list[dict[str, Any]]:
        """What the OCPS received, from its job_result events: job id, exit code and the fields."""
        return [
            {
                "job_id": r["jobId"],
                "exit_code": r["exit_code"],
                "pipeline": r["parameters"]["environment"]["PIPELINE_URL"],
                "config": r["parameters"]["environment"]["RUN_OPTIONS"],
                "data_query": r["parameters"]["environment"]["DATA_QUERY"],
            }
            for r in self.job_results
        ]

    def certified(self) -> dict[str, int]:
        """Products the report says were certified, with their counts."""
        assert self.report is not None
        return {c.product: c.count for c in self.report.certifications if c.status == "certified"}

    def failure_steps(self) -> list[str]:
        assert self.report is not None
        return [f.step for f in self.report.failures]


StopCondition = Callable[[Any, SimulatedObservatory], Awaitable[None]]


async def run_calibrations(
    config: dict[str, Any] | str,
    *,
    report_dir: pathlib.Path,
    faults: FaultPlan | None = None,
    repo: pathlib.Path | None = None,
    time_scale: float = 500.0,
    job_duration: float = 10.0,
    camera_initial_state: Any = salobj.State.ENABLED,
    stop_when: StopCondition | None = None,
    pause_checkpoint: str = "",
    on_paused: StopCondition | None = None,
    prepare: Callable[[SimulatedObservatory], Awaitable[None]] | None = None,
    timeout: float = 300.0,
    observatory: SimulatedObservatory | None = None,
    script_class: type[BaseMakeCalibrations] = MakeComCamCalibrations,
    component_states: dict[str, Any] | None = None,
    detectors: list[int] | None = None,
    start_tai: float | None = SIM_START_TAI,
) -> RunResult:
    """Run the script once; see the module docstring.

    ``observatory``, if given, is an observatory already started (and left running) that the script
    runs against, instead of a new one made with the other keyword arguments. ``script_class``
    (LSSTComCam by default) chooses the script, hence the simulated observatory (its instrument);
    ``component_states`` sets the observatory's state-only CSCs (the LSSTCam dome); ``detectors``
    the detectors its camera reads out (all by default); ``start_tai`` the simulated time at the start
    (`tests.helpers.SIM_START_TAI` by default, so the simulated pixels do not depend on the machine's
    date; `None`: now).
    """
    instrument = script_class.get_instrument()
    if observatory is None:
        salobj.set_test_topic_subname(randomize=True)
    if isinstance(config, dict):
        config = dict(config)
        config.setdefault("report_dir", str(report_dir))
        # The script checks its repository at configure; without one for the observatory, a bare
        # repository (no reference calibrations, made once) is the script's.
        config.setdefault("repo", str(repo if repo is not None else bare_repo(instrument.name)))
        text = yaml.safe_dump(config)
    else:
        text = config
    index = 1
    log_messages: list[str] = []
    # A run that hangs fails the test (with the stack of the await it hangs in) instead of the suite.
    async with asyncio.timeout(timeout + 120):
        async with contextlib.AsyncExitStack() as stack:
            if observatory is None:
                observatory = await stack.enter_async_context(
                    SimulatedObservatory(
                        ObservatoryOptions(time_scale=time_scale, size="tiny"),
                        faults=faults,
                        repo=repo,
                        job_duration=job_duration,
                        camera_initial_state=camera_initial_state,
                        instrument=instrument.name,
                        component_states=component_states,
                        detectors=detectors,
                        start_tai=start_tai,
                    )
                )
            if prepare is not None:
                await prepare(observatory)
            async with salobj.Domain() as domain:
                driver = BusDriver(domain, index, on_log=lambda data: log_messages.append(data.message))
                ocps = salobj.Remote(
                    domain,
                    "OCPS",
                    instrument.ocps_index,
                    readonly=True,
                    include=["job_result"],
                    evt_max_history=0,
                )
                await asyncio.gather(driver.start(), ocps.start_task)
                job_results: list[dict[str, Any]] = []

                async def job_result_callback(data: Any) -> None:
                    job_results.append(dict(json.loads(data.result), exit_code=data.exit_code))

                ocps.evt_job_result.callback = job_result_callback
                script = script_class(index=index)
                script.site = observatory.run_site()  # as run_script does
                script.shutdown_delay = 0.0
                script.final_state_delay = 0.0
                await script.start_task
                configure_error = ""
                try:
                    await driver.configure(text, pause_checkpoint=pause_checkpoint, timeout=60)
                except salobj.AckError as e:
                    configure_error = e.ackcmd.result
                metadata = driver.remote.evt_metadata.get()
                if not configure_error:
                    await driver.set_group_id("2024-01-01T00:00:00.000")
                    run_task = driver.run(timeout=timeout)
                    if stop_when is not None:
                        await asyncio.wait_for(stop_when(script, observatory), timeout=timeout)
                        await driver.stop(timeout=30)
                    if on_paused is not None:
                        await asyncio.wait_for(driver.paused.wait(), timeout=timeout)
                        await on_paused(script, observatory)
                        await driver.resume(timeout=10)
                    await asyncio.wait_for(run_task, timeout=timeout)
                final_state, reason = await asyncio.wait_for(driver.final, timeout=30)
                states = driver.states
                await asyncio.wait_for(script.done_task, timeout=30)
                report = None
                if script.report_path is not None and script.report_path.exists():
                    report = RunReport.load(script.report_path)
                await script.close()
                await observatory.wait_idle()
    return RunResult(
        script=script,
        observatory=observatory,
        states=states,
        final_state=final_state,
        reason=reason,
        configure_error=configure_error,
        report=report,
        metadata=metadata,
        log_messages=log_messages,
        job_results=job_results,
    )


@functools.cache
def bare_repo(instrument: str = "LSSTComCam") -> pathlib.Path:
    """A repository with the instrument, dataset types and collections only, made once per process."""
    from lsst.ts.makecalibrations.butler.repository import create_repo

    root = tempfile.mkdtemp(prefix="bare_repo_")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    path = pathlib.Path(root) / "repo"
    create_repo(path, instrument)
    return path
