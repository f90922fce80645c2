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

"""The in-memory type of the ``raw`` dataset: the 16 raw amp arrays of one detector plus its header.

The butler stores it with `formatters.RawImageFormatter` (one FITS HDU per amp); the simulated camera
makes it (`sim.raw_writer`) and the numpy ISR reads it. The amp layout is described in `camera`.

May import: the standard library, numpy and `.camera`.
"""

from __future__ import annotations

__all__ = ["RawImage"]

import dataclasses
from typing import Any

import numpy as np

from .camera import AMP_NAMES, RAW_LAYOUTS, AmpGeometry, RawLayout, assemble


@dataclasses.dataclass
class RawImage:
    """Raw pixels of one detector of one exposure.

    Attributes
    ----------
    amps : `dict` [`str`, `numpy.ndarray`]
        Raw amp arrays (ADU, integer) including prescan and overscans, keyed by amp name, each of
        shape ``(ny + 48, 3 + nx + 64)`` in assembled orientation (see `camera`).
    metadata : `dict` [`str`, `typing.Any`]
        Header keywords: ``IMGTYPE``, ``EXPTIME``, ``DARKTIME``, ``FILTER``, ``DETECTOR``,
        ``DET_NAME``, ``OBSID``, ``DATE-OBS``, ... (scalars only).
    """

    amps: dict[str, np.ndarray]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        shapes = {array.shape for array in self.amps.values()}
        if len(shapes) > 1:
            raise ValueError(f"All raw amp arrays must have the same shape; got {sorted(shapes)}.")
        unknown = set(self.amps) - set(AMP_NAMES)
        if unknown:
            raise ValueError(f"Unknown amp names {sorted(unknown)}.")

    @property
    def layout(self) -> RawLayout:
        """Raw layout of the sensor, from the ``CCD_MANU`` header (ITL when absent)."""
        vendor = str(self.metadata.get("CCD_MANU", "ITL")).upper()
        try:
            return RAW_LAYOUTS[vendor]
        except KeyError:
            raise ValueError(f"Unknown CCD_MANU {vendor!r}; expected one of {sorted(RAW_LAYOUTS)}.") from None

    @property
    def geometry(self) -> AmpGeometry:
        """Amp geometry inferred from the raw array shape and the sensor layout."""
        return AmpGeometry.from_raw_shape(next(iter(self.amps.values())).shape, self.layout)

    @property
    def amp_names(self) -> list[str]:
        """Amp names present, in readout order."""
        return [name for name in AMP_NAMES if name in self.amps]

    @property
    def detector(self) -> int | None:
        """Detector id from the metadata (``DETECTOR``), if present."""
        value = self.metadata.get("DETECTOR")
        return None if value is None else int(value)

    def data(self, amp_name: str) -> np.ndarray:
        """Return a view of the data section of one amp."""
        return self.amps[amp_name][self.geometry.data_slice]

    def assembled(self, dtype: np.typing.DTypeLike = np.float32) -> np.ndarray:
        """Return the data sections assembled into a detector image (no overscan correction)."""
        return assemble(self.amps, dtype=dtype, layout=self.layout)
