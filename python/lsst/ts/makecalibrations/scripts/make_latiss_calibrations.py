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

"""`MakeLatissCalibrations`: the LATISS calibration script loaded from the ATQueue as
``auxtel/make_latiss_calibrations.py``.

Only camera facts differ from `BaseMakeCalibrations`: instrument LATISS (`calib.instrument.LATISS`: one
detector, OCPS:1, the ``LATISS`` pipeline directories, defaults ``LATISS/calib``,
``LATISS/calib/daily``, ``/repo/LATISS``, the ``grating`` key), the ``LATISS`` client (ATCamera,
ATSpectrograph, ATHeaderService, ATOODS), and two hooks: the instrument setup before the images sets
the filter and the grating, and the flats' physical filter (for the certification-conflict check) is
``filter~grating``.

May import: `sal`, `calib` and the sibling modules.
"""

from __future__ import annotations

__all__ = ["MakeLatissCalibrations"]

import contextlib
from typing import Any, cast

from ..calib.config import CalibConfig
from ..calib.instrument import LATISS as LATISS_SPEC
from ..control.clients import LATISS, LATISSUsages
from .base_make_calibrations import BaseMakeCalibrations


class MakeLatissCalibrations(BaseMakeCalibrations):
    """Take LATISS biases, darks and flats and have OCPS:1 make, verify and certify calibrations."""

    instrument = LATISS_SPEC
    camera_client = LATISS
    camera_usage = LATISSUsages.TakeImage
    setup_help = "Sets the filter and the grating."

    def instrument_setup(self, cfg: CalibConfig) -> dict[str, Any]:
        """The filter and the grating."""
        return super().instrument_setup(cfg) | {"grating": cfg.extras.get("grating")}

    async def flat_physical_filter(self, cfg: CalibConfig) -> str | None:
        """``filter~grating`` of the flats, the spectrograph's current one for a part left unchanged."""
        setup = self.instrument_setup(cfg)
        if setup["filter"] is None or setup["grating"] is None:
            with contextlib.suppress(Exception):
                # (filter, grating[, linear stage]): ``LATISS.get_setup``.
                now = await cast(Any, self.camera).get_setup()
                filter_now, grating_now = now[0], now[1]
                setup["filter"] = filter_now if setup["filter"] is None else setup["filter"]
                setup["grating"] = grating_now if setup["grating"] is None else setup["grating"]
        return self.instrument.physical_filter_of(setup)
