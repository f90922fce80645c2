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
"""A camera that hangs mid-image: the run fails before processing, naming the camera, the wait and
the image it hung on, and the images it did take are in the report."""

from __future__ import annotations

from typing import Any

from lsst.ts.makecalibrations.sal import ScriptState
from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from tests.scripts.driver import run_calibrations


class ImpatientComCamCalibrations(MakeComCamCalibrations):
    """The ComCam script with the camera client's timeouts cut to seconds, so a hang shows at once
    (the client waits ``(exptime + read_out_time) * n + long_long_timeout`` wall seconds)."""

    def make_camera(self) -> Any:
        camera = super().make_camera()
        camera.long_long_timeout = 2.0
        camera.long_timeout = 1.0
        return camera


async def test_camera_hang_names_the_camera_the_wait_and_the_image(tmp_path) -> None:
    config = dict(script_mode="BIAS", n_bias=3, n_discard_bias=0, detectors=[0], do_verify=False)
    result = await run_calibrations(
        config,
        report_dir=tmp_path,
        faults=FaultPlan(camera_hang_at_image=2),
        script_class=ImpatientComCamCalibrations,
        timeout=120,
    )
    assert result.final_state == ScriptState.FAILED, result.reason
    report = result.report
    assert report is not None and report.failure_step == "BIAS acquisition"
    (failure,) = report.failures
    message = failure.describe()
    assert "bias 2 of 3 could not be taken: CCCamera did not complete takeImages within " in message
    waited = float(message.split("takeImages within ")[1].split(" s")[0])
    assert 2.0 <= waited < 30.0, message
    started = result.observatory.camera.images_started
    assert started == 2
    assert ": CCCamera appears hung while taking " in message, message
    hung = message.split("appears hung while taking ")[1]
    assert hung.startswith("CC_O_") and f"last read out {hung}" not in message, message
    # The image taken before the hang is in the report; the hung one never read out.
    assert [e.image_type for e in report.exposures] == ["BIAS"]
    assert report.acquisition("BIAS").status == "incomplete"
    assert message in result.reason
