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

"""Covariances of a full-covariance PTC: ``C_ij / μ`` against ``μ`` for the first lags, the measured
points of every amplifier and, when the PTC was fitted with ``FULLCOVARIANCE``, the Astier+19 Eq. 20
model (``covariances_model``) as lines.

May import: numpy, matplotlib, `butler.camera`, `report.layout`, `report.ptc_plot` (the amp colours).
"""

from __future__ import annotations

__all__ = ["PLOTTED_LAGS", "has_covariances", "plot_ptc_covariances"]

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..butler.calib_types import PhotonTransferCurve
from ..butler.camera import DETECTOR_NAMES
from .layout import AMPS_DISPLAY_ORDER, save_png, subscript
from .ptc_plot import amp_colour

PLOTTED_LAGS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))
"""Lags ``(serial dx, parallel dy)`` drawn, one panel each."""


def has_covariances(ptcs: Mapping[int, PhotonTransferCurve]) -> bool:
    """True if any amp of any of ``ptcs`` has measured covariances."""
    for ptc in ptcs.values():
        if any(values for values in ptc.covariances.values()):
            return True
    return False


def plot_ptc_covariances(ptcs: Mapping[int, PhotonTransferCurve], path: str | Path, run_name: str) -> Path:
    """Draw ``C_ij / μ`` vs ``μ`` for the lags in `PLOTTED_LAGS`, all detectors and amps.

    Parameters
    ----------
    ptcs : `~collections.abc.Mapping` [`int`, `butler.calib_types.PhotonTransferCurve`]
        The solved PTC of each detector, as for `report.ptc_plot.plot_ptc`. Per amp
        are used ``raw_means`` (ADU), ``covariances`` (ADU², ``[dx][dy]`` per pair),
        ``covariances_model``, ``exp_id_mask``, ``a_matrix`` and ``bad_amps``.
    path : `str` or `pathlib.Path`
        Output PNG.
    run_name : `str`
        Name of the run, shown in the title.

    Returns
    -------
    path : `pathlib.Path`
        The written PNG.
    """
    fig = Figure(figsize=(13, 10), layout="constrained")
    axes = fig.subplots(2, 2)
    fitted_any = False
    a00_values: list[float] = []
    for ax, (dx, dy) in zip(axes.ravel(), PLOTTED_LAGS, strict=True):
        for det in sorted(ptcs):
            ptc = ptcs[det]
            means_by_amp = ptc.raw_means
            covs_by_amp = ptc.covariances
            models_by_amp = ptc.covariances_model
            masks = ptc.exp_id_mask
            bad = set(ptc.bad_amps)
            for amp in AMPS_DISPLAY_ORDER:
                means = np.asarray(means_by_amp.get(amp, []), dtype=float)
                covs = np.asarray(covs_by_amp.get(amp, []), dtype=float)
                if means.size == 0 or covs.ndim != 3 or covs.shape[0] != means.size or covs.shape[1] <= dx:
                    continue
                mask = np.asarray(masks.get(amp, [True] * means.size), dtype=bool)
                if mask.size != means.size:
                    mask = np.ones(means.size, dtype=bool)
                order = np.argsort(means)
                means, covs, mask = means[order], covs[order], mask[order]
                colour = amp_colour(amp)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = covs[:, dx, dy] / means
                ax.plot(means[mask], ratio[mask], "o", ms=2.5, color=colour, alpha=0.7)
                if (~mask).any():
                    ax.plot(means[~mask], ratio[~mask], "x", ms=3, color="grey")
                model = np.asarray(models_by_amp.get(amp, []), dtype=float)
                if model.ndim == 3 and model.shape[0] == means.size and amp not in bad:
                    fitted_any = True
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ax.plot(means, model[order][:, dx, dy] / means, "-", lw=0.8, color=colour)
                a_matrix = ptc.a_matrix.get(amp) or []
                if (dx, dy) == (0, 0) and a_matrix and amp not in bad:
                    a00_values.append(float(a_matrix[0][0]))
        suffix = ": variance / mean" if (dx, dy) == (0, 0) else ""
        ax.set_title(f"lag (dx={dx}, dy={dy}){suffix}", fontsize=10)
        ax.set_xlabel("mean signal [ADU]", fontsize=8)
        ax.set_ylabel(f"C{subscript(f'{dx}{dy}')} / mean [ADU]", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if (dx, dy) != (0, 0):
            ax.axhline(0.0, color="k", lw=0.6)
    if a00_values:
        axes[0, 0].text(
            0.97,
            0.97,
            f"a00 median {np.median(a00_values):.3g} 1/e-\n({min(a00_values):.3g} .. {max(a00_values):.3g})",
            transform=axes[0, 0].transAxes,
            ha="right",
            va="top",
            fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.85},
        )
    handles = [Line2D([], [], color=amp_colour(a), marker="o", ls="-", label=a) for a in AMPS_DISPLAY_ORDER]
    handles.append(Line2D([], [], color="grey", marker="x", ls="none", label="masked (not fitted)"))
    if fitted_any:
        handles.append(Line2D([], [], color="k", ls="-", label="fit: Astier+19 Eq. 20"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8, title="amplifier")
    detectors = ", ".join(DETECTOR_NAMES[d] for d in sorted(ptcs) if 0 <= d < len(DETECTOR_NAMES))
    fig.suptitle(
        f"PTC covariances per lag (brighter-fatter: C00 below the mean, neighbours positive)\n"
        f"{run_name}; detectors {detectors}",
        fontsize=12,
    )
    return save_png(fig, path)
