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

"""The instrument classes for the butler and pipetask, without obs_lsst: `LsstComCam`, `LsstCam`, `Latiss`.

Each registers its instrument, detectors (from `camera.get_camera`) and physical filters. Its full class
name is stored in the ``instrument`` dimension record (``class_name``), so ``Instrument.fromName`` and
pipelines (``instrument: lsst.ts.makecalibrations.butler.instrument.LsstCam``) can import it. What
differs per camera is data: the name and the physical filters (`INSTRUMENT_FILTERS`).

May import: lsst.daf.butler, lsst.pipe.base, lsst.utils and `.camera` / `.formatters`.
"""

from __future__ import annotations

__all__ = [
    "INSTRUMENT_CLASSES",
    "INSTRUMENT_FILTERS",
    "LATISS_FILTERS",
    "LATISS_GRATINGS",
    "LSSTCAM_FILTERS",
    "PHYSICAL_FILTERS",
    "Latiss",
    "LsstCam",
    "LsstComCam",
    "instrument_class_name",
]

from typing import Any, ClassVar

from lsst.daf.butler import DataId, Formatter, FormatterV2
from lsst.pipe.base import Instrument
from lsst.utils.introspection import get_full_type_name

from .camera import INSTRUMENT_NAME, get_camera

PHYSICAL_FILTERS: dict[str, str] = {
    "u_02": "u",
    "g_01": "g",
    "r_03": "r",
    "i_06": "i",
    "z_03": "z",
    "y_04": "y",
    "empty": "white",
    "unknown": "unknown",
}
"""Physical filter name → band for LSSTComCam."""

LSSTCAM_FILTERS: dict[str, str] = {
    "u_24": "u",
    "g_6": "g",
    "r_57": "r",
    "i_39": "i",
    "z_20": "z",
    "y_10": "y",
    "empty": "white",
    "unknown": "unknown",
}
"""Physical filter name → band for LSSTCam (the names of its six filters in the public data releases)."""

LATISS_GRATINGS: tuple[str, ...] = ("empty", "holo4_003", "blue300lpmm_qn1")
"""LATISS dispersers (the ``grating`` part of a physical filter ``filter~grating``)."""

_LATISS_BANDS = {"empty": "white", "SDSSg_65mm": "g", "SDSSr_65mm": "r", "SDSSi_65mm": "i", "SDSSz_65mm": "z"}

LATISS_FILTERS: dict[str, str] = {
    f"{name}~{grating}": band for name, band in _LATISS_BANDS.items() for grating in LATISS_GRATINGS
} | {"unknown": "unknown"}
"""Physical filter ``filter~grating`` → band for LATISS (filters in the spectrograph's filter wheel); the
same names as ``calib.instrument.LATISS.physical_filter`` (not imported here: ``calib`` would add its
imports to every pipetask process; ``tests/butler`` checks that they agree)."""


class _Instrument(Instrument):
    """A camera of this package: name, detectors from `camera.get_camera`, physical filters."""

    filterDefinitions: Any = None
    instrument_name: ClassVar[str] = INSTRUMENT_NAME
    physical_filters: ClassVar[dict[str, str]] = PHYSICAL_FILTERS

    @classmethod
    def getName(cls) -> str:
        return cls.instrument_name

    def register(self, registry: Any, *, update: bool = False) -> None:
        """Insert the instrument, detector and physical_filter records (idempotent)."""
        name = self.instrument_name
        camera = get_camera(name)
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {
                    "name": name,
                    "detector_max": max(camera.detector_ids) + 1,
                    "visit_max": 2**33,
                    "exposure_max": 2**33,
                    "visit_system": 0,
                    "class_name": get_full_type_name(self),
                },
                update=update,
            )
            # One insert for all detectors (189 for LSSTCam), not one sync per record.
            registry.insertDimensionData(
                "detector",
                *[
                    {
                        "instrument": name,
                        "id": detector.id,
                        "full_name": detector.name,
                        "name_in_raft": detector.slot,
                        "raft": detector.raft,
                        "purpose": "SCIENCE",
                    }
                    for detector in camera
                ],
                replace=update,
                skip_existing=not update,
            )
            for physical_filter, band in self.physical_filters.items():
                registry.syncDimensionData(
                    "physical_filter",
                    {"instrument": name, "name": physical_filter, "band": band},
                    update=update,
                )

    def getRawFormatter(self, dataId: DataId) -> type[Formatter | FormatterV2]:
        from .formatters import RawImageFormatter

        return RawImageFormatter


class LsstComCam(_Instrument):
    """LSSTComCam: one ITL raft (R22) of nine detectors."""

    instrument_name = INSTRUMENT_NAME
    physical_filters = PHYSICAL_FILTERS


class LsstCam(_Instrument):
    """LSSTCam: 189 science detectors (ITL and e2v)."""

    instrument_name = "LSSTCam"
    physical_filters = LSSTCAM_FILTERS


class Latiss(_Instrument):
    """LATISS: one ITL detector behind the AuxTel spectrograph (filter and grating)."""

    instrument_name = "LATISS"
    physical_filters = LATISS_FILTERS


INSTRUMENT_CLASSES: dict[str, type[_Instrument]] = {
    cls.instrument_name: cls for cls in (LsstComCam, LsstCam, Latiss)
}
"""Instrument classes by instrument name."""

INSTRUMENT_FILTERS: dict[str, dict[str, str]] = {
    name: cls.physical_filters for name, cls in INSTRUMENT_CLASSES.items()
}
"""Physical filters (→ band) by instrument name."""


def instrument_class_name(instrument: str) -> str:
    """Full class name of ``instrument``'s class, as pipeline YAMLs name it."""
    return get_full_type_name(INSTRUMENT_CLASSES[instrument])
