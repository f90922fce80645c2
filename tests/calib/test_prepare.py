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

"""`calib.prepare.prepare_run`: one way from configuration text to a planned run."""

import pytest

from lsst.ts.makecalibrations.calib.config import ConfigError
from lsst.ts.makecalibrations.calib.instrument import COMCAM
from lsst.ts.makecalibrations.calib.options import parse_job_options
from lsst.ts.makecalibrations.calib.prepare import prepare_run


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


def test_planned_jobs_carry_their_inputs_and_overrides_as_data() -> None:
    prepared = prepare_run("generate_calibrations: true\nscript_mode: BIAS\n", COMCAM, 0.0)
    combine, verify = prepared.plan.planned_jobs()
    assert combine.overrides[0][1:] == ("doDefect", "False")
    placeholder = "<BIAS combine job id>"
    assert verify.input_collections == (f"u/ocps/{placeholder}", "LSSTComCam/calib")
    # The data is what the ``config`` string sends, as the OCPS executor parses it.
    for job in (combine, verify):
        parsed = parse_job_options(job.config.replace(placeholder, "placeholder"))
        assert list(job.overrides) == parsed.overrides
        assert [c.replace(placeholder, "placeholder") for c in job.input_collections] == parsed.inputs
