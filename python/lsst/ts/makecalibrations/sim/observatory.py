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

"""The simulated observatory of one camera: its camera, header service, OODS and OCPS running together.

LSSTComCam (default): CCCamera, CCHeaderService, CCOODS, OCPS:2. LSSTCam: MTCamera, MTHeaderService,
MTOODS, OCPS:3, plus the state-only MTDome and MTDomeTrajectory. LATISS: ATCamera, ATHeaderService,
ATOODS, OCPS:1 (`cameras.OBSERVATORIES`).

`SimulatedObservatory` builds the simulated CSCs on one `SimClock`, wires the camera to its
image sink, header service and OODS, applies a `FaultPlan`, and starts them (ENABLED unless a fault
says otherwise). How it runs (time scale, image size, OCPS executor, BPS site) is one
`options.ObservatoryOptions`. With a butler ``repo`` it uses the butler raw writer as sink and, for
OCPS jobs, the executor the options name (`OCPS_EXECUTORS`, default `DEFAULT_OCPS_EXECUTOR`): ``pipetask``
(``pipetask run`` as a new subprocess per job, `pipetask_executor`), ``warm`` (``pipetask run`` forked
by a warm worker that imported the stack once, `warm_executor`) or ``bps`` (``bps submit`` with the
Parsl plugin, `bps_executor`); they are imported lazily so this module works without them.
`SimulatedObservatory.close` also closes the executor it made (the warm worker ends there).

May import: `sal`, `calib.durations`, the standard library and the sibling `sim` modules.
"""

from __future__ import annotations

__all__ = ["DEFAULT_OCPS_EXECUTOR", "OCPS_EXECUTORS", "SimulatedObservatory"]

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

from ..calib.durations import RunSite
from ..sal import salobj
from .cameras import ObservatorySpec, observatory_spec
from .ccamera import CameraCsc, make_camera_csc
from .clock import SimClock
from .exposure import ImageSink, RecordingSink
from .faults import FailingExecutor, FaultPlan
from .header_service import HeaderServiceCsc
from .ocps import OcpsCsc, SleepExecutor
from .ocps_jobs import JobExecutor
from .oods import OodsCsc
from .options import OCPS_EXECUTORS, ObservatoryOptions
from .site import DEFAULT_OCPS_EXECUTOR
from .spectrograph import SpectrographCsc
from .state_only import StateOnlyCsc


def _missing_module(error: ModuleNotFoundError, module: str) -> bool:
    """Is ``error`` about ``module`` itself (not about something it imports)?"""
    return error.name is not None and error.name.endswith(module)


class SimulatedObservatory:
    """Run the simulated CSCs of one camera and its OCPS together.

    Parameters
    ----------
    options : `options.ObservatoryOptions`, optional
        Time scale, raw image size (of the butler raw writer), OCPS executor (when ``repo`` is given
        and no ``executor``; ``bps`` puts the camera's ``ObservatorySpec.bps_detectors_per_job``
        detectors in one BPS job: 24 for LSSTCam, else 1) and BPS site; the defaults if `None`.
    instrument : `str`, optional
        ``LSSTComCam`` (default), ``LSSTCam`` or ``LATISS``: which observatory (`cameras.OBSERVATORIES`).
    component_states : `dict` [`str`, ``salobj.State``], optional
        Initial states of the state-only CSCs (``MTDome``, ``MTDomeTrajectory``); ENABLED otherwise.
    start_tai : `float`, optional
        Simulated TAI (unix seconds) when the observatory is made; now if `None`. The observing day of
        the images, hence their exposure ids and the seeds of their simulated noise, follow from it: a
        fixed value makes the same pixels whatever the date of the machine.
    faults : `FaultPlan`, optional
        Faults to inject; none by default.
    sink : `ImageSink`, optional
        Receives the camera's images. Default: the butler raw writer if ``repo`` is given,
        else a `RecordingSink`.
    executor : `JobExecutor`, optional
        Runs OCPS jobs. Default: the pipetask executor if ``repo`` is given, else a `SleepExecutor`.
    repo : `str` or `os.PathLike`, optional
        Butler repository for the default sink and executor.
    ingest_delay : `float`, optional
        Simulated seconds between readout and ``imageInOODS``.
    job_duration : `float`, optional
        Simulated duration of a job of the default `SleepExecutor`.
    camera_initial_state : ``salobj.State``, optional
        State the camera starts in.
    detectors : sequence of `int`, optional
        Detectors the camera reads out (all if `None`); see ``CameraCsc(installed_detectors=...)``.
    shutdown_delay : `float`, optional
        Wall seconds each CSC waits in ``close`` before closing its domain; the runtime's default
        (1 s, as salobj) if `None`. Tests set 0.
    log : `logging.Logger`, optional
        Logger.
    """

    def __init__(
        self,
        options: ObservatoryOptions | None = None,
        faults: FaultPlan | None = None,
        sink: ImageSink | None = None,
        executor: JobExecutor | None = None,
        repo: str | os.PathLike | None = None,
        ingest_delay: float = 2.0,
        job_duration: float = 10.0,
        camera_initial_state: salobj.State = salobj.State.ENABLED,
        detectors: Sequence[int] | None = None,
        shutdown_delay: float | None = None,
        log: logging.Logger | None = None,
        instrument: str = "LSSTComCam",
        component_states: dict[str, salobj.State] | None = None,
        start_tai: float | None = None,
    ) -> None:
        self.options = options if options is not None else ObservatoryOptions()
        self.log = log if log is not None else logging.getLogger(type(self).__name__)
        self.spec: ObservatorySpec = observatory_spec(instrument)
        self.instrument = instrument
        unknown = sorted(set(component_states or {}) - set(self.spec.state_only))
        if unknown:
            raise ValueError(
                f"component_states for {unknown}: the {instrument} observatory's state-only CSCs are "
                f"{list(self.spec.state_only)}."
            )
        self.component_states = dict(component_states or {})
        self.clock = SimClock(self.options.time_scale, start_tai)
        self.faults = faults if faults is not None else FaultPlan()
        self.repo = repo
        self.ingest_delay = ingest_delay
        self.job_duration = job_duration
        self.camera_initial_state = camera_initial_state
        self.detectors = None if detectors is None else tuple(detectors)
        self.shutdown_delay = shutdown_delay
        self._owns_sink = sink is None
        self.sink: ImageSink = sink if sink is not None else self._default_sink()
        self._owns_executor = executor is None
        self.executor: JobExecutor = executor if executor is not None else self._default_executor()
        self.camera: CameraCsc | None = None
        self.header_service: HeaderServiceCsc | None = None
        self.oods: OodsCsc | None = None
        self.ocps: OcpsCsc | None = None
        self.state_only: dict[str, StateOnlyCsc] = {}
        self.spectrograph: SpectrographCsc | None = None
        self._started = False

    def _default_sink(self) -> ImageSink:
        if self.repo is None:
            return RecordingSink()
        try:
            from .raw_writer import ButlerRawWriter
        except ModuleNotFoundError as e:
            if not _missing_module(e, "raw_writer"):
                raise
            self.log.warning("sim.raw_writer is not available; images are only recorded, not written.")
            return RecordingSink()
        size = self.options.size
        return ButlerRawWriter(self.repo, size=size, clock=self.clock, instrument=self.instrument)

    def _default_executor(self) -> JobExecutor:
        if self.repo is not None and self.options.ocps_executor == "bps":
            from .bps_executor import BpsExecutor

            # Each BPS job is a process of its own anyway: use every core (pipetask's -j is clamped
            # to 1, see pipetask_executor).
            cores = os.cpu_count() or 1
            return BpsExecutor(
                self.repo,
                clock=self.clock,
                max_processes=cores,
                site_config=self.options.bps_site_config,
                detectors_per_job=self.spec.bps_detectors_per_job,
            )
        if self.repo is not None:
            try:
                from .pipetask_executor import PipetaskExecutor
                from .warm_executor import WarmPipetaskExecutor
            except ModuleNotFoundError as e:
                if not _missing_module(e, "pipetask_executor"):
                    raise
                self.log.warning("sim.pipetask_executor is not available; OCPS jobs only sleep.")
            else:
                if self.options.ocps_executor == "warm":
                    return WarmPipetaskExecutor(self.repo, clock=self.clock)
                return PipetaskExecutor(self.repo, clock=self.clock)
        return SleepExecutor(self.clock, duration=self.job_duration)

    @property
    def cscs(self) -> list[Any]:
        """The running CSCs (empty before `start`)."""
        main = [
            csc
            for csc in (self.camera, self.header_service, self.oods, self.ocps, self.spectrograph)
            if csc is not None
        ]
        return main + list(self.state_only.values())

    def run_site(self) -> RunSite:
        """This observatory as its runs' duration estimates see it (`ObservatoryOptions.run_site`):
        its image size, time scale and OCPS executor's processes, on this machine's cores and load
        now. ``run_script`` gives it to the script (``BaseMakeCalibrations.site``) before configure."""
        processes = getattr(self.executor, "max_processes", None)
        return self.options.run_site(max_processes=processes if isinstance(processes, int) else None)

    async def start(self) -> None:
        """Create and start the CSCs; return when all are in their initial state."""
        if self._started:
            raise RuntimeError("Already started.")
        self._started = True
        enabled = salobj.State.ENABLED
        spec = self.spec
        self.header_service = HeaderServiceCsc(initial_state=enabled, name=spec.header_service)
        self.oods = OodsCsc(
            clock=self.clock,
            faults=self.faults,
            ingest_delay=self.ingest_delay,
            name=spec.oods,
            instrument=spec.instrument,
        )
        self.camera = make_camera_csc(
            spec,
            clock=self.clock,
            sink=self.sink,
            faults=self.faults,
            initial_state=self.camera_initial_state,
            installed_detectors=self.detectors,
        )
        if spec.gratings:
            self.spectrograph = SpectrographCsc(self.clock, filters=spec.filters, gratings=spec.gratings)
            self.camera.physical_filter_source = self.spectrograph.physical_filter
        self.camera.add_image_handler(self.header_service.handle_image)
        self.camera.add_image_handler(self.oods.handle_image)
        executor = self.executor
        if self.faults.ocps_fail_pipeline is not None:
            executor = FailingExecutor(executor, self.faults, self.clock)
        ocps_state = self.faults.ocps_initial_state
        self.ocps = OcpsCsc(
            clock=self.clock,
            executor=executor,
            initial_state=enabled if ocps_state is None else ocps_state,
            in_progress_ack_delay=self.faults.ocps_ack_delay,
            index=spec.ocps_index,
        )
        self.state_only = {
            name: StateOnlyCsc(name, initial_state=self.component_states.get(name, enabled))
            for name in spec.state_only
        }
        if self.shutdown_delay is not None:
            for csc in self.cscs:
                csc.shutdown_delay = self.shutdown_delay
        await asyncio.gather(*[csc.start_task for csc in self.cscs])
        self.log.info(
            f"Simulated observatory running at time scale {self.clock.time_scale}: "
            + ", ".join(f"{type(csc).__name__}={salobj.State(csc.summary_state).name}" for csc in self.cscs)
        )

    async def wait_idle(self) -> None:
        """Wait until every image taken so far was written and announced."""
        if self.camera is not None:
            await self.camera.wait_images_delivered()
        if self.oods is not None:
            await self.oods.wait_idle()

    async def close(self, drain_timeout: float = 30.0) -> None:
        """Finish the images in flight (readout, sink, announcements), then close the CSCs (and the
        sink if this observatory made it).

        Parameters
        ----------
        drain_timeout : `float`, optional
            Wall seconds without any image delivered or announced after which the images still in
            flight are given up (and named in the log). A backlog that keeps moving is always
            finished, so no image already read out is lost to closing.
        """

        def progress() -> tuple[int, int]:
            camera_count = self.camera.images_delivered if self.camera is not None else 0
            oods_count = len(self.oods.announced) + len(self.oods.dropped) if self.oods is not None else 0
            return camera_count, oods_count

        while True:
            before = progress()
            try:
                await asyncio.wait_for(self.wait_idle(), timeout=drain_timeout)
                break
            except TimeoutError:
                if progress() != before:
                    continue
                pending = self.camera.images_pending if self.camera is not None else []
                self.log.warning(
                    f"Images still in flight after {drain_timeout}s without progress; closing anyway. "
                    f"Not written: {pending}"
                )
                break
        await asyncio.gather(*[csc.close() for csc in self.cscs], return_exceptions=True)
        close_executor = getattr(self.executor, "close", None)
        if self._owns_executor and close_executor is not None:
            # After the OCPS closed (it aborts its jobs): the warm pipetask worker ends here.
            await close_executor()
        close_sink = getattr(self.sink, "close", None)
        if self._owns_sink and close_sink is not None:
            # The sink this observatory made (e.g. the butler raw writer) releases its resources.
            result = close_sink()
            if asyncio.iscoroutine(result):
                await result

    async def __aenter__(self) -> SimulatedObservatory:
        await self.start()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()
