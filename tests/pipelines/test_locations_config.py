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

"""Pipeline locations and the parsing of the OCPS ``config`` string."""

from pathlib import Path

import pytest

from lsst.ts.makecalibrations.calib.options import OptionsError as ConfigError
from lsst.ts.makecalibrations.calib.options import parse_job_options as parse_config
from lsst.ts.makecalibrations.pipelines.locations import PIPELINE_DIRS, expand_pipeline_uri, pipeline_path


def test_expand_keeps_subset_and_finds_every_pipeline() -> None:
    expanded = expand_pipeline_uri("${CP_PIPE_DIR}/pipelines/LSSTComCam/cpPtc.yaml#cpPtcGainFromFlatPairs")
    root = PIPELINE_DIRS["CP_PIPE_DIR"]
    assert expanded == f"{root}/pipelines/LSSTComCam/cpPtc.yaml#cpPtcGainFromFlatPairs"
    assert Path(expanded).is_absolute()
    for name in ("cpBias", "cpDark", "cpFlat"):
        assert pipeline_path(f"${{CP_PIPE_DIR}}/pipelines/LSSTComCam/{name}.yaml").is_file()
    for name in ("verifyBias", "verifyDark", "verifyFlat"):
        assert pipeline_path(f"$CP_VERIFY_DIR/pipelines/LSSTComCam/{name}.yaml").is_file()
    assert expand_pipeline_uri("/abs/path.yaml") == "/abs/path.yaml"
    with pytest.raises(ValueError, match="OBS_LSST_DIR"):
        expand_pipeline_uri("${OBS_LSST_DIR}/x.yaml")


def test_parse_config() -> None:
    parsed = parse_config(
        "-j 8 -i LSSTComCam/calib,u/me/calib -i LSSTComCam/calib --register-dataset-types "
        '-c isr:doDefect=False -c \'cpBiasCombine:mask=["SAT", "INTRP"]\''
    )
    assert parsed.processes == 8
    assert parsed.inputs == ["LSSTComCam/calib", "u/me/calib"]
    assert parsed.register_dataset_types
    assert parsed.overrides == [("isr", "doDefect", "False"), ("cpBiasCombine", "mask", '["SAT", "INTRP"]')]
    assert parse_config("") == parse_config("   ")


@pytest.mark.parametrize(
    "config", ["-j", "-j 0", "-i", "-c isr", "--pipeline-dot x", "-j 1 && ls", "-b /repo", "--output-run x"]
)
def test_parse_config_refuses(config: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(config)


def test_labels_must_be_tasks_of_the_pipeline(tmp_path: Path) -> None:
    from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor

    executor = PipetaskExecutor(tmp_path)
    notes: list[str] = []
    parsed = parse_config("-c cpPtcIsr:doCrosstalk=False -c cpPtcExtract:doGain=True")
    labels = ["cpPtcIsr", "cpPtcExtract", "cpPtcSolve"]
    resolved = executor._resolve_overrides(parsed, labels, notes.append)
    assert resolved == ["cpPtcIsr:doCrosstalk=False", "cpPtcExtract:doGain=True"]
    # pipetask refuses the seed's bare label: the job builder translates it before the job is sent.
    with pytest.raises(ConfigError, match="no task labelled 'isr'"):
        executor._resolve_overrides(parse_config("-c isr:doDefect=False"), labels, notes.append)
    with pytest.raises(ConfigError, match="cpPtcSolve"):
        executor._resolve_overrides(parse_config("-c solve:x=1"), labels, notes.append)
