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

"""Gain and read-noise maps over the detectors x 16 amplifiers, from solved PTCs
(`amp_values_from_ptcs`) or from the gain-from-flat-pairs table (`amp_values_from_pair_gains`).

May import: numpy, matplotlib, `butler.camera`, `report.layout`.
"""

from __future__ import annotations

__all__ = ["amp_values_from_pair_gains", "amp_values_from_ptcs", "plot_gain_noise_maps"]

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..butler.calib_types import PhotonTransferCurve
from ..butler.camera import DETECTOR_NAMES, detector_id
from ..calib.report import GainRecord
from .layout import AmpValues, amp_position, save_png, slot


def amp_values_from_ptcs(
    ptcs: Mapping[int, PhotonTransferCurve],
) -> tuple[AmpValues, AmpValues]:
    """Per-amp gains (e-/ADU) and read noise (e-) of solved PTCs.

    Parameters
    ----------
    ptcs : `~collections.abc.Mapping` [`int`, `butler.calib_types.PhotonTransferCurve`]
        The solved PTC of each detector, keyed by detector id (as for `plot_ptc`).

    Returns
    -------
    gains, noises : `dict` [`int`, `dict` [`str`, `float`]]
        Values keyed by detector id then amp name; bad amps are left out.
    """
    gains: AmpValues = {}
    noises: AmpValues = {}
    for det, ptc in ptcs.items():
        bad = set(ptc.bad_amps)
        gains[det] = {a: float(v) for a, v in ptc.gain.items() if a not in bad}
        noises[det] = {a: float(v) for a, v in ptc.noise.items() if a not in bad}
    return gains, noises


def amp_values_from_pair_gains(rows: Iterable[GainRecord]) -> tuple[AmpValues, AmpValues]:
    """Per-amp gain and read noise from the gain-from-flat-pairs table, as medians over the pairs.

    Parameters
    ----------
    rows : iterable [`calib.report.GainRecord`]
        The gains per flat pair, detector and amp of a run report; ``gain`` in e-/ADU and ``noise``
        the overscan read noise in ADU (as cp_pipe's ``cpPtcExtract``).

    Returns
    -------
    gains, noises : `dict` [`int`, `dict` [`str`, `float`]]
        Median over pairs, keyed by detector id then amp name. The noise is converted to electrons
        with each pair's gain before taking the median.
    """
    gain_lists: dict[tuple[int, str], list[float]] = defaultdict(list)
    noise_lists: dict[tuple[int, str], list[float]] = defaultdict(list)
    for row in rows:
        det, amp, gain, noise = row.detector, row.amp, row.gain, row.noise
        key = (detector_id(det), str(amp))
        if gain is not None and math.isfinite(float(gain)):
            gain_lists[key].append(float(gain))
            if noise is not None and math.isfinite(float(noise)):
                noise_lists[key].append(float(noise) * float(gain))
    gains: AmpValues = defaultdict(dict)
    noises: AmpValues = defaultdict(dict)
    for (det, amp), values in gain_lists.items():
        gains[det][amp] = float(np.median(values))
    for (det, amp), values in noise_lists.items():
        noises[det][amp] = float(np.median(values))
    return dict(gains), dict(noises)


def _focal_plane_grid(values: AmpValues) -> np.ndarray:
    """Place per-amp values on a (6, 24) grid: 3x3 detectors of 2x8 amps, row 0 at the bottom."""
    grid = np.full((6, 24), np.nan)
    for det, amps in values.items():
        row, col = slot(det)
        for amp, value in amps.items():
            iy, ix = amp_position(amp)
            grid[2 * row + iy, 8 * col + ix] = value
    return grid


def _draw_amp_map(
    fig: Figure, ax: Any, values: AmpValues, title: str, label: str, cmap: str, fmt: str
) -> None:
    grid = _focal_plane_grid(values)
    finite = grid[np.isfinite(grid)]
    x_edges = np.concatenate([c + np.arange(8) / 8.0 for c in range(3)] + [np.array([3.0])])
    y_edges = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    if finite.size:
        vmin, vmax = np.percentile(finite, [1, 99])
        if vmin == vmax:
            vmin, vmax = vmin - 0.5 * abs(vmin or 1) * 0.01, vmax + 0.5 * abs(vmax or 1) * 0.01
    else:
        vmin, vmax = 0.0, 1.0
    from matplotlib import colormaps

    colour_map = colormaps[cmap].with_extremes(bad="0.85")
    mesh = ax.pcolormesh(
        x_edges, y_edges, np.ma.masked_invalid(grid), cmap=colour_map, vmin=vmin, vmax=vmax, shading="flat"
    )
    norm = Normalize(vmin, vmax)
    for j in range(6):
        for i in range(24):
            value = grid[j, i]
            x, y = x_edges[i] + 1 / 16, y_edges[j] + 0.25
            if np.isfinite(value):
                shade = colour_map(norm(value))
                luminance = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
                # Horizontal, to be read without turning the head.
                ax.text(
                    x,
                    y,
                    format(value, fmt),
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="black" if luminance > 0.5 else "white",
                )
    for edge in range(4):
        ax.axvline(edge, color="black", lw=2)
        ax.axhline(edge, color="black", lw=2)
    # Detector names off the cells: R22_S<row><column>, the column on top and the row on the right.
    names = {slot(det): DETECTOR_NAMES[det] for det in range(len(DETECTOR_NAMES))}
    top = ax.secondary_xaxis("top")
    top.set_xticks([0.5, 1.5, 2.5], [names[(0, c)].replace("_S0", "_S·") for c in range(3)], fontsize=8)
    right = ax.secondary_yaxis("right")
    right.set_yticks([0.5, 1.5, 2.5], [names[(r, 0)][:-1] + "·" for r in range(3)], fontsize=8)
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 3)
    ax.set_aspect("equal")
    ax.set_xticks(x_edges[:-1] + 1 / 16, [str(i % 8) for i in range(24)], fontsize=7)
    ax.set_yticks([0.25, 0.75, 1.25, 1.75, 2.25, 2.75], ["C0x", "C1x"] * 3, fontsize=7)
    ax.set_xlabel("amplifier x in Cyx (0..7 left to right within each detector)", fontsize=8)
    ax.set_ylabel("amplifier row: C0x bottom, C1x top (detector rows S0x..S2x bottom to top)", fontsize=8)
    ax.set_title(title, fontsize=11)
    cbar = fig.colorbar(mesh, ax=ax, shrink=0.85)
    cbar.set_label(label)
    n_missing = 9 * 16 - finite.size
    if n_missing:
        ax.text(
            0.0, -0.16, f"grey: no value ({n_missing} of 144 amplifiers)", transform=ax.transAxes, fontsize=8
        )


def plot_gain_noise_maps(
    gains: AmpValues,
    noises: AmpValues,
    path: str | Path,
    run_name: str,
    *,
    source: str = "PTC",
) -> Path:
    """Draw the gain and read-noise maps over the 9 detectors x 16 amplifiers, side by side.

    Parameters
    ----------
    gains, noises : `report.layout.AmpValues`
        Per-amp gain (e-/ADU) and read noise (e-): detector id -> amp name -> value. Missing amps
        are drawn grey. `amp_values_from_ptcs` and `amp_values_from_pair_gains` give these.
    path : `str` or `pathlib.Path`
        Output PNG.
    run_name : `str`
        Name of the run, shown in the title.
    source : `str`, optional
        Where the values come from (e.g. ``"PTC"`` or ``"flat pairs"``), shown in the titles.

    Returns
    -------
    path : `pathlib.Path`
        The written PNG.
    """
    fig = Figure(figsize=(17, 7.5), layout="constrained")
    ax_gain, ax_noise = fig.subplots(1, 2)
    _draw_amp_map(fig, ax_gain, gains, f"gain ({source})", "gain [e-/ADU]", "viridis", ".3f")
    _draw_amp_map(fig, ax_noise, noises, f"read noise ({source})", "read noise [e-]", "magma", ".2f")
    fig.suptitle(f"Per-amplifier gain and read noise from the {source}\n{run_name}", fontsize=13)
    return save_png(fig, path)
