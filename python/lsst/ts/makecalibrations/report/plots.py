"""PNG plots that let a calibration scientist judge a calibration run from pictures alone.

Four products, each drawn by one function from plain inputs (mappings, arrays, dataclasses or their
JSON dicts) and written as a PNG whose path is returned:

* `plot_ptc` -- photon transfer curves (variance vs mean per amplifier, with the Astier+19 Eq. 16
  model drawn from the fitted ``[a00, gain, n00]``), one panel per detector in the focal-plane layout.
* `plot_gain_noise_maps` -- gain and read-noise maps over the 9 detectors x 16 amplifiers, from a
  solved PTC (`amp_values_from_ptcs`) or from the gain-from-flat-pairs table
  (`amp_values_from_pair_gains`).
* `plot_verification_failures` -- a heat map of cp_verify failures per detector and test, from the
  run-level (``verify*Stats``) or exposure-level (``verify*ExpStats``) statistics dicts.
* `plot_calibration_mosaic` -- a mosaic of one combined calibration (bias, dark or flat) over the 3x3
  detectors with a robust percentile stretch and a colour bar.

`make_run_plots` reads what a run produced from the butler (as named in the run report) and draws
every product that exists, skipping the others.

Layout conventions (`butler.camera`): detector ``R22_S{r}{c}`` sits in row ``r`` (0 at the bottom)
and column ``c`` (0 at the left) of the raft; within a detector the amplifiers ``C10..C17`` form the
top row and ``C00..C07`` the bottom row, ``x`` increasing to the right.

Figures use matplotlib's object-oriented API with the Agg canvas: no pyplot state, no backend switch.

May import: numpy, matplotlib, `calib`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "BIAS_DARK_TESTS",
    "FLAT_TESTS",
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

import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..butler.camera import DETECTOR_NAMES, detector_id

_log = logging.getLogger(__name__)

BIAS_DARK_TESTS: tuple[str, ...] = ("MEAN", "NOISE", "CR_NOISE", "READ_NOISE_CONSISTENT")
"""cp_verify tests of a bias or dark, always shown as columns of the failure heat map."""

FLAT_TESTS: tuple[str, ...] = ("NOISE", "SCATTER")
"""cp_verify tests of a flat, always shown as columns of the failure heat map."""

_DEFAULT_TESTS: dict[str, tuple[str, ...]] = {
    "bias": BIAS_DARK_TESTS,
    "dark": BIAS_DARK_TESTS,
    "flat": FLAT_TESTS,
}

_AMPS_DISPLAY_ORDER: tuple[str, ...] = tuple(f"C0{i}" for i in range(8)) + tuple(f"C1{i}" for i in range(8))

_DEFAULT_UNITS: dict[str, str] = {
    "bias": "e-",
    "dark": "e-/s",
    "flat": "relative response",
}

_EXPOSURE_ROW = "exposure level"
_DPI = 110
_DET_NAME_RE = re.compile(r"^R\d\d_S\d\d$")

AmpValues = dict[int, dict[str, float]]


# ---------------------------------------------------------------------------------------------------------
# Small helpers


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from a mapping (JSON dict) or an object attribute."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _slot(det: int) -> tuple[int, int]:
    """Return ``(row, column)`` of a detector in the raft (row 0 at the bottom)."""
    slot = DETECTOR_NAMES[det].split("_S")[1]
    return int(slot[0]), int(slot[1])


def _amp_position(amp: str) -> tuple[int, int]:
    """Return ``(iy, ix)`` of an amplifier ``Cyx`` in its detector."""
    return int(amp[1]), int(amp[2])


def _raft_axes(fig: Figure, **gridspec: Any) -> dict[int, Any]:
    """Make a 3x3 grid of axes laid out like the raft; return them keyed by detector id."""
    axes = fig.subplots(3, 3, squeeze=False, gridspec_kw=gridspec)
    by_det: dict[int, Any] = {}
    for det in range(len(DETECTOR_NAMES)):
        row, col = _slot(det)
        by_det[det] = axes[2 - row][col]
    return by_det


def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG to ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=_DPI)
    return path


def _normalise_amp_values(values: Mapping[Any, Any]) -> AmpValues:
    """Turn ``{(det, amp): v}`` or ``{det: {amp: v}}`` into ``{det_id: {amp: v}}``."""
    out: AmpValues = defaultdict(dict)
    for key, value in values.items():
        if isinstance(key, tuple):
            det, amp = key
            out[detector_id(det)][str(amp)] = float(value)
        else:
            for amp, amp_value in value.items():
                out[detector_id(key)][str(amp)] = float(amp_value)
    return dict(out)


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[np.isfinite(array)]


# ---------------------------------------------------------------------------------------------------------
# (a) Photon transfer curves


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


def _ptcs_by_detector(ptcs: Mapping[Any, Any] | Sequence[Any]) -> dict[int, Any]:
    if isinstance(ptcs, Mapping):
        return {detector_id(key): ptc for key, ptc in ptcs.items()}
    out = {}
    for ptc in ptcs:
        det = _field(ptc, "detector")
        if det is None:
            det = _field(ptc, "detector_name")
        out[detector_id(det)] = ptc
    return out


def plot_ptc(
    ptcs: Mapping[Any, Any] | Sequence[Any],
    path: str | Path,
    run_name: str,
    *,
    log_scale: bool = False,
) -> Path:
    """Draw the photon transfer curves of every detector, one panel per detector.

    Parameters
    ----------
    ptcs : `~collections.abc.Mapping` or `~collections.abc.Sequence`
        `PhotonTransferCurve` objects (or their JSON dicts) keyed by detector id or name, or a
        sequence of them carrying ``detector``. Per amp are used: ``raw_means`` (ADU), ``raw_vars``
        (ADU^2), ``exp_id_mask`` (points used in the fit), ``fit_pars`` ``[a00, gain, n00]``,
        ``gain`` (e-/ADU), ``noise`` (e-) and ``bad_amps``.
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
    by_det = _ptcs_by_detector(ptcs)
    fig = Figure(figsize=(15, 15), layout="constrained")
    outer = fig.add_gridspec(3, 3)
    colours = {amp: _amp_colour(amp) for amp in _AMPS_DISPLAY_ORDER}
    for det in range(len(DETECTOR_NAMES)):
        row, col = _slot(det)
        inner = outer[2 - row, col].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.0)
        ax = fig.add_subplot(inner[0])
        ax_res = fig.add_subplot(inner[1], sharex=ax)
        ax.set_title(f"{DETECTOR_NAMES[det]} (detector {det})", fontsize=10)
        ax.set_ylabel("variance [ADU$^2$]", fontsize=8)
        ax_res.set_xlabel("mean signal [ADU]", fontsize=8)
        ax_res.set_ylabel("(data-fit)/fit [%]", fontsize=7)
        for axis in (ax, ax_res):
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
        ax.tick_params(labelbottom=False)
        ax_res.axhline(0.0, color="k", lw=0.8)
        ptc = by_det.get(det)
        if ptc is None:
            ax.text(0.5, 0.5, "no PTC", ha="center", va="center", transform=ax.transAxes, color="grey")
            for axis in (ax, ax_res):
                axis.set_xticks([])
                axis.set_yticks([])
            continue
        _draw_ptc_panel(ax, ax_res, ptc, colours, log_scale)
    handles = [Line2D([], [], color=colours[a], marker="o", ls="-", label=a) for a in _AMPS_DISPLAY_ORDER]
    handles += [
        Line2D([], [], color="grey", marker="x", ls="none", label="masked (not fitted)"),
        Line2D([], [], color="k", ls="-", label="fit: Astier+19 Eq. 16"),
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, title="amplifier")
    fig.suptitle(
        f"Photon transfer curves: variance vs mean per amplifier, with the fitted model\n{run_name}",
        fontsize=13,
    )
    return _save(fig, path)


def _amp_colour(amp: str) -> tuple[float, float, float, float]:
    """A colour per amp: C0x from the ``tab20`` even entries, C1x from the odd ones."""
    from matplotlib import colormaps

    iy, ix = _amp_position(amp)
    r, g, b, a = colormaps["tab20"](2 * ix + iy)
    return (float(r), float(g), float(b), float(a))


def _draw_ptc_panel(ax: Any, ax_res: Any, ptc: Any, colours: Mapping[str, Any], log_scale: bool) -> None:
    means_by_amp = _field(ptc, "raw_means", {}) or {}
    vars_by_amp = _field(ptc, "raw_vars", {}) or {}
    masks = _field(ptc, "exp_id_mask", {}) or {}
    fit_pars = _field(ptc, "fit_pars", {}) or {}
    gains = _field(ptc, "gain", {}) or {}
    noises = _field(ptc, "noise", {}) or {}
    bad = set(_field(ptc, "bad_amps", []) or [])
    amp_names = [a for a in _AMPS_DISPLAY_ORDER if a in means_by_amp] or sorted(means_by_amp)
    x_max = 0.0
    res_max = 0.0
    for amp in amp_names:
        means = np.asarray(means_by_amp.get(amp, []), dtype=float)
        variances = np.asarray(vars_by_amp.get(amp, []), dtype=float)
        if means.size == 0:
            continue
        mask = np.asarray(masks.get(amp, [True] * means.size), dtype=bool)
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
        pars = fit_pars.get(amp)
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
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax_res.set_xscale("log")
    else:
        ax.set_xlim(0, x_max * 1.08 if x_max > 0 else 1)
        ax.set_ylim(bottom=0)
    good_gains = _finite(v for a, v in gains.items() if a not in bad)
    good_noise = _finite(v for a, v in noises.items() if a not in bad)
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


# ---------------------------------------------------------------------------------------------------------
# (b) Gain and read-noise maps


def amp_values_from_ptcs(
    ptcs: Mapping[Any, Any] | Sequence[Any],
) -> tuple[AmpValues, AmpValues]:
    """Per-amp gains (e-/ADU) and read noise (e-) of solved PTCs.

    Parameters
    ----------
    ptcs : `~collections.abc.Mapping` or `~collections.abc.Sequence`
        As for `plot_ptc`.

    Returns
    -------
    gains, noises : `dict` [`int`, `dict` [`str`, `float`]]
        Values keyed by detector id then amp name; bad amps are left out.
    """
    gains: AmpValues = {}
    noises: AmpValues = {}
    for det, ptc in _ptcs_by_detector(ptcs).items():
        bad = set(_field(ptc, "bad_amps", []) or [])
        gains[det] = {a: float(v) for a, v in (_field(ptc, "gain", {}) or {}).items() if a not in bad}
        noises[det] = {a: float(v) for a, v in (_field(ptc, "noise", {}) or {}).items() if a not in bad}
    return gains, noises


def amp_values_from_pair_gains(rows: Iterable[Any]) -> tuple[AmpValues, AmpValues]:
    """Per-amp gain and read noise from the gain-from-flat-pairs table, as medians over the pairs.

    Parameters
    ----------
    rows : iterable
        ``(pair, detector, amp, gain, noise)`` tuples or objects / dicts with those fields (e.g.
        ``butler.readers.PairGain``); ``gain`` in e-/ADU and ``noise`` the overscan read noise in ADU
        (as cp_pipe's ``cpPtcExtract``).

    Returns
    -------
    gains, noises : `dict` [`int`, `dict` [`str`, `float`]]
        Median over pairs, keyed by detector id then amp name. The noise is converted to electrons
        with each pair's gain before taking the median.
    """
    gain_lists: dict[tuple[int, str], list[float]] = defaultdict(list)
    noise_lists: dict[tuple[int, str], list[float]] = defaultdict(list)
    for row in rows:
        if isinstance(row, tuple | list):
            _, det, amp, gain, noise = row
        else:
            det, amp = _field(row, "detector"), _field(row, "amp", _field(row, "amplifier"))
            gain, noise = _field(row, "gain"), _field(row, "noise")
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
        row, col = _slot(det)
        for amp, value in amps.items():
            iy, ix = _amp_position(amp)
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
    names = {_slot(det): DETECTOR_NAMES[det] for det in range(len(DETECTOR_NAMES))}
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
    gains: Mapping[Any, Any],
    noises: Mapping[Any, Any],
    path: str | Path,
    run_name: str,
    *,
    source: str = "PTC",
) -> Path:
    """Draw the gain and read-noise maps over the 9 detectors x 16 amplifiers, side by side.

    Parameters
    ----------
    gains, noises : `~collections.abc.Mapping`
        Per-amp gain (e-/ADU) and read noise (e-), as ``{(detector, amp): value}`` or
        ``{detector: {amp: value}}``; detectors by id or name. Missing amps are drawn grey.
        `amp_values_from_ptcs` and `amp_values_from_pair_gains` give these.
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
    gain_values = _normalise_amp_values(gains)
    noise_values = _normalise_amp_values(noises)
    fig = Figure(figsize=(17, 7.5), layout="constrained")
    ax_gain, ax_noise = fig.subplots(1, 2)
    _draw_amp_map(fig, ax_gain, gain_values, f"gain ({source})", "gain [e-/ADU]", "viridis", ".3f")
    _draw_amp_map(fig, ax_noise, noise_values, f"read noise ({source})", "read noise [e-]", "magma", ".2f")
    fig.suptitle(f"Per-amplifier gain and read noise from the {source}\n{run_name}", fontsize=13)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------------------
# (c) Verification failures


def _detector_label(name: str) -> str:
    return name if _DET_NAME_RE.match(name) else _EXPOSURE_ROW


def _count_exposure_level(exp_stats: Mapping[str, Any], counts: dict[tuple[str, str], int]) -> None:
    for det_name, det_stats in exp_stats.items():
        if not isinstance(det_stats, Mapping):
            continue
        if det_name == "VERIFY":
            # Exposure-level tests (flat SCATTER): {"EXP": {"SCATTER": False}}.
            for test, passed in (det_stats.get("EXP") or {}).items():
                if passed is False and test != "SUCCESS":
                    counts[(_EXPOSURE_ROW, str(test))] += 1
            continue
        for failure in det_stats.get("FAILURES", []) or []:
            test = str(failure).split()[-1]
            counts[(_detector_label(str(det_name)), test)] += 1


def count_verification_failures(stats: Mapping[Any, Any]) -> dict[tuple[str, str], int]:
    """Count cp_verify failures per ``(detector, test)``.

    Parameters
    ----------
    stats : `~collections.abc.Mapping`
        One of: a run-level dict (``verify*Stats``: exposure id -> ``{"SUCCESS", "FAILURES"}`` with
        FAILURES such as ``"R22_S21 C17 NOISE"``, ``"R22_S22 SCATTER"`` or ``"SCATTER"``); an
        exposure-level dict (``verify*ExpStats``: detector name -> ``{"SUCCESS", "FAILURES"}`` with
        FAILURES such as ``"C17 NOISE"``, and for flats ``"VERIFY": {"EXP": {"SCATTER": bool}}``); or
        a mapping exposure id -> exposure-level dict. Prefer the exposure-level form for flats: the
        run-level flat stats list only exposure-level failures (cp_verify drops the amp failures).

    Returns
    -------
    counts : `dict` [`tuple` [`str`, `str`], `int`]
        Number of failures (amp x exposure occurrences) per detector name and test name; failures
        that name no detector (exposure-level tests) are counted under ``"exposure level"``.
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    keys = [str(k) for k in stats if k != "SUCCESS"]
    if keys and all(_DET_NAME_RE.match(k) or k in ("EXP", "VERIFY") for k in keys):
        _count_exposure_level(stats, counts)
        return dict(counts)
    for key, entry in stats.items():
        if key == "SUCCESS" or not isinstance(entry, Mapping):
            continue
        if "FAILURES" not in entry and any(_DET_NAME_RE.match(str(k)) for k in entry):
            _count_exposure_level(entry, counts)
            continue
        for failure in entry.get("FAILURES", []) or []:
            tokens = str(failure).split()
            if not tokens:
                continue
            det = tokens[0] if _DET_NAME_RE.match(tokens[0]) else _EXPOSURE_ROW
            counts[(det, tokens[-1])] += 1
    return dict(counts)


def _processed_detectors(stats: Mapping[Any, Any]) -> set[str] | None:
    """Detector names present in exposure-level stats, or `None` if the stats do not say."""
    names: set[str] = set()
    entries = [stats] + [v for v in stats.values() if isinstance(v, Mapping)]
    for entry in entries:
        names |= {str(k) for k in entry if _DET_NAME_RE.match(str(k))}
    return names or None


def _exposure_summary(stats: Mapping[Any, Any]) -> str:
    entries = [v for k, v in stats.items() if k != "SUCCESS" and isinstance(v, Mapping)]
    if not entries or not all("SUCCESS" in e for e in entries):
        return ""
    n_fail = sum(1 for e in entries if not e["SUCCESS"])
    keys = [str(k) for k in stats if k != "SUCCESS"]
    what = "detectors" if all(_DET_NAME_RE.match(k) for k in keys) else "exposures"
    return f"{n_fail}/{len(entries)} {what} flagged"


def plot_verification_failures(
    stats_by_type: Mapping[str, Mapping[Any, Any]],
    path: str | Path,
    run_name: str,
    *,
    verdicts: Mapping[str, str] | None = None,
) -> Path:
    """Draw a heat map of verification failures: detectors x (calibration type, test).

    Parameters
    ----------
    stats_by_type : `~collections.abc.Mapping` [`str`, `~collections.abc.Mapping`]
        Verification statistics keyed by calibration type (``"bias"``, ``"dark"``, ``"flat"``), each
        in one of the forms `count_verification_failures` accepts. The standard tests of each type
        are always shown, so a clean run draws an all-zero map.
    path : `str` or `pathlib.Path`
        Output PNG.
    run_name : `str`
        Name of the run, shown in the title.
    verdicts : `~collections.abc.Mapping` [`str`, `str`], optional
        Outcome of the certification rule per calibration type (e.g. ``"passed (0 of 20 exposures
        over the limit)"``), shown next to cp_verify's own verdict: the rule may certify a
        calibration even when cp_verify flags some exposures.

    Returns
    -------
    path : `pathlib.Path`
        The written PNG.
    """
    columns: list[tuple[str, str]] = []
    counts: dict[tuple[str, str, str], int] = {}
    summaries: list[str] = []
    has_exposure_row = False
    processed: dict[str, set[str] | None] = {}
    for calib_type, stats in stats_by_type.items():
        processed[calib_type] = _processed_detectors(stats)
        type_counts = count_verification_failures(stats)
        tests = list(_DEFAULT_TESTS.get(calib_type, ()))
        tests += sorted({test for _, test in type_counts} - set(tests))
        columns += [(calib_type, test) for test in tests]
        for (det, test), n in type_counts.items():
            counts[(calib_type, det, test)] = n
            has_exposure_row |= det == _EXPOSURE_ROW
        overall = stats.get("SUCCESS")
        verdict = "" if overall is None else ("cp_verify passed" if overall else "cp_verify FAILED")
        parts = [s for s in (verdict, _exposure_summary(stats)) if s]
        if verdicts and verdicts.get(calib_type):
            parts.append(f"rule: {verdicts[calib_type]}")
        summaries.append(f"{calib_type}: " + "; ".join(parts) if parts else calib_type)
    rows = list(DETECTOR_NAMES) + ([_EXPOSURE_ROW] if has_exposure_row else [])
    matrix = np.zeros((len(rows), max(len(columns), 1)), dtype=int)
    not_processed = np.zeros(matrix.shape, dtype=bool)
    for j, (calib_type, test) in enumerate(columns):
        seen = processed.get(calib_type)
        for i, det in enumerate(rows):
            matrix[i, j] = counts.get((calib_type, det, test), 0)
            not_processed[i, j] = seen is not None and det != _EXPOSURE_ROW and det not in seen
    fig = Figure(figsize=(max(10.0, 1.0 + 0.75 * len(columns)), 7.0), layout="constrained")
    ax = fig.subplots()
    vmax = max(int(matrix.max()), 1)
    from matplotlib import colormaps

    reds = colormaps["Reds"].with_extremes(bad="0.88")
    shown = np.ma.masked_array(matrix, mask=not_processed)
    image = ax.imshow(shown, cmap=reds, vmin=0, vmax=vmax, aspect="auto")
    for i in range(matrix.shape[0]):
        for j in range(len(columns)):
            n = matrix[i, j]
            if not_processed[i, j]:
                ax.text(j, i, "-", ha="center", va="center", fontsize=8, color="0.5")
                continue
            ax.text(
                j,
                i,
                str(n),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if n > 0.6 * vmax else ("black" if n else "0.6"),
            )
    ax.set_xticks(
        range(len(columns)),
        [f"{t}\n{test}" for t, test in columns],
        fontsize=8,
        rotation=45,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("calibration type and cp_verify test")
    ax.set_ylabel("detector")
    for j in range(1, len(columns)):
        if columns[j][0] != columns[j - 1][0]:
            ax.axvline(j - 0.5, color="black", lw=1.5)
    cbar = fig.colorbar(image, ax=ax)
    cbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    cbar.set_label("failures [count of amplifier x exposure]")
    total = int(matrix.sum())
    footer = f"{total} failures in total"
    if not_processed.any():
        footer += "; grey '-': detector not processed"
    ax.set_title("\n".join(summaries + [footer]), fontsize=9, loc="left")
    fig.suptitle(f"Verification failures per detector and test\n{run_name}", fontsize=12)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------------------
# (d) Mosaics of combined calibrations


def _as_array(image: Any) -> np.ndarray:
    """Return the pixel array of a numpy array, an lsst.images Image or MaskedImage."""
    if isinstance(image, np.ndarray):
        return image
    inner = getattr(image, "image", None)
    if inner is not None and hasattr(inner, "array"):
        return np.asarray(inner.array)
    if hasattr(image, "array"):
        return np.asarray(image.array)
    return np.asarray(image)


def _unit_of(image: Any) -> str | None:
    inner = getattr(image, "image", image)
    unit = getattr(inner, "unit", None)
    return None if unit is None else str(unit)


def _bin(array: np.ndarray, max_pixels: int) -> np.ndarray:
    """Block-average ``array`` so that no axis exceeds ``max_pixels`` (NaN-aware)."""
    factor = max(1, math.ceil(max(array.shape) / max_pixels))
    if factor == 1:
        return array.astype(float)
    ny, nx = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = array[:ny, :nx].astype(float).reshape(ny // factor, factor, nx // factor, factor)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(blocks).sum(axis=(1, 3))
        sums = np.nansum(blocks, axis=(1, 3))
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def plot_calibration_mosaic(
    images: Mapping[Any, Any],
    calib_type: str,
    path: str | Path,
    run_name: str,
    *,
    unit: str | None = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
    max_pixels: int = 400,
    cmap: str = "viridis",
) -> Path:
    """Draw a combined calibration over the 3x3 detectors with one robust stretch and colour bar.

    Parameters
    ----------
    images : `~collections.abc.Mapping`
        Per-detector 2-D arrays (or lsst.images ``Image`` / ``MaskedImage``), keyed by detector id or
        name. Detectors that are missing are drawn empty.
    calib_type : `str`
        ``"bias"``, ``"dark"``, ``"flat"`` or any other name (shown in the title).
    path : `str` or `pathlib.Path`
        Output PNG.
    run_name : `str`
        Name of the run, shown in the title.
    unit : `str`, optional
        Pixel unit for the colour bar; by default the image's own unit if it has one, else
        ``e-`` (bias), ``e-/s`` (dark) or ``relative response`` (flat).
    percentiles : `tuple` [`float`, `float`], optional
        Percentiles of all finite pixels (after binning) mapped to the ends of the colour scale.
    max_pixels : `int`, optional
        Images are block-averaged so no axis exceeds this many display pixels.
    cmap : `str`, optional
        Matplotlib colour map.

    Returns
    -------
    path : `pathlib.Path`
        The written PNG.
    """
    arrays: dict[int, np.ndarray] = {}
    shapes: dict[int, tuple[int, int]] = {}
    pixel_unit = unit
    for key, image in images.items():
        det = detector_id(key)
        array = _as_array(image)
        if array.ndim != 2:
            raise ValueError(f"Image of detector {key} has shape {array.shape}; expected 2-D.")
        shapes[det] = (int(array.shape[0]), int(array.shape[1]))
        arrays[det] = _bin(array, max_pixels)
        pixel_unit = pixel_unit or _unit_of(image)
    pixel_unit = pixel_unit or _DEFAULT_UNITS.get(calib_type, "as stored")
    finite = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays.values()] or [np.zeros(0)])
    if finite.size:
        vmin, vmax = (float(v) for v in np.percentile(finite, percentiles))
        if vmax <= vmin:
            vmin, vmax = vmin - 0.5, vmax + 0.5
        median = float(np.median(finite))
        sigma = 0.7413 * float(np.subtract(*np.percentile(finite, [75, 25])))
    else:
        vmin, vmax, median, sigma = 0.0, 1.0, math.nan, math.nan
    aspect = float(np.median([ny / nx for ny, nx in shapes.values()])) if shapes else 1.0
    aspect = min(max(aspect, 0.2), 2.0)
    fig = Figure(figsize=(12, 1.6 + 3 * 3.4 * aspect + 0.6), layout="constrained")
    axes = _raft_axes(fig)
    image_artist = None
    for det, ax in axes.items():
        ax.set_title(f"{DETECTOR_NAMES[det]} (detector {det})", fontsize=9)
        ax.tick_params(labelsize=7)
        row, col = _slot(det)
        if row == 0:
            ax.set_xlabel("x [pixel]", fontsize=8)
        if col == 0:
            ax.set_ylabel("y [pixel]", fontsize=8)
        if det not in arrays:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_box_aspect(aspect)
            continue
        ny, nx = shapes[det]
        image_artist = ax.imshow(
            arrays[det],
            origin="lower",
            extent=(0, nx, 0, ny),
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="antialiased",
        )
    if image_artist is not None:
        cbar = fig.colorbar(image_artist, ax=list(axes.values()), shrink=0.8)
        cbar.set_label(f"{calib_type} [{pixel_unit}]")
    fig.suptitle(
        f"Combined {calib_type} mosaic -- {run_name}\n"
        f"stretch {percentiles[0]:g}-{percentiles[1]:g} percentile = [{vmin:.4g}, {vmax:.4g}] {pixel_unit}; "
        f"median {median:.4g}, robust sigma {sigma:.3g}",
        fontsize=12,
    )
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------------------
# Everything a run produced


def make_run_plots(report: Mapping[str, Any] | Any, repo: str | Path, out_dir: str | Path) -> list[Path]:
    """Draw every plot whose inputs a run produced; skip the others.

    Parameters
    ----------
    report : `~collections.abc.Mapping` or `calib.report.RunReport`
        The run report, as its JSON dict (``RunReport.to_dict()``) or the object itself.
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

    if not isinstance(report, Mapping) and hasattr(report, "to_dict"):
        report = report.to_dict()
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
