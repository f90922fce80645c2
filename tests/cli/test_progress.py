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

"""``cli.progress``: the progress state machine fed with events, its throttled printing, and the
plan it is built from."""

from __future__ import annotations

import asyncio

import pytest

from lsst.ts.makecalibrations.calib.config import parse_config_text
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan
from lsst.ts.makecalibrations.cli.progress import (
    JOB_STARTED,
    ProgressReporter,
    ProgressState,
    build_plan,
    parse_image_type,
)
from lsst.ts.makecalibrations.sal import ScriptState, salobj
from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations


def make_state() -> ProgressState:
    # 2 biases (0 s + 2 s readout), 2 darks of 8 s: 24 simulated seconds of images; 3 jobs.
    return ProgressState(
        {"BIAS": 2, "DARK": 2},
        3,
        image_durations={"BIAS": [2.0, 2.0], "DARK": [10.0, 10.0]},
        time_scale=2.0,
    )


def test_parse_image_type() -> None:
    keys = "imageType:groupId:testType:stutterRows"
    assert parse_image_type(keys, "DARK:2024-01-01T00:00:00.000:DARK:0") == "DARK"
    # A value with colons before imageType: fall back on the first known type.
    assert parse_image_type("groupId:imageType", "2024-01-01T00:00:00:flat") == "FLAT"
    assert parse_image_type("", "") is None


def test_job_started_message() -> None:
    match = JOB_STARTED.match("BIAS combine job 0123abcd started: ${CP_PIPE_DIR}/cpBias.yaml on 3 exposures")
    assert match and match["name"] == "BIAS combine" and match["job_id"] == "0123abcd"
    assert JOB_STARTED.match("BIAS combine job 0123abcd succeeded in 3.0 s") is None


def test_state_machine() -> None:
    state = make_state()
    assert state.line(0.0).startswith("progress: BIAS 0/2 DARK 0/2 | jobs 3 queued, 0 running, 0 done of 3")
    assert state.elapsed(5.0) == 0.0
    state.on_script_state("RUNNING", 100.0)
    # Nothing measured yet: 24 simulated s at time scale 2, and the jobs unknown (a lower bound).
    assert state.remaining(100.0) == (12.0, False)
    assert state.line(100.0).endswith("elapsed 0:00, >=0:12 left")

    version = state.version
    state.on_image_started("BIAS", 100.0)
    assert state.version > version and "BIAS 0/2*" in state.line(100.5)
    state.on_image_read("BIAS", 101.0)  # 2 sim s in 1 wall s: twice as slow as announced
    state.on_image_started("BIAS", 101.0)
    state.on_image_read("BIAS", 102.0)
    assert state.taken == {"BIAS": 2, "DARK": 0}
    assert state.remaining(102.0) == (pytest.approx(20 * 0.5), False)

    state.on_job_started("a", 102.0)
    state.on_job_started("a", 102.5)  # the same job twice counts once
    assert (state.n_queued, state.n_running, state.n_done) == (2, 1, 0)
    # The running job's age (4 s) stands in for the mean job duration: (2 + 0.5) x 4 s more.
    left, complete = state.remaining(106.0)
    assert not complete and left == pytest.approx(10.0 + 2.5 * 4.0)

    state.on_image_started("DARK", 106.0)
    state.on_image_read("DARK", 111.0)
    state.on_job_finished("a", 0, 112.0)  # 10 s
    state.on_job_started("b", 112.0)
    state.on_job_started("c", 112.0)
    assert state.max_running == 2
    state.on_job_finished("b", 1, 114.0)  # 2 s; failed
    assert (state.n_queued, state.n_running, state.n_done, state.n_failed) == (0, 1, 2, 1)
    left, complete = state.remaining(114.0)
    # One dark left, at the pace measured so far (7 wall s for 14 simulated s), plus half the
    # running job at the mean finished duration (6 s) over the 2 jobs seen running at once.
    ratio = (1.0 + 1.0 + 5.0) / (2.0 + 2.0 + 10.0)
    assert complete and left == pytest.approx(10.0 * ratio + 0.5 * 6.0 / 2)
    line = state.line(114.0)
    assert (
        "BIAS 2/2 DARK 1/2 | OODS 0/3 | jobs 0 queued, 1 running, 2 done (1 failed) of 3 | elapsed 0:14, ~"
        in line
    )

    # A result for a job never seen starting (log level above INFO) still counts.
    state.on_job_finished("d", 0, 115.0)
    assert state.n_done == 3 and "of 4" in state.line(115.0)

    state.on_script_state("FAILED", 120.0)
    assert state.finished and state.remaining(130.0) == (0.0, True)
    assert state.elapsed(500.0) == 20.0
    assert state.line(500.0).endswith("elapsed 0:20 | FAILED")


def test_oods_announcements_and_quanta_rates() -> None:
    """Images announced of taken; a running job's quanta, and its time left at its measured rate."""
    state = make_state()
    state.on_script_state("RUNNING", 0.0)
    for _ in range(2):
        state.on_image_started("BIAS", 0.0)
        state.on_image_read("BIAS", 1.0)
    state.on_image_in_oods("CC_O_1", 1.5)
    state.on_image_in_oods("CC_O_1", 1.6)  # another detector of the same image
    assert "BIAS 2/2 DARK 0/2 | OODS 1/2 |" in state.line(2.0)
    state.on_job_started("job1", 2.0, "BIAS combine")
    state.on_job_quanta("job1", 2, 0, 26, 10.0)
    assert "1 running (BIAS combine 2/26 quanta)" in state.line(10.0)
    assert state.quanta_rate("job1") is None  # one report: no rate yet
    state.on_job_quanta("job1", 12, 0, 26, 20.0)  # 10 quanta in 10 s: 14 left take 14 s
    assert state.quanta_rate("job1") == pytest.approx(1.0)
    images_left = 20.0 * 0.5  # two darks of 10 simulated s at the measured 0.5 wall s per s
    left, complete = state.remaining(24.0)
    # The running job has 14 - 4 s still to go; the 2 queued ones are taken to last as long as it
    # is predicted to (22 s so far + 10 s): an estimate from a measured rate, not a lower bound.
    assert complete and left == pytest.approx(images_left + 2 * 32.0 + 10.0)
    state.on_job_finished("job1", 0, 34.0)
    state.on_job_quanta("job1", 26, 0, 26, 34.5)  # late report of a finished job: ignored
    assert "quanta" not in state.line(35.0)


def test_from_plan_and_recovered_types() -> None:
    config = parse_config_text(
        "script_mode: BIAS_DARK_FLAT\nn_bias: 3\nn_dark: 2\nexposure_ids:\n  bias: [1, 2]\n"
    )
    plan = CalibrationPlan.from_config(config)
    state = ProgressState.from_plan(plan, time_scale=100.0)
    assert state.totals == {
        "BIAS": 0,
        "DARK": 3,
        "FLAT": len(plan.acquisitions[2].exposures),
    }
    assert state.recovered == {"BIAS": 2}
    assert state.n_jobs == plan.n_jobs
    assert state.line(0.0).startswith("progress: BIAS reused 2 DARK 0/3 FLAT 0/")


def test_build_plan() -> None:
    plan = build_plan(MakeComCamCalibrations, "script_mode: BIAS\nn_bias: 4\n")
    assert plan is not None and [len(a.exposures) for a in plan.acquisitions] == [5]
    assert build_plan(MakeComCamCalibrations, "n_bias: 0\n") is None
    assert build_plan(object, "") is None


def test_build_plan_raises_what_is_not_a_configuration_error() -> None:
    class Broken:
        @staticmethod
        def get_instrument() -> None:
            raise RuntimeError("no camera description")

    with pytest.raises(RuntimeError, match="no camera description"):
        build_plan(Broken, "script_mode: BIAS\n")


async def test_reporter_throttles_and_prints_on_change() -> None:
    """Feed the reporter's callbacks: one line per change at most every interval, a final line."""
    salobj.set_test_topic_subname(randomize=True)
    lines: list[str] = []
    now = [0.0]
    async with salobj.Domain() as domain:
        reporter = ProgressReporter(
            domain, make_state(), 1, 2, lines.append, min_interval=0.2, clock=lambda: now[0]
        )
        await reporter.start()

        class Data:
            def __init__(self, **kwargs: object) -> None:
                self.__dict__.update(kwargs)

        image = dict(additionalKeys="imageType:groupId", additionalValues="BIAS:2024-01-01T00:00:00")
        await reporter._on_state(Data(state=ScriptState.RUNNING))
        assert len(lines) == 1 and "BIAS 0/2" in lines[0]
        await reporter._on_start_integration(Data(**image))
        await reporter._on_end_readout(Data(**image))
        await reporter._on_log(Data(message="BIAS combine job abc123 started: x on 2 exposures"))
        assert len(lines) == 1  # within the interval: one pending print
        now[0] = 0.3
        await asyncio.sleep(0.4)
        assert len(lines) == 2 and "BIAS 1/2" in lines[1] and "1 running" in lines[1]
        await asyncio.sleep(0.3)
        assert len(lines) == 2  # nothing changed: nothing printed
        await reporter._on_job_result(Data(job_id="abc123", exit_code=0))
        await reporter._on_state(Data(state=ScriptState.DONE))  # final: printed at once
        assert len(lines) == 3 and lines[2].endswith("| DONE") and "1 done" in lines[2]
        await reporter.close()
        assert len(lines) == 3


async def test_reporter_never_stays_silent_and_reads_ocps_progress() -> None:
    """With nothing happening, a line comes at least every ``max_silence`` s; OCPS quanta are parsed."""
    salobj.set_test_topic_subname(randomize=True)
    lines: list[str] = []
    async with salobj.Domain() as domain:
        reporter = ProgressReporter(
            domain, make_state(), 1, 2, lines.append, min_interval=0.05, max_silence=0.2
        )
        await reporter.start()

        class Data:
            def __init__(self, **kwargs: object) -> None:
                self.__dict__.update(kwargs)

        await reporter._on_state(Data(state=ScriptState.RUNNING))
        await reporter._on_log(Data(message="BIAS combine job abc123 started: x on 2 exposures"))
        await reporter._on_ocps_log(Data(message="Job abc123: 3 of 26 quanta done (0 failed)"))
        await reporter._on_ocps_log(Data(message="Job abc123 ended: exit_code=0"))  # not progress
        await asyncio.sleep(0.1)
        count = len(lines)
        assert "BIAS combine 3/26 quanta" in lines[-1]
        await asyncio.sleep(0.7)  # nothing changes, yet lines keep coming
        assert len(lines) >= count + 2
        await reporter._on_state(Data(state=ScriptState.DONE))
        await reporter.close()
        final = len(lines)
        await asyncio.sleep(0.4)
        assert len(lines) == final  # silent once the run ended
