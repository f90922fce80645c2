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

"""The configuration as the rest of the code sees it: `CalibConfig` and the names it is made of.

The JSON schema ``schema.yaml`` next to this module is the single source of the configuration keys,
their types, defaults and descriptions; `load_schema` and `schema_defaults` read it. `CalibConfig` is
the frozen, validated configuration (built by `calib.validation`), with the values derived from it.

May import: the standard library, jsonschema, PyYAML.
"""

from __future__ import annotations

__all__ = [
    "ImageType",
    "SCRIPT_MODES",
    "EXTRA_PRODUCT_KEYS",
    "COLLECTION_TEMPLATE_FIELDS",
    "CalibConfig",
    "SCHEMA_PATH",
    "load_schema",
    "schema_defaults",
    "exp_times_lengths",
    "split_exp_times",
    "resolve_templates",
]

import copy
import dataclasses
import datetime
import enum
import functools
import pathlib
import types
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
import yaml

from .flat_pairs import find_flat_pairs
from .instrument import COMCAM, InstrumentSpec

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema.yaml")


class ImageType(enum.StrEnum):
    """Image types the script takes, in acquisition order."""

    BIAS = "BIAS"
    DARK = "DARK"
    FLAT = "FLAT"

    @property
    def key(self) -> str:
        """Lower-case name used in configuration keys and dataset types (``bias``)."""
        return self.value.lower()

    @property
    def plural(self) -> str:
        """Lower-case plural for messages (``biases``)."""
        return {"BIAS": "biases", "DARK": "darks", "FLAT": "flats"}[self.value]


SCRIPT_MODES: dict[str, tuple[ImageType, ...]] = {
    "BIAS": (ImageType.BIAS,),
    "DARK": (ImageType.DARK,),
    "BIAS_DARK": (ImageType.BIAS, ImageType.DARK),
    "BIAS_DARK_FLAT": (ImageType.BIAS, ImageType.DARK, ImageType.FLAT),
}
"""Image types taken in each ``script_mode``."""

EXTRA_PRODUCT_KEYS = ("do_defects", "do_ptc", "do_gain_from_flat_pairs")
"""Products that need flats, hence script_mode BIAS_DARK_FLAT."""

COLLECTION_TEMPLATE_FIELDS = ("timestamp",)
"""Fields ``calib_collection`` may contain: ``{timestamp}`` becomes the TAI time the script was
configured, ``YYYYMMDDTHHMMSS``, so a configuration can be run again without colliding with the
certifications of its previous runs."""


@functools.cache
def _schema_cached() -> dict[str, Any]:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def load_schema(instrument: InstrumentSpec = COMCAM) -> dict[str, Any]:
    """Return (a copy of) the configuration JSON schema, a draft-07 dict."""
    return _instrument_schema(instrument)


def _instrument_schema(instrument: InstrumentSpec) -> dict[str, Any]:
    """The base schema changed into ``instrument``'s (`InstrumentSpec.apply_to_schema`), a copy."""
    return instrument.apply_to_schema(copy.deepcopy(_schema_cached()))


def schema_defaults(instrument: InstrumentSpec = COMCAM) -> dict[str, Any]:
    """Return the default value of every configuration key."""
    return {key: prop.get("default") for key, prop in _instrument_schema(instrument)["properties"].items()}


def exp_times_lengths(n: int, n_discard: int) -> tuple[int, ...]:
    """Accepted lengths of an exposure-time list: one entry per kept image, or per image taken.

    The second form (``n + n_discard`` entries, the discarded images first) is the one the
    ts_externalscripts script takes, e.g. its default dark sequence of 22 darks with 23 times.
    """
    return (n,) if n_discard == 0 else (n, n + n_discard)


def split_exp_times(
    value: float | Sequence[float], n: int, n_discard: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(discarded, kept)`` exposure times from a number or an accepted list (see `exp_times_lengths`).

    With one entry per kept image the discarded images use the first kept time.
    """
    if isinstance(value, (int, float)):
        return (float(value),) * n_discard, (float(value),) * n
    times = tuple(float(t) for t in value)
    if len(times) == n + n_discard and n_discard:
        return times[:n_discard], times[n_discard:]
    first = times[0] if times else 0.0
    return (first,) * n_discard, times


@dataclasses.dataclass(frozen=True)
class CalibConfig:
    """A validated configuration; see ``schema.yaml`` for the meaning of each field.

    ``exp_times_dark`` and ``exp_times_flat`` keep the form they were given in (a number or a
    tuple); `exp_times` expands them. ``exposure_ids`` maps image types to recovered exposure ids.
    ``explicit_keys`` are the keys present in the configuration text; ``notes`` are remarks that
    are not errors (e.g. a default that does not apply). ``extras`` holds the keys only the
    instrument's script has (`InstrumentSpec.schema_properties`: LATISS ``grating``, LSSTCam
    ``ignore``).
    """

    program: str | None
    reason: str | None
    note: str | None
    script_mode: str
    n_bias: int
    n_discard_bias: int
    n_dark: int
    n_discard_dark: int
    exp_times_dark: float | tuple[float, ...]
    n_flat: int
    n_discard_flat: int
    exp_times_flat: float | tuple[float, ...]
    wait_between_exposures: float
    filter: str | None
    detectors: tuple[int, ...]
    do_verify: bool
    generate_calibrations: bool
    config_options_bias: str
    config_options_dark: str
    config_options_flat: str
    do_defects: bool
    config_options_defects: str
    do_ptc: bool
    config_options_ptc: str
    do_gain_from_flat_pairs: bool
    input_collections_bias: str
    input_collections_verify_bias: str
    input_collections_dark: str
    input_collections_verify_dark: str
    input_collections_flat: str
    input_collections_verify_flat: str
    input_collections_defects: str
    input_collections_ptc: str
    calib_collection: str
    repo: str
    n_processes: int
    certify_calib_begin_date: str
    certify_calib_end_date: str
    oods_timeout: float
    pipeline_job_timeout: float
    background_task_timeout: float | None
    number_verification_tests_threshold_bias: int
    number_verification_tests_threshold_dark: int
    number_verification_tests_threshold_flat: int
    verification_rule: str
    report_dir: str | None
    exposure_ids: Mapping[ImageType, tuple[int, ...]]
    resume_from_report: str | None
    instrument: InstrumentSpec = COMCAM
    explicit_keys: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    extras: Mapping[str, Any] = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    # --- derived values -------------------------------------------------------------------------

    @property
    def image_types(self) -> tuple[ImageType, ...]:
        """Image types of ``script_mode``, in acquisition order."""
        return SCRIPT_MODES[self.script_mode]

    @property
    def detector_ids(self) -> tuple[int, ...]:
        """Detectors passed to the pipelines (all of the instrument when ``detectors`` is empty)."""
        return self.detectors if self.detectors else self.instrument.detector_ids

    @property
    def n_detectors(self) -> int:
        """Number of detectors processed."""
        return len(self.detector_ids)

    def n_images(self, image_type: ImageType) -> int:
        """Number of kept images of a type (``n_bias``, ...)."""
        return int(getattr(self, f"n_{ImageType(image_type).key}"))

    def n_discard(self, image_type: ImageType) -> int:
        """Number of images taken and discarded before the kept ones."""
        return int(getattr(self, f"n_discard_{ImageType(image_type).key}"))

    def _split_exp_times(self, image_type: ImageType) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(discarded, kept)`` exposure times of a type (biases: zeros)."""
        image_type = ImageType(image_type)
        value = 0.0 if image_type is ImageType.BIAS else getattr(self, f"exp_times_{image_type.key}")
        return split_exp_times(value, self.n_images(image_type), self.n_discard(image_type))

    def exp_times(self, image_type: ImageType) -> tuple[float, ...]:
        """Exposure time of each kept image (biases: zeros)."""
        return self._split_exp_times(image_type)[1]

    def discard_exp_times(self, image_type: ImageType) -> tuple[float, ...]:
        """Exposure time of each discarded image: its own list entry, else that of the first kept image."""
        return self._split_exp_times(image_type)[0]

    def input_collections(self, product: str) -> str:
        """``input_collections_<product>`` (``bias``, ``dark``, ``flat``, ``defects``, ``ptc``)."""
        return str(getattr(self, f"input_collections_{product.lower()}"))

    def input_collections_verify(self, image_type: ImageType) -> str:
        """``input_collections_verify_<type>``."""
        return str(getattr(self, f"input_collections_verify_{ImageType(image_type).key}"))

    def config_options(self, product: str) -> str:
        """``config_options_<product>`` (``bias``, ``dark``, ``flat``, ``defects``, ``ptc``)."""
        return str(getattr(self, f"config_options_{product.lower()}"))

    def verification_threshold(self, image_type: ImageType) -> int:
        """``number_verification_tests_threshold_<type>``."""
        return int(getattr(self, f"number_verification_tests_threshold_{ImageType(image_type).key}"))

    def is_recovered(self, image_type: ImageType) -> bool:
        """True if the images of this type are given in ``exposure_ids`` (no acquisition)."""
        return ImageType(image_type) in self.exposure_ids

    @property
    def takes_flats(self) -> bool:
        """True if the mode includes flats."""
        return ImageType.FLAT in self.image_types

    @property
    def flat_pairs(self) -> list[tuple[int, int]]:
        """Pairs among the kept flats (indices into `exp_times` (FLAT)); empty without flats."""
        if not self.takes_flats or self.is_recovered(ImageType.FLAT):
            return []
        return find_flat_pairs(self.exp_times(ImageType.FLAT))

    @property
    def run_defects(self) -> bool:
        """True if a defects job runs."""
        return self.takes_flats and self.do_defects

    @property
    def run_ptc(self) -> bool:
        """True if a PTC job runs."""
        return self.takes_flats and self.do_ptc

    @property
    def run_gain(self) -> bool:
        """True if a gain-from-flat-pairs job runs.

        Only in BIAS_DARK_FLAT, not when a PTC is made (its extraction step already measures the
        gain of every pair, and the gain report reads it from the PTC job), and only when there is
        at least one pair (for recovered flats the pipeline finds the pairs itself).
        """
        if not (self.takes_flats and self.do_gain_from_flat_pairs) or self.run_ptc:
            return False
        return self.is_recovered(ImageType.FLAT) or bool(self.flat_pairs)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration keys and values as plain YAML/JSON types."""
        result: dict[str, Any] = {}
        for name in _instrument_schema(self.instrument)["properties"]:
            value = self.extras[name] if name in self.extras else getattr(self, name)
            if name == "exposure_ids":
                value = {ImageType(k).key: list(v) for k, v in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            result[name] = value
        return result


def resolve_templates(config: CalibConfig, tai: float) -> CalibConfig:
    """Return the configuration with the template fields of ``calib_collection`` filled in.

    Parameters
    ----------
    config : `CalibConfig`
        A validated configuration.
    tai : `float`
        TAI unix seconds of the run (``{timestamp}`` is formatted as ``YYYYMMDDTHHMMSS``).
    """
    if "{" not in config.calib_collection:
        return config
    stamp = datetime.datetime.fromtimestamp(tai, tz=datetime.UTC).strftime("%Y%m%dT%H%M%S")
    return dataclasses.replace(config, calib_collection=config.calib_collection.replace("{timestamp}", stamp))
