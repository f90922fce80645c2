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

"""The shipped configuration examples: each is valid and says what was fixed."""

import pathlib

import pytest

from lsst.ts.makecalibrations.calib.config import ConfigError, parse_config_text
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan

EXAMPLES = sorted((pathlib.Path(__file__).parents[2] / "examples").glob("*.yaml"))


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"daily_default.yaml", "demo_generate_and_certify.yaml"} <= names
    assert len(names) >= 7


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_and_commented(path: pathlib.Path) -> None:
    text = path.read_text()
    assert text.lstrip().startswith("#")
    assert "fix" in text.lower() or path.name in ("daily_default.yaml", "demo_generate_and_certify.yaml")
    config = parse_config_text(text)
    assert CalibrationPlan.from_config(config).planned_jobs()


def test_daily_default_is_empty() -> None:
    text = (EXAMPLES[0].parent / "daily_default.yaml").read_text()
    assert all(line.startswith("#") or not line.strip() for line in text.splitlines())


def test_demo_is_small_rerunnable_and_complete() -> None:
    config = parse_config_text((EXAMPLES[0].parent / "demo_generate_and_certify.yaml").read_text())
    assert config.generate_calibrations and config.run_defects and config.run_ptc
    assert "{timestamp}" in config.calib_collection
    plan = CalibrationPlan.from_config(config)
    assert plan.certified_products == ("bias", "dark", "flat", "defects", "ptc")
    assert plan.n_images <= 40


@pytest.mark.parametrize(
    "fixed, original, key",
    [
        ("exp_times.yaml", ("exp_times_flat:", "exp_times_flats:"), "exp_times_flats"),
        (
            "internal_verification.yaml",
            ("calib_collection:", "calibration_collection:"),
            "calibration_collection",
        ),
        (
            "internal_verification.yaml",
            ("certify_calib_end_date:", "certify_calib_begin_date:"),
            "certify_calib_begin_date",
        ),
        (
            "ptc_and_defects.yaml",
            ("generate_calibrations: true", "generate_calibrations=True"),
            "generate_calibrations",
        ),
        ("ptc_and_defects.yaml", ("filter: r_03", "filter: ${FILTER_NAME_OR_ID}"), "filter"),
    ],
)
def test_seed_mistake_is_caught(fixed: str, original: tuple[str, str], key: str) -> None:
    """Putting the seed's mistake back into the fixed example gives an error naming the key."""
    text = (EXAMPLES[0].parent / fixed).read_text()
    assert original[0] in text
    broken = text.replace(original[0], original[1])
    with pytest.raises(ConfigError) as excinfo:
        parse_config_text(broken)
    assert key in excinfo.value.keys
