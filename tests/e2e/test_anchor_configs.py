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

"""Configurations operators bring from the ts_externalscripts script and the seed, on real products.

The anchor's form of a dark sequence (one exposure time per image taken) with
``background_task_timeout`` runs through ``run_script`` at ``--size tiny``; the seed's "Another
example including PTC and defects generation" (its user collections replaced by ones the simulated
repository has) certifies the defects and the PTC into its ``calib_collection`` although
``generate_calibrations`` is false.
"""

import json
import pathlib

import pytest
import yaml

from lsst.ts.makecalibrations.cli.run_script import main
from lsst.ts.makecalibrations.sal import ScriptState
from tests.helpers import TINY_PTC_OPTIONS, certified_in_repo
from tests.scripts.driver import run_calibrations

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).parents[2]
SCRIPT = "maintel/make_comcam_calibrations.py"


def test_anchor_dark_list_and_background_timeout_run_done(tmp_path, tiny_repo, capsys) -> None:
    example = ROOT / "examples" / "anchor_darks_and_background_timeout.yaml"
    values = yaml.safe_load(example.read_text())
    assert len(values["exp_times_dark"]) == values["n_dark"] + values["n_discard_dark"] == 23
    common = [SCRIPT, "-c", str(example), "-p", "detectors=[0]", "n_processes=1"]
    with pytest.raises(SystemExit) as plan_exit:
        main([*common, "--plan"])
    assert plan_exit.value.code in (0, None), capsys.readouterr().out
    assert "DARK: 1 discarded + 22 kept darks of 5 s" in capsys.readouterr().out
    reports = tmp_path / "reports"
    args = [*common, "--repo", str(tiny_repo), "--size", "tiny", "--time-scale", "500"]
    with pytest.raises(SystemExit) as run_exit:
        main([*args, "--report-dir", str(reports), "--no-progress"])
    out = capsys.readouterr().out
    assert run_exit.value.code in (0, None), out
    assert "state: DONE" in out
    # The dark verification still runs after the last dark: the wait is bounded by the timeout.
    assert "Waiting up to 600 s (background_task_timeout 600 s x 1 task(s))" in out
    (report_path,) = reports.glob("*.json")
    report = json.loads(report_path.read_text())
    assert report["final_state"] == "DONE"
    darks = [e for e in report["exposures"] if e["image_type"] == "DARK"]
    assert [e["discarded"] for e in darks] == [True] + [False] * 22


async def test_seed_another_example_certifies_defects_and_ptc(tmp_path, tiny_repo) -> None:
    text = (ROOT / "examples" / "ptc_and_defects_external.yaml").read_text()
    config = yaml.safe_load(text)
    assert "generate_calibrations" not in config and config["do_defects"] and config["do_ptc"]
    # The seed's user collection does not exist in the simulated repository; LSSTComCam/calib does.
    for key in (
        "input_collections_verify_bias",
        "input_collections_verify_dark",
        "input_collections_verify_flat",
    ):
        config[key] = "LSSTComCam/calib"
    # The seed's flat pairs (no low-flux pair) cannot constrain the read noise at the tiny size:
    # the PTC's bad-amp flagging is switched off here as in the other tiny-size script tests.
    config.update(detectors=[0], n_processes=1, config_options_ptc=TINY_PTC_OPTIONS)
    result = await run_calibrations(config, report_dir=tmp_path, repo=tiny_repo)
    assert result.final_state == ScriptState.DONE, result.reason
    collection = config["calib_collection"]
    certified = certified_in_repo(tiny_repo, collection)
    span = (0, "2021-07-15T00:00:00", "2021-07-17T00:00:00")
    assert certified == {"defects": {span}, "ptc": {span}}
    assert result.certified() == {"defects": 1, "ptc": 1}
