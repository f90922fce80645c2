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

"""What the calibration logic needs to know about a camera: its name, detectors, OCPS index, schema.

`BaseMakeCalibrations` is reusable for any camera; the camera-specific facts it and the pure
`calib` modules need are gathered in one frozen `InstrumentSpec`: `COMCAM` (LSSTComCam),
`LSSTCAM` (LSSTCam) and `LATISS` (LATISS). What differs between the three scripts' configurations is
data here too: the schema title/description, the defaults that differ from the base schema
(collections, repo) and the keys only one camera has (LATISS ``grating``, LSSTCam ``ignore``).

May import: the standard library only.
"""

from __future__ import annotations

__all__ = ["InstrumentSpec", "COMCAM", "LATISS", "LSSTCAM", "INSTRUMENTS", "instrument_spec"]

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class InstrumentSpec:
    """Camera facts used to validate a configuration, plan a run and build OCPS jobs.

    Attributes
    ----------
    name : `str`
        Butler instrument name, used in the data queries (``LSSTComCam``).
    detector_ids : `tuple` [`int`, ...]
        Every detector of the camera; an empty ``detectors`` configuration means all of them.
    ocps_index : `int`
        SAL index of the OCPS that serves this camera.
    read_out_time : `float`
        Readout time of one image (s), used to estimate durations.
    min_exptime : `float`
        Shortest exposure time (s) of a shutter-open image (flat).
    script : `str`
        ScriptQueue path of the script (``maintel/make_comcam_calibrations.py``).
    schema_title : `str`
        Title of the configuration schema.
    schema_description : `str`
        Description of the configuration schema.
    schema_defaults : `~collections.abc.Mapping` [`str`, `typing.Any`]
        Defaults that differ from the base schema (``calib/schema.yaml``, written for LSSTComCam).
    schema_properties : `~collections.abc.Mapping` [`str`, `~collections.abc.Mapping`]
        Configuration keys only this camera has (JSON schema of each).
    physical_filter_format : `str`
        How the butler ``physical_filter`` of an image is made from the ``filter`` (and ``grating``)
        in the beam: ``{filter}``, LATISS ``{filter}~{grating}`` (see `physical_filter`).
    """

    name: str
    detector_ids: tuple[int, ...]
    ocps_index: int
    read_out_time: float = 2.0
    min_exptime: float = 0.1
    script: str = "maintel/make_comcam_calibrations.py"
    schema_title: str = ""
    schema_description: str = ""
    schema_defaults: Mapping[str, Any] = _EMPTY
    schema_properties: Mapping[str, Mapping[str, Any]] = _EMPTY
    physical_filter_format: str = "{filter}"

    def physical_filter(self, filter: str, grating: str | None = None) -> str:
        """The butler ``physical_filter`` of images taken through ``filter`` (and ``grating``).

        Parameters
        ----------
        filter : `str`
            Filter name.
        grating : `str`, optional
            Grating name; needed (and only used) when the camera has one in its physical filter.

        Raises
        ------
        ValueError
            If this camera's physical filter names a grating and ``grating`` is `None`.
        """
        if grating is None and "{grating}" in self.physical_filter_format:
            raise ValueError(f"{self.name}: physical filter {self.physical_filter_format} needs a grating.")
        return self.physical_filter_format.format(filter=filter, grating=grating)

    def physical_filter_of(self, setup: Mapping[str, Any]) -> str | None:
        """The butler ``physical_filter`` of images taken with the instrument setup ``setup``.

        Parameters
        ----------
        setup : `~collections.abc.Mapping` [`str`, `typing.Any`]
            ``filter`` (and LATISS's ``grating``) as configured: a name, a slot number or `None`
            (unchanged); other keys are ignored.

        Returns
        -------
        physical_filter : `str` or `None`
            `None` when a part the physical filter needs is not given by name.
        """
        filter_name, grating = setup.get("filter"), setup.get("grating")
        if not isinstance(filter_name, str):
            return None
        if "{grating}" in self.physical_filter_format:
            return self.physical_filter(filter_name, grating) if isinstance(grating, str) else None
        return self.physical_filter(filter_name)

    def apply_to_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Change the base schema (in place) into this camera's: title, description, defaults, keys.

        Raises
        ------
        KeyError
            If a changed default names a key the base schema does not have.
        """
        if self.schema_title:
            schema["title"] = self.schema_title
        if self.schema_description:
            schema["description"] = self.schema_description
        properties = schema["properties"]
        for key, value in self.schema_defaults.items():
            if key not in properties:
                raise KeyError(f"{self.name}: default for {key!r}, which the base schema lacks.")
            properties[key]["default"] = value
        for key, prop in self.schema_properties.items():
            properties[key] = dict(prop)
        return schema

    @property
    def pipeline_subdir(self) -> str:
        """Directory of the instrument's pipelines in cp_pipe and cp_verify: its name.

        ``${CP_PIPE_DIR}/pipelines/<name>`` and ``${CP_VERIFY_DIR}/pipelines/<name>``.
        """
        return self.name

    @property
    def n_detectors(self) -> int:
        """Number of detectors of the camera."""
        return len(self.detector_ids)


COMCAM = InstrumentSpec(
    name="LSSTComCam",
    detector_ids=tuple(range(9)),
    ocps_index=2,
)
"""LSSTComCam: nine ITL detectors R22_S00..R22_S22 (ids 0..8), served by OCPS:2."""


def _collection_defaults(instrument: str, repo: str) -> dict[str, Any]:
    """The defaults naming collections and the repo, for a camera other than LSSTComCam."""
    calib = f"{instrument}/calib"
    keys = ("bias", "verify_bias", "dark", "verify_dark", "flat", "verify_flat", "defects", "ptc")
    defaults: dict[str, Any] = {f"input_collections_{key}": calib for key in keys}
    defaults.update(calib_collection=f"{calib}/daily", repo=repo)
    return defaults


LSSTCAM = InstrumentSpec(
    name="LSSTCam",
    detector_ids=tuple(range(189)),
    ocps_index=3,
    script="maintel/make_lsstcam_calibrations.py",
    schema_title="MakeLSSTCamCalibrations v1",
    schema_description=(
        "Configuration of maintel/make_lsstcam_calibrations.py: take LSSTCam bias, dark and flat "
        "sequences, have OCPS:3 build, verify and certify combined calibrations, and optionally defects, "
        "a photon transfer curve and per-pair gains. Before the flats the script checks that the dome "
        "can take them (MTDomeTrajectory ENABLED, MTDome DISABLED or ENABLED) unless ignored."
    ),
    schema_defaults=types.MappingProxyType(_collection_defaults("LSSTCam", "/repo/LSSTCam")),
    schema_properties=types.MappingProxyType(
        {
            "ignore": {
                "description": (
                    "Components whose state the feasibility check before the flats skips "
                    "(MTDome, MTDomeTrajectory), as the real script's ignore list."
                ),
                "type": "array",
                "items": {"type": "string", "enum": ["MTDome", "MTDomeTrajectory"]},
                "uniqueItems": True,
                "default": [],
            }
        }
    ),
)
"""LSSTCam: 189 science detectors (ids 0..188; ITL and e2v), served by OCPS:3."""

LATISS = InstrumentSpec(
    name="LATISS",
    detector_ids=(0,),
    ocps_index=1,
    script="auxtel/make_latiss_calibrations.py",
    schema_title="MakeLatissCalibrations v1",
    schema_description=(
        "Configuration of auxtel/make_latiss_calibrations.py: take LATISS bias, dark and flat sequences "
        "(filter and grating set before the flats), have OCPS:1 build, verify and certify combined "
        "calibrations, and optionally defects, a photon transfer curve and per-pair gains."
    ),
    schema_defaults=types.MappingProxyType(_collection_defaults("LATISS", "/repo/LATISS")),
    physical_filter_format="{filter}~{grating}",
    schema_properties=types.MappingProxyType(
        {
            "grating": {
                "description": (
                    "Grating (disperser) to put in the beam before taking the flats, with filter. "
                    "null keeps the current grating."
                ),
                "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}],
                "default": None,
            }
        }
    ),
)
"""LATISS: one ITL detector (id 0), served by OCPS:1; flats through a filter and a grating."""

INSTRUMENTS: Mapping[str, InstrumentSpec] = types.MappingProxyType(
    {spec.name: spec for spec in (COMCAM, LSSTCAM, LATISS)}
)
"""The cameras by instrument name."""


def instrument_spec(name: str) -> InstrumentSpec:
    """Return the `InstrumentSpec` of instrument ``name``.

    Raises
    ------
    ValueError
        For an unknown instrument.
    """
    try:
        return INSTRUMENTS[name]
    except KeyError:
        raise ValueError(f"Unknown instrument {name!r}; known: {sorted(INSTRUMENTS)}.") from None
