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

"""The full-covariance photon transfer curve in numpy: per-lag covariances of a flat-pair difference and
the Astier et al. (2019) Eq. 20 model and fit (cp_pipe's ``FULLCOVARIANCE`` / ``FULLCOVARIANCE_NO_B``).

* `measure_covariances`: covariances of the flux-matched difference image ``D`` at lags
  ``(dx, dy)``, ``0 <= dx, dy < max_lag`` with FFTs (Astier+19 appendix, as cp_pipe),
  returned as ``cov[dx, dy]`` (serial lag first), halved for the difference.
* `covariance_model`: Eq. 20, ``C_ij(μ)`` for arrays ``a``, ``c = a b`` and ``noise`` (e²) and a gain.
* `fit_full_covariance`: weighted least-squares fit of Eq. 20 to the covariances of every pair and
  lag, from a start given by per-lag parabolic fits.

Units: means in ADU, covariances in ADU², ``a`` in 1/e-, ``b`` dimensionless, ``noise`` in e², the gain
in e-/ADU. Arrays are indexed ``[i, j]`` with ``i`` the serial (x) lag and ``j`` the parallel (y) lag.

May import: numpy, scipy and threadpoolctl.
"""

from __future__ import annotations

__all__ = [
    "FullCovarianceFit",
    "covariance_model",
    "fit_full_covariance",
    "measure_covariances",
    "quadrant_convolve",
    "symmetrize",
]

import dataclasses
import math

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

# --------------------------------------------------------------------------------------------------
# Measurement


def measure_covariances(
    difference: np.ndarray, weights: np.ndarray, max_lag: int
) -> tuple[np.ndarray, np.ndarray]:
    """Covariances of a flat-pair difference image at lags ``0 <= dx, dy < max_lag``.

    For lag ``l`` and the pixel pairs ``(p, p + l)`` both with weight 1 (``n(l)`` of them),
    ``cov(l) = Σ D_p D_{p+l} / n - (Σ D_p)(Σ D_{p+l}) / n²``, computed for every lag at once with
    zero-padded FFTs. For ``dx, dy`` both non-zero the ``(dx, dy)`` and ``(dx, -dy)`` estimates are
    averaged. The result is halved: the difference of two flats has twice a flat's covariance.

    Parameters
    ----------
    difference : `numpy.ndarray`
        2-D difference image (ADU), rows = y (parallel), columns = x (serial).
    weights : `numpy.ndarray`
        Same shape, 1 for pixels to use, 0 otherwise.
    max_lag : `int`
        Number of lags per axis.

    Returns
    -------
    covariances : `numpy.ndarray`
        ``(max_lag, max_lag)`` array ``cov[dx, dy]`` (ADU²).
    n_pairs : `numpy.ndarray`
        Pixel pairs behind each lag (same shape).
    """
    d = np.where(weights > 0, np.asarray(difference, dtype=np.float64), 0.0)
    w = (np.asarray(weights) > 0).astype(np.float64)
    rows, cols = d.shape
    # Zero padding of at least max_lag keeps the lags of interest free of wrap-around; scipy.fft's
    # fast lengths (5-smooth) instead of powers of two halve the work of an ITL amp (509 x 2000
    # pixels: 540 x 2025 instead of 1024 x 2048), for the same sums up to float64 rounding.
    shape = (
        scipy.fft.next_fast_len(rows + max_lag, real=True),
        scipy.fft.next_fast_len(cols + max_lag, real=True),
    )
    f_d = scipy.fft.rfft2(d, s=shape)
    f_w = scipy.fft.rfft2(w, s=shape)
    # corr(X, Y)(l) = Σ_p X_p Y_{p+l}
    dd = scipy.fft.irfft2(np.conj(f_d) * f_d, s=shape)
    ww = scipy.fft.irfft2(np.conj(f_w) * f_w, s=shape)
    dw = scipy.fft.irfft2(np.conj(f_d) * f_w, s=shape)  # Σ D_p w_{p+l}; Σ w_p D_{p+l} is dw at -l

    def at(dx: int, dy: int) -> tuple[float, float]:
        iy, ix = dy % shape[0], dx % shape[1]
        n = round(float(ww[iy, ix]))
        if n <= 1:
            return math.nan, 0.0
        wd = float(dw[-iy % shape[0], -ix % shape[1]])  # Σ w_p D_{p+l} = Σ D_q w_{q-l}
        cov = float(dd[iy, ix]) / n - float(dw[iy, ix]) * wd / n**2
        return cov, float(n)

    covariances = np.full((max_lag, max_lag), math.nan)
    n_pairs = np.zeros((max_lag, max_lag))
    for dx in range(max_lag):
        for dy in range(max_lag):
            cov, n = at(dx, dy)
            if dx != 0 and dy != 0:
                cov2, n2 = at(dx, -dy)
                if n + n2 > 0:
                    cov = (cov * n + cov2 * n2) / (n + n2)
                n = n + n2
            covariances[dx, dy] = 0.5 * cov
            n_pairs[dx, dy] = n
    return covariances, n_pairs


# --------------------------------------------------------------------------------------------------
# Model


def symmetrize(quadrant: npt.ArrayLike) -> np.ndarray:
    """Extend an ``(n, n)`` array of lags ``[|dx|, |dy|]`` to the ``(2n-1, 2n-1)`` plane of signed lags."""
    q = np.asarray(quadrant, dtype=np.float64)
    n = q.shape[0]
    idx = np.abs(np.arange(-(n - 1), n))
    return q[np.ix_(idx, idx)]


def _fft_grid(n: int, order: int) -> int:
    """Side of a periodic grid on which an ``order``-fold convolution of ``(2n-1)``-wide arrays
    does not wrap."""
    return 1 << int(math.ceil(math.log2(order * (2 * n - 2) + 1)))


def _to_grid(quadrant: np.ndarray, side: int) -> np.ndarray:
    """Place the symmetrised ``quadrant`` on a periodic ``side x side`` grid, lag 0 at index 0."""
    n = quadrant.shape[0]
    grid = np.zeros((side, side))
    idx = np.arange(-(n - 1), n) % side
    grid[np.ix_(idx, idx)] = symmetrize(quadrant)
    return grid


def quadrant_convolve(first: npt.ArrayLike, second: npt.ArrayLike) -> np.ndarray:
    """``first ⊗ second``: 2-D convolution of the symmetrised arrays over every lag, cut back to the
    ``(n, n)`` quadrant of non-negative lags."""
    f = np.asarray(first, dtype=np.float64)
    n = f.shape[0]
    side = _fft_grid(n, 2)
    full = np.fft.irfft2(
        np.fft.rfft2(_to_grid(f, side)) * np.fft.rfft2(_to_grid(np.asarray(second, dtype=np.float64), side)),
        s=(side, side),
    )
    return full[:n, :n]


def _convolution_terms(a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a⊗a, a⊗a⊗a, a⊗c)`` with two forward and three inverse FFTs."""
    n = a.shape[0]
    side = _fft_grid(n, 3)
    fa = np.fft.rfft2(_to_grid(a, side))
    fc = np.fft.rfft2(_to_grid(c, side))
    shape = (side, side)
    a2 = np.fft.irfft2(fa * fa, s=shape)[:n, :n]
    a3 = np.fft.irfft2(fa * fa * fa, s=shape)[:n, :n]
    ac = np.fft.irfft2(fa * fc, s=shape)[:n, :n]
    return a2, a3, ac


def _shift_gather(n: int, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights to evaluate ``(G ⊛ S(E_kl))_ij = Σ G(i ∓ k, j ∓ l)`` for every ``i, j, k, l``.

    ``S(E_kl)`` (the symmetrised unit matrix of lag ``(k, l)``) has a 1 at each distinct ``(±k, ±l)``;
    the weights drop the repeated sign of a zero lag. Shapes ``(4, n, n, n, n)``.
    """
    i, j, k, m = np.meshgrid(*(np.arange(n),) * 4, indexing="ij")
    rows, cols, weights = [], [], []
    for sign_x in (1, -1):
        for sign_y in (1, -1):
            rows.append((i - sign_x * k) % side)
            cols.append((j - sign_y * m) % side)
            repeated = ((sign_x == -1) & (k == 0)) | ((sign_y == -1) & (m == 0))
            weights.append(np.where(repeated, 0.0, 1.0))
    return np.stack(rows), np.stack(cols), np.stack(weights)


def _model_jacobian(
    means: np.ndarray, a: np.ndarray, c: np.ndarray, noise: np.ndarray, gain: float, fit_b: bool
) -> np.ndarray:
    """Analytic derivatives of `covariance_model`: shape ``(m, n, n, n_params)``, parameters ordered
    ``a`` (raveled), ``c`` (if ``fit_b``), ``noise``, gain."""
    n = a.shape[0]
    side = _fft_grid(n, 3)
    shape = (side, side)
    fa = np.fft.rfft2(_to_grid(a, side))
    fc = np.fft.rfft2(_to_grid(c, side))
    plane_a = np.fft.irfft2(fa, s=shape)
    plane_c = np.fft.irfft2(fc, s=shape)
    plane_a2 = np.fft.irfft2(fa * fa, s=shape)
    a2 = plane_a2[:n, :n]
    a3 = np.fft.irfft2(fa * fa * fa, s=shape)[:n, :n]
    ac = np.fft.irfft2(fa * fc, s=shape)[:n, :n]
    rows, cols, weights = _shift_gather(n, side)

    def gather(plane: np.ndarray) -> np.ndarray:
        return np.sum(plane[rows, cols] * weights, axis=0).reshape(n, n, n * n)

    d_a2 = 2.0 * gather(plane_a)  # d(a⊗a)_ij / d a_kl
    d_a3 = 3.0 * gather(plane_a2)  # d(a⊗a⊗a)_ij / d a_kl
    d_ac_a = gather(plane_c)  # d(a⊗c)_ij / d a_kl
    d_ac_c = gather(plane_a)  # d(a⊗c)_ij / d c_kl
    mu = means[:, np.newaxis, np.newaxis, np.newaxis]
    eye = np.eye(n * n).reshape(n, n, n * n)
    blocks = [
        mu**2 * eye
        + (2.0 / 3.0) * gain * mu**3 * d_a2
        + gain**2 * mu**4 * (d_a3 / 3.0 + (5.0 / 6.0) * d_ac_a)
    ]
    if fit_b:
        blocks.append((2.0 / 3.0) * gain * mu**3 * eye + gain**2 * mu**4 * (5.0 / 6.0) * d_ac_c)
    blocks.append(np.broadcast_to(eye / gain**2, (len(means), n, n, n * n)))
    mu3 = means[:, np.newaxis, np.newaxis]
    d_gain = (
        (2.0 / 3.0) * mu3**3 * (a2 + c)
        + 2.0 * gain * mu3**4 * (a3 / 3.0 + (5.0 / 6.0) * ac)
        - 2.0 * noise / gain**3
    )
    d_gain[:, 0, 0] -= means / gain**2
    blocks.append(d_gain[..., np.newaxis])
    return np.concatenate(blocks, axis=-1)


def covariance_model(
    means: npt.ArrayLike, a: np.ndarray, c: np.ndarray, noise: np.ndarray, gain: float
) -> np.ndarray:
    """Astier+19 Eq. 20: the covariances ``C_ij(μ)`` (ADU²) of a flat of mean ``μ`` (ADU).

    ``C_ij = (μe / g²) [a_ij μe + (2/3) μe² ((a⊗a)_ij + c_ij) + μe³ ((1/3)(a⊗a⊗a)_ij + (5/6)(a⊗c)_ij)]
    + n_ij / g² + δ_i0 δ_j0 μ / g`` with ``μe = g μ``.

    Parameters
    ----------
    means : `numpy.ndarray`
        Mean signals (ADU), shape ``(m,)``.
    a, c, noise : `numpy.ndarray`
        ``(n, n)`` arrays: brighter-fatter ``a`` (1/e-), ``c = a b`` (1/e-) and noise (e²).
    gain : `float`
        Gain (e-/ADU).

    Returns
    -------
    model : `numpy.ndarray`
        ``(m, n, n)`` covariances (ADU²).
    """
    mu = np.asarray(means, dtype=np.float64)[:, np.newaxis, np.newaxis]
    a2, a3, ac = _convolution_terms(np.asarray(a, dtype=np.float64), np.asarray(c, dtype=np.float64))
    mu_e = mu * gain
    model = (mu_e / gain**2) * (
        a * mu_e + (2.0 / 3.0) * mu_e**2 * (a2 + c) + mu_e**3 * (a3 / 3.0 + (5.0 / 6.0) * ac)
    ) + noise / gain**2
    model[:, 0, 0] += mu[:, 0, 0] / gain
    return model


# --------------------------------------------------------------------------------------------------
# Fit


@dataclasses.dataclass
class FullCovarianceFit:
    """Result of `fit_full_covariance` for one amplifier.

    Attributes
    ----------
    a_matrix : `numpy.ndarray`
        ``(n, n)`` brighter-fatter coefficients (1/e-); ``a_matrix[0, 0]`` is a00.
    b_matrix : `numpy.ndarray`
        ``(n, n)`` ``b = c / a`` (zero for the NO_B fit).
    noise_matrix : `numpy.ndarray`
        ``(n, n)`` noise covariances (e²).
    gain : `float`
        Gain (e-/ADU).
    gain_err : `float`
        1σ uncertainty of the gain.
    noise : `float`
        Read noise ``sqrt(|noise_matrix[0, 0]|)`` (e-).
    noise_err : `float`
        1σ uncertainty of the noise (e-).
    model : `numpy.ndarray`
        ``(m, n, n)`` model covariances at every input mean (ADU²).
    chi2_dof : `float`
        Reduced χ² of the weighted fit.
    valid : `bool`
        False if too few points (the amp is then bad and values NaN).
    """

    a_matrix: np.ndarray
    b_matrix: np.ndarray
    noise_matrix: np.ndarray
    gain: float
    gain_err: float
    noise: float
    noise_err: float
    model: np.ndarray
    chi2_dof: float
    valid: bool

    @property
    def a00(self) -> float:
        """a00 (1/e-)."""
        return float(self.a_matrix[0, 0])


def _initial_parameters(
    means: np.ndarray, covariances: np.ndarray, weights: np.ndarray, gain: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start values of a, c and the noise from per-lag parabolas ``C_ij = p0 + p1 μ + p2 μ²``.

    To first order Eq. 20 is ``C_ij = n_ij / g² + a_ij μ² (+ μ / g at lag 0)`` with ``μ`` in ADU, so
    ``a_ij ≈ p2`` and ``n_ij ≈ p0 g²``; ``c`` starts at 0.
    """
    n = covariances.shape[1]
    a = np.zeros((n, n))
    noise = np.zeros((n, n))
    design = np.stack([np.ones_like(means), means, means**2], axis=1)
    for i in range(n):
        for j in range(n):
            w = weights[:, i, j]
            y = covariances[:, i, j]
            good = np.isfinite(y) & (w > 0)
            if np.count_nonzero(good) < 3:
                continue
            coeffs, *_ = np.linalg.lstsq(design[good] * w[good, None], y[good] * w[good], rcond=None)
            a[i, j] = coeffs[2]
            noise[i, j] = coeffs[0] * gain**2
    return a, np.zeros((n, n)), noise


def fit_full_covariance(
    means: npt.ArrayLike,
    covariances: npt.ArrayLike,
    sqrt_weights: npt.ArrayLike,
    mask: npt.ArrayLike,
    max_lag: int,
    initial_gain: float,
    fit_b: bool = True,
    initial_fit: FullCovarianceFit | None = None,
) -> FullCovarianceFit:
    """Fit Astier+19 Eq. 20 to the covariances of one amplifier.

    The parameters are ``a`` and ``c`` (``max_lag`` x ``max_lag`` each; ``c`` fixed at 0 when
    ``fit_b`` is False), the noise matrix and the gain. Residuals are
    ``(C_measured - C_model) * sqrt_weight`` over every used pair and lag. The start comes from
    per-lag parabolic fits and ``initial_gain`` (the EXPAPPROXIMATION gain).

    Parameters
    ----------
    means : `numpy.ndarray`
        Mean of each pair (ADU), shape ``(m,)``.
    covariances : `numpy.ndarray`
        ``(m, L, L)`` measured covariances (ADU²), ``L >= max_lag``.
    sqrt_weights : `numpy.ndarray`
        ``(m, L, L)`` inverse 1σ errors of the covariances.
    mask : `numpy.ndarray`
        ``(m,)`` boolean, the pairs to use (e.g. the EXPAPPROXIMATION fit's mask).
    max_lag : `int`
        Lags per axis that are fitted.
    initial_gain : `float`
        Start value of the gain.
    fit_b : `bool`, optional
        Fit ``b`` (``FULLCOVARIANCE``) or not (``FULLCOVARIANCE_NO_B``).
    initial_fit : `FullCovarianceFit`, optional
        A valid fit of the same data (the ``b = 0`` one) to start from instead of the parabolas; ``c``
        starts at ``a b`` of it.

    Returns
    -------
    fit : `FullCovarianceFit`
        The fit; ``valid`` False (NaN values) when fewer than ``max_lag`` pairs are usable, as cp_pipe.
    """
    mu_all = np.asarray(means, dtype=np.float64)
    cov_all = np.asarray(covariances, dtype=np.float64)[:, :max_lag, :max_lag]
    sw_all = np.asarray(sqrt_weights, dtype=np.float64)[:, :max_lag, :max_lag]
    used = np.asarray(mask, dtype=bool) & np.isfinite(mu_all)
    used &= np.all(np.isfinite(cov_all), axis=(1, 2)) & np.all(np.isfinite(sw_all), axis=(1, 2))
    n = max_lag
    nan_matrix = np.full((n, n), math.nan)

    def failed() -> FullCovarianceFit:
        return FullCovarianceFit(
            nan_matrix,
            nan_matrix,
            nan_matrix,
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            np.full(cov_all.shape, math.nan),
            math.nan,
            False,
        )

    if np.count_nonzero(used) < max(n, 3) or not (math.isfinite(initial_gain) and initial_gain > 0):
        return failed()
    mu, cov, sw = mu_all[used], cov_all[used], sw_all[used]
    if initial_fit is not None and initial_fit.valid and initial_fit.a_matrix.shape == (n, n):
        a0, noise0 = initial_fit.a_matrix.copy(), initial_fit.noise_matrix.copy()
        c0 = initial_fit.a_matrix * initial_fit.b_matrix
        initial_gain = initial_fit.gain
    else:
        a0, c0, noise0 = _initial_parameters(mu, cov, sw, initial_gain)
    size = n * n

    def unpack(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        a = params[:size].reshape(n, n)
        if fit_b:
            c = params[size : 2 * size].reshape(n, n)
            noise = params[2 * size : 3 * size].reshape(n, n)
        else:
            c = np.zeros((n, n))
            noise = params[size : 2 * size].reshape(n, n)
        return a, c, noise, float(params[-1])

    def residuals(params: np.ndarray) -> np.ndarray:
        a, c, noise, gain = unpack(params)
        return ((cov - covariance_model(mu, a, c, noise, gain)) * sw).ravel()

    start_parts: list[np.ndarray] = [a0.ravel()] + ([c0.ravel()] if fit_b else [])
    start_parts += [noise0.ravel(), np.array([initial_gain])]
    start: np.ndarray = np.concatenate(start_parts)
    # Typical scales: a ~ 1e-7, c ~ 1e-13, noise ~ 10 e², gain ~ 1.
    scale_parts: list[np.ndarray] = [np.full(size, 1e-7)] + ([np.full(size, 1e-13)] if fit_b else [])
    scale_parts += [np.full(size, 10.0), np.array([1.0])]
    x_scale: np.ndarray = np.concatenate(scale_parts)

    def jacobian(params: np.ndarray) -> np.ndarray:
        a, c, noise, gain = unpack(params)
        derivatives = _model_jacobian(mu, a, c, noise, gain, fit_b)
        return -(derivatives * sw[..., np.newaxis]).reshape(-1, len(params))

    noise_offset = 2 * size if fit_b else size
    # One BLAS thread: the matrices are small, and threads fighting over shared cores make each SVD of
    # the solver many times slower.
    with threadpool_limits(limits=1):
        result = least_squares(residuals, start, jac=jacobian, x_scale=x_scale, method="trf", max_nfev=200)
    a, c, noise, gain = unpack(result.x)
    dof = max(result.fun.size - len(start), 1)
    chi2_dof = float(np.sum(result.fun**2) / dof)
    gain_err = math.nan
    noise_err = math.nan
    try:
        jac = np.asarray(result.jac)
        col = np.linalg.norm(jac, axis=0)
        col[col == 0] = 1.0
        inv = np.linalg.pinv((jac / col).T @ (jac / col)) / np.outer(col, col) * chi2_dof
        gain_err = float(math.sqrt(max(inv[-1, -1], 0.0)))
        noise00_err = math.sqrt(max(inv[noise_offset, noise_offset], 0.0))
        noise_value = math.sqrt(abs(noise[0, 0]))
        noise_err = noise00_err / (2.0 * noise_value) if noise_value > 0 else math.nan
    except (np.linalg.LinAlgError, ValueError):
        pass
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(a != 0, c / a, 0.0)
    model = covariance_model(mu_all, a, c, noise, gain)
    return FullCovarianceFit(
        a_matrix=a,
        b_matrix=b,
        noise_matrix=noise,
        gain=gain,
        gain_err=gain_err,
        noise=math.sqrt(abs(noise[0, 0])),
        noise_err=noise_err,
        model=model,
        chi2_dof=chi2_dof,
        valid=bool(result.success or result.status == 0),
    )
