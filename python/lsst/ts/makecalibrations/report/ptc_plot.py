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

"""Photon transfer curves: variance vs mean per amplifier, with the Astier+19 Eq. 16 model drawn from
the fitted ``[a00, gain, n00]``, one panel per detector that has a PTC: in the focal-plane layout when
every detector has one, else only those detectors, side by side in detector order
(`ptc_panel_layout`). Linear axes show the shot-noise and brighter-fatter regime, log-log axes
(``log_scale``) the read-noise floor at low signal.

May import: numpy, matplotlib, `butler.camera`, `report.layout`.
"""

from __future__ import annotations

__all__ = ["amp_colour", "plot_ptc", "ptc_model", "ptc_panel_layout"]

import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..butler.calib_types import PhotonTransferCurve
from ..butler.camera import DETECTOR_NAMES
from .layout import AMPS_DISPLAY_ORDER, amp_position, finite, log_axes, save_png, slot


def ptc_model(mean: np.ndarray | float, a00: float, gain: float, n00: float) -> np.ndarray:
    """Astier+19 Eq. 16 (cp_pipe EXPAPPROXIMATION) variance of a flat of mean ``mean``.

    Parameters
    ----------
    mean : `numpy.ndarray` or `float`
        Mean signal (ADU).
    a00 : `float`
        Brighter-fatter coefficient (1/e-); 0 gives the Poisson line.
    gain : `float`
        Gain (e-/ADU).
    n00 : `float`
        Read-noise term (e-^2).

    Returns
    -------
    variance : `numpy.ndarray`
        ``C00(mu) = (exp(2 a00 g mu) - 1) / (2 a00 g^2) + n00 / g^2`` in ADU^2.
    """
    mu = np.asarray(mean, dtype=float)
    x = 2.0 * a00 * gain * mu
    if abs(a00) * gain * float(np.max(np.abs(mu), initial=0.0)) < 1e-12:
        signal = mu / gain
    else:
        signal = np.expm1(x) / (2.0 * a00 * gain**2)
    return signal + n00 / gain**2


def plot_ptc(
    ptcs: Mapping[int, PhotonTransferCurve],
    path: str | Path,
    run_name: str,
    *,
    log_scale: bool = False,
) -> Path:
    """Draw the photon transfer curves of every detector, one panel per detector.

    Parameters
    ----------
    ptcs : `~collections.abc.Mapping` [`int`, `butler.calib_types.PhotonTransferCurve`]
        The solved PTC of each detector, keyed by detector id. Per amp are used: ``raw_means``
        (ADU), ``raw_vars`` (ADU^2), ``exp_id_mask`` (points used in the fit), ``fit_pars``
        ``[a00, gain, n00]``, ``gain`` (e-/ADU), ``noise`` (e-) and ``bad_amps``.
    path : `str` or `pathlib.Path`
        Output PNG.
    run_name : `str`
        Name of the run, shown in the title.
    log_scale : `bool`, optional
        Draw both axes logarithmic instead of linear.

    Returns
    -------
    path : `pathlib.Path`
        The written PNG.
    """
    slots, (n_rows, n_cols) = ptc_panel_layout(ptcs)
    fig = Figure(figsize=(5 * n_cols, 5 * n_rows), layout="constrained")
    outer = fig.add_gridspec(n_rows, n_cols)
    colours = {amp: amp_colour(amp) for amp in AMPS_DISPLAY_ORDER}
    for det, (row, col) in slots.items():
        inner = outer[row, col].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.0)
        ax = fig.add_subplot(inner[0])
        ax_res = fig.add_subplot(inner[1], sharex=ax)
        ax.set_title(f"{DETECTOR_NAMES[det]} (detector {det})", fontsize=10)
        ax.set_ylabel("variance [ADU²]", fontsize=8)
        ax_res.set_xlabel("mean signal [ADU]", fontsize=8)
        ax_res.set_ylabel("(data-fit)/fit [%]", fontsize=7)
        for axis in (ax, ax_res):
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
        ax.tick_params(labelbottom=False)
        ax_res.axhline(0.0, color="k", lw=0.8)
        _draw_ptc_panel(ax, ax_res, ptcs[det], colours, log_scale)
    handles = [Line2D([], [], color=colours[a], marker="o", ls="-", label=a) for a in AMPS_DISPLAY_ORDER]
    handles += [
        Line2D([], [], color="grey", marker="x", ls="none", label="masked (not fitted)"),
        Line2D([], [], color="k", ls="-", label="fit: Astier+19 Eq. 16"),
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, title="amplifier")
    scale = "log-log" if log_scale else "linear"
    fig.suptitle(
        f"Photon transfer curves ({scale}): variance vs mean per amplifier, with the fitted model"
        f"\n{run_name}",
        fontsize=13 if n_cols > 1 else 9,
    )
    return save_png(fig, path)


def ptc_panel_layout(detectors: Collection[int]) -> tuple[dict[int, tuple[int, int]], tuple[int, int]]:
    """``({detector: (row, column)}, (rows, columns))`` of the PTC panels.

    Every detector of the raft: the focal-plane layout (top row first). Fewer (or none): only those
    detectors, in detector order, at most three per row.
    """
    dets = sorted(int(d) for d in detectors)
    if set(dets) >= set(range(len(DETECTOR_NAMES))):
        return {det: (2 - slot(det)[0], slot(det)[1]) for det in range(len(DETECTOR_NAMES))}, (3, 3)
    if not dets:
        return {}, (1, 1)
    n_cols = min(3, len(dets))
    n_rows = math.ceil(len(dets) / n_cols)
    return {det: divmod(i, n_cols) for i, det in enumerate(dets)}, (n_rows, n_cols)


def amp_colour(amp: str) -> tuple[float, float, float, float]:
    """A colour per amp: C0x from the ``tab20`` even entries, C1x from the odd ones."""
    from matplotlib import colormaps

    iy, ix = amp_position(amp)
    r, g, b, a = colormaps["tab20"](2 * ix + iy)
    return (float(r), float(g), float(b), float(a))


def _draw_ptc_panel(
    ax: Any, ax_res: Any, ptc: PhotonTransferCurve, colours: Mapping[str, Any], log_scale: bool
) -> None:
    bad = set(ptc.bad_amps)
    amp_names = [a for a in AMPS_DISPLAY_ORDER if a in ptc.raw_means] or sorted(ptc.raw_means)
    x_max = 0.0
    res_max = 0.0
    for amp in amp_names:
        means = np.asarray(ptc.raw_means.get(amp, []), dtype=float)
        variances = np.asarray(ptc.raw_vars.get(amp, []), dtype=float)
        if means.size == 0:
            continue
        mask = np.asarray(ptc.exp_id_mask.get(amp, [True] * means.size), dtype=bool)
        if mask.size != means.size or variances.size != means.size:
            mask = np.ones(means.size, dtype=bool)
            variances = np.resize(variances, means.size) if variances.size else np.full(means.size, np.nan)
        order = np.argsort(means, kind="stable")
        means, variances, mask = means[order], variances[order], mask[order]
        colour = colours.get(amp, "k")
        ax.plot(means[mask], variances[mask], "o", ms=3.5, color=colour, alpha=0.9)
        if (~mask).any():
            ax.plot(means[~mask], variances[~mask], "x", ms=4, color="grey")
        if np.isfinite(means).any():
            x_max = max(x_max, float(np.nanmax(means)))
        pars = ptc.fit_pars.get(amp)
        if pars is not None and len(pars) == 3 and amp not in bad and np.all(np.isfinite(pars)):
            a00, gain, n00 = (float(p) for p in pars)
            if gain > 0:
                lo = max(float(np.nanmin(means)) * 0.5, 1.0) if log_scale else 0.0
                mu = np.linspace(lo, float(np.nanmax(means)) * 1.05, 200)
                ax.plot(mu, ptc_model(mu, a00, gain, n00), "-", lw=1, color=colour)
                model = ptc_model(means, a00, gain, n00)
                with np.errstate(divide="ignore", invalid="ignore"):
                    residual = 100.0 * (variances - model) / model
                ax_res.plot(means[mask], residual[mask], "o-", ms=2.5, lw=0.6, color=colour)
                if (~mask).any():
                    ax_res.plot(means[~mask], residual[~mask], "x", ms=4, color="grey")
                used = residual[mask][np.isfinite(residual[mask])]
                if used.size:
                    res_max = max(res_max, float(np.max(np.abs(used))))
    # Symmetric residual axis from the fitted points, at least +-0.5 % so a perfect fit looks flat.
    res_lim = max(0.5, 1.2 * res_max)
    ax_res.set_ylim(-res_lim, res_lim)
    if log_scale:
        log_axes(ax)
        log_axes(ax_res, "x")
    else:
        ax.set_xlim(0, x_max * 1.08 if x_max > 0 else 1)
        ax.set_ylim(bottom=0)
    good_gains = finite(v for a, v in ptc.gain.items() if a not in bad)
    good_noise = finite(v for a, v in ptc.noise.items() if a not in bad)
    lines = []
    if good_gains.size:
        lines.append(
            f"gain {np.median(good_gains):.3f} e-/ADU (median; {good_gains.min():.3f}-{good_gains.max():.3f})"
        )
    if good_noise.size:
        lines.append(f"noise {np.median(good_noise):.2f} e- (median)")
    if bad:
        lines.append("bad amps: " + ", ".join(sorted(bad)))
    if lines:
        ax.text(
            0.03,
            0.97,
            "\n".join(lines),
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.85},
        )
