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

"""The simulated CCCamera, CCHeaderService and CCOODS driven through plain Remotes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lsst.ts.makecalibrations.sal import salobj
from lsst.ts.makecalibrations.sim.ccamera import CCCameraCsc, parse_key_value_map, parse_sensors
from lsst.ts.makecalibrations.sim.clock import SimClock, day_obs_from_tai
from lsst.ts.makecalibrations.sim.exposure import ExposureInfo, RecordingSink
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from lsst.ts.makecalibrations.sim.header_service import HeaderServiceCsc
from lsst.ts.makecalibrations.sim.oods import OodsCsc

TIME_SCALE = 100.0
KEY_VALUE_MAP = (
    "imageType: DARK, groupId: 2024-01-01T00:00:00.000, testType: DARK, stutterRows: 0, "
    "stutterNShifts: 0, stutterDelay: 0.0, reason: daily, program: BLOCK-T1"
)


class Bench:
    """A camera, header service and OODS wired like the observatory, plus a Remote of each."""

    def __init__(self, faults: FaultPlan | None = None, sink: RecordingSink | None = None, **camera_kw: Any):
        self.clock = SimClock(TIME_SCALE)
        self.sink = sink if sink is not None else RecordingSink()
        self.faults = faults if faults is not None else FaultPlan()
        self.camera = CCCameraCsc(clock=self.clock, sink=self.sink, faults=self.faults, **camera_kw)
        self.header = HeaderServiceCsc()
        self.oods = OodsCsc(clock=self.clock, faults=self.faults, ingest_delay=1.0)
        self.camera.add_image_handler(self.header.handle_image)
        self.camera.add_image_handler(self.oods.handle_image)
        for csc in (self.camera, self.header, self.oods):
            csc.shutdown_delay = 0.0
        self.domain = salobj.Domain()
        self.cam = salobj.Remote(self.domain, "CCCamera")
        self.hdr = salobj.Remote(self.domain, "CCHeaderService")
        self.ods = salobj.Remote(self.domain, "CCOODS")
        self.events: list[tuple[str, Any]] = []

    async def start(self) -> None:
        await asyncio.gather(
            self.camera.start_task,
            self.header.start_task,
            self.oods.start_task,
            self.cam.start_task,
            self.hdr.start_task,
            self.ods.start_task,
        )

    def record(self, remote: Any, *names: str) -> None:
        """Record the named events of ``remote`` (in arrival order) into ``self.events``."""
        for name in names:

            async def callback(data: Any, name: str = name) -> None:
                self.events.append((name, data))

            getattr(remote, f"evt_{name}").callback = callback

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    async def close(self) -> None:
        await self.domain.close()
        await asyncio.gather(self.camera.close(), self.header.close(), self.oods.close())


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    bench = Bench()
    await bench.start()
    yield bench
    await bench.close()


def test_parse_helpers() -> None:
    kv = parse_key_value_map(KEY_VALUE_MAP)
    assert kv["imageType"] == "DARK"
    assert kv["groupId"] == "2024-01-01T00:00:00.000"
    assert kv["program"] == "BLOCK-T1"
    assert parse_sensors("") == tuple(range(9))
    assert parse_sensors("R22_S11:R22_S00") == (0, 4)
    with pytest.raises(salobj.ExpectedError, match="R22_S33"):
        parse_sensors("R22_S33")


async def test_startup_history(bench: Bench) -> None:
    cam = bench.cam
    assert (await cam.evt_summaryState.aget(timeout=1)).summaryState == salobj.State.ENABLED
    filters = await cam.evt_availableFilters.aget(timeout=1)
    assert filters.filterNames == "u_02:g_01:r_03:i_06:z_03:y_04"
    assert (await cam.evt_endSetFilter.aget(timeout=1)).filterName == "r_03"
    assert (await cam.evt_ccsCommandState.aget(timeout=1)).substate == 1
    start = await cam.evt_startIntegration.aget(timeout=1)
    end = await cam.evt_endReadout.aget(timeout=1)
    assert start.imageName == end.imageName
    assert start.imageName.startswith("CC_O_")
    for remote in (bench.hdr, bench.ods):
        assert (await remote.evt_summaryState.aget(timeout=1)).summaryState == salobj.State.ENABLED


async def test_take_images_sequence(bench: Bench) -> None:
    bench.record(
        bench.cam,
        "ccsCommandState",
        "startIntegration",
        "startReadout",
        "endReadout",
        "endOfImageTelemetry",
    )
    bench.record(bench.hdr, "largeFileObjectAvailable")
    bench.record(bench.ods, "imageInOODS")
    t0 = time.monotonic()
    ack = await bench.cam.cmd_takeImages.set_start(
        numImages=2, expTime=5.0, shutter=False, keyValueMap=KEY_VALUE_MAP, sensors="", obsNote="a note"
    )
    ack_wall = time.monotonic() - t0
    assert ack.ack == salobj.SalRetCode.CMD_COMPLETE
    # Acked after the second integration: both exposures and the first readout, not the last readout.
    assert ack_wall >= (5.0 + 2.0 + 5.0) / TIME_SCALE
    assert bench.names().count("startIntegration") == 2
    assert bench.names().count("endReadout") == 1
    await bench.camera.wait_images_delivered()
    await bench.oods.wait_idle()
    await asyncio.sleep(0.01)

    camera_events = [(n, d) for n, d in bench.events if n not in ("imageInOODS", "largeFileObjectAvailable")]
    expected = ["ccsCommandState", "startIntegration", "startReadout", "endReadout", "endOfImageTelemetry"]
    expected.append("ccsCommandState")
    assert [n for n, _ in camera_events] == expected * 2
    states = [d.substate for n, d in camera_events if n == "ccsCommandState"]
    assert states == [2, 1, 2, 1]

    starts = [d for n, d in bench.events if n == "startIntegration"]
    day_obs = day_obs_from_tai(bench.clock.tai())
    assert [s.imageName for s in starts] == [f"CC_O_{day_obs}_000001", f"CC_O_{day_obs}_000002"]
    assert [s.imageIndex for s in starts] == [1, 2]
    assert all(s.imagesInSequence == 2 and s.exposureTime == 5.0 for s in starts)
    assert starts[0].additionalKeys.split(":")[:2] == ["imageType", "groupId"]
    assert starts[0].additionalValues.startswith("DARK:2024-01-01T00:00:00.000:")
    telemetry = [d for n, d in bench.events if n == "endOfImageTelemetry"]
    assert [t.darkTime for t in telemetry] == [5.0, 5.0]
    assert [t.exposureTime for t in telemetry] == [5.0, 5.0]
    # Simulated timestamps are true: integration lasts the exposure time.
    assert telemetry[0].timestampDateEnd - telemetry[0].timestampDateObs == pytest.approx(5.0)
    assert starts[1].timestampAcquisitionStart - starts[0].timestampAcquisitionStart >= 7.0

    images = bench.sink.images
    assert [i.obs_id for i in images] == [s.imageName for s in starts]
    assert [i.exposure_id for i in images] == [int(f"{day_obs}00001"), int(f"{day_obs}00002")]
    assert images[0].image_type == "DARK"
    assert images[0].program == "BLOCK-T1" and images[0].reason == "daily" and images[0].note == "a note"
    assert images[0].physical_filter == "r_03"
    assert images[0].detectors == tuple(range(9))

    lfoa = [d for n, d in bench.events if n == "largeFileObjectAvailable"]
    assert [d.id for d in lfoa] == [i.obs_id for i in images]
    in_oods = [d for n, d in bench.events if n == "imageInOODS"]
    assert len(in_oods) == 18
    assert {d.obsid for d in in_oods} == {i.obs_id for i in images}
    first = [d for d in in_oods if d.obsid == images[0].obs_id]
    assert [d.sensor for d in first] == ["S00", "S01", "S02", "S10", "S11", "S12", "S20", "S21", "S22"]
    assert all(d.camera == "LSSTComCam" and d.raft == "R22" and d.statusCode == 0 for d in in_oods)
    # imageInOODS only after the image went through the sink and header service.
    names = bench.names()
    assert names.index("imageInOODS") > names.index("largeFileObjectAvailable")


async def test_sensor_subset(bench: Bench) -> None:
    bench.record(bench.ods, "imageInOODS")
    await bench.cam.cmd_takeImages.set_start(
        numImages=1, expTime=0.0, shutter=False, keyValueMap="imageType: BIAS", sensors="R22_S11:R22_S22"
    )
    await bench.camera.wait_images_delivered()
    await bench.oods.wait_idle()
    await asyncio.sleep(0.01)
    assert sorted(d.sensor for _, d in bench.events) == ["S11", "S22"]
    assert bench.sink.images[0].detectors == (4, 8)


async def test_bad_take_images(bench: Bench) -> None:
    async with salobj.assertRaisesAckError(ack=salobj.SalRetCode.CMD_FAILED, result_contains="numImages"):
        await bench.cam.cmd_takeImages.set_start(numImages=0, expTime=1.0, timeout=5)
    async with salobj.assertRaisesAckError(result_contains="R22_S99"):
        await bench.cam.cmd_takeImages.set_start(numImages=1, expTime=1.0, sensors="R22_S99", timeout=5)
    assert bench.sink.images == []


async def test_set_filter(bench: Bench) -> None:
    bench.record(bench.cam, "startSetFilter", "endSetFilter")
    t0 = time.monotonic()
    await bench.cam.cmd_setFilter.set_start(name="g_01", timeout=5)
    assert time.monotonic() - t0 >= 1.0 / TIME_SCALE
    assert [(n, d.filterName) for n, d in bench.events] == [
        ("startSetFilter", "g_01"),
        ("endSetFilter", "g_01"),
    ]
    assert bench.events[1][1].filterType == "g"
    assert bench.camera.current_filter == "g_01"

    with pytest.raises(salobj.AckError) as excinfo:
        await bench.cam.cmd_setFilter.set_start(name="x_99", timeout=5)
    ackcmd = excinfo.value.ackcmd
    assert ackcmd.ack == salobj.SalRetCode.CMD_FAILED
    assert "x_99" in ackcmd.result
    assert "u_02:g_01:r_03:i_06:z_03:y_04" in ackcmd.result
    assert bench.camera.current_filter == "g_01"


async def test_state_transitions_from_offline() -> None:
    bench = Bench(initial_state=salobj.State.OFFLINE)
    await bench.start()
    try:
        cam = bench.cam
        assert (await cam.evt_summaryState.aget(timeout=1)).summaryState == salobj.State.OFFLINE
        async with salobj.assertRaisesAckError(result_contains="takeImages not allowed"):
            await cam.cmd_takeImages.set_start(numImages=1, expTime=0.0, timeout=5)
        states = await salobj.set_summary_state(cam, salobj.State.ENABLED, timeout=5)
        assert states == [
            salobj.State.OFFLINE,
            salobj.State.STANDBY,
            salobj.State.DISABLED,
            salobj.State.ENABLED,
        ]
        await cam.cmd_takeImages.set_start(numImages=1, expTime=0.0, keyValueMap="imageType: BIAS", timeout=5)
        # exitControl leaves the camera control system running, so enterControl works again.
        await salobj.set_summary_state(cam, salobj.State.OFFLINE, timeout=5)
        await cam.cmd_enterControl.start(timeout=5)
        assert (await cam.evt_summaryState.aget(timeout=1)).summaryState == salobj.State.STANDBY
        assert bench.camera.summary_state == salobj.State.STANDBY
        assert not bench.camera.done_task.done()
    finally:
        await bench.close()


async def test_sequence_continues_from_sink() -> None:
    sink = RecordingSink()
    clock = SimClock(TIME_SCALE)
    day_obs = day_obs_from_tai(clock.tai())
    sink.images.append(
        ExposureInfo(
            exposure_id=int(f"{day_obs}00041"),
            obs_id=f"CC_O_{day_obs}_000041",
            day_obs=day_obs,
            seq_num=41,
            image_type="BIAS",
            exposure_time=0.0,
            dark_time=0.0,
            physical_filter="r_03",
            group_id="g",
            start_tai=0.0,
            end_tai=0.0,
            detectors=tuple(range(9)),
        )
    )
    bench = Bench(sink=sink)
    await bench.start()
    try:
        # The startup history names the last image already taken.
        assert (await bench.cam.evt_endReadout.aget(timeout=1)).imageName == f"CC_O_{day_obs}_000041"
        await bench.cam.cmd_takeImages.set_start(numImages=2, expTime=0.0, keyValueMap="imageType: BIAS")
        await bench.camera.wait_images_delivered()
        assert [i.seq_num for i in sink.images] == [41, 42, 43]
    finally:
        await bench.close()


async def test_camera_fault_after_n_images() -> None:
    bench = Bench(
        faults=FaultPlan(camera_fault_after=2, camera_error_code=42, camera_error_report="REB lost")
    )
    await bench.start()
    try:
        async with salobj.assertRaisesAckError(ack=salobj.SalRetCode.CMD_FAILED, result_contains="REB lost"):
            await bench.cam.cmd_takeImages.set_start(numImages=3, expTime=1.0, keyValueMap="imageType: DARK")
        assert bench.camera.summary_state == salobj.State.FAULT
        assert (await bench.cam.evt_summaryState.aget(timeout=1)).summaryState == salobj.State.FAULT
        error = await bench.cam.evt_errorCode.aget(timeout=1)
        assert (error.errorCode, error.errorReport) == (42, "REB lost")
        await bench.camera.wait_images_delivered()
        assert len(bench.sink.images) == 2
        # In FAULT takeImages is refused, naming the error code; recovery works and the fault fires once.
        async with salobj.assertRaisesAckError(result_contains="errorCode=42"):
            await bench.cam.cmd_takeImages.set_start(numImages=1, expTime=1.0, timeout=5)
        await salobj.set_summary_state(bench.cam, salobj.State.ENABLED, timeout=5)
        await bench.cam.cmd_takeImages.set_start(numImages=1, expTime=1.0, keyValueMap="imageType: DARK")
        await bench.camera.wait_images_delivered()
        assert len(bench.sink.images) == 3
    finally:
        await bench.close()


async def test_camera_hangs() -> None:
    bench = Bench(faults=FaultPlan(camera_hang_at_image=2))
    await bench.start()
    try:
        bench.record(bench.cam, "startIntegration", "endReadout")
        async with salobj.assertRaisesAckTimeoutError(ack=salobj.SalRetCode.CMD_NOACK):
            await bench.cam.cmd_takeImages.set_start(
                numImages=3, expTime=1.0, keyValueMap="imageType: DARK", timeout=0.5
            )
        # The second image started integrating and was never read out; no third image.
        assert bench.names() == ["startIntegration", "endReadout", "startIntegration"]
        assert len(bench.sink.images) == 1
    finally:
        await bench.close()


async def test_missing_image_in_oods() -> None:
    bench = Bench(faults=FaultPlan(missing_oods_images=frozenset({2})))
    await bench.start()
    try:
        bench.record(bench.ods, "imageInOODS")
        await bench.cam.cmd_takeImages.set_start(numImages=3, expTime=0.0, keyValueMap="imageType: BIAS")
        await bench.camera.wait_images_delivered()
        await bench.oods.wait_idle()
        await asyncio.sleep(0.01)
        obs_ids = [i.obs_id for i in bench.sink.images]
        announced = [d.obsid for _, d in bench.events]
        assert len(announced) == 18
        assert set(announced) == {obs_ids[0], obs_ids[2]}
        assert bench.oods.dropped == [obs_ids[1]]
    finally:
        await bench.close()


async def test_ack_in_progress_option() -> None:
    bench = Bench(ack_in_progress=True)
    await bench.start()
    try:
        ack = await bench.cam.cmd_takeImages.set_start(
            numImages=1, expTime=0.0, keyValueMap="imageType: BIAS", wait_done=False
        )
        assert ack.ack == salobj.SalRetCode.CMD_INPROGRESS
        ack = await bench.cam.cmd_takeImages.next_ackcmd(ack)
        assert ack.ack == salobj.SalRetCode.CMD_COMPLETE
    finally:
        await bench.close()
