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

"""Per-kind job costs: each kind of OCPS job has its own measured cost, the plan counts the images
each job really processes and as many jobs as the script runs."""

from pathlib import Path

import pytest

from lsst.ts.makecalibrations.calib.config import parse_config_text
from lsst.ts.makecalibrations.calib.durations import (
    COST_KEYS,
    GAIN_CHECK,
    JOB_KINDS,
    MEASURED_COSTS,
    JobCost,
    MeasuredCost,
    ProcessingCostModel,
    cost_keys,
    cost_kind,
)
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KIND_COSTS = {
    "combine": JobCost(1.0, 1.0),
    "verify": JobCost(2.0, 10.0),
    "defects": JobCost(3.0, 100.0),
    "ptc": JobCost(4.0, 1000.0),
    "gain_check": JobCost(5.0, 0.0),
}


def test_cost_kind_of_every_job_name() -> None:
    assert [cost_kind(n) for n in ("BIAS combine", "FLAT verify", "DEFECTS", "PTC", "GAIN", GAIN_CHECK)] == [
        "combine",
        "verify",
        "defects",
        "ptc",
        "gain",
        "gain_check",
    ]
    for name in ("BIAS", "BIAS PTC", "cleanup", ""):
        with pytest.raises(ValueError, match="No job kind"):
            cost_kind(name)
    with pytest.raises(ValueError, match="unknown job kinds"):
        MeasuredCost(1.0, 1.0, 0.1, "today", {"combined": JobCost(1.0, 1.0)})
    assert all(set(costs.kinds) <= set(COST_KEYS) for costs in MEASURED_COSTS.values())
    assert set(JOB_KINDS) < set(COST_KEYS)


def test_each_kind_costs_its_own() -> None:
    """The demo's jobs take their kind's cost; the flat combine and its verification count the flats
    the script combines (at least half the longest exposure time), the defects darks + flats."""
    config = parse_config_text(
        (EXAMPLES / "demo_generate_and_certify.yaml").read_text() + "detectors: [0, 1]\n"
    )
    model = ProcessingCostModel(job_overhead=7.0, per_image_detector=0.5, kinds=KIND_COSTS)
    plan = CalibrationPlan.from_config(config, cost_model=model)
    cpu = {job.name: job.cpu for job in plan.scheduled_jobs()}
    # 12 biases, darks and flats of 2 detectors; 6 of the flats are 2.5 s or longer.
    assert cpu == {
        "BIAS combine": 1 + 24,
        "BIAS verify": 2 + 240,
        "DARK combine": 1 + 24,
        "DARK verify": 2 + 240,
        "FLAT combine": 1 + 12,
        "FLAT verify": 2 + 120,
        "DEFECTS": 3 + 4800,
        "PTC": 4 + 24000,
        GAIN_CHECK: 5,
    }
    assert "combine 1 + 1" in model.describe() and "other jobs 7 + 0.5" in model.describe()
    # The plan line names the costs of its own jobs only.
    line = plan.describe().splitlines()[-1]
    assert "combine 1 + 1, verify 2 + 10, defects 3 + 100, ptc 4 + 1000, gain_check 5 + 0" in line
    assert "other jobs" not in line
    # A kind without a measured cost takes the overall figures.
    daily = CalibrationPlan.from_config(parse_config_text("detectors: [0]\n"), cost_model=model)
    assert {job.name: job.cpu for job in daily.scheduled_jobs()}["GAIN"] == 7.0 + 0.5 * 20
    with pytest.raises(ValueError, match="No job kind"):
        model.cost("BIAS combined")
    # An image type's own cost comes first, its kind's otherwise.
    typed = ProcessingCostModel(kinds={**KIND_COSTS, "flat_combine": JobCost(0.0, 2.0)})
    assert typed.job_cpu(6, 2, "FLAT combine") == 24.0 and typed.job_cpu(6, 2, "DARK combine") == 13.0
    assert cost_keys("FLAT combine") == ("flat_combine", "combine") and cost_keys("PTC") == ("ptc",)


@pytest.mark.parametrize("example", ["daily_default.yaml", "demo_generate_and_certify.yaml"])
def test_the_plan_counts_the_jobs_it_schedules(example: str) -> None:
    """The plan line's "N OCPS jobs" is the number of jobs scheduled and listed (gain check included)."""
    plan = CalibrationPlan.from_config(parse_config_text((EXAMPLES / example).read_text()))
    scheduled = [job.name for job in plan.scheduled_jobs()]
    assert scheduled == [spec.name for spec in plan.planned_jobs()]
    assert GAIN_CHECK in scheduled and plan.n_jobs == len(scheduled)
    assert f"({len(scheduled)} OCPS jobs in all;" in plan.describe()
