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

"""The rules several rooms share: flat pairs, obs id -> exposure id, cp_verify failure strings."""

from __future__ import annotations

import pytest

from lsst.ts.makecalibrations.calib.config import ImageType, parse_config_text
from lsst.ts.makecalibrations.calib.flat_pairs import PAIR_TOLERANCE, find_flat_pairs, match_pairs_by_time
from lsst.ts.makecalibrations.calib.obs_id import exposure_id, exposure_id_from_obs_id
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan
from lsst.ts.makecalibrations.calib.verify_stats import (
    VerifyFailure,
    exposure_level_failures,
    run_level_failures,
)
from lsst.ts.makecalibrations.control.base_camera import exposure_id_from_image_name
from lsst.ts.makecalibrations.pipelines import ptc


def test_plan_and_pipeline_pair_the_same_flats() -> None:
    """1.000 s and 1.004 s are one pair for the configuration, the plan and the PTC pipeline."""
    times = [1.0, 1.004, 2.0, 2.0 + 2 * PAIR_TOLERANCE, 3.0, 3.0]
    assert find_flat_pairs(times) == [(0, 1), (4, 5)]
    exposures = [(100 + i, t) for i, t in enumerate(times)]
    assert ptc.match_pairs_by_time(exposures) == match_pairs_by_time(exposures) == [(100, 101), (104, 105)]
    config = parse_config_text(
        "script_mode: BIAS_DARK_FLAT\nn_flat: 4\nexp_times_flat: [1.0, 1.004, 3.0, 3.0]\ndo_ptc: true\n"
    )
    assert config.flat_pairs == [(0, 1), (2, 3)]
    assert config.exp_times(ImageType.FLAT) == (1.0, 1.004, 3.0, 3.0)
    plan = CalibrationPlan.from_config(config)
    assert [(p.first, p.second) for p in plan.flat_pairs] == [(0, 1), (2, 3)]


def test_ptc_refuses_flats_further_apart_than_the_tolerance() -> None:
    with pytest.raises(ValueError, match="entries 1 and 2 differ"):
        parse_config_text(
            "script_mode: BIAS_DARK_FLAT\nn_flat: 2\nexp_times_flat: [1.0, 1.01]\ndo_ptc: true\n"
        )


def test_obs_id_rule_one_place() -> None:
    assert exposure_id(20240101, 7) == exposure_id_from_obs_id("CC_O_20240101_000007") == 2024010100007
    assert exposure_id_from_image_name("CC_O_20240101_000007") == 2024010100007
    with pytest.raises(ValueError, match="Not an image name"):
        exposure_id_from_obs_id("CC_O_2024_7")
    # The ts_observatory_control client keeps its own exception type.
    with pytest.raises(RuntimeError, match="Cannot parse exposure id"):
        exposure_id_from_image_name("CC_O_2024_7")


def test_verify_failure_strings() -> None:
    run = {"SUCCESS": False, "FAILURES": ["R22_S21 C17 NOISE", "R22_S22 SCATTER", "SCATTER", " "]}
    assert run_level_failures(run) == [
        VerifyFailure("NOISE", "R22_S21", "C17"),
        VerifyFailure("SCATTER", "R22_S22"),
        VerifyFailure("SCATTER"),
    ]
    assert run_level_failures(None) == []
    exp = {
        "R22_S00": {"SUCCESS": False, "FAILURES": ["C10 NOISE", "SCATTER"]},
        "VERIFY": {"EXP": {"SCATTER": False, "SUCCESS": False}},
        "SUCCESS": False,
    }
    assert exposure_level_failures(exp) == [
        VerifyFailure("NOISE", "R22_S00", "C10"),
        VerifyFailure("SCATTER", "R22_S00"),
        VerifyFailure("SCATTER"),
    ]
