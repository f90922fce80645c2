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

"""The configuration text as YAML: bounded parsing and diagnostics with line and column.

* YAML syntax errors with line and column, and a hint for ``key=value`` lines;
* duplicate keys (PyYAML keeps the last one silently);
* bounds that make the text safe to parse: the text at most `MAX_CONFIG_CHARS`, YAML aliases
  expanded at most to `MAX_YAML_NODES` values and `MAX_YAML_DEPTH` levels (counted with memoisation,
  before anything is expanded).

May import: the standard library, PyYAML.
"""

from __future__ import annotations

__all__ = [
    "MAX_CONFIG_CHARS",
    "MAX_YAML_NODES",
    "MAX_YAML_DEPTH",
    "KEY_EQUALS_RE",
    "load_yaml",
    "yaml_value_hint",
    "check_text_size",
    "check_text_bounds",
]

import re
from typing import Any

import yaml

from .problems import ConfigError, ConfigProblem

MAX_CONFIG_CHARS = 100_000
"""Longest configuration text accepted, in characters. The longest real configuration (every detector
of LSSTCam and a thousand recovered exposure ids per type) is about 30 kB; salobj sends the text in one
Kafka message (1 MB by default) and the script repeats it in its failure reason and its report."""

MAX_YAML_NODES = 20_000
"""Most values (scalars, lists, mappings) a configuration may hold once YAML aliases are expanded; a
legitimate configuration holds a few hundred, an alias bomb of nine lines holds 10**9."""

MAX_YAML_DEPTH = 20
"""Deepest nesting of lists and mappings accepted (a configuration nests at most three levels)."""
KEY_EQUALS_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


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
        match = KEY_EQUALS_RE.match(lines[candidate.line])
        if match:
            key, value = match.groups()
            return ConfigProblem(
                key,
                f"'{lines[candidate.line].strip()}' is not a 'key: value' pair (YAML needs a colon "
                f"and a space, not '='); write '{key}: {yaml_value_hint(value)}'",
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


def yaml_value_hint(value: str) -> str:
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


def load_yaml(text: str) -> tuple[Any, dict[str, tuple[int, int]], list[ConfigProblem]]:
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
