"""The ``LSSTComCam`` instrument class for the butler and pipetask, without obs_lsst.

`LsstComCam` registers the instrument, its nine detectors (ids 0..8 = ``R22_S00``..``R22_S22``) and its
physical filters. Its full class name is stored in the ``instrument`` dimension record
(``class_name``), so ``Instrument.fromName`` and pipelines (``instrument:
lsst.ts.makecalibrations.butler.instrument.LsstComCam``) can import it.

May import: lsst.daf.butler, lsst.pipe.base, lsst.utils and `.camera` / `.formatters`.
"""

from __future__ import annotations

__all__ = ["PHYSICAL_FILTERS", "LsstComCam"]

from typing import Any

from lsst.daf.butler import DataId, Formatter, FormatterV2
from lsst.pipe.base import Instrument
from lsst.utils.introspection import get_full_type_name

from .camera import DETECTOR_NAMES, INSTRUMENT_NAME, get_camera

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


class LsstComCam(Instrument):
    """LSSTComCam: one ITL raft (R22) of nine detectors."""

    filterDefinitions: Any = None

    @classmethod
    def getName(cls) -> str:
        return INSTRUMENT_NAME

    def register(self, registry: Any, *, update: bool = False) -> None:
        """Insert the instrument, detector and physical_filter records (idempotent)."""
        camera = get_camera()
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {
                    "name": INSTRUMENT_NAME,
                    "detector_max": len(DETECTOR_NAMES),
                    "visit_max": 2**33,
                    "exposure_max": 2**33,
                    "visit_system": 0,
                    "class_name": get_full_type_name(self),
                },
                update=update,
            )
            for detector in camera:
                raft, slot = detector.name.split("_")
                registry.syncDimensionData(
                    "detector",
                    {
                        "instrument": INSTRUMENT_NAME,
                        "id": detector.id,
                        "full_name": detector.name,
                        "name_in_raft": slot,
                        "raft": raft,
                        "purpose": "SCIENCE",
                    },
                    update=update,
                )
            for physical_filter, band in PHYSICAL_FILTERS.items():
                registry.syncDimensionData(
                    "physical_filter",
                    {"instrument": INSTRUMENT_NAME, "name": physical_filter, "band": band},
                    update=update,
                )

    def getRawFormatter(self, dataId: DataId) -> type[Formatter | FormatterV2]:
        from .formatters import RawImageFormatter

        return RawImageFormatter
