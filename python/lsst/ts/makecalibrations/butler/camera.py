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

"""Camera geometry of LSSTComCam, LSSTCam and LATISS: detectors, amplifiers, raw amp layouts per
sensor vendor (ITL, e2v), size presets, nominal gains.

`get_camera` (``instrument="LSSTComCam"`` by default) returns the shared `Camera` of an instrument;
the module-level ``DETECTOR_*`` names describe LSSTComCam. Everything that needs to know where pixels
are (the raw writer, the truth model, the numpy ISR and the verification statistics) takes it from
here, so the layout is written down once.

Conventions
-----------
* Detectors 0..8 are ``R22_S00`` .. ``R22_S22`` (ITL sensors); slot ``S{r}{c}`` sits at focal-plane
  position ``x = (c - 1) * 42.25 mm``, ``y = (r - 1) * 42.25 mm``.
* Amplifiers are named ``C00``..``C07`` (bottom row, ``iy = 0``) and ``C10``..``C17`` (top row,
  ``iy = 1``); ``ix`` is the last digit. `AMP_NAMES` is in readout (HDU) order: C10..C17, C07..C00.
* A raw amp array (``RawImage.amps[name]``) has shape ``(ny + 48, 3 + nx + 64)`` and is stored in
  **assembled orientation**: the readout flips have already been applied, so the data section
  ``raw[:ny, 3:3 + nx]`` goes unchanged into the assembled detector at
  ``[iy * ny:(iy + 1) * ny, ix * nx:(ix + 1) * nx]``. The serial prescan is ``raw[:, :3]`` and the
  serial overscan ``raw[:, 3 + nx:]`` (both over all rows, parallel-overscan rows included, as on the
  real sensor); the parallel overscan is ``raw[ny:, 3:3 + nx]``. The flips
  (`Amplifier.flip_x`, `Amplifier.flip_y`) only say where the readout corner is (ITL: C0x flip x,
  C1x flip x and y), which matters for the cp_verify ``AMP_CORNER`` statistic.
* Data sizes: ``full`` is the real ITL amp (509 x 2000); ``default`` and ``tiny`` are scaled-down
  simulations (see `SIZE_PRESETS`). Pipelines infer the size from the raw array shape with
  `AmpGeometry.from_raw_shape`.
* Nominal gains (e-/ADU) and read noise (e-) of LSSTComCam come from the package-data copy of
  obs_lsst's ``comCam/R22.yaml`` (``data/comcam-R22-amplifiers.yaml``); LSSTCam and LATISS use typical
  public values per vendor (`LSSTCAM_NOMINAL`, `LATISS_NOMINAL`), drawn per amp with a fixed seed.
* e2v raws (`E2V_LAYOUT`) have 10 prescan, 54 serial overscan columns and 46 parallel overscan rows;
  every pipeline takes the layout from the `Detector` (`Detector.raw_geometry`). LSSTCam ids,
  names and vendors follow its public focal-plane layout (see `Camera.lsstcam`).

May import: the standard library, numpy and PyYAML.
"""

from __future__ import annotations

__all__ = [
    "AMP_NAMES",
    "CAMERA_NAMES",
    "E2V_LAYOUT",
    "ITL_LAYOUT",
    "LATISS_NOMINAL",
    "LSSTCAM_ITL_RAFTS",
    "LSSTCAM_NOMINAL",
    "RAW_LAYOUTS",
    "AmpNominal",
    "RawLayout",
    "DETECTOR_IDS",
    "DETECTOR_NAMES",
    "DETECTOR_SERIALS",
    "INSTRUMENT_NAME",
    "PARALLEL_OVERSCAN",
    "PIXEL_SIZE_MM",
    "PRESCAN",
    "SATURATION_ADU",
    "SERIAL_OVERSCAN",
    "SIZE_PRESETS",
    "AmpGeometry",
    "Amplifier",
    "Camera",
    "Detector",
    "amp_geometry",
    "assemble",
    "detector_id",
    "get_camera",
]

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import yaml

INSTRUMENT_NAME = "LSSTComCam"
"""Instrument name used in butler data IDs."""

DETECTOR_NAMES: tuple[str, ...] = tuple(f"R22_S{r}{c}" for r in range(3) for c in range(3))
"""Detector full names, indexed by detector id (0..8)."""

DETECTOR_IDS: tuple[int, ...] = tuple(range(len(DETECTOR_NAMES)))
"""Detector ids of LSSTComCam."""

AMP_NAMES: tuple[str, ...] = tuple(f"C1{i}" for i in range(8)) + tuple(f"C0{i}" for i in reversed(range(8)))
"""Amplifier names in readout (raw HDU) order: C10..C17 then C07..C00."""

PRESCAN = 3
"""Serial prescan columns of an ITL raw amp."""

SERIAL_OVERSCAN = 64
"""Serial overscan columns of an ITL raw amp."""

PARALLEL_OVERSCAN = 48
"""Parallel overscan rows of an ITL raw amp."""

PIXEL_SIZE_MM = 0.010
"""Pixel pitch of the real sensors (mm)."""

SATURATION_ADU = 142857
"""obs_lsst placeholder saturation level (ADU)."""

SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "full": (509, 2000),
    "default": (200, 250),
    "tiny": (32, 40),
}
"""Data-section size ``(nx, ny)`` of one amp for each simulation size.

``default`` keeps 5e4 data pixels per amp: the relative error of a single-pair gain is about
``sqrt(2 / N)``, i.e. 0.63% with all pixels and 0.77% with cp_pipe's 20-px amp-edge mask, so every amp
is within ~1% of its true gain from one flat pair, while a 9-detector exposure stays at 11.5 Mpx
(about 1/16 of a real ComCam readout) so the 63-exposure daily run stays fast on 2 cores.
"""

_DATA_DIR = Path(__file__).parent / "data"
_AMPLIFIERS_YAML = _DATA_DIR / "comcam-R22-amplifiers.yaml"
_RAFT_PITCH_MM = 42.25


@dataclasses.dataclass(frozen=True)
class AmpGeometry:
    """Raw layout of one ITL amplifier with a data section of ``nx`` x ``ny`` pixels.

    Attributes
    ----------
    nx : `int`
        Data-section columns (serial direction).
    ny : `int`
        Data-section rows (parallel direction).
    """

    nx: int
    ny: int
    prescan: int = PRESCAN
    serial_overscan: int = SERIAL_OVERSCAN
    parallel_overscan: int = PARALLEL_OVERSCAN

    @classmethod
    def from_raw_shape(cls, shape: tuple[int, ...], layout: RawLayout | None = None) -> AmpGeometry:
        """Infer the geometry from the shape ``(rows, cols)`` of a raw amp array.

        Parameters
        ----------
        shape : `tuple` [`int`, ...]
            Shape of one raw amp array.
        layout : `RawLayout`, optional
            Raw layout of the sensor (`ITL_LAYOUT` if `None`).
        """
        layout = layout or ITL_LAYOUT
        ny = int(shape[0]) - layout.parallel_overscan
        nx = int(shape[1]) - layout.prescan - layout.serial_overscan
        if nx <= 0 or ny <= 0:
            raise ValueError(f"Raw amp shape {tuple(shape)} is too small for the {layout.vendor} layout.")
        return layout.geometry((nx, ny))

    @property
    def raw_shape(self) -> tuple[int, int]:
        """Shape ``(rows, cols)`` of a raw amp array."""
        return (self.ny + self.parallel_overscan, self.prescan + self.nx + self.serial_overscan)

    @property
    def data_shape(self) -> tuple[int, int]:
        """Shape ``(ny, nx)`` of the data section."""
        return (self.ny, self.nx)

    @property
    def detector_shape(self) -> tuple[int, int]:
        """Shape ``(rows, cols)`` of the assembled detector (2 x 8 amps)."""
        return (2 * self.ny, 8 * self.nx)

    @property
    def data_slice(self) -> tuple[slice, slice]:
        """Data section of a raw amp array."""
        return (slice(0, self.ny), slice(self.prescan, self.prescan + self.nx))

    @property
    def prescan_slice(self) -> tuple[slice, slice]:
        """Serial prescan of a raw amp array (all rows)."""
        return (slice(0, self.ny + self.parallel_overscan), slice(0, self.prescan))

    @property
    def serial_overscan_slice(self) -> tuple[slice, slice]:
        """Serial overscan of a raw amp array (all rows, parallel-overscan rows included)."""
        return (
            slice(0, self.ny + self.parallel_overscan),
            slice(self.prescan + self.nx, self.prescan + self.nx + self.serial_overscan),
        )

    @property
    def parallel_overscan_slice(self) -> tuple[slice, slice]:
        """Parallel overscan of a raw amp array (columns of the data section)."""
        return (
            slice(self.ny, self.ny + self.parallel_overscan),
            slice(self.prescan, self.prescan + self.nx),
        )


@dataclasses.dataclass(frozen=True)
class RawLayout:
    """Raw amplifier layout of one sensor type (vendor).

    Attributes
    ----------
    vendor : `str`
        ``ITL`` or ``E2V`` (the ``CCD_MANU`` header value).
    prescan, serial_overscan, parallel_overscan : `int`
        Serial prescan columns, serial overscan columns and parallel overscan rows of a raw amp.
    full_size : `tuple` [`int`, `int`]
        Data section ``(nx, ny)`` of a real amp (the ``full`` size preset).
    flip_x_rows, flip_y_rows : `tuple` [`int`, ...]
        Amp rows (``iy``) read out from high x / high y.
    """

    vendor: str
    prescan: int
    serial_overscan: int
    parallel_overscan: int
    full_size: tuple[int, int]
    flip_x_rows: tuple[int, ...] = (0, 1)
    flip_y_rows: tuple[int, ...] = (1,)

    def geometry(self, size: str | tuple[int, int] | AmpGeometry) -> AmpGeometry:
        """Return the `AmpGeometry` of a size preset name or ``(nx, ny)`` with this layout."""
        if isinstance(size, AmpGeometry):
            nx, ny = size.nx, size.ny
        elif isinstance(size, str):
            if size == "full":
                nx, ny = self.full_size
            else:
                try:
                    nx, ny = SIZE_PRESETS[size]
                except KeyError:
                    raise ValueError(
                        f"Unknown size {size!r}; expected one of {sorted(SIZE_PRESETS)}."
                    ) from None
        else:
            nx, ny = size
        return AmpGeometry(
            nx=int(nx),
            ny=int(ny),
            prescan=self.prescan,
            serial_overscan=self.serial_overscan,
            parallel_overscan=self.parallel_overscan,
        )


ITL_LAYOUT = RawLayout("ITL", PRESCAN, SERIAL_OVERSCAN, PARALLEL_OVERSCAN, (509, 2000))
"""ITL STA3800: 3 prescan + 509 data + 64 overscan columns, 2000 data + 48 overscan rows (576 x 2048,
as obs_lsst's ITL amplifiers); both amp rows read out from high x, the top row from high y."""

E2V_LAYOUT = RawLayout("E2V", 10, 54, 46, (512, 2002), flip_x_rows=(1,), flip_y_rows=(1,))
"""e2v CCD250: 10 prescan + 512 data + 54 overscan columns, 2002 data + 46 overscan rows (also
576 x 2048, as obs_lsst's e2v amplifiers); the top amp row reads out from high x and high y, the bottom
row from its low corner."""

RAW_LAYOUTS: dict[str, RawLayout] = {layout.vendor: layout for layout in (ITL_LAYOUT, E2V_LAYOUT)}
"""Raw layouts by vendor (``CCD_MANU``)."""


def amp_geometry(size: str | tuple[int, int] | AmpGeometry, layout: RawLayout | None = None) -> AmpGeometry:
    """Return the `AmpGeometry` of a size preset name, an ``(nx, ny)`` tuple or a geometry.

    Parameters
    ----------
    size : `str`, `tuple` [`int`, `int`] or `AmpGeometry`
        Size preset, data section ``(nx, ny)`` or a geometry (returned unchanged without ``layout``).
    layout : `RawLayout`, optional
        Raw layout of the sensor (`ITL_LAYOUT` if `None`).
    """
    if isinstance(size, AmpGeometry) and layout is None:
        return size
    return (layout or ITL_LAYOUT).geometry(size)


@dataclasses.dataclass(frozen=True)
class Amplifier:
    """One amplifier of an ITL detector.

    Attributes
    ----------
    name : `str`
        ``Cyx`` name (e.g. ``C10``).
    ix, iy : `int`
        Position of the amp in the assembled 8 x 2 grid.
    gain : `float`
        Nominal gain (e-/ADU).
    read_noise : `float`
        Nominal read noise (e-).
    flip_x, flip_y : `bool`
        Readout flips (readout corner at high x / high y of the amp box when True).
    """

    name: str
    ix: int
    iy: int
    gain: float
    read_noise: float
    flip_x: bool
    flip_y: bool

    def bbox_slices(self, geometry: AmpGeometry) -> tuple[slice, slice]:
        """Slices ``(rows, cols)`` of this amp in the assembled detector array."""
        return (
            slice(self.iy * geometry.ny, (self.iy + 1) * geometry.ny),
            slice(self.ix * geometry.nx, (self.ix + 1) * geometry.nx),
        )

    def corner_slices(self, geometry: AmpGeometry, size: int = 200) -> tuple[slice, slice]:
        """Slices of the ``size`` x ``size`` box at the readout corner, in assembled coordinates.

        The box is clipped to the amp, as for the cp_verify ``AMP_CORNER`` statistic.
        """
        rows, cols = self.bbox_slices(geometry)
        sy, sx = min(size, geometry.ny), min(size, geometry.nx)
        row_slice = slice(rows.stop - sy, rows.stop) if self.flip_y else slice(rows.start, rows.start + sy)
        col_slice = slice(cols.stop - sx, cols.stop) if self.flip_x else slice(cols.start, cols.start + sx)
        return (row_slice, col_slice)


@dataclasses.dataclass(frozen=True)
class Detector:
    """One detector of a camera.

    Attributes
    ----------
    id : `int`
        Detector id (the butler ``detector`` value).
    name : `str`
        Full name, ``Rxy_Sxy``.
    serial : `str`
        Sensor serial number.
    amplifiers : `tuple` [`Amplifier`, ...]
        Amplifiers in `AMP_NAMES` order.
    layout : `RawLayout`
        Raw amplifier layout of the sensor type.
    center_mm : `tuple` [`float`, `float`]
        Focal-plane position ``(x, y)`` of the detector centre (mm).
    """

    id: int
    name: str
    serial: str
    amplifiers: tuple[Amplifier, ...]
    layout: RawLayout = ITL_LAYOUT
    center_mm: tuple[float, float] = (0.0, 0.0)

    def __iter__(self) -> Iterator[Amplifier]:
        return iter(self.amplifiers)

    def __getitem__(self, amp_name: str) -> Amplifier:
        for amp in self.amplifiers:
            if amp.name == amp_name:
                return amp
        raise KeyError(f"No amplifier {amp_name!r} on {self.name}.")

    @property
    def amp_names(self) -> list[str]:
        """Amplifier names in readout order."""
        return [amp.name for amp in self.amplifiers]

    @property
    def gains(self) -> dict[str, float]:
        """Nominal gain per amp (e-/ADU)."""
        return {amp.name: amp.gain for amp in self.amplifiers}

    @property
    def read_noises(self) -> dict[str, float]:
        """Nominal read noise per amp (e-)."""
        return {amp.name: amp.read_noise for amp in self.amplifiers}

    @property
    def slot(self) -> str:
        """Sensor slot within the raft (``Sxy``)."""
        return self.name.split("_")[1]

    @property
    def raft(self) -> str:
        """Raft name (``Rxy``)."""
        return self.name.split("_")[0]

    @property
    def vendor(self) -> str:
        """Sensor vendor (``ITL`` or ``E2V``)."""
        return self.layout.vendor

    @property
    def position_mm(self) -> tuple[float, float]:
        """Focal-plane position ``(x, y)`` of the detector centre (mm)."""
        return self.center_mm

    def geometry(self, size: str | tuple[int, int] | AmpGeometry) -> AmpGeometry:
        """Amp geometry of this detector's raws at ``size`` (preset, ``(nx, ny)`` or geometry)."""
        return self.layout.geometry(size)

    def raw_geometry(self, raw_shape: tuple[int, ...]) -> AmpGeometry:
        """Amp geometry inferred from the shape of one of this detector's raw amp arrays."""
        return AmpGeometry.from_raw_shape(raw_shape, self.layout)


@dataclasses.dataclass(frozen=True)
class AmpNominal:
    """Typical amplifier values of one sensor type, for cameras without a per-amp table.

    Attributes
    ----------
    gain, gain_scatter : `float`
        Typical gain (e-/ADU) and its relative amp-to-amp scatter.
    read_noise, read_noise_scatter : `float`
        Typical read noise (e-) and its relative scatter.
    """

    gain: float
    gain_scatter: float
    read_noise: float
    read_noise_scatter: float


LSSTCAM_NOMINAL: dict[str, AmpNominal] = {
    "ITL": AmpNominal(gain=1.7, gain_scatter=0.04, read_noise=6.0, read_noise_scatter=0.1),
    "E2V": AmpNominal(gain=1.5, gain_scatter=0.04, read_noise=6.5, read_noise_scatter=0.1),
}
"""Typical LSSTCam amplifier values by vendor: ITL ~1.7 e-/ADU and ~6 e-, e2v ~1.5 e-/ADU and ~6.5 e-,
rounded from the public LSSTCam electro-optical test results summarised in the LSSTCam papers and
technotes (e.g. Roodman et al. 2024, SPIE 13096; DMTN/SITCOMTN camera characterisation pages). The
simulation draws each amp around these with the given relative scatter (seeded by the detector id)."""

LATISS_NOMINAL = AmpNominal(gain=1.1, gain_scatter=0.03, read_noise=7.0, read_noise_scatter=0.1)
"""Typical LATISS (one ITL STA3800 sensor) amplifier values, ~1.1 e-/ADU and ~7 e-, rounded from the
public AuxTel/LATISS commissioning technotes (e.g. SITCOMTN-037 era characterisation); approximate."""


def _amplifiers(layout: RawLayout, gains: Mapping[str, float], noises: Mapping[str, float]) -> tuple:
    """The 16 amplifiers of a sensor with ``layout``, with the given gains and read noises."""
    amps = []
    for amp_name in AMP_NAMES:
        iy, ix = int(amp_name[1]), int(amp_name[2])
        amps.append(
            Amplifier(
                name=amp_name,
                ix=ix,
                iy=iy,
                gain=float(gains[amp_name]),
                read_noise=float(noises[amp_name]),
                flip_x=iy in layout.flip_x_rows,
                flip_y=iy in layout.flip_y_rows,
            )
        )
    return tuple(amps)


def _drawn_amplifiers(det_id: int, layout: RawLayout, nominal: AmpNominal, seed: int) -> tuple:
    """Amplifiers with gains and noises drawn around ``nominal`` (deterministic in ``det_id``)."""
    rng = np.random.default_rng([seed, det_id])
    gain_factors = 1.0 + nominal.gain_scatter * rng.standard_normal(len(AMP_NAMES))
    noise_factors = 1.0 + nominal.read_noise_scatter * rng.standard_normal(len(AMP_NAMES))
    gains = dict(zip(AMP_NAMES, nominal.gain * gain_factors, strict=True))
    noises = dict(zip(AMP_NAMES, nominal.read_noise * noise_factors, strict=True))
    return _amplifiers(
        layout, {k: round(v, 4) for k, v in gains.items()}, {k: round(v, 2) for k, v in noises.items()}
    )


def _slot_offset_mm(slot: str) -> tuple[float, float]:
    """Position of slot ``Sxy`` relative to its raft centre (mm)."""
    row, col = int(slot[1]), int(slot[2])
    return ((col - 1) * _RAFT_PITCH_MM, (row - 1) * _RAFT_PITCH_MM)


class Camera:
    """The detectors of one instrument with their nominal amplifier parameters.

    Use `get_camera` to get the shared instance of an instrument.

    Parameters
    ----------
    detectors : `list` [`Detector`]
        Detectors ordered by id.
    name : `str`, optional
        Instrument name.
    """

    def __init__(self, detectors: list[Detector], name: str = INSTRUMENT_NAME) -> None:
        self._detectors = tuple(detectors)
        self.name = name
        self._by_id = {det.id: det for det in self._detectors}
        self._by_name = {det.name: det for det in self._detectors}

    @classmethod
    def from_yaml(cls, path: Path = _AMPLIFIERS_YAML) -> Camera:
        """Read the LSSTComCam raft description (obs_lsst ``R22.yaml`` layout)."""
        with open(path) as stream:
            raft = yaml.safe_load(stream)["R22"]
        detectors = []
        for det_id, full_name in enumerate(DETECTOR_NAMES):
            slot = full_name.split("_")[1]
            amp_params = raft["amplifiers"][slot]
            amps = _amplifiers(
                ITL_LAYOUT,
                {name: amp_params[name]["gain"] for name in AMP_NAMES},
                {name: amp_params[name]["readNoise"] for name in AMP_NAMES},
            )
            detectors.append(
                Detector(
                    id=det_id,
                    name=full_name,
                    serial=raft["ccdSerials"][slot],
                    amplifiers=amps,
                    center_mm=_slot_offset_mm(slot),
                )
            )
        return cls(detectors, INSTRUMENT_NAME)

    @classmethod
    def lsstcam(cls) -> Camera:
        """LSSTCam: the 189 science detectors (ids 0..188, rafts R01..R43 without the corners).

        Detector ``id = 9 * raft_index + 3 * row + col`` over the 21 science rafts in name order, as
        obs_lsst numbers them (R22_S11 = 94). ITL rafts: R01, R02, R03, R10, R20, R41, R42, R43; the
        other 13 rafts are e2v (public LSSTCam focal-plane layout).
        """
        rafts = [f"R{x}{y}" for x in range(5) for y in range(5) if (x, y) not in _CORNERS]
        detectors = []
        for raft_index, raft in enumerate(rafts):
            layout = ITL_LAYOUT if raft in LSSTCAM_ITL_RAFTS else E2V_LAYOUT
            rx, ry = int(raft[1]), int(raft[2])
            for slot_index in range(9):
                slot = f"S{slot_index // 3}{slot_index % 3}"
                det_id = 9 * raft_index + slot_index
                dx, dy = _slot_offset_mm(slot)
                detectors.append(
                    Detector(
                        id=det_id,
                        name=f"{raft}_{slot}",
                        serial=f"{layout.vendor}-SIM-{det_id:03d}",
                        amplifiers=_drawn_amplifiers(det_id, layout, LSSTCAM_NOMINAL[layout.vendor], 189),
                        layout=layout,
                        center_mm=(
                            (ry - 2) * _FOCAL_PLANE_RAFT_PITCH_MM + dx,
                            (rx - 2) * _FOCAL_PLANE_RAFT_PITCH_MM + dy,
                        ),
                    )
                )
        return cls(detectors, "LSSTCam")

    @classmethod
    def latiss(cls) -> Camera:
        """LATISS: one ITL detector, ``RXX_S00`` (id 0)."""
        detector = Detector(
            id=0,
            name="RXX_S00",
            serial="ITL-SIM-LATISS",
            amplifiers=_drawn_amplifiers(0, ITL_LAYOUT, LATISS_NOMINAL, 1),
        )
        return cls([detector], "LATISS")

    def __iter__(self) -> Iterator[Detector]:
        return iter(self._detectors)

    def __len__(self) -> int:
        return len(self._detectors)

    def __getitem__(self, key: int | str) -> Detector:
        return self._by_id[self.detector_id(key)]

    @property
    def detector_ids(self) -> tuple[int, ...]:
        """Detector ids in order."""
        return tuple(self._by_id)

    @property
    def detector_names(self) -> tuple[str, ...]:
        """Detector full names in id order."""
        return tuple(det.name for det in self._detectors)

    def detector_id(self, key: int | str) -> int:
        """Return the detector id for an id or a full name such as ``R22_S01``."""
        if isinstance(key, str):
            try:
                return self._by_name[key].id
            except KeyError:
                raise KeyError(
                    f"Unknown {self.name} detector {key!r}; expected one of {self.detector_names}."
                ) from None
        key = int(key)
        if key not in self._by_id:
            raise KeyError(
                f"Unknown {self.name} detector id {key}; expected {min(self._by_id)}..{max(self._by_id)}."
            )
        return key


_CORNERS = {(0, 0), (0, 4), (4, 0), (4, 4)}
_FOCAL_PLANE_RAFT_PITCH_MM = 127.0

LSSTCAM_ITL_RAFTS = ("R01", "R02", "R03", "R10", "R20", "R41", "R42", "R43")
"""LSSTCam science rafts with ITL sensors; the other 13 have e2v sensors."""

_CAMERA_FACTORIES = {
    INSTRUMENT_NAME: Camera.from_yaml,
    "LSSTCam": Camera.lsstcam,
    "LATISS": Camera.latiss,
}

CAMERA_NAMES: tuple[str, ...] = tuple(_CAMERA_FACTORIES)
"""Instruments with a camera description."""


def get_camera(instrument: str = INSTRUMENT_NAME) -> Camera:
    """Return the shared `Camera` of ``instrument`` (LSSTComCam by default).

    Raises
    ------
    KeyError
        For an instrument without a camera description.
    """
    # One cache key per instrument: ``get_camera()`` and ``get_camera("LSSTComCam")`` share the
    # camera (a cache on this function would read the raft YAML once for each spelling).
    return _camera(str(instrument))


@functools.cache
def _camera(instrument: str) -> Camera:
    try:
        factory = _CAMERA_FACTORIES[instrument]
    except KeyError:
        raise KeyError(
            f"No camera description for instrument {instrument!r}; known: {CAMERA_NAMES}."
        ) from None
    return factory()


DETECTOR_SERIALS: tuple[str, ...] = tuple(det.serial for det in get_camera())
"""LSSTComCam sensor serial numbers indexed by detector id."""


def detector_id(key: int | str) -> int:
    """Return the LSSTComCam detector id for an id or a full name such as ``R22_S01``."""
    return get_camera().detector_id(key)


def assemble(
    amps: Mapping[str, np.ndarray],
    dtype: np.typing.DTypeLike = np.float32,
    layout: RawLayout | None = None,
) -> np.ndarray:
    """Assemble the data sections of raw amp arrays into a detector image.

    Parameters
    ----------
    amps : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Raw amp arrays (with prescan/overscan) keyed by amp name, in assembled orientation.
    dtype : `numpy.dtype`, optional
        Output dtype.
    layout : `RawLayout`, optional
        Raw layout of the sensor (`ITL_LAYOUT` if `None`).

    Returns
    -------
    image : `numpy.ndarray`
        Detector image of shape ``(2 * ny, 8 * nx)``; no overscan correction is applied.
    """
    first = next(iter(amps.values()))
    geometry = AmpGeometry.from_raw_shape(first.shape, layout)
    out = np.empty(geometry.detector_shape, dtype=dtype)
    detector = get_camera()[0]
    for name, array in amps.items():
        out[detector[name].bbox_slices(geometry)] = array[geometry.data_slice]
    return out
