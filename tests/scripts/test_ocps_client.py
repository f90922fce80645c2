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

"""The OCPS job runner against the simulated OCPS: results matched by job id, none lost, timeouts."""

import asyncio
import logging

import pytest

from lsst.ts.makecalibrations.calib.config import ImageType, parse_config_text
from lsst.ts.makecalibrations.calib.jobs import JobBuilder
from lsst.ts.makecalibrations.calib.report import JobRecord
from lsst.ts.makecalibrations.sal import salobj
from lsst.ts.makecalibrations.scripts.ocps_client import JobFailedError, OcpsJobRunner
from lsst.ts.makecalibrations.scripts.oods_tracker import exposure_id_from_obs_id
from lsst.ts.makecalibrations.sim.clock import SimClock
from lsst.ts.makecalibrations.sim.ocps import OcpsCsc, SleepExecutor

LOG = logging.getLogger("test_ocps_client")


def record_for(spec) -> JobRecord:
    return JobRecord(spec.name, spec.kind.value, spec.product, spec.pipeline, spec.config, spec.data_query)


async def start_ocps(durations: dict[str, float]) -> tuple[OcpsCsc, salobj.Domain, object]:
    salobj.set_test_topic_subname(randomize=True)
    clock = SimClock(time_scale=100)
    executor = SleepExecutor(clock, duration=10, durations=durations)
    csc = OcpsCsc(clock=clock, executor=executor)
    domain = salobj.Domain()
    remote = salobj.Remote(domain, "OCPS", 2)
    await asyncio.gather(csc.start_task, remote.start_task)
    return csc, domain, remote


async def test_concurrent_jobs_get_their_own_results() -> None:
    # The bias job takes 10x longer than the dark job: results arrive in the reverse order.
    csc, domain, remote = await start_ocps({"verifyBias": 200.0, "verifyDark": 20.0})
    try:
        runner = OcpsJobRunner(remote, LOG)
        builder = JobBuilder(parse_config_text(""))
        bias = builder.verify(ImageType.BIAS, [1, 2], None)
        dark = builder.verify(ImageType.DARK, [3, 4], None)
        records = await asyncio.gather(
            runner.run(bias, record_for(bias), timeout=30), runner.run(dark, record_for(dark), timeout=30)
        )
        assert [r.status for r in records] == ["succeeded", "succeeded"]
        assert records[0].job_id != records[1].job_id
        assert records[0].end_tai > records[1].end_tai
        assert all(r.output_collection == f"u/ocps/{r.job_id}" for r in records)
        assert sorted(r.job_id for r in csc.executor.requests) == sorted(r.job_id for r in records)
        # A result that arrived with nobody waiting is kept.
        assert runner.dispatcher.has_result(records[1].job_id)
        again = await asyncio.wait_for(runner.dispatcher.wait(records[1].job_id), timeout=1)
        assert again.exit_code == 0
        runner.close()
    finally:
        await domain.close()
        await csc.close()


async def test_timeout_aborts_the_job() -> None:
    csc, domain, remote = await start_ocps({"cpBias": 1e6})
    try:
        runner = OcpsJobRunner(remote, LOG)
        spec = JobBuilder(parse_config_text("")).combine(ImageType.BIAS, [1])
        record = record_for(spec)
        with pytest.raises(JobFailedError) as excinfo:
            await runner.run(spec, record, timeout=0.5)
        assert "timed out after 0.5 s (aborted)" in excinfo.value.reason
        assert record.status == "timeout" and record.job_id
        assert csc.running_job_ids == []
        assert record.job_id in csc.executor._aborted
        runner.close()
    finally:
        await domain.close()
        await csc.close()


async def test_refused_command() -> None:
    csc, domain, remote = await start_ocps({})
    try:
        await salobj.set_summary_state(remote, salobj.State.DISABLED)
        runner = OcpsJobRunner(remote, LOG)
        spec = JobBuilder(parse_config_text("")).combine(ImageType.DARK, [1])
        record = record_for(spec)
        with pytest.raises(JobFailedError) as excinfo:
            await runner.run(spec, record, timeout=5)
        assert record.status == "rejected" and record.job_id == ""
        assert "refused the DARK combine job" in excinfo.value.reason
        runner.close()
    finally:
        await domain.close()
        await csc.close()


def test_exposure_id_from_obs_id() -> None:
    assert exposure_id_from_obs_id("CC_O_20240101_000007") == 2024010100007
    with pytest.raises(ValueError):
        exposure_id_from_obs_id("CC_O_2024_7")
