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

"""A camera client compatible with ts_observatory_control's ``BaseCamera``.

`BaseCamera` takes series of images through a camera CSC's ``takeImages`` command, with the same
command sequence, timeouts and ``keyValueMap`` as ts_observatory_control, and returns the exposure
ids parsed from the camera's ``startIntegration`` events. Instrument specifics (filters, sensors)
live in subclasses such as `ComCam`.

May import: `sal` (for ``salobj``), `calib.obs_id`, the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["BaseCamera", "CameraSubstate", "exposure_id_from_image_name"]

import abc
import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import astropy.time

from ..calib.obs_id import exposure_id_from_obs_id
from .camera_exposure import CameraExposure
from .remote_group import RemoteGroup

IMAGE_TYPES = (
    "BIAS",
    "DARK",
    "FLAT",
    "OBJECT",
    "ENGTEST",
    "ACQ",
    "CWFS",
    "FOCUS",
    "STUTTERED",
    "INDOME",
    "CBP",
    "SFLAT",
    "DFLAT",
)
"""Image types every camera accepts."""

TCS_SYNC_IMAGE_TYPES = frozenset({"OBJECT", "ENGTEST", "ACQ", "CWFS"})
"""Image types that wait for the telescope to be ready (when a readiness callable is given)."""


class CameraSubstate(enum.IntEnum):
    """``substate`` of the camera's ``ccsCommandState`` event."""

    IDLE = 1
    BUSY = 2


def exposure_id_from_image_name(image_name: str) -> int:
    """Return the exposure id of a camera image name.

    Parameters
    ----------
    image_name : `str`
        ``"<camera>_<controller>_<YYYYMMDD>_<seq>"``, e.g. ``"CC_O_20240101_000007"``.

    Returns
    -------
    exposure_id : `int`
        ``int(YYYYMMDD + seq[1:])``, e.g. ``2024010100007``.

    Raises
    ------
    RuntimeError
        If the name does not have the form `calib.obs_id.exposure_id_from_obs_id` reads (the
        error ts_observatory_control raises).
    """
    try:
        return exposure_id_from_obs_id(image_name)
    except ValueError:
        raise RuntimeError(f"Cannot parse exposure id from image name {image_name!r}.") from None


class BaseCamera(RemoteGroup, abc.ABC):
    """Take images with a camera CSC.

    Parameters
    ----------
    components : `list` [`str`]
        Components of the camera group; the camera CSC must be one of them.
    instrument_setup_attributes : `list` [`str`]
        Names of the keyword arguments `setup_instrument` accepts (e.g. ``["filter"]``).
    domain : ``salobj.Domain``, optional
        Domain for the remotes.
    log : `logging.Logger`, optional
        Parent logger.
    intended_usage : `int`, optional
        Usages bit mask; `None` for everything.
    tcs_ready_to_take_data : callable, optional
        Coroutine function awaited before on-sky image types (OBJECT, ENGTEST, ACQ, CWFS).
    """

    def __init__(
        self,
        components: list[str],
        instrument_setup_attributes: list[str],
        domain: Any = None,
        log: logging.Logger | None = None,
        intended_usage: int | None = None,
        tcs_ready_to_take_data: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(
            components=components,
            domain=domain,
            log=log,
            intended_usage=intended_usage,
        )
        self.instrument_setup_attributes = set(instrument_setup_attributes)
        self.ready_to_take_data = tcs_ready_to_take_data
        self.read_out_time = 2.0
        self.shutter_time = 1.0
        self.min_exptime = 0.1
        self.max_tcs_wait_time = 30.0
        self.cmd_lock = asyncio.Lock()

    # -- abstract interface ---------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def camera(self) -> Any:
        """The camera CSC's ``salobj.Remote``."""
        raise NotImplementedError()

    @abc.abstractmethod
    async def setup_instrument(self, **kwargs: Any) -> None:
        """Put the instrument in the configuration given by ``kwargs``."""
        raise NotImplementedError()

    @abc.abstractmethod
    async def get_available_instrument_setup(self) -> list[Any]:
        """Return the available instrument configurations."""
        raise NotImplementedError()

    @abc.abstractmethod
    def parse_sensors(self, sensors: Any) -> str:
        """Return the ``sensors`` string of ``takeImages`` for a sensor selection (`None`: all)."""
        raise NotImplementedError()

    # -- public API -----------------------------------------------------------------------------------

    @staticmethod
    def get_image_types() -> list[str]:
        """Return the image types this camera accepts."""
        return list(IMAGE_TYPES)

    def check_kwargs(self, **kwargs: Any) -> None:
        """Raise `RuntimeError` for any keyword argument that is not an instrument setup attribute."""
        for key in kwargs:
            if key not in self.instrument_setup_attributes:
                raise RuntimeError(
                    f"Invalid argument {key}. Accepted arguments are: "
                    f"{sorted(self.instrument_setup_attributes)}."
                )

    @staticmethod
    def next_group_id() -> str:
        """Return a new group id: the current TAI time in ISO format."""
        return astropy.time.Time.now().tai.isot

    async def take_bias(
        self,
        nbias: int,
        group_id: str | None = None,
        test_type: str | None = None,
        reason: str | None = None,
        program: str | None = None,
        sensors: Any = None,
        note: str | None = None,
        checkpoint: Callable[[str], Awaitable[Any]] | None = None,
    ) -> list[int]:
        """Take ``nbias`` bias images and return their exposure ids."""
        return await self.take_imgtype(
            imgtype="BIAS",
            exptime=0.0,
            n=nbias,
            group_id=group_id,
            test_type=test_type,
            reason=reason,
            program=program,
            sensors=sensors,
            note=note,
            checkpoint=checkpoint,
        )

    async def take_darks(
        self,
        exptime: float,
        ndarks: int,
        group_id: str | None = None,
        test_type: str | None = None,
        reason: str | None = None,
        program: str | None = None,
        sensors: Any = None,
        note: str | None = None,
        checkpoint: Callable[[str], Awaitable[Any]] | None = None,
    ) -> list[int]:
        """Take ``ndarks`` dark images of ``exptime`` seconds and return their exposure ids."""
        return await self.take_imgtype(
            imgtype="DARK",
            exptime=exptime,
            n=ndarks,
            group_id=group_id,
            test_type=test_type,
            reason=reason,
            program=program,
            sensors=sensors,
            note=note,
            checkpoint=checkpoint,
        )

    async def take_flats(
        self,
        exptime: float,
        nflats: int,
        group_id: str | None = None,
        test_type: str | None = None,
        reason: str | None = None,
        program: str | None = None,
        sensors: Any = None,
        note: str | None = None,
        checkpoint: Callable[[str], Awaitable[Any]] | None = None,
        **kwargs: Any,
    ) -> list[int]:
        """Take ``nflats`` flat-field images; ``kwargs`` set up the instrument (e.g. ``filter``)."""
        return await self.take_imgtype(
            imgtype="FLAT",
            exptime=exptime,
            n=nflats,
            group_id=group_id,
            test_type=test_type,
            reason=reason,
            program=program,
            sensors=sensors,
            note=note,
            checkpoint=checkpoint,
            **kwargs,
        )

    async def take_imgtype(
        self,
        imgtype: str,
        exptime: float,
        n: int,
        n_snaps: int = 1,
        n_shift: int | None = None,
        row_shift: int | None = None,
        group_id: str | None = None,
        test_type: str | None = None,
        reason: str | None = None,
        program: str | None = None,
        sensors: Any = None,
        note: str | None = None,
        checkpoint: Callable[[str], Awaitable[Any]] | None = None,
        **kwargs: Any,
    ) -> list[int]:
        """Take ``n`` images of type ``imgtype`` and return their exposure ids.

        Parameters
        ----------
        imgtype : `str`
            One of `get_image_types`.
        exptime : `float`
            Exposure time in seconds (ignored for BIAS).
        n : `int`
            Number of images (``takeImages`` commands of ``n_snaps`` images each).
        n_snaps : `int`, optional
            Images per ``takeImages`` command.
        n_shift, row_shift : `int`, optional
            Stutter parameters.
        group_id : `str`, optional
            Group id; a new one from `next_group_id` if `None`.
        test_type, reason, program, note : `str`, optional
            Written into the ``keyValueMap`` (``note`` into ``obsNote``).
        sensors : optional
            Sensor selection, see `parse_sensors`.
        checkpoint : coroutine function, optional
            Called with ``"Expose <n> <imgtype>"`` before exposing (a Script's ``checkpoint``).
        **kwargs
            Instrument setup (`instrument_setup_attributes`), applied for types other than BIAS/DARK.

        Returns
        -------
        exposure_ids : `list` [`int`]

        Raises
        ------
        RuntimeError
            For an invalid keyword argument, image type or exposure time, or a timeout waiting
            for ``startIntegration``.
        salobj.AckError
            If ``takeImages`` fails or times out.
        """
        self.check_kwargs(**kwargs)
        imgtype = str(imgtype).upper()
        if imgtype not in self.get_image_types():
            raise RuntimeError(f"Invalid imgtype: {imgtype}. Must be one of {self.get_image_types()}.")
        if group_id is None:
            group_id = self.next_group_id()
        if imgtype not in ("BIAS", "DARK"):
            await self.setup_instrument(**kwargs)
        if self.ready_to_take_data is not None and imgtype in TCS_SYNC_IMAGE_TYPES:
            await asyncio.wait_for(self.ready_to_take_data(), timeout=self.max_tcs_wait_time)
        if checkpoint is not None:
            await checkpoint(f"Expose {n} {imgtype}")
        camera_exposure = CameraExposure(
            exp_time=0.0 if imgtype == "BIAS" else float(exptime),
            shutter=imgtype not in ("BIAS", "DARK"),
            image_type=imgtype,
            group_id=group_id,
            n=n,
            n_snaps=n_snaps,
            n_shift=n_shift,
            row_shift=row_shift,
            test_type=test_type,
            reason=reason,
            program=program,
            sensors=sensors,
            note=note,
        )
        return await self.expose(camera_exposure)

    async def expose(self, camera_exposure: CameraExposure) -> list[int]:
        """Take the images of ``camera_exposure`` under `cmd_lock`; return their exposure ids."""
        async with self.cmd_lock:
            if camera_exposure.image_type == "BIAS" and camera_exposure.exp_time > 0.0:
                self.log.warning(
                    f"Bias exposure time set to {camera_exposure.exp_time}s; overriding it to 0s."
                )
                camera_exposure.exp_time = 0.0
            if camera_exposure.shutter and camera_exposure.exp_time < self.min_exptime:
                raise RuntimeError(
                    f"Minimum allowed open-shutter exposure time is {self.min_exptime}s. "
                    f"Requested {camera_exposure.exp_time}s."
                )
            if camera_exposure.is_stutter():
                raise RuntimeError("Stuttered images are not supported by this camera client.")
            return await self._handle_take_images(camera_exposure)

    async def _handle_take_images(self, camera_exposure: CameraExposure) -> list[int]:
        """Send one ``takeImages`` per image of the series and collect the exposure ids."""
        exposure_ids: list[int] = []
        for _ in range(camera_exposure.n):
            exposure_ids += await self._handle_snaps(camera_exposure)
        return exposure_ids

    async def _handle_snaps(self, camera_exposure: CameraExposure) -> list[int]:
        """Take one ``takeImages`` of ``n_snaps`` images; return their exposure ids."""
        self.camera.cmd_takeImages.set(
            numImages=camera_exposure.n_snaps,
            expTime=float(camera_exposure.exp_time),
            shutter=bool(camera_exposure.shutter),
            keyValueMap=camera_exposure.get_key_value_map(),
            sensors=self.parse_sensors(camera_exposure.sensors),
            obsNote="" if camera_exposure.note is None else camera_exposure.note,
        )
        timeout = (camera_exposure.exp_time + self.read_out_time) * camera_exposure.n + self.long_long_timeout
        await self.wait_for_camera_readiness()
        if hasattr(self.camera, "evt_ccsCommandState"):
            await self.wait_for_camera_state(CameraSubstate.IDLE)
        await self.camera.cmd_takeImages.start(timeout=timeout)
        exposure_ids = []
        for _ in range(camera_exposure.n_snaps):
            try:
                exposure_ids.append(await self.next_exposure_id())
            except TimeoutError:
                raise RuntimeError(
                    f"Timeout waiting for endReadout event. Expected {camera_exposure.n_snaps} "
                    f"got {len(exposure_ids)}."
                ) from None
        return exposure_ids

    async def next_exposure_id(self) -> int:
        """Pop the next ``startIntegration`` event and return the exposure id of its image.

        Raises
        ------
        asyncio.TimeoutError
            If no ``startIntegration`` arrives within ``long_long_timeout``.
        """
        start_integration = await self.camera.evt_startIntegration.next(
            flush=False, timeout=self.long_long_timeout
        )
        return exposure_id_from_image_name(start_integration.imageName)

    async def wait_for_camera_readiness(self) -> None:
        """Wait until the last image that started integrating has been read out.

        Like ts_observatory_control this keeps waiting (with a warning on each timeout) for the
        ``endReadout`` whose ``imageName`` matches the last ``startIntegration``; unlike it, it gives
        up with `RuntimeError` after ``long_long_timeout`` seconds of such timeouts, so a camera that
        hung mid-image cannot block the client forever.
        """
        camera = self.camera
        camera.evt_endReadout.flush()
        try:
            start_integration, end_readout = await asyncio.gather(
                camera.evt_startIntegration.aget(timeout=self.long_timeout),
                camera.evt_endReadout.aget(timeout=self.long_timeout),
            )
        except TimeoutError:
            self.log.info("No startIntegration/endReadout seen; assuming camera is ready.")
            return
        loop = asyncio.get_running_loop()
        wait_start = loop.time()
        while end_readout.imageName != start_integration.imageName:
            wait = self.long_timeout + 2.0 * start_integration.exposureTime + self.read_out_time
            try:
                end_readout = await camera.evt_endReadout.next(flush=False, timeout=wait)
            except TimeoutError:
                self.log.warning(
                    f"No endReadout for {start_integration.imageName} in {wait}s; "
                    f"last endReadout {end_readout.imageName}. Still waiting."
                )
                if loop.time() - wait_start >= self.long_long_timeout:
                    raise RuntimeError(
                        f"Camera not ready: no endReadout for {start_integration.imageName}."
                    ) from None
        camera.evt_startIntegration.flush()

    async def wait_for_camera_state(self, substate: CameraSubstate) -> None:
        """Wait until the camera's ``ccsCommandState`` is ``substate`` (a timeout only warns)."""
        topic = self.camera.evt_ccsCommandState
        try:
            data = await topic.aget(timeout=self.fast_timeout)
            topic.flush()
            while data.substate != substate:
                data = await topic.next(flush=False, timeout=self.fast_timeout)
        except TimeoutError:
            self.log.warning(f"Timeout waiting for camera command state {substate!r}; continuing.")
