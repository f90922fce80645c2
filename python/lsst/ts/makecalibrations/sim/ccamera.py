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

"""Simulated camera CSC (CCCamera, MTCamera or ATCamera): takes images on a simulated clock and hands
them to an image sink.

`CameraCsc` is one camera control system; its `cameras.ObservatorySpec` says which (component name,
detectors, filters, obs id prefix). `CCCameraCsc` is the LSSTComCam default.

Per image of ``takeImages`` it writes, in order: ``ccsCommandState`` BUSY, ``startIntegration``,
(exposure) ``startReadout``, (readout) ``endReadout``, ``endOfImageTelemetry``, ``ccsCommandState``
IDLE; then a delivery worker gives the `ExposureInfo` to the `ImageSink` and to the image handlers
(CCHeaderService, CCOODS) in the order the images were taken. The command is acknowledged once the
last image of the series has finished integrating; its readout completes in the background, as with
the real camera. All durations go through the `SimClock`; the reported times stay true.

May import: `sal`, `calib.obs_id`, `butler.camera`, the standard library and the sibling modules
`cameras`, `clock`, `csc`, `exposure` and `faults`.
"""

from __future__ import annotations

__all__ = [
    "AtCameraCsc",
    "CameraCsc",
    "make_camera_csc",
    "CCCameraCsc",
    "CcsCommandState",
    "DEFAULT_FILTER",
    "DEFAULT_FILTERS",
    "parse_key_value_map",
]

import asyncio
import enum
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..butler.camera import get_camera
from ..calib.obs_id import make_obs_id
from ..sal import salobj
from .cameras import COMCAM_OBSERVATORY, ObservatorySpec
from .clock import SimClock, day_obs_from_tai
from .csc import SimulatedCsc
from .exposure import ExposureInfo, ImageSink, RecordingSink
from .faults import FaultPlan

DEFAULT_FILTERS = COMCAM_OBSERVATORY.filters
"""Filters in the ComCam filter changer, in slot order."""

DEFAULT_FILTER = COMCAM_OBSERVATORY.initial_filter
"""Filter in the beam when the simulated ComCam starts."""

ACK_GAP = 0.02
"""Wall seconds between an in-progress ack and the final ack, so a client can call ``next_ackcmd``."""

ImageHandler = Callable[[ExposureInfo], Awaitable[None]]


class CcsCommandState(enum.IntEnum):
    """``substate`` of ``ccsCommandState``."""

    IDLE = 1
    BUSY = 2


def parse_key_value_map(key_value_map: str) -> dict[str, str]:
    """Parse a ``keyValueMap`` (``"key: value, key: value"``) into a dict.

    Items are split on ",", then each on its first ":"; keys and values are stripped. Items with no
    ":" are ignored.
    """
    result: dict[str, str] = {}
    for item in key_value_map.split(","):
        key, sep, value = item.partition(":")
        if sep and key.strip():
            result[key.strip()] = value.strip()
    return result


def parse_sensors(sensors: str, instrument: str = "LSSTComCam") -> tuple[int, ...]:
    """Return the detector numbers selected by the ``sensors`` field of ``takeImages``.

    Parameters
    ----------
    sensors : `str`
        ``""`` for every detector, else ``"R22_S00:R22_S11"``-style names separated by ":".
    instrument : `str`, optional
        Camera whose detector names are meant.

    Raises
    ------
    salobj.ExpectedError
        For an unknown sensor name.
    """
    camera = get_camera(instrument)
    if not sensors.strip():
        return camera.detector_ids
    names = [name.strip() for name in sensors.split(":") if name.strip()]
    known = camera.detector_names
    unknown = [name for name in names if name not in known]
    if unknown:
        shown = list(known) if len(known) <= 9 else f"{known[0]}..{known[-1]}"
        raise salobj.ExpectedError(f"Unknown sensors {unknown}; {instrument} sensors are {shown}.")
    return tuple(sorted({camera.detector_id(name) for name in names}))


class CameraCsc(SimulatedCsc):
    """A simulated camera control system (LSSTComCam's CCCamera unless ``spec`` says otherwise).

    Parameters
    ----------
    clock : `SimClock`
        Simulated clock for every duration.
    sink : `ImageSink`, optional
        Receives each image after readout; a `RecordingSink` if `None`.
    faults : `FaultPlan`, optional
        Camera faults to inject.
    initial_state : ``salobj.State``, optional
        State to start in (OFFLINE is allowed: use ``enterControl``).
    read_out_time : `float`, optional
        Simulated readout duration in seconds; the camera's (``spec.read_out_time``) if `None`.
    shutter_time : `float`, optional
        Simulated time the shutter takes to open plus close, added to shutter-open exposures (and to
        their dark time); the reported exposure time stays the requested one.
    filter_change_time : `float`, optional
        Simulated duration of a filter change.
    available_filters : sequence of `str`, optional
        Filters in the changer.
    initial_filter : `str`, optional
        Filter in the beam at startup.
    ack_in_progress : `bool`, optional
        Send an in-progress ack at the start of ``takeImages``.
    installed_detectors : sequence of `int`, optional
        Detectors the simulation reads out (all if `None`): a ``takeImages`` for every sensor
        gives images of these only, so raws are made only for the detectors a run processes.
    spec : `cameras.ObservatorySpec`, optional
        Which camera (component name, detectors, filters, obs id prefix); LSSTComCam by default.
    """

    def __init__(
        self,
        clock: SimClock,
        sink: ImageSink | None = None,
        faults: FaultPlan | None = None,
        initial_state: salobj.State = salobj.State.ENABLED,
        read_out_time: float | None = None,
        shutter_time: float = 0.0,
        filter_change_time: float = 1.0,
        available_filters: Sequence[str] | None = None,
        initial_filter: str | None = None,
        ack_in_progress: bool = False,
        installed_detectors: Sequence[int] | None = None,
        spec: ObservatorySpec = COMCAM_OBSERVATORY,
    ) -> None:
        self.spec = spec
        self.physical_filter_source: Callable[[], str] | None = None
        available_filters = spec.filters if available_filters is None else available_filters
        initial_filter = spec.initial_filter if initial_filter is None else initial_filter
        if initial_filter not in available_filters:
            raise ValueError(f"initial_filter={initial_filter!r} not in {list(available_filters)}.")
        self.clock = clock
        self.sink: ImageSink = sink if sink is not None else RecordingSink()
        self.faults = faults if faults is not None else FaultPlan()
        self.read_out_time = float(spec.read_out_time if read_out_time is None else read_out_time)
        self.shutter_time = float(shutter_time)
        self.filter_change_time = float(filter_change_time)
        self.available_filters = tuple(available_filters)
        self.current_filter = initial_filter
        self.send_ack_in_progress = ack_in_progress
        self.installed_detectors = (
            None if installed_detectors is None else tuple(sorted({int(d) for d in installed_detectors}))
        )

        self.images_started = 0
        self._fault_fired = False
        self._last_image_name = ""
        self._taking_images = False
        self._changing_filter = False
        self._readout_task: asyncio.Task | None = None
        self._hang_future: asyncio.Future | None = None
        self._image_handlers: list[ImageHandler] = []
        self._delivery_queue: asyncio.Queue[ExposureInfo] = asyncio.Queue()
        self._delivery_task: asyncio.Task | None = None
        self._delivered = 0
        self._pending: list[str] = []
        self._delivery_idle = asyncio.Event()
        self._delivery_idle.set()
        super().__init__(spec.camera, initial_state=initial_state)

    # -- wiring ---------------------------------------------------------------------------------------

    def add_image_handler(self, handler: ImageHandler) -> None:
        """Call ``await handler(info)`` for each image, after the sink wrote it (in image order)."""
        self._image_handlers.append(handler)

    @property
    def images_delivered(self) -> int:
        """Images that went through the sink and the handlers."""
        return self._delivered

    @property
    def images_pending(self) -> list[str]:
        """Obs ids of the images read out but not yet delivered (oldest first)."""
        return list(self._pending)

    async def wait_images_delivered(self) -> None:
        """Wait until every image taken so far was read out and went through the sink and handlers."""
        if self._readout_task is not None:
            await asyncio.gather(self._readout_task, return_exceptions=True)
        await self._delivery_idle.wait()

    # -- life cycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        self._delivery_task = asyncio.create_task(self._deliver_images())
        if self.spec.has_filter_changer:
            await self.evt_availableFilters.set_write(
                filterNames=":".join(self.available_filters),
                filterTypes=":".join(self._filter_type(name) for name in self.available_filters),
                force_output=True,
            )
            await self._write_filter_in_position(self.current_filter)
        await self._write_command_state(CcsCommandState.IDLE)
        # A matching startIntegration/endReadout pair, so a client's readiness check passes at once.
        day_obs = day_obs_from_tai(self.clock.tai())
        name = make_obs_id(day_obs, self.sink.last_seq_num(day_obs), self.spec.obs_id_prefix)
        await self.evt_startIntegration.set_write(imageName=name, force_output=True)
        await self.evt_endReadout.set_write(imageName=name, force_output=True)
        self._last_image_name = name

    async def close_tasks(self) -> None:
        if self._hang_future is not None and not self._hang_future.done():
            self._hang_future.cancel()
        for task in (self._readout_task, self._delivery_task):
            if task is not None and not task.done():
                task.cancel()
        await super().close_tasks()

    # -- commands -------------------------------------------------------------------------------------

    async def do_exitControl(self, data: salobj.BaseMsgType) -> None:
        """STANDBY → OFFLINE; the camera control system keeps running (``enterControl`` brings it back)."""
        await self._do_change_state(data, "exitControl")

    async def do_setFilter(self, data: salobj.BaseMsgType) -> None:
        """Put filter ``data.name`` in the beam."""
        self.assert_enabled("setFilter")
        name = data.name
        if name not in self.available_filters:
            raise salobj.ExpectedError(
                f"Filter {name!r} is not available; available filters: {':'.join(self.available_filters)}."
            )
        if self._taking_images:
            raise salobj.ExpectedError(f"Cannot change filter to {name} while taking images.")
        if self._changing_filter:
            raise salobj.ExpectedError(f"Cannot change filter to {name}: a filter change is in progress.")
        self._changing_filter = True
        try:
            await self.evt_startSetFilter.set_write(
                filterName=name, filterType=self._filter_type(name), force_output=True
            )
            await self.clock.sleep(self.filter_change_time)
            self.current_filter = name
            await self._write_filter_in_position(name)
        finally:
            self._changing_filter = False

    async def do_takeImages(self, data: salobj.BaseMsgType) -> None:
        """Take ``numImages`` images of ``expTime`` seconds."""
        self.assert_enabled("takeImages")
        num_images = int(data.numImages)
        exp_time = float(data.expTime)
        if num_images < 1:
            raise salobj.ExpectedError(f"numImages={num_images} must be >= 1.")
        if exp_time < 0:
            raise salobj.ExpectedError(f"expTime={exp_time} must be >= 0.")
        if self._changing_filter:
            raise salobj.ExpectedError("Cannot take images while the filter is changing.")
        detectors = parse_sensors(data.sensors, self.spec.instrument)
        if self.installed_detectors is not None:
            detectors = tuple(d for d in detectors if d in self.installed_detectors)
            if not detectors:
                raise salobj.ExpectedError(
                    f"None of the sensors {data.sensors!r} is simulated; simulated detectors: "
                    f"{list(self.installed_detectors)}."
                )
        key_values = parse_key_value_map(data.keyValueMap)
        if self._readout_task is not None:
            # The previous series' last image is still being read out.
            await self._readout_task
        self._taking_images = True
        try:
            if self.send_ack_in_progress:
                wall_duration = self.clock.wall_seconds(num_images * (exp_time + self.read_out_time))
                await self.cmd_takeImages.ack_in_progress(data, timeout=wall_duration + 10.0)
                await asyncio.sleep(ACK_GAP)
            for image_index in range(1, num_images + 1):
                readout = await self._integrate(
                    image_index, num_images, exp_time, bool(data.shutter), key_values, data, detectors
                )
                if image_index < num_images:
                    await readout
                else:
                    self._readout_task = readout
        finally:
            self._taking_images = False

    # -- image taking ---------------------------------------------------------------------------------

    async def _integrate(
        self,
        image_index: int,
        num_images: int,
        exp_time: float,
        shutter: bool,
        key_values: dict[str, str],
        data: salobj.BaseMsgType,
        detectors: tuple[int, ...],
    ) -> asyncio.Task:
        """Expose one image and return the task that reads it out."""
        faults = self.faults
        if faults.camera_fault_after is not None and not self._fault_fired:
            if self.images_started >= faults.camera_fault_after:
                self._fault_fired = True
                await self.fault(code=faults.camera_error_code, report=faults.camera_error_report)
                raise salobj.ExpectedError(f"Camera went to FAULT: {faults.camera_error_report}")
        self.images_started += 1
        image_number = self.images_started

        start_tai = self.clock.tai()
        day_obs = day_obs_from_tai(start_tai)
        seq_num = self.sink.reserve_seq_num(day_obs)
        obs_id = make_obs_id(day_obs, seq_num, self.spec.obs_id_prefix)
        header = dict(
            additionalKeys=":".join(key_values),
            additionalValues=":".join(key_values.values()),
            imagesInSequence=num_images,
            imageName=obs_id,
            imageIndex=image_index,
            imageSource=self.spec.obs_id_prefix,
            imageController="O",
            imageDate=str(day_obs),
            imageNumber=seq_num,
            timestampAcquisitionStart=start_tai,
        )
        await self._write_command_state(CcsCommandState.BUSY)
        await self.evt_startIntegration.set_write(
            **header, exposureTime=exp_time, mode="NORMAL", timeout=exp_time + self.read_out_time + 10.0
        )
        self._last_image_name = obs_id

        if faults.camera_hang_at_image is not None and image_number >= faults.camera_hang_at_image:
            self.log.warning(f"Fault injection: camera hangs while integrating {obs_id}.")
            self._hang_future = asyncio.get_running_loop().create_future()
            await self._hang_future

        dark_time = exp_time + (self.shutter_time if shutter else 0.0)
        await self.clock.sleep(dark_time)
        end_tai = start_tai + dark_time
        await self.evt_startReadout.set_write(
            **header, exposureTime=exp_time, timestampStartOfReadout=end_tai, force_output=True
        )
        info = ExposureInfo.make(
            day_obs=day_obs,
            seq_num=seq_num,
            image_type=key_values.get("imageType", "ENGTEST").upper(),
            exposure_time=exp_time,
            dark_time=dark_time,
            start_tai=start_tai,
            detectors=detectors,
            obs_id_prefix=self.spec.obs_id_prefix,
            physical_filter=(
                self.physical_filter_source()
                if self.physical_filter_source is not None
                else self.current_filter
            ),
            group_id=key_values.get("groupId", ""),
            reason=key_values.get("reason", ""),
            program=key_values.get("program", ""),
            note=data.obsNote,
        )
        return asyncio.create_task(self._read_out(info, header, shutter))

    async def _read_out(self, info: ExposureInfo, header: dict, shutter: bool) -> None:
        await self.clock.sleep(self.read_out_time)
        await self.evt_endReadout.set_write(
            **header,
            requestedExposureTime=info.exposure_time,
            timestampEndOfReadout=info.end_tai + self.read_out_time,
            force_output=True,
        )
        await self.evt_endOfImageTelemetry.set_write(
            **header,
            exposureTime=info.exposure_time,
            imageTag=uuid.uuid4().hex[:16],
            timestampDateObs=info.start_tai,
            timestampDateEnd=info.end_tai,
            measuredShutterOpenTime=info.exposure_time if shutter else 0.0,
            darkTime=info.dark_time,
            emulatedImage="",
            force_output=True,
        )
        await self._write_command_state(CcsCommandState.IDLE)
        self._delivery_idle.clear()
        self._pending.append(info.obs_id)
        self._delivery_queue.put_nowait(info)

    async def _deliver_images(self) -> None:
        """Hand each read-out image to the sink, then to the handlers, in order."""
        while True:
            info = await self._delivery_queue.get()
            try:
                await self.sink.write_image(info)
            except Exception:
                self.log.exception(f"Image sink failed to write {info.obs_id}; image lost.")
            else:
                for handler in self._image_handlers:
                    try:
                        await handler(info)
                    except Exception:
                        self.log.exception(f"Image handler {handler!r} failed for {info.obs_id}.")
            self._delivered += 1
            self._pending.remove(info.obs_id)
            if self._delivery_queue.empty():
                self._delivery_idle.set()

    # -- helpers --------------------------------------------------------------------------------------

    @staticmethod
    def _filter_type(name: str) -> str:
        return name.split("_")[0]

    async def _write_filter_in_position(self, name: str) -> None:
        await self.evt_endSetFilter.set_write(
            filterName=name,
            filterType=self._filter_type(name),
            filterSlot=self.available_filters.index(name),
            filterPosition=float(self.available_filters.index(name)),
            force_output=True,
        )

    async def _write_command_state(self, state: CcsCommandState) -> None:
        await self.evt_ccsCommandState.set_write(
            substate=int(state), timestampTransition=self.clock.tai(), force_output=True
        )


class AtCameraCsc(CameraCsc):
    """The simulated ATCamera: no filter changer of its own (``setFilter`` is not in its interface);
    each image's physical filter comes from `physical_filter_source` (the spectrograph's
    ``filter~grating``)."""

    do_setFilter = None  # type: ignore[assignment]


def make_camera_csc(spec: ObservatorySpec, **kwargs: Any) -> CameraCsc:
    """The camera CSC of ``spec`` (`AtCameraCsc` for a camera without a filter changer)."""
    cls = CameraCsc if spec.has_filter_changer else AtCameraCsc
    return cls(spec=spec, **kwargs)


CCCameraCsc = CameraCsc
"""The simulated LSSTComCam CCCamera (`CameraCsc` with its default spec)."""
