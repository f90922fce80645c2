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

"""The ComCam client taking images on the simulated observatory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import astropy.time
import pytest

from lsst.ts.makecalibrations.control import CameraExposure, ComCam, ComCamUsages, exposure_id_from_image_name
from lsst.ts.makecalibrations.sal import salobj
from lsst.ts.makecalibrations.sim.exposure import RecordingSink
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

TIME_SCALE = 100.0


class Recorder:
    """Records the messages of an event through an (async) callback, as the calibration script does."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def callback(self, data: Any) -> None:
        self.messages.append(data)

    @property
    def obsids(self) -> list[str]:
        return [data.obsid for data in self.messages]


async def wait_for_count(counter: Recorder, n: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(counter.messages) < n:
            await asyncio.sleep(0.005)


def make_observatory(**kwargs: Any) -> SimulatedObservatory:
    return SimulatedObservatory(
        ObservatoryOptions(time_scale=TIME_SCALE), shutdown_delay=0.0, ingest_delay=1.0, **kwargs
    )


@pytest.fixture
async def setup() -> AsyncIterator[tuple[SimulatedObservatory, ComCam]]:
    async with make_observatory() as observatory:
        async with ComCam() as comcam:
            yield observatory, comcam


def test_key_value_map() -> None:
    exposure = CameraExposure(exp_time=0.0, shutter=False, image_type="BIAS", group_id="G1")
    assert exposure.get_key_value_map() == (
        "imageType: BIAS, groupId: G1, testType: BIAS, stutterRows: 0, stutterNShifts: 0, stutterDelay: 0.0"
    )
    exposure = CameraExposure(
        exp_time=5.0,
        shutter=True,
        image_type="FLAT",
        group_id="G2",
        test_type="PTC",
        reason="daily",
        program="BLOCK-T123",
    )
    assert exposure.get_key_value_map() == (
        "imageType: FLAT, groupId: G2, testType: PTC, stutterRows: 0, stutterNShifts: 0, "
        "stutterDelay: 0.0, reason: daily, program: BLOCK-T123"
    )


def test_exposure_id_from_image_name() -> None:
    assert exposure_id_from_image_name("CC_O_20240101_000007") == 2024010100007
    with pytest.raises(RuntimeError, match="bad_name"):
        exposure_id_from_image_name("bad_name")


async def test_take_bias(setup: tuple[SimulatedObservatory, ComCam]) -> None:
    observatory, comcam = setup
    counter = Recorder()
    comcam.rem.ccoods.evt_imageInOODS.callback = counter.callback
    ids = await comcam.take_bias(3, reason="daily", program="BLOCK-T1", note="first")
    assert len(ids) == 3
    assert ids == list(range(ids[0], ids[0] + 3))
    await wait_for_count(counter, 27)
    await asyncio.sleep(0.02)
    assert len(counter.obsids) == 27
    images = observatory.sink.images
    assert [info.exposure_id for info in images] == ids
    assert sorted(set(counter.obsids)) == [info.obs_id for info in images]
    assert all(info.image_type == "BIAS" and info.exposure_time == 0.0 for info in images)
    assert {info.group_id for info in images} == {images[0].group_id}
    # The default group id is the TAI time now.
    group_time = astropy.time.Time(images[0].group_id, scale="tai")
    assert abs((astropy.time.Time.now() - group_time).sec) < 60
    assert (images[0].reason, images[0].program, images[0].note) == ("daily", "BLOCK-T1", "first")
    assert observatory.header_service.headers_written == [info.obs_id for info in images]


async def test_take_darks_exposure_time(setup: tuple[SimulatedObservatory, ComCam]) -> None:
    observatory, comcam = setup
    t0 = time.monotonic()
    ids = await comcam.take_darks(exptime=5.0, ndarks=3, group_id="darks")
    wall = time.monotonic() - t0
    # Three 5 s exposures and two readouts must have elapsed (simulated time), and not much more.
    assert wall >= (3 * 5.0 + 2 * 2.0) / TIME_SCALE
    assert wall < 3.0
    await observatory.wait_idle()
    images = observatory.sink.images
    assert [info.exposure_id for info in images] == ids
    assert [info.exposure_time for info in images] == [5.0] * 3
    assert [info.dark_time for info in images] == [5.0] * 3
    assert {info.image_type for info in images} == {"DARK"}
    assert {info.group_id for info in images} == {"darks"}
    telemetry = await comcam.camera.evt_endOfImageTelemetry.aget(timeout=1)
    assert telemetry.darkTime == 5.0 and telemetry.imageName == images[-1].obs_id


async def test_take_flats_with_filter(setup: tuple[SimulatedObservatory, ComCam]) -> None:
    observatory, comcam = setup
    assert await comcam.get_current_filter() == "r_03"
    assert await comcam.get_available_filters() == ["u_02", "g_01", "r_03", "i_06", "z_03", "y_04"]
    assert await comcam.get_available_instrument_setup() == [["u_02", "g_01", "r_03", "i_06", "z_03", "y_04"]]
    changes = Recorder()
    comcam.camera.evt_startSetFilter.callback = changes.callback
    ids = await comcam.take_flats(5.0, 2, filter="g_01")
    ids += await comcam.take_flats(5.0, 1, filter="g_01")
    assert len(ids) == 3
    assert await comcam.get_current_filter() == "g_01"
    await observatory.wait_idle()
    assert [info.physical_filter for info in observatory.sink.images] == ["g_01"] * 3
    assert [info.image_type for info in observatory.sink.images] == ["FLAT"] * 3
    # Only the first series changed the filter.
    assert len(changes.messages) == 1
    # Flats without a filter keep the current one.
    await comcam.take_flats(1.0, 1)
    assert len(changes.messages) == 1
    with pytest.raises(salobj.AckError, match="w_99"):
        await comcam.take_flats(5.0, 1, filter="w_99")


async def test_invalid_requests(setup: tuple[SimulatedObservatory, ComCam]) -> None:
    observatory, comcam = setup
    with pytest.raises(RuntimeError, match="Invalid argument grating"):
        await comcam.take_flats(5.0, 1, grating="x")
    with pytest.raises(RuntimeError, match="Invalid imgtype"):
        await comcam.take_imgtype("SKYFLAT", 1.0, 1)
    with pytest.raises(RuntimeError, match="Minimum allowed open-shutter exposure time"):
        await comcam.take_flats(0.01, 1)
    with pytest.raises(RuntimeError, match="Stuttered"):
        await comcam.take_imgtype("STUTTERED", 1.0, 1, n_shift=2, row_shift=10)
    assert "SPOT" in comcam.get_image_types()
    assert observatory.sink.images == []


async def test_bias_exptime_forced_to_zero_and_sensors(setup: tuple[SimulatedObservatory, ComCam]) -> None:
    observatory, comcam = setup
    counter = Recorder()
    comcam.rem.ccoods.evt_imageInOODS.callback = counter.callback
    checkpoints: list[str] = []

    async def checkpoint(name: str) -> None:
        checkpoints.append(name)

    exposure = CameraExposure(exp_time=3.0, shutter=False, image_type="BIAS", group_id="g", n=1)
    await comcam.expose(exposure)
    await comcam.take_imgtype("BIAS", 0.0, 1, sensors=[0, 4], checkpoint=checkpoint)
    assert checkpoints == ["Expose 1 BIAS"]
    await observatory.wait_idle()
    assert [info.exposure_time for info in observatory.sink.images] == [0.0, 0.0]
    assert observatory.sink.images[1].detectors == (0, 4)
    await wait_for_count(counter, 11)
    assert comcam.parse_sensors(None) == ""
    assert comcam.parse_sensors([0, "R22_S22"]) == "R22_S00:R22_S22"


async def test_camera_fault_mid_sequence() -> None:
    faults = FaultPlan(camera_fault_after=2, camera_error_code=77, camera_error_report="CCS lost the REBs")
    async with make_observatory(faults=faults) as observatory, ComCam() as comcam:
        with pytest.raises(salobj.AckError, match="CCS lost the REBs"):
            await comcam.take_bias(4)
        assert await comcam.get_state("cccamera") == salobj.State.FAULT
        error = await comcam.camera.evt_errorCode.aget(timeout=1)
        assert (error.errorCode, error.errorReport) == (77, "CCS lost the REBs")
        with pytest.raises(AssertionError, match=r"not enabled: \['CCCamera'\]"):
            await comcam.assert_all_enabled()
        await observatory.wait_idle()
        assert len(observatory.sink.images) == 2
        # Recover through the group and carry on.
        await comcam.enable()
        await comcam.assert_all_enabled()
        ids = await comcam.take_bias(1)
        assert ids[0] == observatory.sink.images[1].exposure_id + 1


async def test_camera_hang_times_out() -> None:
    async with make_observatory(faults=FaultPlan(camera_hang_at_image=2)) as observatory, ComCam() as comcam:
        # The client's timeouts are in wall seconds: (exptime + read_out_time) * n + long_long_timeout.
        comcam.read_out_time = 2.0 / TIME_SCALE
        comcam.long_long_timeout = 0.3
        comcam.long_timeout = 0.1
        t0 = time.monotonic()
        with pytest.raises(salobj.AckTimeoutError):
            await comcam.take_bias(3)
        assert time.monotonic() - t0 < 2.0
        # The hung image never reads out: the next request gives up waiting for the camera.
        with pytest.raises(RuntimeError, match="Camera not ready"):
            await comcam.take_bias(1)
        assert len(observatory.sink.images) == 1


async def test_missing_image_in_oods() -> None:
    async with make_observatory(faults=FaultPlan(missing_oods_images=frozenset({1, 3}))) as observatory:
        async with ComCam() as comcam:
            counter = Recorder()
            comcam.rem.ccoods.evt_imageInOODS.callback = counter.callback
            ids = await comcam.take_bias(3)
            await observatory.wait_idle()
            await asyncio.sleep(0.02)
            assert len(ids) == 3
            assert len(counter.obsids) == 9
            assert set(counter.obsids) == {observatory.sink.images[1].obs_id}


async def test_second_observatory_continues_sequence() -> None:
    sink = RecordingSink()
    async with make_observatory(sink=sink), ComCam() as comcam:
        first = await comcam.take_bias(2)
    async with make_observatory(sink=sink), ComCam() as comcam:
        second = await comcam.take_bias(2)
    assert second == [first[-1] + 1, first[-1] + 2]
    assert [info.seq_num for info in sink.images] == [1, 2, 3, 4]


async def test_take_image_usage(setup: tuple[SimulatedObservatory, ComCam]) -> None:
    observatory, _ = setup
    async with ComCam(intended_usage=ComCamUsages.TakeImage) as comcam:
        assert hasattr(comcam.camera, "evt_startIntegration")
        assert not hasattr(comcam.camera, "evt_shutterDetailedState")
        ids = await comcam.take_bias(1)
        await observatory.wait_idle()
        assert ids == [observatory.sink.images[-1].exposure_id]
