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

"""Every plot of one run: read what the run produced (`report._loaders`) and draw each product that
exists, skipping the others.

May import: `report` (its plot modules and loaders), the standard library.
"""

from __future__ import annotations

__all__ = ["make_run_plots"]

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .amp_maps import amp_values_from_pair_gains, amp_values_from_ptcs, plot_gain_noise_maps
from .mosaic import plot_calibration_mosaic
from .ptc_covariance_plot import has_covariances, plot_ptc_covariances
from .ptc_plot import plot_ptc
from .verification_plot import plot_verification_failures

_log = logging.getLogger(__name__)


def make_run_plots(report: Mapping[str, Any], repo: str | Path, out_dir: str | Path) -> list[Path]:
    """Draw every plot whose inputs a run produced; skip the others.

    Parameters
    ----------
    report : `~collections.abc.Mapping`
        The run report's JSON dict (``RunReport.to_dict()``, or the report file loaded).
    repo : `str` or `pathlib.Path`
        Butler repository the run wrote into.
    out_dir : `str` or `pathlib.Path`
        Directory for the PNGs (normally the directory of the report).

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The PNGs written, named ``<report stem>_<product>.png`` with product ``ptc``,
        ``gain_noise_ptc``, ``gain_noise_flat_pairs``, ``verification_failures``, ``mosaic_bias``,
        ``mosaic_dark`` and ``mosaic_flat``.

    Notes
    -----
    The gains per flat pair are taken from the report; the PTC, the run-level verification
    statistics and the combined calibrations are read from the output collection of the OCPS job
    that made them (jobs with status ``succeeded`` only). A plot whose inputs are missing is skipped;
    a plot that cannot be drawn is logged as a warning and skipped, never raised.
    """
    from . import _loaders

    out_dir = Path(out_dir)
    run_name = _loaders.run_name(report)
    prefix = _loaders.file_prefix(report)
    inputs = _loaders.load_plot_inputs(report, Path(repo))
    written: list[Path] = []

    def attempt(what: str, func: Any, *args: Any, **kwargs: Any) -> None:
        try:
            written.append(func(*args, **kwargs))
        except Exception as exc:  # a bad plot must never hide the others or the report
            _log.warning("Could not draw the %s plot: %s", what, exc)

    if inputs.ptcs:
        attempt("PTC", plot_ptc, inputs.ptcs, out_dir / f"{prefix}ptc.png", run_name)
        attempt(
            "log-log PTC",
            plot_ptc,
            inputs.ptcs,
            out_dir / f"{prefix}ptc_loglog.png",
            run_name,
            log_scale=True,
        )
        if has_covariances(inputs.ptcs):
            attempt(
                "PTC covariance",
                plot_ptc_covariances,
                inputs.ptcs,
                out_dir / f"{prefix}ptc_covariances.png",
                run_name,
            )
        gains, noises = amp_values_from_ptcs(inputs.ptcs)
        attempt(
            "PTC gain map",
            plot_gain_noise_maps,
            gains,
            noises,
            out_dir / f"{prefix}gain_noise_ptc.png",
            run_name,
            source="PTC",
        )
    if inputs.pair_gains:
        gains, noises = amp_values_from_pair_gains(inputs.pair_gains)
        attempt(
            "flat-pair gain map",
            plot_gain_noise_maps,
            gains,
            noises,
            out_dir / f"{prefix}gain_noise_flat_pairs.png",
            run_name,
            source="flat pairs",
        )
    if inputs.verify_stats:
        attempt(
            "verification",
            plot_verification_failures,
            inputs.verify_stats,
            out_dir / f"{prefix}verification_failures.png",
            run_name,
            verdicts=_loaders.rule_verdicts(report),
        )
    for calib_type, images in inputs.mosaics.items():
        if images:
            attempt(
                f"{calib_type} mosaic",
                plot_calibration_mosaic,
                images,
                calib_type,
                out_dir / f"{prefix}mosaic_{calib_type.replace(' ', '_')}.png",
                run_name,
            )
    return written
