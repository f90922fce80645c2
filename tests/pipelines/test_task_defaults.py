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

"""Each task configuration takes its defaults from the settings of the numpy function it configures:
cp_pipe's and cp_verify's defaults stand in one place (the settings dataclass), and the configuration
turns into those settings field by field."""

from collections.abc import Callable
from typing import Any

import pytest

from lsst.ts.makecalibrations.pipelines.defects import ColumnThresholds, DefectThresholds
from lsst.ts.makecalibrations.pipelines.isr import IsrSettings
from lsst.ts.makecalibrations.pipelines.ptc import ExpApproxSettings, PairSettings
from lsst.ts.makecalibrations.pipelines.tasks.defects_tasks import MeasureDefectsConfig
from lsst.ts.makecalibrations.pipelines.tasks.isr_task import IsrTaskConfig
from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import PtcExtractConfig, PtcSolveConfig
from lsst.ts.makecalibrations.pipelines.tasks.verify_tasks import CpVerifyDetConfig, _thresholds
from lsst.ts.makecalibrations.pipelines.verify import VerifyThresholds

# (configuration class, its settings, the settings' defaults, a field changed and where it lands)
CASES: dict[str, tuple[type, Callable[[Any], Any], Any, str, Any, Callable[[Any], Any]]] = {
    "isr": (IsrTaskConfig, IsrTaskConfig.settings, IsrSettings(), "doBias", True, lambda s: s.doBias),
    "verify": (
        CpVerifyDetConfig,
        _thresholds,
        VerifyThresholds(),
        "crMaxPixels",
        7,
        lambda s: s.cosmic_rays.n_cr_pixel_max,
    ),
    "defect thresholds": (
        MeasureDefectsConfig,
        MeasureDefectsConfig.thresholds,
        DefectThresholds(),
        "nSigmaDark",
        -4.0,
        lambda s: s.n_sigma_dark,
    ),
    # On a full-size (2000-row) amp the column thresholds are the configured ones, scaled or not.
    "defect columns": (
        MeasureDefectsConfig,
        lambda config: config.column_thresholds(2000),
        ColumnThresholds(),
        "goodPixelColumnGapThreshold",
        40,
        lambda s: s.good_gap,
    ),
    "ptc extract": (
        PtcExtractConfig,
        PtcExtractConfig.pair_settings,
        PairSettings(),
        "maximumRangeCovariancesAstier",
        3,
        lambda s: s.max_lag,
    ),
    "ptc solve": (
        PtcSolveConfig,
        PtcSolveConfig.fit_settings,
        ExpApproxSettings(),
        "useMeasurementErrorsInOutlierFit",
        False,
        lambda s: s.use_measurement_errors,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_task_config_defaults_to_the_settings(name: str) -> None:
    config_class, settings_of, defaults, field, value, landed = CASES[name]
    assert settings_of(config_class()) == defaults
    changed = config_class()
    setattr(changed, field, value)
    assert landed(settings_of(changed)) == value != landed(defaults)
