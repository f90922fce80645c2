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

"""The simulated LSSTComCam detectors: what is really in the pixels, deterministic from a seed.

`TruthModel` holds, per detector, the fixed signatures that the calibrations are meant to measure
and makes raw amp arrays for any exposure:

* **gain / read noise**: the camera's nominal per-amp values (`butler.camera`), so the true gains are
  the ones the verification compares against;
* **bias**: a per-amp pedestal (~18000 ADU) that the serial overscan sees, a per-exposure offset and
  a small per-exposure row slope (removed by the per-row overscan fit), and a fixed per-amp
  row/column gradient of a few ADU in the data section only (what a combined bias keeps);
* **dark current**: ``dark_current`` e-/s with ~5% pixel scatter, hot pixels (10-50 e-/s) and one
  hot column per detector (``hot_column_rate`` e-/s);
* **response**: smooth focal-plane vignetting x per-detector throughput x pixel response
  non-uniformity (``prnu``), with dead pixels (response 0-0.3) and one cold column (0.6);
* **flats**: ``flat_flux`` e-/s/pixel x a per-filter factor x response, so a 5 s flat gives ~20 ke-;
* **faults** (off by default): extra read noise on chosen amps (``noisy_amps``), a gain drift of
  chosen amps away from their nominal gain (``gain_drift``).

Pixels are drawn in electrons (Poisson), or, for flats with brighter-fatter on, as correlated Gaussian
draws whose covariances are the Astier+19 Eq. 20 covariances (Astier et al. 2019,
https://arxiv.org/abs/1905.08677; ``b = 0``, no noise) of a per-amp brighter-fatter matrix ``a_ij``
(`bf_a_matrix`: a00 near ``a00`` with ``a00_scatter`` amp-to-amp, neighbours positive and decaying as
``r^-3``, the parallel neighbour about twice the serial one, the sum over all lags zero so charge is
conserved): white noise convolved with the kernel whose autocorrelation is ``C_ij(μ) / μ`` at the
amp's mean level (`bf_noise_kernel`), times ``sqrt(μ)``. The single-pixel variance is then close to
Eq. 16's ``expm1(2 a00 mu) / (2 a00)``. Electrons are clipped at the full well,
converted to ADU with the gain, read noise (``rn / gain`` ADU) is added everywhere, and the result
rounded.

Random numbers: the fixed patterns come from ``default_rng([seed, 1, detector])``, the noise of one
image from ``default_rng([seed, 2, exposure_id, detector])``, so any image can be remade exactly.

May import: numpy, scipy, `butler.camera` and `pipelines.ptc_covariance` (pure numpy; the Eq. 20
model, one place for the simulator and the fit). No butler I/O here.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_A00",
    "DEFAULT_TRUTH_SEED",
    "FILTER_FACTORS",
    "DetectorTruth",
    "TruthModel",
    "bf_a_matrix",
    "bf_noise_kernel",
    "bf_variance",
    "valid_convolution",
]

import dataclasses
import functools
from typing import Any

import numpy as np
import scipy.fft

from ..butler.camera import (
    AMP_NAMES,
    INSTRUMENT_NAME,
    PIXEL_SIZE_MM,
    AmpGeometry,
    Camera,
    amp_geometry,
    get_camera,
)
from ..pipelines.ptc_covariance import covariance_model

DEFAULT_TRUTH_SEED = 20241126
"""Seed of the truth model used by repositories unless another is given."""

DEFAULT_A00 = -2.0e-6
"""Brighter-fatter a00 (1/e-) of the simulated ITL sensors."""

FILTER_FACTORS: dict[str, float] = {
    "u_02": 0.5,
    "g_01": 0.9,
    "r_03": 1.0,
    "i_06": 1.0,
    "z_03": 0.9,
    "y_04": 0.6,
    "empty": 1.0,
    "unknown": 1.0,
}
"""Flat-field illumination level per physical filter, relative to ``flat_flux``."""

_FULL_DETECTOR_MM = (4072 * PIXEL_SIZE_MM, 4000 * PIXEL_SIZE_MM)
_VIGNETTING_RADIUS_MM = 100.0
_DEFECT_MARGIN = 5


BF_RANGE = 8
"""Lags per axis of the simulated brighter-fatter matrix (and of its noise kernel's half-width)."""


def bf_a_matrix(a00: float, n_lags: int = BF_RANGE, parallel_ratio: float = 0.8) -> np.ndarray:
    """Brighter-fatter matrix ``a[i, j]`` (1/e-; ``i`` serial, ``j`` parallel lag) with ``a[0, 0] = a00``.

    The neighbours share ``-a00`` in proportion to ``(i² + (parallel_ratio j)²)^-1.5``, so the sum of
    ``a`` over every signed lag is zero (the charge a pixel loses goes to its neighbours) and the
    parallel neighbour ``a01`` is about twice the serial ``a10`` (0.16 and 0.08 of ``|a00|``).
    """
    i, j = np.meshgrid(np.arange(n_lags), np.arange(n_lags), indexing="ij")
    r2 = (i**2 + (parallel_ratio * j) ** 2).astype(np.float64)
    weight = np.zeros((n_lags, n_lags))
    weight[r2 > 0] = r2[r2 > 0] ** -1.5
    multiplicity = np.where((i > 0) & (j > 0), 4, np.where((i > 0) | (j > 0), 2, 1))
    a = -a00 * weight / float(np.sum(weight * multiplicity))
    a[0, 0] = a00
    return a


def bf_noise_kernel(a: np.ndarray, mean_e: float, grid: int = 64) -> np.ndarray:
    """Convolution kernel (``(2n-1, 2n-1)``, ``[dy, dx]`` as an image) that gives white unit noise the
    correlations ``C_ij(μ) / μ`` of Eq. 20 (``b = 0``, gain 1, no read noise) at the level ``mean_e``.

    The kernel is the inverse FFT of the square root of the correlations' power spectrum (negative
    values, which a physical ``a`` does not give below the full well, are clipped at 0).
    """
    n = a.shape[0]
    if mean_e <= 0:
        kernel = np.zeros((2 * n - 1, 2 * n - 1))
        kernel[n - 1, n - 1] = 1.0
        return kernel
    zeros = np.zeros_like(a)
    corr = covariance_model(np.array([mean_e]), a, zeros, zeros, 1.0)[0] / mean_e
    plane = np.zeros((grid, grid))
    for dx in range(-(n - 1), n):
        for dy in range(-(n - 1), n):
            plane[dy % grid, dx % grid] = corr[abs(dx), abs(dy)]
    power = np.clip(np.real(np.fft.fft2(plane)), 0.0, None)
    root = np.real(np.fft.ifft2(np.sqrt(power)))
    idx = np.arange(-(n - 1), n) % grid
    return root[np.ix_(idx, idx)]


def bf_variance(mean_e: np.ndarray | float, a00: float) -> np.ndarray | float:
    """Single-pixel variance (e-^2) of a flat pixel with mean ``mean_e`` under brighter-fatter.

    Astier+19 Eq. 16 in electrons: ``(exp(2 a00 mu) - 1) / (2 a00)``; equals ``mu`` when ``a00 == 0``.
    """
    if a00 == 0.0:
        return mean_e
    return np.expm1(2.0 * a00 * np.asarray(mean_e, dtype=np.float64)) / (2.0 * a00)


@dataclasses.dataclass
class DetectorTruth:
    """Fixed (exposure-independent) signatures of one detector.

    All maps are in assembled detector coordinates, shape ``(2 ny, 8 nx)``, float32.

    Attributes
    ----------
    detector : `int`
        Detector id.
    gain : `dict` [`str`, `float`]
        True gain per amp (e-/ADU).
    read_noise : `dict` [`str`, `float`]
        True read noise per amp (e-).
    pedestal : `dict` [`str`, `float`]
        Overscan pedestal per amp (ADU).
    gain_map : `numpy.ndarray`
        Gain of the amp each pixel belongs to.
    bias_structure : `numpy.ndarray`
        Fixed bias pattern above the overscan level (ADU).
    dark_rate : `numpy.ndarray`
        Dark current (e-/s), hot pixels and the hot column included.
    response : `numpy.ndarray`
        Relative response to flat illumination (vignetting x throughput x PRNU x dead/cold).
    throughput : `float`
        Detector throughput factor.
    hot_pixels : `list` [`tuple` [`int`, `int`]]
        ``(x, y)`` of the hot pixels.
    dead_pixels : `list` [`tuple` [`int`, `int`]]
        ``(x, y)`` of the dead pixels.
    hot_column : `tuple` [`str`, `int`]
        Amp and detector column ``x`` of the hot column (rows of that amp).
    cold_column : `tuple` [`str`, `int`]
        Amp and detector column ``x`` of the cold column.
    """

    detector: int
    geometry: AmpGeometry
    gain: dict[str, float]
    read_noise: dict[str, float]
    pedestal: dict[str, float]
    gain_map: np.ndarray
    bias_structure: np.ndarray
    dark_rate: np.ndarray
    response: np.ndarray
    throughput: float
    hot_pixels: list[tuple[int, int]]
    dead_pixels: list[tuple[int, int]]
    hot_column: tuple[str, int]
    cold_column: tuple[str, int]

    def defect_mask(
        self, geometry: AmpGeometry, border: int = _DEFECT_MARGIN, instrument: str = INSTRUMENT_NAME
    ) -> np.ndarray:
        """Boolean map of the true defects (hot/dead pixels, hot/cold columns, detector border)."""
        mask = np.zeros(geometry.detector_shape, dtype=bool)
        for x, y in self.hot_pixels + self.dead_pixels:
            mask[y, x] = True
        detector = get_camera(instrument)[self.detector]
        for amp_name, x in (self.hot_column, self.cold_column):
            rows, _ = detector[amp_name].bbox_slices(geometry)
            mask[rows, x] = True
        if border > 0:
            mask[:border, :] = True
            mask[-border:, :] = True
            mask[:, :border] = True
            mask[:, -border:] = True
        return mask


def valid_convolution(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The part of the convolution of ``image`` with ``kernel`` that needs no padding (the "valid"
    mode), through real FFTs of a fast length: what ``scipy.signal.fftconvolve(image, kernel,
    mode="valid")`` computes, value for value (tests/sim compares them), without importing
    scipy.signal (about 0.8-1.1 s of CPU in every ``run_script``; scipy.fft alone is a quarter).
    """
    if any(k > n for n, k in zip(image.shape, kernel.shape, strict=True)):
        raise ValueError(f"Kernel {kernel.shape} is larger than the image {image.shape}.")
    full = [n + k - 1 for n, k in zip(image.shape, kernel.shape, strict=True)]
    valid = [n - k + 1 for n, k in zip(image.shape, kernel.shape, strict=True)]
    lengths = [scipy.fft.next_fast_len(n, True) for n in full]
    spectrum = scipy.fft.rfftn(image, lengths) * scipy.fft.rfftn(kernel, lengths)
    result = scipy.fft.irfftn(spectrum, lengths)
    # The valid part is centred in the full convolution (as scipy.signal crops it).
    return result[tuple(slice((f - v) // 2, (f - v) // 2 + v) for f, v in zip(full, valid, strict=True))]


@dataclasses.dataclass(frozen=True)
class TruthModel:
    """Deterministic model of the simulated detectors of one camera (see module docstring).

    Parameters
    ----------
    instrument : `str`
        Camera (``LSSTComCam``, ``LSSTCam``, ``LATISS``): detectors, raw layouts and nominal gains
        come from its `butler.camera.Camera`.
    seed : `int`
        Seed of every random draw.
    size : `str` or `tuple` [`int`, `int`]
        Size preset (``full``, ``default``, ``tiny``) or ``(nx, ny)`` of the amp data section.
    brighter_fatter : `bool`
        Brighter-fatter in the flats: variance suppressed and pixels correlated (see `bf_a_matrix`).
    a00 : `float`
        Mean brighter-fatter coefficient (1/e-), negative.
    a00_scatter : `float`
        Relative amp-to-amp scatter of a00 (drawn from ``default_rng([seed, 3, detector])``).
    noisy_amps : `tuple` [`tuple` [`int`, `str`, `float`], ...]
        Fault injection: ``(detector, amp, extra)`` adds ``extra`` e- of read noise (in quadrature) to
        that amplifier of every image, so cp_verify's NOISE test must fail there.
    gain_drift : `tuple` [`tuple` [`int`, `str`, `float`], ...]
        Fault injection: ``(detector, amp, factor)`` makes that amplifier's actual gain ``factor``
        times its nominal (camera, reference PTC) gain in every image, so the gain from flat pairs
        differs from the PTC gain by ``factor - 1``.
    """

    seed: int = DEFAULT_TRUTH_SEED
    size: str | tuple[int, int] = "default"
    instrument: str = INSTRUMENT_NAME
    brighter_fatter: bool = True
    a00: float = DEFAULT_A00
    a00_scatter: float = 0.05
    bias_level: float = 18000.0
    bias_level_scatter: float = 1500.0
    bias_gradient: float = 4.0
    pedestal_jitter: float = 5.0
    pedestal_row_slope: float = 2.0
    dark_current: float = 0.02
    hot_pixel_fraction: float = 2.0e-5
    hot_pixel_rate: tuple[float, float] = (10.0, 50.0)
    hot_column_rate: float = 8.0
    dead_pixel_fraction: float = 2.0e-5
    cold_column_response: float = 0.6
    prnu: float = 0.01
    vignetting: float = 0.03
    throughput_scatter: float = 0.006
    flat_flux: float = 4000.0
    full_well: float = 110000.0
    noisy_amps: tuple[tuple[int, str, float], ...] = ()
    gain_drift: tuple[tuple[int, str, float], ...] = ()

    @classmethod
    def from_simulation_config(cls, config: dict[str, Any]) -> TruthModel:
        """Rebuild the model described by `summary` (e.g. a repo's ``simulation/truth.json``)."""
        names = {field.name for field in dataclasses.fields(cls)}
        kwargs = {key: value for key, value in config.items() if key in names}
        if "hot_pixel_rate" in kwargs:
            kwargs["hot_pixel_rate"] = tuple(kwargs["hot_pixel_rate"])
        if "noisy_amps" in kwargs:
            kwargs["noisy_amps"] = tuple((int(d), str(a), float(x)) for d, a, x in kwargs["noisy_amps"])
        if "gain_drift" in kwargs:
            kwargs["gain_drift"] = tuple((int(d), str(a), float(x)) for d, a, x in kwargs["gain_drift"])
        if not isinstance(kwargs.get("size", "default"), str):
            kwargs["size"] = tuple(kwargs["size"])
        return cls(**kwargs)

    @functools.cached_property
    def geometry(self) -> AmpGeometry:
        """Amp geometry of the simulation (ITL layout; see `geometry_of` for a detector's own)."""
        return amp_geometry(self.size)

    @property
    def camera(self) -> Camera:
        """The camera description of `instrument`."""
        return get_camera(self.instrument)

    def geometry_of(self, detector: int) -> AmpGeometry:
        """Amp geometry (raw layout of its vendor) of ``detector`` at this size."""
        return self.camera[detector].geometry(self.size)

    @property
    def size_name(self) -> str:
        """Preset name, or ``NXxNY`` for a custom size."""
        if isinstance(self.size, str):
            return self.size
        return f"{self.geometry.nx}x{self.geometry.ny}"

    @property
    def effective_a00(self) -> float:
        """a00 used for the flats (0 when brighter-fatter is off)."""
        return self.a00 if self.brighter_fatter else 0.0

    def a_matrix(self, detector: int, amp: str) -> np.ndarray:
        """True brighter-fatter matrix (1/e-, ``[serial lag, parallel lag]``) of one amp; 0 without BF."""
        return _a_matrices(self, int(detector))[amp].copy()

    def flat_rate(self, physical_filter: str) -> float:
        """Nominal flat illumination (e-/s per pixel of unit response) in ``physical_filter``."""
        return self.flat_flux * FILTER_FACTORS.get(physical_filter, 1.0)

    def detector(self, detector: int) -> DetectorTruth:
        """Return (and cache) the fixed signatures of ``detector``."""
        return _detector_truth(self, int(detector))

    def _pixel_positions_mm(self, detector: int) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = self.geometry_of(detector).detector_shape
        x0, y0 = self.camera[detector].position_mm
        x = x0 + ((np.arange(cols) + 0.5) / cols - 0.5) * _FULL_DETECTOR_MM[0]
        y = y0 + ((np.arange(rows) + 0.5) / rows - 0.5) * _FULL_DETECTOR_MM[1]
        return x, y

    def _vignetting(self, detector: int) -> np.ndarray:
        """Smooth focal-plane vignetting ``1 - v (r / 100 mm)^2`` over ``detector`` (float32)."""
        x, y = self._pixel_positions_mm(detector)
        r2 = (x[np.newaxis, :] ** 2 + y[:, np.newaxis] ** 2) / _VIGNETTING_RADIUS_MM**2
        return (1.0 - self.vignetting * r2).astype(np.float32)

    def illumination(self, detector: int) -> np.ndarray:
        """Smooth illumination x throughput of ``detector`` (no PRNU, no defects)."""
        return self._vignetting(detector) * np.float32(self.detector(detector).throughput)

    @functools.cached_property
    def mean_response(self) -> float:
        """Mean response over the camera's detectors (flat normalisation)."""
        return float(
            np.mean([self.detector(det).response.mean(dtype=np.float64) for det in self.camera.detector_ids])
        )

    # ------------------------------------------------------------------ raw images

    def make_raw_amps(
        self,
        detector: int,
        exposure_id: int,
        image_type: str,
        exposure_time: float,
        dark_time: float,
        physical_filter: str = "empty",
    ) -> dict[str, np.ndarray]:
        """Make the raw amp arrays (int32 ADU, assembled orientation) of one detector of one image.

        Parameters
        ----------
        detector : `int`
            Detector id.
        exposure_id : `int`
            Exposure id (seeds the noise).
        image_type : `str`
            ``BIAS``, ``DARK``, ``FLAT``...; only ``FLAT`` is illuminated.
        exposure_time : `float`
            Illumination time (s).
        dark_time : `float`
            Dark-current integration time (s).
        physical_filter : `str`
            Filter in the beam (sets the flat level).

        Returns
        -------
        amps : `dict` [`str`, `numpy.ndarray`]
            Raw arrays keyed by amp name, in `AMP_NAMES` order.
        """
        truth = self.detector(detector)
        geom = truth.geometry
        rng = np.random.default_rng([self.seed, 2, int(exposure_id), int(detector)])
        mean_e: np.ndarray = truth.dark_rate * np.float32(max(dark_time, 0.0))
        illuminated = image_type.upper() == "FLAT" and exposure_time > 0
        if illuminated:
            mean_e = mean_e + truth.response * np.float32(self.flat_rate(physical_filter) * exposure_time)
        camera_det = self.camera[detector]
        drift = {a: x for d, a, x in self.gain_drift if d == detector}
        if not illuminated and dark_time <= 0:
            # No charge: Poisson(0) is 0 and draws nothing from the generator, so the signal is the
            # bias structure itself (0 / gain + structure, bit for bit) and the noise that follows
            # is the same as when the zeros are drawn.
            signal_adu = truth.bias_structure
        else:
            if illuminated and self.effective_a00 != 0.0:
                electrons = self._correlated_flat(detector, mean_e, rng)
            else:
                electrons = rng.poisson(mean_e).astype(np.float32)
            np.clip(electrons, 0.0, self.full_well, out=electrons)
            gain_map = truth.gain_map
            if drift:
                gain_map = gain_map.copy()
                for amp_name, factor in drift.items():
                    gain_map[camera_det[amp_name].bbox_slices(geom)] *= np.float32(factor)
            signal_adu = electrons / gain_map + truth.bias_structure

        raw_rows = np.arange(geom.raw_shape[0], dtype=np.float32) / geom.raw_shape[0] - 0.5
        amps: dict[str, np.ndarray] = {}
        for amp_name in AMP_NAMES:
            amp = camera_det[amp_name]
            offset = rng.normal(0.0, self.pedestal_jitter)
            slope = rng.normal(0.0, self.pedestal_row_slope)
            row_level = truth.pedestal[amp_name] + offset + slope * raw_rows
            extra = sum(x**2 for d, a, x in self.noisy_amps if d == detector and a == amp_name)
            gain = truth.gain[amp_name] * drift.get(amp_name, 1.0)
            rn_adu = np.sqrt(truth.read_noise[amp_name] ** 2 + extra) / gain
            raw = rng.standard_normal(geom.raw_shape, dtype=np.float32)
            raw *= np.float32(rn_adu)
            raw += row_level[:, np.newaxis].astype(np.float32)
            raw[geom.data_slice] += signal_adu[amp.bbox_slices(geom)]
            amps[amp_name] = np.rint(raw).astype(np.int32)
        return amps

    def _correlated_flat(self, detector: int, mean_e: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Flat electrons with the brighter-fatter covariances of each amp (see the module docstring)."""
        geom = self.geometry_of(detector)
        matrices = _a_matrices(self, detector)
        electrons = np.empty(mean_e.shape, dtype=np.float32)
        for amp in self.camera[detector]:
            box = amp.bbox_slices(geom)
            level = mean_e[box]
            kernel = bf_noise_kernel(matrices[amp.name], float(np.median(level)))
            half = kernel.shape[0] // 2
            white = rng.standard_normal((level.shape[0] + 2 * half, level.shape[1] + 2 * half))
            # kernel is [dx, dy]; images are [row = y, col = x].
            field = valid_convolution(white, kernel).astype(np.float32)
            electrons[box] = level + np.sqrt(level) * field
        return electrons

    # ------------------------------------------------------------------ references

    def reference_bias(self, detector: int) -> np.ndarray:
        """Overscan-corrected bias (e-): the fixed bias structure times the gain."""
        truth = self.detector(detector)
        return (truth.bias_structure * truth.gain_map).astype(np.float32)

    def reference_dark(self, detector: int) -> np.ndarray:
        """Dark current (e-/s)."""
        return self.detector(detector).dark_rate.copy()

    def reference_flat(self, detector: int, physical_filter: str = "empty") -> np.ndarray:
        """Flat normalised as cp_pipe's focal-plane normalisation does (mean over all detectors = 1).

        The simulated response does not depend on the filter, so every filter gets the same flat.
        """
        return (self.detector(detector).response / np.float32(self.mean_response)).astype(np.float32)

    def reference_defect_mask(self, detector: int) -> np.ndarray:
        """Boolean map of the true defects including the 5-px detector border."""
        truth = self.detector(detector)
        return truth.defect_mask(truth.geometry, instrument=self.instrument)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable description: parameters and every injected defect, per detector."""
        params = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in ("size",)
        }
        params["hot_pixel_rate"] = list(self.hot_pixel_rate)
        detectors = {}
        for det in self.camera.detector_ids:
            truth = self.detector(det)
            detectors[str(det)] = {
                "gain": truth.gain,
                "read_noise": truth.read_noise,
                "pedestal": truth.pedestal,
                "throughput": truth.throughput,
                "hot_pixels": [list(p) for p in truth.hot_pixels],
                "dead_pixels": [list(p) for p in truth.dead_pixels],
                "hot_column": list(truth.hot_column),
                "cold_column": list(truth.cold_column),
                "a00": {amp: float(a[0, 0]) for amp, a in _a_matrices(self, det).items()},
            }
        return {
            "size": self.size if isinstance(self.size, str) else [self.geometry.nx, self.geometry.ny],
            "nx": self.geometry.nx,
            "ny": self.geometry.ny,
            **params,
            "filter_factors": dict(FILTER_FACTORS),
            "bf_a_matrix_range": BF_RANGE,
            "mean_response": self.mean_response,
            "detectors": detectors,
        }


def _pick_defect_positions(
    rng: np.random.Generator, geometry: AmpGeometry, count: int, taken: set[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Pick ``count`` distinct pixels at least `_DEFECT_MARGIN` px from every amp edge."""
    rows, cols = geometry.detector_shape
    margin_x = min(_DEFECT_MARGIN, (geometry.nx - 1) // 2)
    margin_y = min(_DEFECT_MARGIN, (geometry.ny - 1) // 2)
    chosen: list[tuple[int, int]] = []
    while len(chosen) < count:
        x = int(rng.integers(0, cols))
        y = int(rng.integers(0, rows))
        ax, ay = x % geometry.nx, y % geometry.ny
        if not (margin_x <= ax < geometry.nx - margin_x and margin_y <= ay < geometry.ny - margin_y):
            continue
        if (x, y) in taken:
            continue
        taken.add((x, y))
        chosen.append((x, y))
    return chosen


@functools.lru_cache(maxsize=16)
def _a_matrices(model: TruthModel, detector: int) -> dict[str, np.ndarray]:
    """Per-amp brighter-fatter matrices of one detector (zeros when brighter-fatter is off)."""
    names = [amp.name for amp in model.camera[detector]]
    rng = np.random.default_rng([model.seed, 3, detector])
    factors = 1.0 + model.a00_scatter * rng.standard_normal(len(names))
    return {
        name: bf_a_matrix(model.effective_a00 * float(np.clip(factor, 0.5, 1.5)))
        for name, factor in zip(names, factors, strict=True)
    }


@functools.lru_cache(maxsize=16)
def _detector_truth(model: TruthModel, detector: int) -> DetectorTruth:
    """Build the fixed signatures of one detector (cached per model and detector)."""
    geom = model.geometry_of(detector)
    camera_det = model.camera[detector]
    rng = np.random.default_rng([model.seed, 1, detector])
    shape = geom.detector_shape

    gain = {amp.name: amp.gain for amp in camera_det}
    read_noise = {amp.name: amp.read_noise for amp in camera_det}
    gain_map = np.empty(shape, dtype=np.float32)
    bias_structure = np.empty(shape, dtype=np.float32)
    pedestal = {}
    yy = (np.arange(geom.ny, dtype=np.float32) / geom.ny - 0.5)[:, np.newaxis]
    xx = (np.arange(geom.nx, dtype=np.float32) / geom.nx - 0.5)[np.newaxis, :]
    for amp in camera_det:
        box = amp.bbox_slices(geom)
        gain_map[box] = amp.gain
        pedestal[amp.name] = float(model.bias_level + rng.normal(0.0, model.bias_level_scatter))
        row_grad, col_grad = rng.uniform(-model.bias_gradient, model.bias_gradient, size=2)
        bias_structure[box] = row_grad * yy + col_grad * xx

    dark_rate = (model.dark_current * (1.0 + 0.05 * rng.standard_normal(shape))).astype(np.float32)
    npix = shape[0] * shape[1]
    taken: set[tuple[int, int]] = set()
    n_hot = max(3, round(model.hot_pixel_fraction * npix))
    hot_pixels = _pick_defect_positions(rng, geom, n_hot, taken)
    for x, y in hot_pixels:
        dark_rate[y, x] = rng.uniform(*model.hot_pixel_rate)
    n_dead = max(3, round(model.dead_pixel_fraction * npix))
    dead_pixels = _pick_defect_positions(rng, geom, n_dead, taken)

    def pick_column(exclude_amp: str | None) -> tuple[str, int]:
        names = [name for name in AMP_NAMES if name != exclude_amp]
        amp = camera_det[names[int(rng.integers(0, len(names)))]]
        margin = min(_DEFECT_MARGIN, (geom.nx - 1) // 2)
        return amp.name, amp.ix * geom.nx + int(rng.integers(margin, geom.nx - margin))

    hot_column = pick_column(None)
    cold_column = pick_column(hot_column[0])
    hot_rows, _ = camera_det[hot_column[0]].bbox_slices(geom)
    dark_rate[hot_rows, hot_column[1]] = model.hot_column_rate

    throughput = float(1.0 + model.throughput_scatter * rng.standard_normal())
    truth = DetectorTruth(
        detector=detector,
        geometry=geom,
        gain=gain,
        read_noise=read_noise,
        pedestal=pedestal,
        gain_map=gain_map,
        bias_structure=bias_structure,
        dark_rate=dark_rate,
        response=np.empty(0, dtype=np.float32),
        throughput=throughput,
        hot_pixels=hot_pixels,
        dead_pixels=dead_pixels,
        hot_column=hot_column,
        cold_column=cold_column,
    )
    # The illumination needs the throughput, hence the two steps.
    response = model._vignetting(detector) * np.float32(throughput)
    response *= (1.0 + model.prnu * rng.standard_normal(shape)).astype(np.float32)
    for x_pix, y_pix in dead_pixels:
        response[y_pix, x_pix] *= rng.uniform(0.0, 0.3)
    cold_rows, _ = camera_det[cold_column[0]].bbox_slices(geom)
    response[cold_rows, cold_column[1]] *= model.cold_column_response
    truth.response = response
    return truth
