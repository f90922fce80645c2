"""Configuration of the calibration script: parse, validate and explain what is wrong.

The JSON schema `schema.yaml` next to this module is the single source of the configuration keys,
their types, defaults and descriptions. This module adds what a schema cannot say:

* YAML syntax errors with line and column, and a hint for ``key=value`` lines;
* duplicate keys (PyYAML keeps the last one silently);
* unknown keys with a "did you mean" suggestion;
* readable type errors naming the key;
* cross-field rules (list lengths, flat pairs, modes, dates, detectors, recovery keys);
* bounds that make the text safe to parse and the run possible: the text at most `MAX_CONFIG_CHARS`,
  YAML aliases expanded at most to `MAX_YAML_NODES` values and `MAX_YAML_DEPTH` levels (counted
  with memoisation, before anything is expanded), numbers finite, counts and durations under the
  schema's maxima;
* valid collection names and job options in the grammar of `calib.options`, which the OCPS
  executor uses too.

Every problem found is collected and raised at once as one `ConfigError`. A valid configuration
is returned as a frozen `CalibConfig` that also remembers which keys were given explicitly (the
default ``do_gain_from_flat_pairs: true`` does not apply outside BIAS_DARK_FLAT, an explicit one is
an error).

May import: the standard library, jsonschema, PyYAML, astropy.time.
"""

from __future__ import annotations

__all__ = [
    "ImageType",
    "SCRIPT_MODES",
    "EXTRA_PRODUCT_KEYS",
    "ConfigProblem",
    "ConfigError",
    "CalibConfig",
    "load_schema",
    "schema_defaults",
    "parse_config_text",
    "validate_config",
    "find_flat_pairs",
    "COLLECTION_TEMPLATE_FIELDS",
    "resolve_templates",
    "check_text_size",
    "check_text_bounds",
    "MAX_CONFIG_CHARS",
    "MAX_YAML_NODES",
    "MAX_YAML_DEPTH",
]

import copy
import dataclasses
import datetime
import difflib
import enum
import functools
import math
import pathlib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jsonschema
import yaml

from .instrument import COMCAM, InstrumentSpec
from .options import OptionsError, check_collection_name, parse_job_options, split_collections

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

_DATE_KEYS = ("certify_calib_begin_date", "certify_calib_end_date")
_TEMPLATE_RE = re.compile(r"(?<!\$)\{([^{}]*)\}")

COLLECTION_TEMPLATE_FIELDS = ("timestamp",)
"""Fields ``calib_collection`` may contain: ``{timestamp}`` becomes the TAI time the script was
configured, ``YYYYMMDDTHHMMSS``, so a configuration can be run again without colliding with the
certifications of its previous runs."""
_PLACEHOLDER_RE = re.compile(r"\$\{[^}]*\}")

MAX_CONFIG_CHARS = 100_000
"""Longest configuration text accepted, in characters. The longest real configuration (every detector
of LSSTCam and a thousand recovered exposure ids per type) is about 30 kB; salobj sends the text in one
Kafka message (1 MB by default) and the script repeats it in its failure reason and its report."""

MAX_YAML_NODES = 20_000
"""Most values (scalars, lists, mappings) a configuration may hold once YAML aliases are expanded; a
legitimate configuration holds a few hundred, an alias bomb of nine lines holds 10**9."""

MAX_YAML_DEPTH = 20
"""Deepest nesting of lists and mappings accepted (a configuration nests at most three levels)."""
_KEY_EQUALS_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@functools.cache
def _schema_cached() -> dict[str, Any]:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def load_schema() -> dict[str, Any]:
    """Return (a copy of) the configuration JSON schema, a draft-07 dict."""
    return copy.deepcopy(_schema_cached())


def schema_defaults() -> dict[str, Any]:
    """Return the default value of every configuration key."""
    return {key: copy.deepcopy(prop.get("default")) for key, prop in _schema_cached()["properties"].items()}


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration.

    Attributes
    ----------
    key : `str` or `None`
        Configuration key concerned (``exp_times_flat``, ``exposure_ids.bias``, ``detectors[2]``),
        or `None` for a problem of the whole text (a YAML syntax error).
    message : `str`
        What is wrong and, when possible, how to fix it.
    line, column : `int` or `None`
        1-based position in the YAML text, when known.
    """

    key: str | None
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        prefix = f"{self.key}: " if self.key else ""
        where = ""
        if self.line is not None:
            where = f" (line {self.line}" + (f", column {self.column})" if self.column is not None else ")")
        return f"{prefix}{self.message}{where}"


class ConfigError(ValueError):
    """A configuration is invalid; ``problems`` lists every problem found.

    Parameters
    ----------
    problems : `~collections.abc.Iterable` [`ConfigProblem`]
        The problems, at least one.
    """

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return all problems as one message, one problem per line."""
        n = len(self.problems)
        lines = [f"Invalid configuration ({n} problem{'s' if n > 1 else ''}):"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)

    @property
    def keys(self) -> list[str | None]:
        """The keys named by the problems, in order."""
        return [problem.key for problem in self.problems]


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


def find_flat_pairs(exp_times: Sequence[float]) -> list[tuple[int, int]]:
    """Return the flat pairs in a sequence of exposure times.

    Scans the sequence once: two consecutive images with the same exposure time form a pair and
    are both consumed; an unmatched image is skipped. ``[0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 1, 1.5]``
    gives the first three pairs.

    Parameters
    ----------
    exp_times : `~collections.abc.Sequence` [`float`]
        Exposure times of the kept flats, in acquisition order.

    Returns
    -------
    pairs : `list` [`tuple` [`int`, `int`]]
        Indices (into ``exp_times``) of the two flats of each pair.
    """
    pairs: list[tuple[int, int]] = []
    i = 0
    while i + 1 < len(exp_times):
        if math.isclose(exp_times[i], exp_times[i + 1], rel_tol=1e-9, abs_tol=1e-9):
            pairs.append((i, i + 1))
            i += 2
        else:
            i += 1
    return pairs


@dataclasses.dataclass(frozen=True)
class CalibConfig:
    """A validated configuration; see ``schema.yaml`` for the meaning of each field.

    ``exp_times_dark`` and ``exp_times_flat`` keep the form they were given in (a number or a
    tuple); `exp_times` expands them. ``exposure_ids`` maps image types to recovered exposure ids.
    ``explicit_keys`` are the keys present in the configuration text; ``notes`` are remarks that
    are not errors (e.g. a default that does not apply).
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

    @property
    def certified_products(self) -> tuple[str, ...]:
        """Dataset types this run certifies into ``calib_collection`` (when all goes well)."""
        products = [t.key for t in self.image_types] if self.generate_calibrations else []
        if self.run_defects:
            products.append("defects")
        if self.run_ptc:
            products.append("ptc")
        return tuple(products)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration keys and values as plain YAML/JSON types."""
        result: dict[str, Any] = {}
        for name in _schema_cached()["properties"]:
            value = getattr(self, name)
            if name == "exposure_ids":
                value = {ImageType(k).key: list(v) for k, v in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            result[name] = value
        return result


# --- YAML loading -------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader; duplicate keys are found by walking the composed nodes."""


def _yaml_problem(err: yaml.YAMLError, text: str) -> ConfigProblem:
    """Turn a YAML error into a problem with line, column and a hint for ``key=value`` lines."""
    mark = getattr(err, "context_mark", None) or getattr(err, "problem_mark", None)
    problem_mark = getattr(err, "problem_mark", None)
    lines = text.splitlines()
    for candidate in (getattr(err, "context_mark", None), problem_mark):
        if candidate is None or candidate.line >= len(lines):
            continue
        match = _KEY_EQUALS_RE.match(lines[candidate.line])
        if match:
            key, value = match.groups()
            return ConfigProblem(
                key,
                f"'{lines[candidate.line].strip()}' is not a 'key: value' pair (YAML needs a colon "
                f"and a space, not '='); write '{key}: {_yaml_value_hint(value)}'",
                candidate.line + 1,
                candidate.column + 1,
            )
    described = " ".join(
        str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part
    )
    if not described:
        described = str(err)
    where = problem_mark or mark
    line = where.line + 1 if where is not None else None
    column = where.column + 1 if where is not None else None
    return ConfigProblem(None, f"YAML syntax error: {described}", line, column)


def _yaml_value_hint(value: str) -> str:
    """Suggest the YAML spelling of a ``key=value`` right-hand side (``True`` -> ``true``)."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered
    return value


def _find_duplicates(
    node: yaml.Node, path: str, problems: list[ConfigProblem], visited: set[int] | None = None
) -> None:
    """Record every duplicate key of every mapping under ``node``.

    Each node is examined once (``visited`` holds the ids of the nodes seen): a node that YAML
    aliases reach many times is one node, whose duplicate keys are reported once, at its first path.
    """
    visited = set() if visited is None else visited
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            key_path = f"{path}.{name}" if path else name
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    first = seen[ident].start_mark.line + 1
                    problems.append(
                        ConfigProblem(
                            key_path,
                            f"duplicate key (first given at line {first}); YAML would silently keep "
                            "only the last value: give each key once",
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                        )
                    )
                else:
                    seen[ident] = key_node
            _find_duplicates(value_node, key_path, problems, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _find_duplicates(item, f"{path}[{i}]", problems, visited)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand beyond `MAX_YAML_NODES` values or `MAX_YAML_DEPTH`.

    The expanded size of each node is computed once (memoised by node), so the check is linear in
    the size of the text, not in the size of the expansion; a node that contains itself (a
    recursive alias) is refused too.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node, depth: int, path: str) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_YAML_DEPTH:
            raise ConfigError([_node_problem(path, f"nested more than {MAX_YAML_DEPTH} levels deep", node)])
        if id(node) in in_progress:
            raise ConfigError([_node_problem(path, "a YAML alias refers to a value that contains it", node)])
        in_progress.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                name = f"{path}.{key_node.value}" if path else str(key_node.value)
                total += size(key_node, depth + 1, name) + size(value_node, depth + 1, name)
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += size(item, depth + 1, f"{path}[{i}]")
                if total > MAX_YAML_NODES:
                    break
        in_progress.discard(id(node))
        if total > MAX_YAML_NODES:
            raise ConfigError(
                [
                    _node_problem(
                        path,
                        f"expands to more than {MAX_YAML_NODES} values (YAML aliases repeat what they "
                        "refer to); write the values out",
                        node,
                    )
                ]
            )
        sizes[id(node)] = total
        return total

    size(root, 0, "")


_OPENING_TOKENS = (
    yaml.FlowSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.BlockMappingStartToken,
)
_CLOSING_TOKENS = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


def _check_depth(text: str) -> None:
    """Refuse a text nested deeper than `MAX_YAML_DEPTH` before composing it.

    PyYAML's scanner and composer are quadratic and recursive in the nesting depth (``[[[[...``
    5000 deep takes seconds, then overflows the stack), so the tokens are scanned first and the
    scan stops at the first level too deep. Syntax errors are left to the composer, which reports
    them with their position.
    """
    depth = 0
    try:
        for token in yaml.scan(text, Loader=_Loader):
            if isinstance(token, _OPENING_TOKENS):
                depth += 1
                if depth > MAX_YAML_DEPTH + 1:
                    mark = token.start_mark
                    raise ConfigError(
                        [
                            ConfigProblem(
                                None,
                                f"YAML nested more than {MAX_YAML_DEPTH} levels deep",
                                mark.line + 1,
                                mark.column + 1,
                            )
                        ]
                    )
            elif isinstance(token, _CLOSING_TOKENS):
                depth -= 1
    except yaml.YAMLError:
        return


def _node_problem(path: str, message: str, node: yaml.Node) -> ConfigProblem:
    top = path.split(".")[0].split("[")[0] or None
    return ConfigProblem(top, message, node.start_mark.line + 1, node.start_mark.column + 1)


def _load_yaml(text: str) -> tuple[Any, dict[str, tuple[int, int]], list[ConfigProblem]]:
    """Parse YAML text.

    Returns
    -------
    data : `object`
        The parsed document (`None` for an empty text).
    positions : `dict` [`str`, `tuple` [`int`, `int`]]
        1-based (line, column) of each top-level key.
    problems : `list` [`ConfigProblem`]
        Duplicate keys (the data is still returned).

    Raises
    ------
    ConfigError
        On a YAML syntax error.
    """
    _check_depth(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        problems: list[ConfigProblem] = []
        positions: dict[str, tuple[int, int]] = {}
        if node is None:
            return None, positions, problems
        _check_expansion(node)
        _find_duplicates(node, "", problems)
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                positions.setdefault(
                    str(key_node.value), (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                )
        data = loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ConfigError([_yaml_problem(err, text)]) from None
    except RecursionError:
        raise ConfigError(
            [ConfigProblem(None, f"YAML nested too deeply (more than {MAX_YAML_DEPTH} levels are refused)")]
        ) from None
    finally:
        loader.dispose()
    return data, positions, problems


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
    data, positions, problems = _load_yaml(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        message = f"the configuration must be a mapping of 'key: value' lines, got {_describe_value(data)}"
        key = None
        if isinstance(data, str):
            match = _KEY_EQUALS_RE.match(data)
            if match:
                key = match.group(1)
                message += (
                    f"; '{data}' is not a 'key: value' pair (YAML needs a colon and a space, not '='): "
                    f"write '{key}: {_yaml_value_hint(match.group(2))}'"
                )
        raise ConfigError([ConfigProblem(key, message, 1, 1)])
    return validate_config(data, instrument, positions=positions, earlier_problems=problems)


def check_text_size(text: str) -> None:
    """Raise `ConfigError` if the configuration text is longer than `MAX_CONFIG_CHARS`."""
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(
            [
                ConfigProblem(
                    None,
                    f"the configuration text has {len(text)} characters, more than the {MAX_CONFIG_CHARS} "
                    "accepted (a long note? notes are at most 4096 characters)",
                )
            ]
        )


def check_text_bounds(text: str | None) -> None:
    """Raise `ConfigError` if the text is too long, nested too deeply or expands too much.

    These are the checks that make parsing the text safe (bounded in time and memory); a caller
    that must parse the text with a plain ``yaml.safe_load`` (salobj does) runs this first. A YAML
    syntax error is not reported here (`parse_config_text` reports it with its position).
    """
    text = text or ""
    check_text_size(text)
    _check_depth(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except (yaml.YAMLError, RecursionError):
        return
    finally:
        loader.dispose()
    if node is not None:
        _check_expansion(node)


# --- validation ---------------------------------------------------------------------------------


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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
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
    schema = _schema_cached()
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
    values = schema_defaults()
    values.update({key: value for key, value in given.items() if key not in bad})
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.absolute_path))):
        for key, message in _schema_error_problems(error):
            add(key or None, message)
            if key:
                bad.add(key.split(".")[0].split("[")[0])

    if not bad:
        _cross_checks(values, explicit, instrument, add)
    else:
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


def _cross_checks(
    values: Mapping[str, Any],
    explicit: frozenset[str],
    instrument: InstrumentSpec,
    add: Any,
    skip: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Rules that involve several keys or the instrument; keys in ``skip`` already failed."""

    def ok(*keys: str) -> bool:
        return not any(key in skip for key in keys)

    mode = values["script_mode"] if ok("script_mode") else None
    mode_types = SCRIPT_MODES.get(mode, ()) if mode else ()
    recovered = set()
    if ok("exposure_ids"):
        recovered = {ImageType(k.upper()) for k in values["exposure_ids"]}

    # Exposure-time lists: one entry per kept image, or one per image taken (discarded first).
    for image_type in (ImageType.DARK, ImageType.FLAT):
        key = f"exp_times_{image_type.key}"
        n_key = f"n_{image_type.key}"
        discard_key = f"n_discard_{image_type.key}"
        if (
            not ok(key, n_key, discard_key)
            or (mode and image_type not in mode_types)
            or image_type in recovered
        ):
            continue
        if _bad_list_length(values, image_type):
            n = int(values[n_key])
            n_discard = int(values.get(discard_key, 0))
            accepted = f"{n} entries, one per kept image (the {n_discard} discarded image(s) use the first)"
            if n_discard:
                accepted += (
                    f", or {n + n_discard} entries, one per image taken ({discard_key} {n_discard} "
                    f"+ {n_key} {n}, the discarded first)"
                )
            add(
                key,
                f"has {len(values[key])} entries but {n_key} is {n}: give {accepted}, or a single number",
            )
    if (
        ok("exp_times_flat", "n_flat", "n_discard_flat")
        and (not mode or ImageType.FLAT in mode_types)
        and ImageType.FLAT not in recovered
    ):
        too_short = [
            t
            for t in _expanded(values, ImageType.FLAT)
            + split_exp_times(
                values["exp_times_flat"], int(values["n_flat"]), int(values.get("n_discard_flat", 0))
            )[0]
            if t < instrument.min_exptime
        ]
        if too_short:
            add(
                "exp_times_flat",
                f"{too_short[0]} s is shorter than the {instrument.min_exptime} s minimum exposure time "
                f"of a shutter-open image with {instrument.name}",
            )

    # Products that need flats.
    needs_flats = mode is not None and ImageType.FLAT not in mode_types
    for key, what in (
        ("do_defects", "defects are built from darks and flats"),
        ("do_ptc", "a PTC is built from flat pairs"),
        ("do_gain_from_flat_pairs", "gains are measured from flat pairs"),
    ):
        if needs_flats and ok(key) and key in explicit and values[key]:
            add(key, f"requires script_mode BIAS_DARK_FLAT ({what}) but script_mode is {mode}")

    flats_planned = (
        mode is not None
        and ImageType.FLAT in mode_types
        and ImageType.FLAT not in recovered
        and ok("exp_times_flat", "n_flat", "n_discard_flat")
        and not _bad_list_length(values, ImageType.FLAT)
    )
    if flats_planned:
        times = _expanded(values, ImageType.FLAT)
        if ok("do_ptc") and values["do_ptc"]:
            if len(times) % 2:
                add(
                    "exp_times_flat",
                    f"do_ptc needs flats in equal consecutive pairs, but there are {len(times)} flats "
                    "(an odd number)",
                )
            else:
                for i in range(0, len(times), 2):
                    if not math.isclose(times[i], times[i + 1], rel_tol=1e-9, abs_tol=1e-9):
                        add(
                            "exp_times_flat",
                            f"do_ptc needs flats in equal consecutive pairs, but entries {i + 1} and "
                            f"{i + 2} differ ({times[i]} and {times[i + 1]} s)",
                        )
                        break
        if (
            ok("do_gain_from_flat_pairs")
            and "do_gain_from_flat_pairs" in explicit
            and values["do_gain_from_flat_pairs"]
            and not find_flat_pairs(times)
        ):
            add(
                "do_gain_from_flat_pairs",
                "needs at least one pair of consecutive flats with the same exposure time, "
                f"but exp_times_flat gives none ({list(times)})",
            )

    # Validity range.
    dates = {}
    for key in _DATE_KEYS:
        if not ok(key):
            continue
        try:
            dates[key] = _parse_date(values[key])
        except ValueError:
            add(
                key,
                f"cannot parse {values[key]!r} as a date (expected e.g. 2022-11-04 or 2022-11-04T12:00:00)",
            )
    if len(dates) == 2 and dates[_DATE_KEYS[0]] >= dates[_DATE_KEYS[1]]:
        add(
            "certify_calib_end_date",
            f"{values['certify_calib_end_date']} is not after certify_calib_begin_date "
            f"{values['certify_calib_begin_date']}: the validity range would be empty",
        )

    # Detectors.
    if ok("detectors"):
        unknown = [d for d in values["detectors"] if d not in instrument.detector_ids]
        if unknown:
            add(
                "detectors",
                f"unknown detector(s) {unknown}; {instrument.name} has detectors "
                f"{min(instrument.detector_ids)}..{max(instrument.detector_ids)}",
            )

    # Recovery.
    if ok("exposure_ids"):
        for image_type in sorted(recovered):
            if mode and image_type not in mode_types:
                add(
                    f"exposure_ids.{image_type.key}",
                    f"script_mode {mode} does not take or process {image_type.plural}",
                )
        seen: dict[int, str] = {}
        for type_key, ids in values["exposure_ids"].items():
            for exposure_id in ids:
                if exposure_id in seen:
                    add(
                        f"exposure_ids.{type_key}",
                        f"exposure {exposure_id} is also listed under {seen[exposure_id]}",
                    )
                seen[exposure_id] = type_key
        if values["exposure_ids"] and ok("resume_from_report") and values["resume_from_report"]:
            add(
                "resume_from_report",
                "give either resume_from_report or exposure_ids, not both",
            )

    # Run-time template fields of calib_collection.
    if ok("calib_collection"):
        for field in _TEMPLATE_RE.findall(values["calib_collection"]):
            if field not in COLLECTION_TEMPLATE_FIELDS:
                add(
                    "calib_collection",
                    f"unknown template field {{{field}}}; the only one is {{timestamp}} "
                    "(TAI time of configure)",
                )

    # Unexpanded template placeholders (e.g. the seed's ${FILTER_NAME_OR_ID}).
    for key, value in values.items():
        if key.startswith("config_options_") or not ok(key) or not isinstance(value, str):
            continue
        match = _PLACEHOLDER_RE.search(value)
        if match:
            add(key, f"{match.group(0)} is a placeholder: replace it with a real value")


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


def _make_config(
    values: Mapping[str, Any], instrument: InstrumentSpec, explicit: frozenset[str], notes: tuple[str, ...]
) -> CalibConfig:
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(CalibConfig):
        if field.name in ("instrument", "explicit_keys", "notes"):
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
    return CalibConfig(**kwargs, instrument=instrument, explicit_keys=explicit, notes=notes)
