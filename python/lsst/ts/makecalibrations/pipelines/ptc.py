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

"""Photon transfer curve algorithms in numpy: flat-pair matching, per-pair measurement, the gain from
one flat pair, and the EXPAPPROXIMATION (Astier et al. 2019, Eq. 16) fit with outlier rejection.

This is the numerical core of the ``cpPtcExtract`` and ``cpPtcSolve`` PipelineTasks
(`pipelines.tasks.ptc_tasks`); it works on plain arrays so it can be tested without a butler. The
behaviour follows cp_pipe's ``PhotonTransferCurveExtractPairTask`` and ``PhotonTransferCurveSolveTask``
(https://github.com/lsst/cp_pipe; the model: Astier et al. 2019, https://arxiv.org/abs/1905.08677). The
pairing is the
project's one rule, `calib.flat_pairs.match_pairs_by_time`: every two consecutive exposures (sorted by
id) with the same exposure time form a pair, so twenty 5 s flats give ten pairs.

The settings of the two steps, `PairSettings` and `ExpApproxSettings`, hold cp_pipe's defaults (and the
project's, where it differs) once: the ``cpPtcExtract`` and ``cpPtcSolve`` configurations take their
field defaults from them.

Units: images in ADU (the PTC ISR does not apply gains), variances in ADU², gains in e-/ADU, the
per-pair read noise in ADU (overscan residual, as cp_pipe) and the solved PTC noise in electrons.

May import: numpy, scipy, the sibling modules `stats` and `ptc_covariance`, and `calib.flat_pairs` (the
pairing rule).
"""

from __future__ import annotations

__all__ = [
    "GAIN_CORRECTION_TYPES",
    "ExpApproxFit",
    "ExpApproxSettings",
    "PairMeasurement",
    "PairSettings",
    "amp_edge_mask",
    "exp_approximation_model",
    "fit_exp_approximation",
    "gain_from_flat_pair",
    "match_pairs_by_time",
    "measure_pair",
    "scaled_edge_width",
    "sigma_clip_correction",
]

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares
from scipy.special import ndtr

from ..calib.flat_pairs import match_pairs_by_time
from .ptc_covariance import measure_covariances
from .stats import border_mask, clipped_stats

GAIN_CORRECTION_TYPES = ("NONE", "SIMPLE", "FULL")
"""Estimators of the gain from one flat pair (cp_pipe ``gainCorrectionType``)."""

_FULL_AMP_SHAPE = (2000, 509)
"""Data shape (rows, cols) of a real ITL amp, the reference for `scaled_edge_width`."""


# --------------------------------------------------------------------------------------------------
# Per-pair measurement


def sigma_clip_correction(n_sigma: float) -> float:
    """Return the factor that corrects the variance of a Gaussian clipped at ``±n_sigma``.

    A Gaussian truncated at ``±n σ`` has variance ``σ² (1 - 2 n φ(n) / (Φ(n) - Φ(-n)))``; the
    correction is the inverse of that bracket (1.0000012 at 5.5σ, 1.0274 at 3σ).
    """
    n = float(n_sigma)
    phi = math.exp(-0.5 * n * n) / math.sqrt(2.0 * math.pi)
    inside = float(ndtr(n) - ndtr(-n))
    return 1.0 / (1.0 - 2.0 * n * phi / inside)


def scaled_edge_width(data_shape: Sequence[int], edge: int) -> tuple[int, int]:
    """Scale cp_pipe's amp-edge mask width to a (possibly shrunken) simulated amp.

    cp_pipe masks ``numEdgeSuspect = 20`` px at every edge of a 2000 x 509 ITL amp, about 10 % of its
    pixels. For an amp of another size the band is scaled per axis by ``n / n_full`` (rounded, at
    least 1 px when ``edge > 0``), so the masked fraction stays about the same.

    Parameters
    ----------
    data_shape : sequence of `int`
        ``(rows, cols)`` of the amp data section.
    edge : `int`
        Edge width (px) on a full-size amp (`PairSettings.num_edge_suspect`).

    Returns
    -------
    widths : `tuple` [`int`, `int`]
        Masked band ``(rows, cols)`` at each of the bottom/top and left/right edges.
    """
    if edge <= 0:
        return (0, 0)
    rows, cols = int(data_shape[0]), int(data_shape[1])
    if (rows, cols) == _FULL_AMP_SHAPE:
        return (edge, edge)
    wy = max(1, round(edge * min(rows, _FULL_AMP_SHAPE[0]) / _FULL_AMP_SHAPE[0]))
    wx = max(1, round(edge * min(cols, _FULL_AMP_SHAPE[1]) / _FULL_AMP_SHAPE[1]))
    return (wy, wx)


def amp_edge_mask(data_shape: Sequence[int], widths: tuple[int, int]) -> np.ndarray:
    """Return a boolean mask (True = masked) of the edge bands ``widths = (rows, cols)`` of an amp."""
    return border_mask(data_shape, *widths)


def gain_from_flat_pair(
    image1: np.ndarray,
    image2: np.ndarray,
    mean: float,
    read_noise: float,
    correction_type: str = "FULL",
) -> float:
    """Estimate the gain from one flat pair (cp_pipe ``getGainFromFlatPair``).

    ``const`` is the plain mean of ``(I1 - I2)² / (I1 + I2)`` over the given (already masked) pixels.

    * ``NONE``: ``g = 1 / const`` (biased low by about ``1 / (1 + g σ² / μ)``);
    * ``SIMPLE``: ``g = 1 / (const - (σ² - g_NONE² / 2) / μ)``;
    * ``FULL``: the positive root of ``(const μ - σ²) g² - μ g + 1/2 = 0``, i.e. the solution of
      ``1/g = const - (σ² - 1 / (2 g²)) / μ``.

    Parameters
    ----------
    image1, image2 : `numpy.ndarray`
        1-D arrays of the good pixels of the two flats (ADU).
    mean : `float`
        Mean signal μ of the pair (ADU).
    read_noise : `float`
        Read noise σ (ADU); if NaN, ``NONE`` is used.
    correction_type : `str`, optional
        ``NONE``, ``SIMPLE`` or ``FULL``.

    Returns
    -------
    gain : `float`
        Gain (e-/ADU); NaN when it cannot be computed.
    """
    if correction_type not in GAIN_CORRECTION_TYPES:
        raise ValueError(
            f"Unknown gain correction type {correction_type!r}; expected one of {GAIN_CORRECTION_TYPES}."
        )
    i1 = np.asarray(image1, dtype=np.float64)
    i2 = np.asarray(image2, dtype=np.float64)
    total = i1 + i2
    good = np.isfinite(total) & (total > 0)
    if not np.any(good) or not np.isfinite(mean) or mean <= 0:
        return math.nan
    const = float(np.mean((i1[good] - i2[good]) ** 2 / total[good]))
    if const <= 0:
        return math.nan
    gain_none = 1.0 / const
    if correction_type == "NONE" or not np.isfinite(read_noise):
        return gain_none
    noise2 = float(read_noise) ** 2
    if correction_type == "SIMPLE":
        denominator = const - (noise2 - 0.5 * gain_none**2) / mean
        return 1.0 / denominator if denominator > 0 else math.nan
    quadratic = const * mean - noise2
    discriminant = mean**2 - 2.0 * mean * const + 2.0 * noise2
    if quadratic <= 0 or discriminant < 0:
        return math.nan
    return (mean + math.sqrt(discriminant)) / (2.0 * quadratic)


@dataclasses.dataclass(frozen=True)
class PairSettings:
    """How `measure_pair` measures a flat pair: cp_pipe ``PhotonTransferCurveExtractPairConfig``'s
    fields, whose defaults the ``cpPtcExtract`` configuration takes from here.

    Attributes
    ----------
    n_sigma : `float`
        Clipping threshold of the means and the variance (``nSigmaClipPtc``).
    n_iter : `int`
        Clipping iterations (``nIterSigmaClipPtc``).
    gain_correction_type : `str`
        Gain-from-pair estimator, one of `GAIN_CORRECTION_TYPES` (``gainCorrectionType``).
    max_lag : `int`
        Measure the covariances of the difference at lags ``0 <= dx, dy < max_lag``
        (``maximumRangeCovariancesAstier``; cp_pipe's default is 10, 8 covers the simulated
        brighter-fatter kernel and keeps the datasets smaller); 0 measures none.
    min_pixels_covariance : `int`
        Fewer usable pixels than this give NaN covariances (``minNumberGoodPixelsForCovariance``).
    num_edge_suspect : `int`
        Pixels masked at every edge of a full-size amp (``numEdgeSuspect``, `scaled_edge_width`).
    """

    n_sigma: float = 5.5
    n_iter: int = 3
    gain_correction_type: str = "FULL"
    max_lag: int = 8
    min_pixels_covariance: int = 10000
    num_edge_suspect: int = 20


@dataclasses.dataclass
class PairMeasurement:
    """Measurement of one amplifier on one flat pair.

    Attributes
    ----------
    mean : `float`
        μ = (μ1 + μ2) / 2 (ADU).
    variance : `float`
        ``rawVar`` = ½ VARIANCECLIP of the flux-matched difference, sigma-clip corrected (ADU²).
    gain : `float`
        Gain from the pair (e-/ADU) with the requested estimator.
    read_noise : `float`
        Read noise used (ADU; mean of the two exposures' overscan noise).
    mean1, mean2 : `float`
        Clipped means of the two images (ADU).
    n_pixels : `int`
        Unmasked pixels used.
    valid : `bool`
        False when a mean is non-finite or not positive (cp_pipe ``expIdMask``).
    covariances : `numpy.ndarray` or `None`
        ``(L, L)`` covariances ``[dx, dy]`` of the pair (ADU²) when requested; NaN when too few
        pixels are left.
    covariances_sqrt_weights : `numpy.ndarray` or `None`
        Inverse 1σ errors of ``covariances`` (``sqrt(n) / var``, and ``/ sqrt(2)`` at lag 0).
    """

    mean: float
    variance: float
    gain: float
    read_noise: float
    mean1: float
    mean2: float
    n_pixels: int
    valid: bool
    covariances: np.ndarray | None = None
    covariances_sqrt_weights: np.ndarray | None = None

    @property
    def delta(self) -> float:
        """μ2 - μ1 (ADU)."""
        return self.mean2 - self.mean1


def measure_pair(
    image1: np.ndarray,
    image2: np.ndarray,
    read_noise: float,
    mask: np.ndarray | None = None,
    settings: PairSettings = PairSettings(),
) -> PairMeasurement:
    """Measure mean, variance, gain (and covariances) of one amplifier region on a flat pair.

    Follows cp_pipe's ``measureMeanVarCov`` and ``getGainFromFlatPair``: clipped means (5.5σ, 3
    iterations by default), flux-matched difference ``D = (μ2 I1 - μ1 I2) / μ``,
    ``rawVar = ½ VARIANCECLIP(D)`` times the sigma-clip correction, and the gain from the raw
    (unmatched) pair.

    Parameters
    ----------
    image1, image2 : `numpy.ndarray`
        2-D amp images (ADU) of the two flats, same shape.
    read_noise : `float`
        Read noise of the pair (ADU), the mean of the two exposures' overscan noise; NaN allowed.
    mask : `numpy.ndarray`, optional
        Boolean array, True for pixels to ignore (edges, defects, NaNs are always ignored).
    settings : `PairSettings`, optional
        Clipping, gain estimator and covariance lags (``max_lag=0`` measures no covariances); the
        covariances leave out the pixels beyond ``n_sigma`` clipped sigmas of the difference
        (weight 0). The amp edges (``num_edge_suspect``) are the caller's, in ``mask``.

    Returns
    -------
    measurement : `PairMeasurement`
        The measurement; ``valid`` is False if the means are not usable.
    """
    im1 = np.asarray(image1, dtype=np.float64)
    im2 = np.asarray(image2, dtype=np.float64)
    if im1.shape != im2.shape:
        raise ValueError(f"Pair images differ in shape: {im1.shape} vs {im2.shape}.")
    good = np.isfinite(im1) & np.isfinite(im2)
    if mask is not None:
        good &= ~np.asarray(mask, dtype=bool)
    values1, values2 = im1[good], im2[good]
    n_pixels = int(values1.size)
    nan = math.nan
    n_sigma, n_iter, max_lag = settings.n_sigma, settings.n_iter, settings.max_lag
    if n_pixels == 0:
        return PairMeasurement(nan, nan, nan, float(read_noise), nan, nan, 0, False)
    mu1 = clipped_stats(values1, nsigma=n_sigma, niter=n_iter).mean
    mu2 = clipped_stats(values2, nsigma=n_sigma, niter=n_iter).mean
    if not (np.isfinite(mu1) and np.isfinite(mu2) and mu1 > 0 and mu2 > 0):
        return PairMeasurement(nan, nan, nan, float(read_noise), float(mu1), float(mu2), n_pixels, False)
    mu = 0.5 * (float(mu1) + float(mu2))
    difference = (mu2 * values1 - mu1 * values2) / mu
    clipped = clipped_stats(difference, nsigma=n_sigma, niter=n_iter)
    variance = 0.5 * clipped.variance * sigma_clip_correction(n_sigma)
    gain = gain_from_flat_pair(values1, values2, mu, read_noise, settings.gain_correction_type)
    covariances = sqrt_weights = None
    if max_lag > 0:
        covariances = np.full((max_lag, max_lag), math.nan)
        sqrt_weights = np.full((max_lag, max_lag), math.nan)
        image = np.zeros(im1.shape)
        image[good] = difference
        weights = good.copy()
        weights[good] = np.abs(difference - clipped.mean) <= n_sigma * math.sqrt(clipped.variance)
        if np.count_nonzero(weights) >= settings.min_pixels_covariance:
            covariances, n_pairs = measure_covariances(image, weights, max_lag)
            correction = sigma_clip_correction(n_sigma)
            covariances[0, 0] *= correction
            covariances[1:, :] *= correction**2
            covariances[0, 1:] *= correction**2
            var00 = covariances[0, 0]
            with np.errstate(invalid="ignore", divide="ignore"):
                sqrt_weights = np.sqrt(n_pairs) / var00
            sqrt_weights[0, 0] /= math.sqrt(2.0)
    return PairMeasurement(
        mean=float(mu),
        variance=float(variance),
        gain=float(gain),
        read_noise=float(read_noise),
        mean1=float(mu1),
        mean2=float(mu2),
        n_pixels=n_pixels,
        valid=bool(np.isfinite(variance)),
        covariances=covariances,
        covariances_sqrt_weights=sqrt_weights,
    )


# --------------------------------------------------------------------------------------------------
# EXPAPPROXIMATION solve


def _expm1_over_x(x: np.ndarray) -> np.ndarray:
    """``expm1(x) / x`` with the limit 1 at x = 0."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 + 0.5 * x + x * x / 6.0, np.expm1(safe) / safe)


def exp_approximation_model(params: npt.ArrayLike, means: npt.ArrayLike) -> np.ndarray:
    """Astier et al. (2019) Eq. 16: ``C00(μ) = (exp(2 a00 g μ) - 1) / (2 a00 g²) + n00 / g²``.

    Parameters
    ----------
    params : sequence of `float`
        ``(a00 [1/e-], gain [e-/ADU], n00 [e²])``.
    means : `numpy.ndarray`
        Mean signal (ADU).

    Returns
    -------
    variance : `numpy.ndarray`
        Model variance (ADU²). At ``a00 = 0`` it is ``μ / g + n00 / g²``.
    """
    a00, gain, n00 = (float(p) for p in np.asarray(params, dtype=np.float64))
    mu = np.asarray(means, dtype=np.float64)
    return (mu / gain) * _expm1_over_x(2.0 * a00 * gain * mu) + n00 / gain**2


@dataclasses.dataclass(frozen=True)
class ExpApproxSettings:
    """How `fit_exp_approximation` selects the points of a PTC: cp_pipe
    ``PhotonTransferCurveSolveConfig``'s fields, whose defaults the ``cpPtcSolve`` configuration takes
    from here.

    Attributes
    ----------
    sigma_cut : `float`
        Outlier cut ``|var - model| / sqrt(var)`` (``sigmaCutPtcOutliers``).
    max_iterations : `int`
        Outlier-rejection iterations (``maxIterationsPtcOutliers``).
    max_signal_initial : `float`
        Range of the first fit (e-), converted to ADU with the approximate gain
        (``maxSignalInitialPtcOutlierFit``).
    max_delta_initial : `float`
        Jump in mean (e-) after a rejected point that masks every point above
        (``maxDeltaInitialPtcOutlierFit``).
    min_mean_signal, max_mean_signal : `float`
        Points whose mean (ADU) is at or below, or at or above, are never used (``minMeanSignal``,
        ``maxMeanSignal``).
    use_measurement_errors : `bool`
        Weight the outlier rejection by the variance's measurement error (`fit_exp_approximation`;
        the project's ``useMeasurementErrorsInOutlierFit``, needed on amps much smaller than a real
        ITL amp); it needs the pixel counts.
    """

    sigma_cut: float = 5.0
    max_iterations: int = 2
    max_signal_initial: float = 50000.0
    max_delta_initial: float = 9000.0
    min_mean_signal: float = 0.0
    max_mean_signal: float = 1e6
    use_measurement_errors: bool = True


@dataclasses.dataclass
class ExpApproxFit:
    """Result of `fit_exp_approximation` for one amplifier.

    Attributes
    ----------
    a00 : `float`
        Brighter-fatter coefficient (1/e-).
    gain : `float`
        Gain (e-/ADU).
    n00 : `float`
        Noise term (e²).
    gain_err : `float`
        1σ uncertainty of the gain.
    noise : `float`
        Read noise ``sqrt(|n00|)`` (e-).
    noise_err : `float`
        1σ uncertainty of the noise (e-).
    mask : `numpy.ndarray`
        Points used in the final fit (input order).
    turnoff : `float`
        Largest mean among the used points (ADU).
    chi2_dof : `float`
        Reduced chi² of the final weighted fit.
    valid : `bool`
        False when fewer than 3 points survive (the amp is then bad; values are NaN).
    at_bound : `tuple` [`str`, ...]
        Parameters of the final fit (``gain``, ``n00``) that ended at a bound of the fit, where the
        data did not determine them (e.g. ``n00 = 0``: no read noise measured).
    """

    a00: float
    gain: float
    n00: float
    gain_err: float
    noise: float
    noise_err: float
    mask: np.ndarray
    turnoff: float
    chi2_dof: float
    valid: bool
    at_bound: tuple[str, ...] = ()

    @property
    def params(self) -> list[float]:
        """``[a00, gain, n00]`` (cp_pipe ``ptcFitPars``)."""
        return [self.a00, self.gain, self.n00]


_INITIAL = (-2e-6, 1.5, 25.0)
_LOWER = (-1e-4, 0.1, 0.0)
_UPPER = (0.0, 10.0, 2000.0)
_BOUND_TOLERANCE = 1e-6
"""A parameter within this fraction of its allowed range from a bound is at the bound."""


def _params_at_bound(params: npt.ArrayLike) -> tuple[str, ...]:
    """Names of the gain and noise parameters that sit at a bound of the fit."""
    names = []
    for index, name in ((1, "gain"), (2, "n00")):
        width = _UPPER[index] - _LOWER[index]
        value = float(np.asarray(params, dtype=np.float64)[index])
        if min(value - _LOWER[index], _UPPER[index] - value) <= _BOUND_TOLERANCE * width:
            names.append(name)
    return tuple(names)


def _least_squares_fit(
    means: np.ndarray, variances: np.ndarray, sigmas: np.ndarray | None, start: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit Eq. 16; return the parameters, their covariance (scaled by χ²/dof) and χ²/dof."""

    def residuals(params: np.ndarray) -> np.ndarray:
        model = exp_approximation_model(params, means)
        resid = variances - model
        return resid / sigmas if sigmas is not None else resid

    initial = np.clip(np.asarray(start, dtype=np.float64), _LOWER, _UPPER)
    result = least_squares(
        residuals, initial, bounds=(_LOWER, _UPPER), x_scale=(1e-6, 1.0, 10.0), method="trf"
    )
    dof = len(means) - 3
    if dof <= 0:
        # As cp_pipe's fitLeastSq: a fit through as many points as parameters has no error estimate
        # (its residuals are zero whatever the noise of the points), so the errors are NaN, not 0.
        return result.x, np.full((3, 3), math.nan), math.nan
    chi2_dof = float(np.sum(result.fun**2) / dof)
    # Normalise the Jacobian columns first: d/da00 and d/dn00 differ by ~10 orders of magnitude.
    jacobian = np.asarray(result.jac, dtype=np.float64)
    scale = np.linalg.norm(jacobian, axis=0)
    scale[scale == 0] = 1.0
    try:
        normalised = np.linalg.inv((jacobian / scale).T @ (jacobian / scale))
        covariance = normalised / np.outer(scale, scale) * chi2_dof
    except np.linalg.LinAlgError:
        covariance = np.full((3, 3), math.nan)
    return result.x, covariance, chi2_dof


def fit_exp_approximation(
    means: npt.ArrayLike,
    variances: npt.ArrayLike,
    n_pixels: npt.ArrayLike | None = None,
    valid: npt.ArrayLike | None = None,
    settings: ExpApproxSettings = ExpApproxSettings(),
) -> ExpApproxFit:
    """Fit the EXPAPPROXIMATION PTC of one amplifier with cp_pipe's outlier rejection.

    1. Points with a non-finite value, ``mean <= min_mean_signal`` or ``mean >= max_mean_signal`` or
       ``valid`` False are never used.
    2. The first pass keeps points with mean and variance below ``max_signal_initial`` electrons,
       converted to ADU with the approximate gain ``median(mean / variance)``.
    3. Unweighted fit; residuals ``r = (var - model) / sqrt(var)``; keep ``|r| < sigma_cut``. With
       ``use_measurement_errors`` the fit is weighted and the denominator is ``max(sqrt(var), σ(var))``
       (see below). A kept
       point that follows a rejected one (in mean order) with a jump in mean of at least
       ``max_delta_initial`` electrons masks it and every point above. Repeat, at most
       ``max_iterations`` more times, until the mask no longer changes.
    4. Final fit weighted by ``1 / σ(var)`` with ``σ(var) = var sqrt(2 / N_pix)`` (cp_pipe's
       ``covSqrtWeights[0, 0]``); unweighted if ``n_pixels`` is not given.

    Parameters
    ----------
    means, variances : sequence of `float`
        Per-pair mean (ADU) and variance (ADU²).
    n_pixels : sequence of `int`, optional
        Pixels behind each variance (for the weights).
    valid : sequence of `bool`, optional
        Input mask (``expIdMask``).
    settings : `ExpApproxSettings`, optional
        The selection. With ``use_measurement_errors`` the measurement error ``σ(var) = var
        sqrt(2 / N_pix)`` (needs ``n_pixels``; without them it is not used) enters the outlier
        rejection: the fits are weighted by ``1 / σ(var)`` and a residual is never normalised by
        less than ``σ(var)``. cp_pipe's unweighted fits and ``sqrt(var)`` normalisation assume a
        full-size amp (~1e6 pixels, σ(var)/var = 0.14%). On the shrunken simulated amps (~5e4
        pixels, 0.67%) the unweighted fit lets the high-signal points move the intercept by more
        than the low-signal points' ``5 sqrt(var)`` (so good low-flux points, which carry the read
        noise, were rejected) and ``5 sqrt(var)`` is only ~3σ at high signal. On a full-size amp the
        normalisation is cp_pipe's; only the weighting of the intermediate fits differs.

    Returns
    -------
    fit : `ExpApproxFit`
        The result; ``valid`` is False (and values NaN) if fewer than 3 points are usable.
    """
    mu = np.asarray(means, dtype=np.float64)
    var = np.asarray(variances, dtype=np.float64)
    if mu.shape != var.shape:
        raise ValueError("means and variances must have the same length.")
    usable = (
        np.isfinite(mu)
        & np.isfinite(var)
        & (mu > settings.min_mean_signal)
        & (mu < settings.max_mean_signal)
        & (var > 0)
    )
    if valid is not None:
        usable &= np.asarray(valid, dtype=bool)
    npix = None if n_pixels is None else np.asarray(n_pixels, dtype=np.float64)
    if npix is not None:
        usable &= np.isfinite(npix) & (npix > 0)

    def failed(mask: np.ndarray) -> ExpApproxFit:
        nan = math.nan
        return ExpApproxFit(nan, nan, nan, nan, nan, nan, mask, nan, nan, False)

    if np.count_nonzero(usable) < 3:
        return failed(np.zeros_like(usable))

    approx_gain = float(np.median(mu[usable] / var[usable]))
    max_signal_adu = settings.max_signal_initial / approx_gain
    max_delta_adu = settings.max_delta_initial / approx_gain
    mask = usable & (mu <= max_signal_adu) & (var <= max_signal_adu)
    if np.count_nonzero(mask) < 3:
        mask = usable.copy()
    order = np.argsort(mu)
    sigmas_all = None
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.sqrt(var)
        if settings.use_measurement_errors and npix is not None:
            sigmas_all = var * np.sqrt(2.0 / npix)
            scale = np.maximum(scale, sigmas_all)
    params: np.ndarray = np.asarray(_INITIAL, dtype=np.float64)
    for _ in range(settings.max_iterations + 1):
        if np.count_nonzero(mask) < 3:
            return failed(np.zeros_like(usable))
        loop_sigmas = sigmas_all[mask] if sigmas_all is not None else None
        params, _, _ = _least_squares_fit(mu[mask], var[mask], loop_sigmas, params)
        with np.errstate(invalid="ignore", divide="ignore"):
            residual = (var - exp_approximation_model(params, mu)) / scale
        new_mask = usable & (np.abs(residual) < settings.sigma_cut)
        _mask_after_jumps(new_mask, usable, mu, order, max_delta_adu)
        if np.array_equal(new_mask, mask):
            break
        mask = new_mask
    if np.count_nonzero(mask) < 3:
        return failed(np.zeros_like(usable))

    sigmas = None
    if npix is not None:
        sigmas = var[mask] * np.sqrt(2.0 / npix[mask])
    params, covariance, chi2_dof = _least_squares_fit(mu[mask], var[mask], sigmas, params)
    a00, gain, n00 = (float(p) for p in params)
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    noise = math.sqrt(abs(n00))
    noise_err = float(errors[2] / (2.0 * noise)) if noise > 0 else math.nan
    return ExpApproxFit(
        a00=a00,
        gain=gain,
        n00=n00,
        gain_err=float(errors[1]),
        noise=noise,
        noise_err=noise_err,
        mask=mask,
        turnoff=float(np.max(mu[mask])),
        chi2_dof=chi2_dof,
        valid=True,
        at_bound=_params_at_bound(params),
    )


def _mask_after_jumps(
    mask: np.ndarray, usable: np.ndarray, means: np.ndarray, order: np.ndarray, max_delta: float
) -> None:
    """Mask (in place) every point above a kept point that follows a rejected one by >= ``max_delta``.

    Only usable points take part: a point that was never usable (NaN, invalid) is not a rejection.
    """
    previous_rejected_mean: float | None = None
    for position, index in enumerate(order):
        if not usable[index]:
            continue
        if not mask[index]:
            previous_rejected_mean = float(means[index])
            continue
        if previous_rejected_mean is not None and means[index] - previous_rejected_mean >= max_delta:
            mask[order[position:]] = False
            return
        previous_rejected_mean = None
