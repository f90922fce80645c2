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

"""PNG plots that let a calibration scientist judge a calibration run from pictures alone.

Four products, each drawn by one function from one input type, keyed by detector id where it is per
detector, and written as a PNG whose path is returned; each lives in its own module:

* `plot_ptc` -- photon transfer curves (variance vs mean per amplifier, with the Astier+19 Eq. 16
  model drawn from the fitted ``[a00, gain, n00]``), one panel per detector in the focal-plane layout,
  from the solved `butler.calib_types.PhotonTransferCurve` per detector.
* `plot_gain_noise_maps` -- gain and read-noise maps over the 9 detectors x 16 amplifiers, from
  `report.layout.AmpValues` (detector id -> amp -> value) made from a solved PTC
  (`amp_values_from_ptcs`) or from the gain-from-flat-pairs table (`amp_values_from_pair_gains`).
* `plot_verification_failures` -- a heat map of cp_verify failures per detector and test, from the
  `VerificationStats` (exposure-level ``verify*ExpStats`` and run-level ``verify*Stats``) per type.
* `plot_calibration_mosaic` -- a mosaic of one combined calibration (bias, dark or flat) over the 3x3
  detectors with a robust percentile stretch and a colour bar, from the lsst.images ``MaskedImage``
  per detector.

`make_run_plots` reads what a run produced from the butler (as named in the run report's JSON dict)
and draws
every product that exists, skipping the others (`report.run_plots`). The layout conventions shared by
the plots are in `report.layout`.

This module gathers their public names in one import.

May import: the plot modules of `report`.
"""

from __future__ import annotations

__all__ = [
    "BIAS_DARK_TESTS",
    "FLAT_TESTS",
    "VerificationStats",
    "amp_values_from_pair_gains",
    "amp_values_from_ptcs",
    "count_verification_failures",
    "make_run_plots",
    "plot_calibration_mosaic",
    "plot_gain_noise_maps",
    "plot_ptc",
    "plot_verification_failures",
    "ptc_model",
]

from .amp_maps import amp_values_from_pair_gains, amp_values_from_ptcs, plot_gain_noise_maps
from .mosaic import plot_calibration_mosaic
from .ptc_plot import plot_ptc, ptc_model
from .run_plots import make_run_plots
from .verification_plot import (
    BIAS_DARK_TESTS,
    FLAT_TESTS,
    VerificationStats,
    count_verification_failures,
    plot_verification_failures,
)
