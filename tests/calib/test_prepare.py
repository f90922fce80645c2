"""`calib.prepare.prepare_run`: one way from configuration text to a planned run."""

import pytest

from lsst.ts.makecalibrations.calib.config import ConfigError
from lsst.ts.makecalibrations.calib.instrument import COMCAM
from lsst.ts.makecalibrations.calib.prepare import job_options, prepare_run


def test_prepare_run_fills_templates_and_plans() -> None:
    text = "generate_calibrations: true\ncalib_collection: 'u/me/calib.{timestamp}'\nn_bias: 2\n"
    prepared = prepare_run(text, COMCAM, 1700000000.0, read_out_time=3.0)
    assert prepared.config.calib_collection == "u/me/calib.20231114T221320"
    assert prepared.plan.read_out_time == 3.0
    assert prepared.plan.certified_products[0] == "bias"
    assert prepared.resume is None and prepared.already_certified == frozenset()


def test_prepare_run_names_an_unreadable_report(tmp_path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        prepare_run(f"resume_from_report: {tmp_path / 'none.json'}\n", COMCAM, 0.0)
    assert excinfo.value.keys == ["resume_from_report"]


def test_job_options_read_planned_jobs_with_placeholders() -> None:
    prepared = prepare_run("generate_calibrations: true\nscript_mode: BIAS\n", COMCAM, 0.0)
    combine, verify = prepared.plan.planned_jobs()
    assert job_options(combine).overrides[0][1:] == ("doDefect", "False")
    assert job_options(verify).inputs == ["u/ocps/placeholder", "LSSTComCam/calib"]
