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

"""Layout shared by the plots: where a detector and an amplifier sit, the raft grid of axes, PNG output.

Text is plain (DejaVu Sans, matplotlib's default family, superscripts and subscripts as Unicode
characters): no label goes through mathtext, which looks up the STIX and Computer Modern fonts
besides (a font cache without them, as on the machine that ran ``make run``, printed 21
``findfont`` warnings per run); `log_axes` sets logarithmic axes with such labels.

Conventions (`butler.camera`): detector ``R22_S{r}{c}`` sits in row ``r`` (0 at the bottom) and column
``c`` (0 at the left) of the raft; within a detector the amplifiers ``C10..C17`` form the top row and
``C00..C07`` the bottom row, ``x`` increasing to the right. Figures use matplotlib's object-oriented
API with the Agg canvas: no pyplot state, no backend switch.

May import: numpy, matplotlib, `butler.camera`.
"""

from __future__ import annotations

__all__ = [
    "AMPS_DISPLAY_ORDER",
    "DPI",
    "AmpValues",
    "amp_position",
    "finite",
    "log_axes",
    "raft_axes",
    "save_png",
    "slot",
    "subscript",
]

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatter

from ..butler.camera import DETECTOR_NAMES

AMPS_DISPLAY_ORDER: tuple[str, ...] = tuple(f"C0{i}" for i in range(8)) + tuple(f"C1{i}" for i in range(8))

DPI = 110

AmpValues = dict[int, dict[str, float]]


def slot(det: int) -> tuple[int, int]:
    """Return ``(row, column)`` of a detector in the raft (row 0 at the bottom)."""
    slot = DETECTOR_NAMES[det].split("_S")[1]
    return int(slot[0]), int(slot[1])


def amp_position(amp: str) -> tuple[int, int]:
    """Return ``(iy, ix)`` of an amplifier ``Cyx`` in its detector."""
    return int(amp[1]), int(amp[2])


def raft_axes(fig: Figure, **gridspec: Any) -> dict[int, Any]:
    """Make a 3x3 grid of axes laid out like the raft; return them keyed by detector id."""
    axes = fig.subplots(3, 3, squeeze=False, gridspec_kw=gridspec)
    by_det: dict[int, Any] = {}
    for det in range(len(DETECTOR_NAMES)):
        row, col = slot(det)
        by_det[det] = axes[2 - row][col]
    return by_det


_SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUBSCRIPTS = str.maketrans("0123456789-", "₀₁₂₃₄₅₆₇₈₉₋")


def subscript(digits: str) -> str:
    """``digits`` (and minus signs) as Unicode subscripts, for a plain-text label: ``C₀₁``."""
    return digits.translate(_SUBSCRIPTS)


def _decade_label(value: float, _position: int | None = None) -> str:
    """``10³`` for a power of ten (plain text with a Unicode superscript), ``%g`` otherwise."""
    if not value > 0:
        return ""
    exponent = math.log10(value)
    if abs(exponent - round(exponent)) < 1e-9:
        return "10" + str(round(exponent)).translate(_SUPERSCRIPTS)
    return f"{value:g}"


def log_axes(ax: Any, axes: str = "xy") -> None:
    """Make the ``axes`` (``x``, ``y`` or both) of ``ax`` logarithmic, labelled in plain text: powers
    of ten as ``10³``, the minor ticks of a range of about a decade or less as numbers."""
    for name in axes:
        axis = {"x": ax.xaxis, "y": ax.yaxis}[name]
        getattr(ax, f"set_{name}scale")("log")
        axis.set_major_formatter(FuncFormatter(_decade_label))
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG to ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[np.isfinite(array)]
