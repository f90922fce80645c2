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

"""A stop after the last image is taken but before the OODS has announced any of them.

This is the case an operator meets when the OODS is slow: every image is on disk and in the
registry, none is announced yet, and the stop comes. The script must wait (bounded) for the
announcements, say what it has, and a resume from its report must take no new image.
"""

from __future__ import annotations

import asyncio
import pathlib

from lsst.ts.makecalibrations.butler.readers import raw_detectors
from lsst.ts.makecalibrations.butler.repository import make_butler
from lsst.ts.makecalibrations.calib.report import RunReport
from lsst.ts.makecalibrations.sal import ScriptState
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
from tests.helpers import certifying_run, wait_until
from tests.scripts.driver import run_calibrations

#: Wall seconds between the stop and the OODS catching up with its announcements.
OODS_CATCH_UP = 2.0

CONFIG = certifying_run(
    "LSSTComCam/calib/test/unannounced.{timestamp}",
    "2024-05-01",
    script_mode="BIAS",
    n_bias=3,
    n_discard_bias=1,
    detectors=[0],
    do_verify=False,
)
#: Images the camera takes (kept and discarded, all in the report), and the kept ones.
N_IMAGES = 3 + 1
N_KEPT = 3


def registry_exposure_ids(repo: pathlib.Path, report: RunReport) -> dict[int, list[int]]:
    """Exposures of the report's group in the registry, with the detectors that have a raw."""
    butler = make_butler(repo)
    records = butler.registry.queryDimensionRecords("exposure", where=f"group = '{report.group_id}'")
    return raw_detectors(repo, [int(r.id) for r in records])


async def test_stop_with_every_image_taken_and_none_announced(tmp_path, tiny_repo) -> None:
    announced_at_stop: list[list[str]] = []

    async def slow_oods(observatory: SimulatedObservatory) -> None:
        observatory.oods.hold()

    async def all_taken_none_announced(script, observatory: SimulatedObservatory) -> None:
        await wait_until(
            lambda: (
                observatory.camera.images_started == N_IMAGES
                and observatory.camera.images_delivered == N_IMAGES
            ),
            timeout=120,
        )
        announced_at_stop.append(list(observatory.oods.announced))
        # The OODS catches up while the script is stopping.
        asyncio.get_running_loop().call_later(OODS_CATCH_UP, observatory.oods.release)

    first = await run_calibrations(
        CONFIG,
        report_dir=tmp_path / "first",
        repo=tiny_repo,
        prepare=slow_oods,
        stop_when=all_taken_none_announced,
    )
    assert announced_at_stop == [[]], "the stop must come before any announcement"
    assert first.final_state == ScriptState.STOPPED, first.reason
    report = first.report
    assert report is not None and report.final_state == "STOPPED"
    # Every image taken is in the report, and the stop waited for the OODS to announce them.
    taken = [e for e in report.exposures if not e.recovered]
    assert len(taken) == N_IMAGES and len([e for e in taken if not e.discarded]) == N_KEPT
    assert all(e.in_oods and e.detectors_in_oods == 1 for e in taken), taken
    assert {a.image_type: a.status for a in report.acquisitions} == {"BIAS": "complete"}
    # The registry holds exactly the report's exposures, each with a raw of the detector processed
    # (the camera reads out every installed detector).
    # (Other tests on the shared repository use the same group id, with earlier exposure ids.)
    first_id = min(e.exposure_id for e in taken)
    in_registry = {i: d for i, d in registry_exposure_ids(tiny_repo, report).items() if i >= first_id}
    assert sorted(in_registry) == sorted(e.exposure_id for e in taken)
    assert all(0 in detectors for detectors in in_registry.values()), in_registry
    assert report.jobs == [] or {j.status for j in report.jobs} <= {"aborted", "not_started"}
    assert first.certified() == {}

    second = await run_calibrations(
        dict(CONFIG, resume_from_report=str(first.script.report_path)),
        report_dir=tmp_path / "second",
        repo=tiny_repo,
    )
    assert second.final_state == ScriptState.DONE, second.reason
    assert second.observatory.camera.images_started == 0
    resumed = second.report
    assert resumed is not None
    assert [e for e in resumed.exposures if not e.recovered] == []
    kept = {e.exposure_id for e in taken if not e.discarded}
    assert {e.exposure_id for e in resumed.exposures} == kept
    assert {a.image_type: a.status for a in resumed.acquisitions} == {"BIAS": "recovered"}
    assert second.certified() == {"bias": 1}
