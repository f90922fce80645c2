"""Pipeline locations and the parsing of the OCPS ``config`` string."""

from pathlib import Path

import pytest

from lsst.ts.makecalibrations.pipelines.locations import PIPELINE_DIRS, expand_pipeline_uri, pipeline_path
from lsst.ts.makecalibrations.sim.pipetask_executor import ConfigError, parse_config


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
