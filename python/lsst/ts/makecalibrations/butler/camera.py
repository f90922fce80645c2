"""LSSTComCam camera geometry: detectors, amplifiers, raw amp layout, size presets, nominal gains.

Everything that needs to know where pixels are (the raw writer, the truth model, the numpy ISR and the
verification statistics) takes it from here, so the layout is written down once.

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
* Nominal gains (e-/ADU) and read noise (e-) come from the package-data copy of obs_lsst's
  ``comCam/R22.yaml`` (``data/comcam-R22-amplifiers.yaml``).

May import: the standard library, numpy and PyYAML.
"""

from __future__ import annotations

__all__ = [
    "AMP_NAMES",
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

    @classmethod
    def from_raw_shape(cls, shape: tuple[int, ...]) -> AmpGeometry:
        """Infer the geometry from the shape ``(rows, cols)`` of a raw amp array."""
        ny = int(shape[0]) - PARALLEL_OVERSCAN
        nx = int(shape[1]) - PRESCAN - SERIAL_OVERSCAN
        if nx <= 0 or ny <= 0:
            raise ValueError(f"Raw amp shape {tuple(shape)} is too small for the ITL layout.")
        return cls(nx=nx, ny=ny)

    @property
    def raw_shape(self) -> tuple[int, int]:
        """Shape ``(rows, cols)`` of a raw amp array."""
        return (self.ny + PARALLEL_OVERSCAN, PRESCAN + self.nx + SERIAL_OVERSCAN)

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
        return (slice(0, self.ny), slice(PRESCAN, PRESCAN + self.nx))

    @property
    def prescan_slice(self) -> tuple[slice, slice]:
        """Serial prescan of a raw amp array (all rows)."""
        return (slice(0, self.ny + PARALLEL_OVERSCAN), slice(0, PRESCAN))

    @property
    def serial_overscan_slice(self) -> tuple[slice, slice]:
        """Serial overscan of a raw amp array (all rows, parallel-overscan rows included)."""
        return (
            slice(0, self.ny + PARALLEL_OVERSCAN),
            slice(PRESCAN + self.nx, PRESCAN + self.nx + SERIAL_OVERSCAN),
        )

    @property
    def parallel_overscan_slice(self) -> tuple[slice, slice]:
        """Parallel overscan of a raw amp array (columns of the data section)."""
        return (slice(self.ny, self.ny + PARALLEL_OVERSCAN), slice(PRESCAN, PRESCAN + self.nx))

    @property
    def n_data_pixels(self) -> int:
        """Number of data pixels per amp."""
        return self.nx * self.ny


def amp_geometry(size: str | tuple[int, int] | AmpGeometry) -> AmpGeometry:
    """Return the `AmpGeometry` of a size preset name, an ``(nx, ny)`` tuple or a geometry."""
    if isinstance(size, AmpGeometry):
        return size
    if isinstance(size, str):
        try:
            nx, ny = SIZE_PRESETS[size]
        except KeyError:
            raise ValueError(f"Unknown size {size!r}; expected one of {sorted(SIZE_PRESETS)}.") from None
        return AmpGeometry(nx=nx, ny=ny)
    nx, ny = size
    return AmpGeometry(nx=int(nx), ny=int(ny))


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
    """One LSSTComCam detector.

    Attributes
    ----------
    id : `int`
        Detector id (0..8).
    name : `str`
        Full name, ``R22_Sxy``.
    serial : `str`
        Sensor serial number.
    amplifiers : `tuple` [`Amplifier`, ...]
        Amplifiers in `AMP_NAMES` order.
    """

    id: int
    name: str
    serial: str
    amplifiers: tuple[Amplifier, ...]

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
    def position_mm(self) -> tuple[float, float]:
        """Focal-plane position ``(x, y)`` of the detector centre (mm)."""
        row, col = int(self.slot[1]), int(self.slot[2])
        return ((col - 1) * _RAFT_PITCH_MM, (row - 1) * _RAFT_PITCH_MM)


class Camera:
    """The nine LSSTComCam detectors with their nominal amplifier parameters.

    Use `get_camera` to get the shared instance.

    Parameters
    ----------
    detectors : `list` [`Detector`]
        Detectors ordered by id.
    """

    def __init__(self, detectors: list[Detector]) -> None:
        self._detectors = tuple(detectors)

    @classmethod
    def from_yaml(cls, path: Path = _AMPLIFIERS_YAML) -> Camera:
        """Read the raft description (obs_lsst ``R22.yaml`` layout)."""
        with open(path) as stream:
            raft = yaml.safe_load(stream)["R22"]
        detectors = []
        for det_id, full_name in enumerate(DETECTOR_NAMES):
            slot = full_name.split("_")[1]
            amp_params = raft["amplifiers"][slot]
            amps = []
            for amp_name in AMP_NAMES:
                iy, ix = int(amp_name[1]), int(amp_name[2])
                params = amp_params[amp_name]
                amps.append(
                    Amplifier(
                        name=amp_name,
                        ix=ix,
                        iy=iy,
                        gain=float(params["gain"]),
                        read_noise=float(params["readNoise"]),
                        flip_x=True,
                        flip_y=iy == 1,
                    )
                )
            detectors.append(
                Detector(id=det_id, name=full_name, serial=raft["ccdSerials"][slot], amplifiers=tuple(amps))
            )
        return cls(detectors)

    def __iter__(self) -> Iterator[Detector]:
        return iter(self._detectors)

    def __len__(self) -> int:
        return len(self._detectors)

    def __getitem__(self, key: int | str) -> Detector:
        return self._detectors[detector_id(key)]

    @property
    def detector_type(self) -> str:
        """Sensor vendor of every detector."""
        return "ITL"


@functools.cache
def get_camera() -> Camera:
    """Return the shared `Camera` built from the package-data amplifier table."""
    return Camera.from_yaml()


DETECTOR_SERIALS: tuple[str, ...] = tuple(det.serial for det in get_camera())
"""Sensor serial numbers indexed by detector id."""


def detector_id(key: int | str) -> int:
    """Return the detector id for an id or a full name such as ``R22_S01``."""
    if isinstance(key, str):
        try:
            return DETECTOR_NAMES.index(key)
        except ValueError:
            raise KeyError(f"Unknown detector {key!r}; expected one of {DETECTOR_NAMES}.") from None
    key = int(key)
    if key not in DETECTOR_IDS:
        raise KeyError(f"Unknown detector id {key}; expected 0..{len(DETECTOR_IDS) - 1}.")
    return key


def assemble(amps: Mapping[str, np.ndarray], dtype: np.typing.DTypeLike = np.float32) -> np.ndarray:
    """Assemble the data sections of raw amp arrays into a detector image.

    Parameters
    ----------
    amps : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Raw amp arrays (with prescan/overscan) keyed by amp name, in assembled orientation.
    dtype : `numpy.dtype`, optional
        Output dtype.

    Returns
    -------
    image : `numpy.ndarray`
        Detector image of shape ``(2 * ny, 8 * nx)``; no overscan correction is applied.
    """
    first = next(iter(amps.values()))
    geometry = AmpGeometry.from_raw_shape(first.shape)
    out = np.empty(geometry.detector_shape, dtype=dtype)
    detector = get_camera()[0]
    for name, array in amps.items():
        out[detector[name].bbox_slices(geometry)] = array[geometry.data_slice]
    return out
