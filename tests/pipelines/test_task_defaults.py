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

"""Each task configuration takes its defaults from the numpy function it configures: from its settings
dataclass (the configuration turns into those settings field by field) or from its keyword defaults
(`pipelines.tasks.defaults.keyword_default`), so cp_pipe's and cp_verify's defaults stand in one place."""

from collections.abc import Callable
from typing import Any

import pytest

from lsst.ts.makecalibrations.pipelines.combine import combine_exposures
from lsst.ts.makecalibrations.pipelines.defects import ColumnThresholds, DefectThresholds
from lsst.ts.makecalibrations.pipelines.flat_normalization import measure_flat, solve_scales
from lsst.ts.makecalibrations.pipelines.isr import IsrSettings
from lsst.ts.makecalibrations.pipelines.ptc import ExpApproxSettings, PairSettings
from lsst.ts.makecalibrations.pipelines.ptc_gain_ratios import bin_flat, choose_reference_amp, fit_gain_ratios
from lsst.ts.makecalibrations.pipelines.tasks.combine_task import CalibCombineConfig
from lsst.ts.makecalibrations.pipelines.tasks.defaults import keyword_default
from lsst.ts.makecalibrations.pipelines.tasks.defects_tasks import MeasureDefectsConfig
from lsst.ts.makecalibrations.pipelines.tasks.flat_tasks import CpFlatMeasureConfig, CpFlatNormalizationConfig
from lsst.ts.makecalibrations.pipelines.tasks.isr_task import IsrTaskConfig
from lsst.ts.makecalibrations.pipelines.tasks.ptc_gain_ratio_task import PtcAdjustGainRatiosConfig
from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import PtcExtractConfig, PtcSolveConfig
from lsst.ts.makecalibrations.pipelines.tasks.verify_tasks import (
    CpVerifyDetConfig,
    CpVerifyGainConfig,
    _thresholds,
)
from lsst.ts.makecalibrations.pipelines.verify import VerifyThresholds
from lsst.ts.makecalibrations.pipelines.verify_gain import gain_pair_stats

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


# (configuration class, field, the function the task calls with it, that function's keyword, the field's
# value for the keyword's value)
KEYWORDS = [
    (CalibCombineConfig, "clip", combine_exposures, "nsigma", lambda v: v),
    (CalibCombineConfig, "nIter", combine_exposures, "niter", lambda v: v),
    (CalibCombineConfig, "memoryBudgetMB", combine_exposures, "memory_budget_bytes", lambda v: v / 2**20),
    (
        CalibCombineConfig,
        "maxVisitsToCalcErrorFromInputVariance",
        combine_exposures,
        "variance_from_inputs_below",
        lambda v: v,
    ),
    (CpFlatMeasureConfig, "numSigmaClip", measure_flat, "nsigma", lambda v: v),
    (CpFlatMeasureConfig, "clipMaxIter", measure_flat, "niter", lambda v: v),
    (CpFlatNormalizationConfig, "scaleMaxIter", solve_scales, "n_iter", lambda v: v),
    (CpVerifyGainConfig, "gainThreshold", gain_pair_stats, "gain_threshold", lambda v: v),
    (CpVerifyGainConfig, "fluxSlope", gain_pair_stats, "slope", lambda v: v),
    (CpVerifyGainConfig, "minSigmas", gain_pair_stats, "min_sigmas", lambda v: v),
    (CpVerifyGainConfig, "minMeanFlux", gain_pair_stats, "min_mean_adu", lambda v: v),
    (PtcAdjustGainRatiosConfig, "max_noise_reference", choose_reference_amp, "max_noise", lambda v: v),
    (
        PtcAdjustGainRatiosConfig,
        "turnoff_percentile_reference",
        choose_reference_amp,
        "turnoff_percentile",
        lambda v: v,
    ),
    (PtcAdjustGainRatiosConfig, "bin_factor", bin_flat, "bin_factor", lambda v: v),
    (PtcAdjustGainRatiosConfig, "amp_boundary", bin_flat, "boundary", lambda v: v[0]),
    (PtcAdjustGainRatiosConfig, "chebyshev_gradient_order", fit_gain_ratios, "gradient_order", lambda v: v),
    (
        PtcAdjustGainRatiosConfig,
        "max_fractional_gain_ratio",
        fit_gain_ratios,
        "max_fractional_gain_ratio",
        lambda v: v,
    ),
]


@pytest.mark.parametrize(
    "config_class, field, function, keyword, as_field",
    KEYWORDS,
    ids=[f"{c.__name__}.{field}" for c, field, *_ in KEYWORDS],
)
def test_the_task_config_defaults_to_the_keyword(config_class, field, function, keyword, as_field) -> None:
    default = keyword_default(function, keyword)
    assert getattr(config_class(), field) == as_field(default)


def test_keyword_default_names_what_is_missing() -> None:
    with pytest.raises(TypeError, match="combine_exposures has no keyword argument 'sources' with a default"):
        keyword_default(combine_exposures, "sources")
    with pytest.raises(TypeError, match="no keyword argument 'clip'"):
        keyword_default(combine_exposures, "clip")
