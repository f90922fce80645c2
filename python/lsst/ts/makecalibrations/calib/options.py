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

"""The grammar of OCPS job options and butler collection names, checked before anything runs.

The ``config`` field of an OCPS ``execute`` command is a list of ``pipetask run`` options. Only a
small, known set is accepted, split with `shlex` (never a shell):

* ``-j N`` (a positive integer);
* ``-i a,b`` (comma-separated collection names, see `check_collection_name`);
* ``-c label:field=value`` (a task label, a dotted config field, a value);
* ``--register-dataset-types``.

Anything else (``--output``, ``-b``, ``-C FILE``, ``--extend-run``, a stray word) is refused, and so
are characters a shell would interpret (``;``, ``|``, ``&``, ``$``, backticks, ``<``, ``>``,
backslash) and control characters (newline, NUL, ...) anywhere in the string: at the observatory the
string travels to the OCPS, which passes it on to a command line, so nothing in it may mean more than
the options it lists. The same `parse_job_options` is used by the configuration (on
``config_options_*``, where only ``-c`` overrides are allowed, and ``input_collections_*``) and by the
simulated OCPS executor (on the whole job string), so a string the script accepts at configure is a
string the executor accepts.

Collection names: the butler accepts almost any string, but a name in a job string must survive the
``-i a,b`` list syntax and the butler's wildcard syntax. A valid name is non-empty, made of letters,
digits and ``_ . - + @ : /``, does not start or end with ``/`` and has no empty path component
(``a//b``). A comma separates names, a space ends the option, ``*``/``?``/``[`` make it a glob
pattern, and control characters cannot be typed back.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = [
    "OptionsError",
    "ParsedOptions",
    "parse_job_options",
    "check_collection_name",
    "split_collections",
    "COLLECTION_NAME_RULE",
]

import dataclasses
import re
import shlex

COLLECTION_NAME_RULE = (
    "letters, digits and _ . - + @ : / only, not starting or ending with '/', no empty component"
)
"""What a valid collection name is, for messages and the documentation."""

_COLLECTION_RE = re.compile(r"[A-Za-z0-9_.+@:\-]+(/[A-Za-z0-9_.+@:\-]+)*")
_OVERRIDE_RE = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*):([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)=(.+)"
)
_SHELL_CHARS = frozenset(";|&$`<>\\")
_SUPPORTED = "-j N, -i a,b, -c label:field=value, --register-dataset-types"


class OptionsError(ValueError):
    """A job option string or a collection name cannot be accepted; the message says why."""


@dataclasses.dataclass
class ParsedOptions:
    """The accepted options of a job ``config`` string.

    Attributes
    ----------
    processes : `int` or `None`
        ``-j`` value (`None` when absent).
    inputs : `list` [`str`]
        Collections from ``-i`` (comma-separated lists flattened, order kept, repeats dropped).
    overrides : `list` [`tuple` [`str`, `str`, `str`]]
        ``(label, field, value)`` of each ``-c``, in order.
    register_dataset_types : `bool`
        ``--register-dataset-types`` was given.
    """

    processes: int | None = None
    inputs: list[str] = dataclasses.field(default_factory=list)
    overrides: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    register_dataset_types: bool = False


def _describe_char(char: str) -> str:
    names = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\0": "a NUL character"}
    return names.get(
        char, f"the control character {char!r}" if ord(char) < 32 or ord(char) == 127 else repr(char)
    )


def _check_characters(text: str, what: str) -> None:
    for char in text:
        if ord(char) < 32 or ord(char) == 127:
            raise OptionsError(f"{what} contains {_describe_char(char)}")
        if char in _SHELL_CHARS:
            raise OptionsError(
                f"{what} contains {char!r}, which a shell would interpret; it is never allowed in job options"
            )


def check_collection_name(name: str) -> None:
    """Raise `OptionsError` if ``name`` is not a valid collection name (see the module docstring)."""
    if not name:
        raise OptionsError("a collection name cannot be empty")
    if name != name.strip():
        raise OptionsError(f"collection name {name!r} has leading or trailing blanks")
    for char in name:
        if ord(char) < 32 or ord(char) == 127:
            raise OptionsError(f"collection name {name!r} contains {_describe_char(char)}")
    if _COLLECTION_RE.fullmatch(name) is None:
        bad = next((c for c in name if not (c.isascii() and (c.isalnum() or c in "_.+@:-/"))), None)
        why = (
            f"contains {bad!r}"
            if bad is not None
            else "has an empty path component or a leading/trailing '/'"
        )
        raise OptionsError(f"{name!r} is not a valid collection name: it {why} ({COLLECTION_NAME_RULE})")


def split_collections(text: str) -> list[str]:
    """Split a comma-separated list of collection names and check each one.

    Raises
    ------
    OptionsError
        If the list is empty or a name is not valid (an empty entry, ``a,,b``, is refused too).
    """
    if not text.strip():
        raise OptionsError("needs at least one collection name")
    names = text.split(",")
    for name in names:
        check_collection_name(name)
    return names


def parse_job_options(text: str, allowed: frozenset[str] | None = None) -> ParsedOptions:
    """Parse a job ``config`` string (see the module docstring).

    Parameters
    ----------
    text : `str`
        The options, e.g. ``-j 8 -i LSSTComCam/calib --register-dataset-types -c isr:doDefect=False``.
    allowed : `frozenset` [`str`], optional
        Options accepted here (a subset of ``-j``, ``-i``, ``-c``, ``--register-dataset-types``);
        all of them when `None`.

    Raises
    ------
    OptionsError
        At the first token that is not accepted, naming it.
    """
    _check_characters(text, "the options")
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as e:
        raise OptionsError(f"cannot split {text!r} into options: {e}") from None
    supported = _SUPPORTED if allowed is None else ", ".join(sorted(allowed))
    parsed = ParsedOptions()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if allowed is not None and token in ("-j", "-i", "-c", "--register-dataset-types"):
            if token not in allowed:
                raise OptionsError(f"option {token!r} is not allowed here; allowed: {supported}")
        if token == "-j":
            value = _argument(tokens, i)
            try:
                parsed.processes = int(value)
            except ValueError:
                raise OptionsError(f"option -j needs an integer, got {value!r}") from None
            if parsed.processes < 1:
                raise OptionsError(f"option -j needs a positive integer, got {parsed.processes}")
            i += 2
        elif token == "-i":
            value = _argument(tokens, i)
            try:
                names = split_collections(value)
            except OptionsError as e:
                raise OptionsError(f"option -i {value!r}: {e}") from None
            parsed.inputs += [name for name in names if name not in parsed.inputs]
            i += 2
        elif token == "-c":
            value = _argument(tokens, i)
            match = _OVERRIDE_RE.fullmatch(value)
            if match is None:
                raise OptionsError(f"option -c needs label:field=value, got {value!r}")
            label, field, field_value = match.groups()
            parsed.overrides.append((label, field, field_value))
            i += 2
        elif token == "--register-dataset-types":
            parsed.register_dataset_types = True
            i += 1
        else:
            raise OptionsError(f"unsupported option {token!r}; supported: {supported}")
    return parsed


def _argument(tokens: list[str], i: int) -> str:
    """The argument of the option ``tokens[i]``."""
    if i + 1 >= len(tokens) or tokens[i + 1].startswith("-"):
        raise OptionsError(f"option {tokens[i]} needs an argument")
    return tokens[i + 1]
