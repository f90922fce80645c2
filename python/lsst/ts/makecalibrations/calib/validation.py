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

"""Validation of a parsed configuration: schema types with readable messages, then one function per
rule that involves several keys or the instrument.

Checks, in order: unknown keys (with a "did you mean" suggestion), finite numbers, the schema's types
and maxima, the cross-field rules (`RULES`, each a function that names the keys it reads), the
strings (collection names, the job-option grammar of `calib.options`, control characters). Every
problem found is collected and raised at once as one `ConfigError`. A valid configuration is
returned as a frozen `CalibConfig` that also remembers which keys were given explicitly (the default
``do_gain_from_flat_pairs: true`` does not apply outside BIAS_DARK_FLAT, an explicit one is an error).

May import: the standard library, jsonschema, PyYAML, astropy.time.
"""

from __future__ import annotations

__all__ = ["parse_config_text", "validate_config", "RULES"]

import copy
import dataclasses
import datetime
import difflib
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jsonschema

from .flat_pairs import find_flat_pairs
from .instrument import COMCAM, InstrumentSpec
from .model import (
    COLLECTION_TEMPLATE_FIELDS,
    SCRIPT_MODES,
    CalibConfig,
    ImageType,
    _instrument_schema,
    exp_times_lengths,
    schema_defaults,
    split_exp_times,
)
from .options import OptionsError, check_collection_name, parse_job_options, split_collections
from .problems import ConfigError, ConfigProblem
from .yaml_text import KEY_EQUALS_RE, check_text_size, load_yaml, yaml_value_hint

_DATE_KEYS = ("certify_calib_begin_date", "certify_calib_end_date")
_TEMPLATE_RE = re.compile(r"(?<!\$)\{([^{}]*)\}")

_PLACEHOLDER_RE = re.compile(r"\$\{[^}]*\}")


def parse_config_text(text: str | None, instrument: InstrumentSpec = COMCAM) -> CalibConfig:
    """Parse and validate a configuration given as YAML text.

    Parameters
    ----------
    text : `str` or `None`
        The YAML text of the ``configure`` command (empty means all defaults).
    instrument : `InstrumentSpec`, optional
        The camera the configuration is for.

    Returns
    -------
    config : `CalibConfig`
        The validated configuration with defaults filled in.

    Raises
    ------
    ConfigError
        With every problem found.
    """
    text = text or ""
    check_text_size(text)
    data, positions, problems = load_yaml(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        message = f"the configuration must be a mapping of 'key: value' lines, got {_describe_value(data)}"
        key = None
        if isinstance(data, str):
            match = KEY_EQUALS_RE.match(data)
            if match:
                key = match.group(1)
                message += (
                    f"; '{data}' is not a 'key: value' pair (YAML needs a colon and a space, not '='): "
                    f"write '{key}: {yaml_value_hint(match.group(2))}'"
                )
        raise ConfigError([ConfigProblem(key, message, 1, 1)])
    return validate_config(data, instrument, positions=positions, earlier_problems=problems)


def _describe_value(value: Any, limit: int = 200) -> str:
    """Describe a value for a message, its representation cut to about ``limit`` characters."""
    text = _describe_full_value(value)
    return text if len(text) <= limit else text[:limit] + "... (cut)"


def _describe_full_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return f"a list {value!r}"
    if isinstance(value, dict):
        return f"a mapping {value!r}"
    return f"{type(value).__name__} {value!r}"


_TYPE_WORDS = {
    "integer": ("an integer", "integers"),
    "number": ("a number", "numbers"),
    "string": ("a string", "strings"),
    "boolean": ("true or false", "booleans"),
    "null": ("null", "nulls"),
    "object": ("a mapping", "mappings"),
}


def _describe_schema(schema: Mapping[str, Any], plural: bool = False) -> str:
    if "anyOf" in schema:
        return " or ".join(_describe_schema(sub, plural) for sub in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        text = "a list of " + _describe_schema(schema.get("items", {}), plural=True)
        return text if not plural else f"lists of {_describe_schema(schema.get('items', {}), plural=True)}"
    if isinstance(kind, str) and kind in _TYPE_WORDS:
        text = _TYPE_WORDS[kind][1 if plural else 0]
        for bound, word in (("minimum", "≥"), ("exclusiveMinimum", ">")):
            if bound in schema:
                text += f" {word} {schema[bound]}"
        return text
    return "a valid value"


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),  # before int: a bool is an int
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)
"""Python types of parsed YAML and their JSON schema names, in the order they are tried."""


def _json_type(value: Any) -> str:
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _type_matches(schema: Mapping[str, Any], value: Any) -> bool:
    kind = schema.get("type")
    json_type = _json_type(value)
    if kind == json_type:
        return True
    return kind == "number" and json_type == "integer"


def _path_name(path: Iterable[Any]) -> str:
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def _schema_error_problems(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """Return (key, message) pairs for one jsonschema error, as readable as possible."""
    key = _path_name(error.absolute_path)
    if error.validator == "anyOf":
        branches = error.schema.get("anyOf", [])
        for index, branch in enumerate(branches):
            if _type_matches(branch, error.instance):
                sub = [
                    e
                    for e in (error.context or [])
                    if e.relative_schema_path and e.relative_schema_path[0] == index
                ]
                if sub:
                    return [pair for e in sub for pair in _schema_error_problems(e)]
        return [(key, f"expected {_describe_schema(error.schema)}, got {_describe_value(error.instance)}")]
    if error.validator == "type":
        return [(key, f"expected {_describe_schema(error.schema)}, got {_describe_value(error.instance)}")]
    if error.validator == "enum":
        options = [str(v) for v in error.validator_value]
        message = f"{error.instance!r} is not one of {', '.join(options)}"
        if isinstance(error.instance, str):
            close = difflib.get_close_matches(error.instance.upper(), options, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]}?"
        return [(key, message)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        pairs = []
        for extra in sorted(set(error.instance) - set(known)):
            sub_key = f"{key}.{extra}" if key else str(extra)
            pairs.append((sub_key, _unknown_key_message(str(extra), known)))
        return pairs
    if error.validator == "maxLength" and isinstance(error.instance, str):
        return [
            (key, f"is {len(error.instance)} characters long, more than the {error.validator_value} accepted")
        ]
    if error.validator == "uniqueItems":
        return [(key, f"has repeated entries: {error.instance!r}")]
    return [(key, error.message)]


def _unknown_key_message(key: str, known: Sequence[str]) -> str:
    message = "unknown key"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]}?"
    else:
        message += " (see the schema for the valid keys)"
    return message


def _parse_date(value: str) -> Any:
    """Parse an ISO date (or date-time) as a TAI astropy Time; raise ValueError if unparsable."""
    from astropy.time import Time

    text = value.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?", text):
        raise ValueError(text)
    return Time(text.replace(" ", "T"), format="isot", scale="tai")


def validate_config(
    data: Mapping[str, Any] | None,
    instrument: InstrumentSpec = COMCAM,
    *,
    explicit_keys: Iterable[str] | None = None,
    positions: Mapping[str, tuple[int, int]] | None = None,
    earlier_problems: Sequence[ConfigProblem] = (),
) -> CalibConfig:
    """Validate a configuration dict and return it as a `CalibConfig`.

    Parameters
    ----------
    data : `~collections.abc.Mapping` or `None`
        Configuration keys and values (parsed YAML). A top-level ``metadata`` key is ignored, as
        salobj does.
    instrument : `InstrumentSpec`, optional
        The camera.
    explicit_keys : `~collections.abc.Iterable` [`str`], optional
        Keys given by the operator; default: the keys of ``data``.
    positions : `~collections.abc.Mapping`, optional
        1-based (line, column) of each key in the YAML text, added to the problems.
    earlier_problems : `~collections.abc.Sequence` [`ConfigProblem`], optional
        Problems already found (duplicate keys), reported first.

    Raises
    ------
    ConfigError
        With every problem found.
    """
    positions = positions or {}
    problems: list[ConfigProblem] = list(earlier_problems)

    def add(key: str | None, message: str) -> None:
        top = key.split(".")[0].split("[")[0] if key else None
        line, column = positions.get(top, (None, None)) if top else (None, None)
        problems.append(ConfigProblem(key, message, line, column))

    given = dict(data or {})
    given.pop("metadata", None)
    explicit = frozenset(explicit_keys) if explicit_keys is not None else frozenset(given)
    schema = _instrument_schema(instrument)
    properties = schema["properties"]

    for key in list(given):
        if key not in properties:
            add(str(key), _unknown_key_message(str(key), list(properties)))
            del given[key]
    for key in _DATE_KEYS:
        if isinstance(given.get(key), datetime.date):
            given[key] = given[key].isoformat()

    bad: set[str] = set()
    for key, path, value in _non_finite(given):
        add(path, f"{value} is not a finite number (NaN and infinity are never accepted)")
        bad.add(key)
    values = schema_defaults(instrument)
    values.update({key: value for key, value in given.items() if key not in bad})
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.absolute_path))):
        for key, message in _schema_error_problems(error):
            add(key or None, message)
            if key:
                bad.add(key.split(".")[0].split("[")[0])

    _cross_checks(values, explicit, instrument, add, skip=bad)
    _text_checks(values, add, skip=bad)

    if problems:
        raise ConfigError(problems)

    notes = _notes(values, explicit)
    return _make_config(values, instrument, explicit, notes)


def _expanded(values: Mapping[str, Any], image_type: ImageType) -> tuple[float, ...]:
    """Exposure times of the kept images of a type, from the raw values."""
    value = values[f"exp_times_{image_type.key}"]
    n = int(values[f"n_{image_type.key}"])
    return split_exp_times(value, n, int(values.get(f"n_discard_{image_type.key}", 0)))[1]


def _bad_list_length(values: Mapping[str, Any], image_type: ImageType) -> bool:
    """True if ``exp_times_<type>`` is a list of a length that `exp_times_lengths` does not accept."""
    value = values[f"exp_times_{image_type.key}"]
    n = int(values[f"n_{image_type.key}"])
    n_discard = int(values.get(f"n_discard_{image_type.key}", 0))
    return isinstance(value, list) and len(value) not in exp_times_lengths(n, n_discard)


@dataclasses.dataclass(frozen=True)
class _Checked:
    """What every cross-field rule reads: the values, which keys were given, the instrument.

    ``skip`` holds the keys that already failed a type check (a rule reading one of them is not run,
    its value may be of any type); ``add(key, message)`` records a problem.
    """

    values: Mapping[str, Any]
    explicit: frozenset[str]
    instrument: InstrumentSpec
    add: Callable[[str | None, str], None]
    skip: frozenset[str]

    def ok(self, *keys: str) -> bool:
        """True if none of ``keys`` failed its type check."""
        return not any(key in self.skip for key in keys)

    @property
    def mode(self) -> str | None:
        """``script_mode``, or `None` if it failed its type check."""
        return self.values["script_mode"] if self.ok("script_mode") else None

    @property
    def mode_types(self) -> tuple[ImageType, ...]:
        """Image types of ``script_mode`` (none if it failed)."""
        return SCRIPT_MODES.get(self.mode, ()) if self.mode else ()

    @property
    def recovered(self) -> set[ImageType]:
        """Image types given in ``exposure_ids``."""
        if not self.ok("exposure_ids"):
            return set()
        return {ImageType(k.upper()) for k in self.values["exposure_ids"]}

    def takes(self, image_type: ImageType) -> bool:
        """True if images of this type are taken (its keys valid, in the mode, not recovered)."""
        key = image_type.key
        return (
            self.ok(f"exp_times_{key}", f"n_{key}", f"n_discard_{key}")
            and (not self.mode or image_type in self.mode_types)
            and image_type not in self.recovered
        )


def _rule_exp_times_lengths(c: _Checked) -> None:
    """Exposure-time lists: one entry per kept image, or one per image taken (discarded first)."""
    for image_type in (ImageType.DARK, ImageType.FLAT):
        if not c.takes(image_type) or not _bad_list_length(c.values, image_type):
            continue
        key = f"exp_times_{image_type.key}"
        n_key = f"n_{image_type.key}"
        discard_key = f"n_discard_{image_type.key}"
        n = int(c.values[n_key])
        n_discard = int(c.values.get(discard_key, 0))
        accepted = f"{n} entries, one per kept image (the {n_discard} discarded image(s) use the first)"
        if n_discard:
            accepted += (
                f", or {n + n_discard} entries, one per image taken ({discard_key} {n_discard} "
                f"+ {n_key} {n}, the discarded first)"
            )
        c.add(
            key,
            f"has {len(c.values[key])} entries but {n_key} is {n}: give {accepted}, or a single number",
        )


def _rule_flat_min_exptime(c: _Checked) -> None:
    """Every flat, kept or discarded, at least the instrument's shortest shutter-open exposure."""
    if not c.takes(ImageType.FLAT):
        return
    values = c.values
    discarded = split_exp_times(
        values["exp_times_flat"], int(values["n_flat"]), int(values.get("n_discard_flat", 0))
    )[0]
    too_short = [t for t in _expanded(values, ImageType.FLAT) + discarded if t < c.instrument.min_exptime]
    if too_short:
        c.add(
            "exp_times_flat",
            f"{too_short[0]} s is shorter than the {c.instrument.min_exptime} s minimum exposure time "
            f"of a shutter-open image with {c.instrument.name}",
        )


def _rule_products_need_flats(c: _Checked) -> None:
    """Defects, PTC and gains asked for explicitly need script_mode BIAS_DARK_FLAT."""
    if c.mode is None or ImageType.FLAT in c.mode_types:
        return
    for key, what in (
        ("do_defects", "defects are built from darks and flats"),
        ("do_ptc", "a PTC is built from flat pairs"),
        ("do_gain_from_flat_pairs", "gains are measured from flat pairs"),
    ):
        if c.ok(key) and key in c.explicit and c.values[key]:
            c.add(key, f"requires script_mode BIAS_DARK_FLAT ({what}) but script_mode is {c.mode}")


def _planned_flat_times(c: _Checked) -> tuple[float, ...] | None:
    """Exposure times of the kept flats the run takes, or `None` (no flats taken, or invalid keys)."""
    if c.mode is None or not c.takes(ImageType.FLAT) or _bad_list_length(c.values, ImageType.FLAT):
        return None
    return _expanded(c.values, ImageType.FLAT)


def _rule_ptc_pairs(c: _Checked) -> None:
    """A PTC needs the flats in consecutive pairs of equal exposure time (`find_flat_pairs`)."""
    times = _planned_flat_times(c)
    if times is None or not (c.ok("do_ptc") and c.values["do_ptc"]):
        return
    if len(times) % 2:
        c.add(
            "exp_times_flat",
            f"do_ptc needs flats in equal consecutive pairs, but there are {len(times)} flats "
            "(an odd number)",
        )
        return
    paired = {i for pair in find_flat_pairs(times) for i in pair}
    for i in range(0, len(times), 2):
        if i not in paired:
            c.add(
                "exp_times_flat",
                f"do_ptc needs flats in equal consecutive pairs, but entries {i + 1} and "
                f"{i + 2} differ ({times[i]} and {times[i + 1]} s)",
            )
            return


def _rule_gain_needs_a_pair(c: _Checked) -> None:
    """An explicit ``do_gain_from_flat_pairs`` needs at least one flat pair."""
    times = _planned_flat_times(c)
    if times is None or not c.ok("do_gain_from_flat_pairs"):
        return
    asked = "do_gain_from_flat_pairs" in c.explicit and c.values["do_gain_from_flat_pairs"]
    if asked and not find_flat_pairs(times):
        c.add(
            "do_gain_from_flat_pairs",
            "needs at least one pair of consecutive flats with the same exposure time, "
            f"but exp_times_flat gives none ({list(times)})",
        )


def _rule_validity_range(c: _Checked) -> None:
    """The certification dates parse, and the range they give is not empty."""
    dates = {}
    for key in _DATE_KEYS:
        if not c.ok(key):
            continue
        try:
            dates[key] = _parse_date(c.values[key])
        except ValueError:
            c.add(
                key,
                f"cannot parse {c.values[key]!r} as a date (expected e.g. 2022-11-04 or 2022-11-04T12:00:00)",
            )
    if len(dates) == 2 and dates[_DATE_KEYS[0]] >= dates[_DATE_KEYS[1]]:
        c.add(
            "certify_calib_end_date",
            f"{c.values['certify_calib_end_date']} is not after certify_calib_begin_date "
            f"{c.values['certify_calib_begin_date']}: the validity range would be empty",
        )


def _rule_detectors(c: _Checked) -> None:
    """Every detector asked for belongs to the instrument."""
    if not c.ok("detectors"):
        return
    ids = c.instrument.detector_ids
    unknown = [d for d in c.values["detectors"] if d not in ids]
    if unknown:
        c.add(
            "detectors",
            f"unknown detector(s) {unknown}; {c.instrument.name} has detectors {min(ids)}..{max(ids)}",
        )


def _rule_recovery(c: _Checked) -> None:
    """Recovered exposures: of types the mode processes, each listed once, not with a resume report."""
    if not c.ok("exposure_ids"):
        return
    for image_type in sorted(c.recovered):
        if c.mode and image_type not in c.mode_types:
            c.add(
                f"exposure_ids.{image_type.key}",
                f"script_mode {c.mode} does not take or process {image_type.plural}",
            )
    seen: dict[int, str] = {}
    for type_key, ids in c.values["exposure_ids"].items():
        for exposure_id in ids:
            if exposure_id in seen:
                c.add(
                    f"exposure_ids.{type_key}",
                    f"exposure {exposure_id} is also listed under {seen[exposure_id]}",
                )
            seen[exposure_id] = type_key
    if c.values["exposure_ids"] and c.ok("resume_from_report") and c.values["resume_from_report"]:
        c.add("resume_from_report", "give either resume_from_report or exposure_ids, not both")


def _rule_collection_template(c: _Checked) -> None:
    """``calib_collection`` uses only the run-time template fields of `COLLECTION_TEMPLATE_FIELDS`."""
    if not c.ok("calib_collection"):
        return
    for field in _TEMPLATE_RE.findall(c.values["calib_collection"]):
        if field not in COLLECTION_TEMPLATE_FIELDS:
            c.add(
                "calib_collection",
                f"unknown template field {{{field}}}; the only one is {{timestamp}} (TAI time of configure)",
            )


def _rule_no_placeholders(c: _Checked) -> None:
    """No unexpanded template placeholder (e.g. the seed's ``${FILTER_NAME_OR_ID}``) in a string."""
    for key, value in c.values.items():
        if key.startswith("config_options_") or not c.ok(key) or not isinstance(value, str):
            continue
        match = _PLACEHOLDER_RE.search(value)
        if match:
            c.add(key, f"{match.group(0)} is a placeholder: replace it with a real value")


RULES: tuple[Callable[[_Checked], None], ...] = (
    _rule_exp_times_lengths,
    _rule_flat_min_exptime,
    _rule_products_need_flats,
    _rule_ptc_pairs,
    _rule_gain_needs_a_pair,
    _rule_validity_range,
    _rule_detectors,
    _rule_recovery,
    _rule_collection_template,
    _rule_no_placeholders,
)
"""The cross-field rules, in the order their problems are reported."""


def _cross_checks(
    values: Mapping[str, Any],
    explicit: frozenset[str],
    instrument: InstrumentSpec,
    add: Callable[[str | None, str], None],
    skip: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Run every rule of `RULES`; keys in ``skip`` already failed."""
    checked = _Checked(values, explicit, instrument, add, frozenset(skip))
    for rule in RULES:
        rule(checked)


def _non_finite(given: Mapping[str, Any]) -> Iterable[tuple[str, str, float]]:
    """(top-level key, key path, value) of every NaN or infinite number in the configuration."""

    def walk(value: Any, path: str) -> Iterable[tuple[str, float]]:
        if isinstance(value, float) and not math.isfinite(value):
            yield path, value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from walk(item, f"{path}[{i}]")
        elif isinstance(value, dict):
            for sub_key, item in value.items():
                yield from walk(item, f"{path}.{sub_key}")

    for key, value in given.items():
        for path, number in walk(value, str(key)):
            yield str(key), path, number


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_NOTE_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text_checks(values: Mapping[str, Any], add: Any, skip: set[str] | frozenset[str] = frozenset()) -> None:
    """Rules on the strings: collection names, the job option grammar, control characters.

    ``calib_collection`` must be a valid collection name (`options.check_collection_name`, with
    ``{timestamp}`` standing for its value); each ``input_collections_*`` a comma-separated list of
    valid names; each ``config_options_*`` only ``-c label:field=value`` overrides in the grammar the
    OCPS executor parses (`options.parse_job_options`); no other string may hold a control character
    (a note may hold newlines and tabs).
    """
    for key, value in values.items():
        if key in skip or not isinstance(value, str):
            continue
        if key == "calib_collection":
            try:
                check_collection_name(_TEMPLATE_RE.sub("20000101T000000", value))
            except OptionsError as e:
                add(key, str(e))
        elif key.startswith("input_collections_"):
            try:
                split_collections(value)
            except OptionsError as e:
                add(key, str(e))
        elif key.startswith("config_options_"):
            try:
                parse_job_options(value, allowed=frozenset({"-c"}))
            except OptionsError as e:
                add(
                    key,
                    f"{e} (only -c label:field=value overrides go here: input collections are set by "
                    f"input_collections_*, processes by n_processes)",
                )
        else:
            match = (_NOTE_CONTROL_RE if key == "note" else _CONTROL_RE).search(value)
            if match:
                add(key, f"contains the control character {match.group(0)!r}")


def _notes(values: Mapping[str, Any], explicit: frozenset[str]) -> tuple[str, ...]:
    """Non-fatal remarks about a valid configuration."""
    notes = []
    mode_types = SCRIPT_MODES[values["script_mode"]]
    recovered = {k.upper() for k in values["exposure_ids"]}
    if ImageType.FLAT in mode_types:
        if values["do_gain_from_flat_pairs"] and values["do_ptc"]:
            notes.append(
                "do_gain_from_flat_pairs: the per-pair gains are read from the PTC job, which measures "
                "every flat pair; no separate gain job is run"
            )
        elif (
            values["do_gain_from_flat_pairs"]
            and "FLAT" not in recovered
            and not find_flat_pairs(_expanded(values, ImageType.FLAT))
        ):
            notes.append(
                "do_gain_from_flat_pairs (default true) does not apply: no two consecutive flats have the "
                "same exposure time"
            )
    elif values["do_gain_from_flat_pairs"] and "do_gain_from_flat_pairs" not in explicit:
        notes.append(
            f"do_gain_from_flat_pairs (default true) does not apply in script_mode {values['script_mode']}"
        )
    if not values["generate_calibrations"] and not values["do_verify"]:
        notes.append(
            "generate_calibrations and do_verify are both false: the bias/dark/flat images are taken but "
            "not processed"
        )
    if values["generate_calibrations"] and "calib_collection" not in explicit:
        notes.append(
            "generate_calibrations: certifying into the default calib_collection "
            f"{values['calib_collection']}"
        )
    return tuple(notes)


def _make_config(
    values: Mapping[str, Any], instrument: InstrumentSpec, explicit: frozenset[str], notes: tuple[str, ...]
) -> CalibConfig:
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(CalibConfig):
        if field.name in ("instrument", "explicit_keys", "notes", "extras"):
            continue
        value = values[field.name]
        if field.name.startswith("exp_times_"):
            value = tuple(float(t) for t in value) if isinstance(value, list) else float(value)
        elif field.name == "detectors":
            value = tuple(int(d) for d in value)
        elif field.name == "exposure_ids":
            value = types.MappingProxyType(
                {ImageType(k.upper()): tuple(int(i) for i in v) for k, v in value.items()}
            )
        elif field.name == "filter" and value is not None:
            value = str(value)
        elif field.name.startswith("n_") or field.name.startswith("number_"):
            value = int(value)
        elif field.name in ("oods_timeout", "pipeline_job_timeout", "wait_between_exposures"):
            value = float(value)
        elif field.name == "background_task_timeout" and value is not None:
            value = float(value)
        kwargs[field.name] = value
    extras = types.MappingProxyType(
        {key: copy.deepcopy(values[key]) for key in instrument.schema_properties if key in values}
    )
    return CalibConfig(**kwargs, instrument=instrument, explicit_keys=explicit, notes=notes, extras=extras)
