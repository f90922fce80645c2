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

"""Sphinx extension of the ts_makecalibrations documentation.

Directives
----------
``.. config-schema:: PATH``
    Render the JSON schema (YAML) of the script configuration as a reference: a summary table
    (parameter, type, default) followed by one entry per property with its type, default,
    constraints and description. Nested object properties are listed as ``parent.child``. A property
    without a description gets a visible placeholder (and an info-level log line), never a warning,
    so the ``-W`` build keeps passing while the schema is being completed.
``.. config-defaults:: PATH``
    Render every default of the schema as one YAML block: the configuration the script runs with
    when the CONFIG box is left empty.
``.. example-config:: NAME``
    Show ``examples/NAME`` (directory set by ``mcal_examples_dir``) as a YAML block with its file
    name as caption; if the file does not exist yet, a visible note says so instead.
``.. example-configs::``
    Show every ``examples/*.yaml`` not listed in the ``:exclude:`` option.
``.. command-help:: MODULE:FUNCTION``
    Call ``FUNCTION(["--help"])`` of a command-line module (an argparse ``main`` or ``parse_args``)
    and show the help text it prints, so the documented options are always the real ones. If the
    module does not exist yet, a visible note says so; any other import error is a warning.
``.. command-output:: MODULE:FUNCTION``
    Call ``FUNCTION(args)`` with the whitespace-separated arguments of the directive's content, from
    the repository root (the parent of the doc directory), in a child process, and show what it prints.
    Used to show the real ``run_script --plan`` output; a non-zero exit or an exception is a warning.
``.. dataclass-fields:: MODULE:CLASS``
    A table of the fields of a dataclass (name, type annotation, description taken from the
    numpydoc ``Attributes`` section of its docstring). A field without a description gets a visible
    placeholder. Used for the run report format, so the page follows the code.
``.. package-rooms:: PATH``
    A table of the subpackages ("rooms") of the package at PATH: for each, the first paragraph of
    its ``__init__.py`` docstring and its "May import:" rule, read with `ast` (nothing imported),
    and the rooms its modules actually import (found with `ast` too, lazy imports included).

PATH arguments are relative to the document that uses the directive.

May import: the standard library, PyYAML, docutils and Sphinx.
"""

from __future__ import annotations

__all__ = [
    "MISSING_DESCRIPTION",
    "describe_type",
    "flatten_properties",
    "parse_attributes_section",
    "property_id",
    "room_imports",
    "room_rules",
    "setup",
]

import ast
import contextlib
import dataclasses
import enum
import importlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.directives.code import container_wrapper
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

_log = logging.getLogger(__name__)

MISSING_DESCRIPTION = "No description in the schema yet."
"""Placeholder shown for a property whose schema entry has no ``description``."""


# ------------------------------------------------------------------------------------------------
# Schema helpers (pure functions, also used by the tests)


def _scalar(value: Any) -> str:
    """YAML-like text of a default or enum value."""
    return json.dumps(value, ensure_ascii=False)


def describe_type(prop: Mapping[str, Any]) -> str:
    """Describe the JSON-schema type of ``prop`` in words, e.g. ``number or array of number``."""
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(describe_type(alt) for alt in prop[key])
    if "enum" in prop:
        return "one of " + ", ".join(_scalar(v) for v in prop["enum"])
    if "const" in prop:
        return f"exactly {_scalar(prop['const'])}"
    kind = prop.get("type")
    if isinstance(kind, list):
        return " or ".join(describe_type({**prop, "type": k}) for k in kind)
    if kind == "array":
        items = prop.get("items")
        return f"array of {describe_type(items)}" if isinstance(items, Mapping) else "array"
    if kind is None:
        return "any"
    return str(kind)


def _constraints(prop: Mapping[str, Any]) -> list[str]:
    """Constraints of ``prop`` (and of the alternatives and items it contains) in words."""
    out: list[str] = []
    words = {
        "minimum": "≥ {}",
        "exclusiveMinimum": "> {}",
        "maximum": "≤ {}",
        "exclusiveMaximum": "< {}",
        "minItems": "at least {} item(s)",
        "maxItems": "at most {} item(s)",
        "minLength": "at least {} character(s)",
        "maxLength": "at most {} character(s)",
        "pattern": "matches {}",
    }
    for key, template in words.items():
        if key in prop:
            out.append(template.format(prop[key]))
    if prop.get("uniqueItems"):
        out.append("no repeated items")
    if prop.get("type") == "object" and prop.get("additionalProperties") is False and "properties" in prop:
        out.append("only the keys " + ", ".join(prop["properties"]))
    items = prop.get("items")
    if isinstance(items, Mapping):
        out += [f"each item {c}" for c in _constraints(items)]
    for key in ("anyOf", "oneOf"):
        for alt in prop.get(key, []):
            for c in _constraints(alt):
                label = describe_type(alt)
                out.append(f"as {label}: {c}")
    return out


def flatten_properties(
    schema: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """Yield ``(dotted name, property schema, required)`` for every property, nested ones included."""
    required = set(schema.get("required", []))
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            prop = {}
        dotted = f"{prefix}{name}"
        yield dotted, prop, name in required
        if isinstance(prop.get("properties"), Mapping):
            yield from flatten_properties(prop, prefix=f"{dotted}.")


def _default_text(prop: Mapping[str, Any], required: bool) -> str:
    if "default" in prop:
        return _scalar(prop["default"])
    return "(required)" if required else "(no default)"


def _default_node(prop: Mapping[str, Any], required: bool) -> nodes.Node:
    """The default as a literal, or "(required)" / "(no default)" in italics."""
    if "default" in prop:
        return nodes.literal(text=_default_text(prop, required))
    return nodes.emphasis(text=_default_text(prop, required))


def property_id(name: str) -> str:
    """HTML id of the reference entry of a property."""
    return "config-" + name.replace(".", "-").replace("_", "-").lower()


# ------------------------------------------------------------------------------------------------
# Directives


class _SchemaDirective(SphinxDirective):
    required_arguments = 1
    has_content = False

    def load_schema(self) -> tuple[Mapping[str, Any] | None, str]:
        rel, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(rel)
        try:
            with open(path) as stream:
                schema = yaml.safe_load(stream)
        except OSError as exc:
            _log.warning(
                "Cannot read the configuration schema %s: %s", path, exc, location=self.get_location()
            )
            return None, path
        except yaml.YAMLError as exc:
            _log.warning(
                "The configuration schema %s is not valid YAML: %s", path, exc, location=self.get_location()
            )
            return None, path
        if not isinstance(schema, Mapping):
            _log.warning("The configuration schema %s is not a mapping.", path, location=self.get_location())
            return None, path
        return schema, path


class ConfigSchemaDirective(_SchemaDirective):
    """``.. config-schema:: PATH`` -- the generated configuration reference."""

    def run(self) -> list[nodes.Node]:
        schema, path = self.load_schema()
        if schema is None:
            return []
        result: list[nodes.Node] = []
        if schema.get("description"):
            result.append(nodes.paragraph(text=" ".join(str(schema["description"]).split())))
        entries = list(flatten_properties(schema))
        result.append(self._summary_table(entries))
        definitions = nodes.definition_list(classes=["mcal-config-reference"])
        missing = []
        for name, prop, required in entries:
            definitions += self._entry(name, prop, required)
            if not prop.get("description"):
                missing.append(name)
        result.append(definitions)
        if missing:
            _log.info(
                "config-schema: %d propert(ies) without description in %s: %s",
                len(missing),
                path,
                ", ".join(missing),
            )
        return result

    def _summary_table(self, entries: list[tuple[str, Mapping[str, Any], bool]]) -> nodes.table:
        table, body = _table("mcal-config-summary", {"Parameter": 30, "Type": 40, "Default": 30})
        for name, prop, required in entries:
            link = nodes.reference("", "", nodes.literal(text=name), refid=property_id(name), internal=True)
            body += _row([[link], [nodes.Text(describe_type(prop))], [_default_node(prop, required)]])
        return table

    def _entry(self, name: str, prop: Mapping[str, Any], required: bool) -> nodes.definition_list_item:
        item = nodes.definition_list_item()
        term = nodes.term("", "", nodes.literal(text=name), ids=[property_id(name)])
        item += term
        definition = nodes.definition()
        item += definition
        description = prop.get("description")
        if description:
            definition += nodes.paragraph(text=" ".join(str(description).split()))
        else:
            definition += nodes.paragraph(
                "", "", nodes.emphasis(text=MISSING_DESCRIPTION), classes=["mcal-missing-description"]
            )
        fields = nodes.field_list()
        fields += self._field("Type", nodes.Text(describe_type(prop)))
        fields += self._field("Default", _default_node(prop, required))
        constraints = _constraints(prop)
        if constraints:
            fields += self._field("Constraints", nodes.Text("; ".join(constraints)))
        definition += fields
        return item

    @staticmethod
    def _field(label: str, value: nodes.Node) -> nodes.field:
        field = nodes.field()
        field += nodes.field_name(text=label)
        field += nodes.field_body("", nodes.paragraph("", "", value))
        return field


class ConfigDefaultsDirective(_SchemaDirective):
    """``.. config-defaults:: PATH`` -- every default as one YAML block."""

    def run(self) -> list[nodes.Node]:
        schema, _ = self.load_schema()
        if schema is None:
            return []
        defaults = {
            name: prop["default"]
            for name, prop in (schema.get("properties") or {}).items()
            if isinstance(prop, Mapping) and "default" in prop
        }
        text = yaml.safe_dump(defaults, sort_keys=False, default_flow_style=None, width=100).rstrip()
        block = nodes.literal_block(text, text, language="yaml")
        return [block]


class ExampleConfigDirective(SphinxDirective):
    """``.. example-config:: NAME`` -- one example configuration file, or a note if it is missing."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        examples = Path(self.env.app.confdir, self.config.mcal_examples_dir).resolve()
        return [_example_block(self, examples / self.arguments[0])]


class ExampleConfigsDirective(SphinxDirective):
    """``.. example-configs::`` -- every example configuration not excluded."""

    option_spec = {"exclude": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        examples = Path(self.env.app.confdir, self.config.mcal_examples_dir).resolve()
        self.env.note_dependency(str(examples))
        exclude = set((self.options.get("exclude") or "").replace(",", " ").split())
        every = sorted(examples.glob("*.yaml"))
        files = [p for p in every if p.name not in exclude]
        if files:
            return [_example_block(self, path) for path in files]
        # Every example is shown above: list them all, so the page says what examples/ holds.
        listing = nodes.bullet_list()
        for path in every:
            item = nodes.list_item()
            item += nodes.paragraph("", "", nodes.literal(text=f"examples/{path.name}"))
            listing += item
        intro = nodes.paragraph(
            text=f"Every example configuration of examples/ ({len(every)}) is shown above:"
        )
        return [intro, listing]


def _example_block(directive: SphinxDirective, path: Path) -> nodes.Node:
    caption = f"examples/{path.name}"
    if not path.exists():
        return _not_yet(f"The example {caption}")
    directive.env.note_dependency(str(path))
    text = path.read_text().rstrip()
    block = nodes.literal_block(text, text, language="yaml")
    block["source"] = str(path)
    return container_wrapper(directive, block, caption)


class CommandHelpDirective(SphinxDirective):
    """``.. command-help:: MODULE:FUNCTION`` -- the ``--help`` text of a command-line tool."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name, _, func_name = self.arguments[0].partition(":")
        module = _import_or_note(self, module_name, f"The command {module_name}")
        if isinstance(module, list):
            return module
        func = getattr(module, func_name or "main", None)
        if func is None:
            _log.warning("%s has no function %s", module_name, func_name, location=self.get_location())
            return []
        try:
            text = _capture_help(func)
        except Exception as exc:
            _log.warning("%s --help failed: %s", self.arguments[0], exc, location=self.get_location())
            return []
        if not text:
            _log.warning("%s:%s printed no help", module_name, func_name, location=self.get_location())
            return []
        return [nodes.literal_block(text, text, language="text")]


class CommandOutputDirective(SphinxDirective):
    """``.. command-output:: MODULE:FUNCTION`` -- what a command prints for the arguments given.

    The command runs in a child Python process (so its output and state cannot leak into Sphinx),
    from the repository root, with a 60 s limit.
    """

    required_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        module_name, _, func_name = self.arguments[0].partition(":")
        func_name = func_name or "main"
        args = " ".join(self.content).split()
        root = Path(self.env.app.confdir).resolve().parent
        code = f"import sys; from {module_name} import {func_name} as f; sys.exit(f(sys.argv[1:]))"
        env = dict(
            os.environ,
            COLUMNS="100",
            PYTHONPATH=os.pathsep.join([str(root / "python"), os.environ.get("PYTHONPATH", "")]),
        )
        try:
            result = subprocess.run(
                [sys.executable, "-c", code, *args],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _log.warning(
                "%s %s failed: %s", self.arguments[0], " ".join(args), exc, location=self.get_location()
            )
            return []
        if result.returncode != 0:
            _log.warning(
                "%s %s exited with %s:\n%s%s",
                self.arguments[0],
                " ".join(args),
                result.returncode,
                result.stdout,
                result.stderr,
                location=self.get_location(),
            )
            return []
        text = "\n".join(line.rstrip() for line in result.stdout.rstrip().splitlines())
        return [nodes.literal_block(text, text, language="text")]


def _capture_help(func: Any) -> str:
    """Call ``func(["--help"])`` with an 100-column terminal and return what it printed."""
    out = io.StringIO()
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            try:
                func(["--help"])
            except TypeError:  # a main() that reads sys.argv itself
                saved_argv = sys.argv
                sys.argv = [saved_argv[0], "--help"]
                try:
                    func()
                finally:
                    sys.argv = saved_argv
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return out.getvalue().rstrip()


def parse_attributes_section(doc: str | None) -> dict[str, str]:
    """Return ``{name: description}`` from the numpydoc ``Attributes`` section of ``doc``.

    An entry ``a, b : type`` gives both names the same description.
    """
    if not doc:
        return {}
    lines = textwrap.dedent("\n".join(doc.splitlines()[1:])).splitlines()
    result: dict[str, str] = {}
    inside = False
    names: list[str] = []
    text: list[str] = []

    def flush() -> None:
        for name in names:
            result[name] = " ".join(" ".join(text).split())

    for i, line in enumerate(lines):
        if line.strip() == "Attributes" and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            inside = True
            continue
        if not inside or set(line.strip()) == {"-"}:
            continue
        if line and not line[0].isspace():
            if i + 1 < len(lines) and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
                break  # next section
            flush()
            names = [n.strip() for n in line.split(":")[0].split(",") if n.strip()]
            text = []
        elif line.strip():
            text.append(line.strip())
    if inside:
        flush()
    return result


_INLINE_LITERAL = re.compile(r"``([^`]+)``|`([^`]+)`")


def _inline(text: str) -> list[nodes.Node]:
    """Plain text with ````literal```` and ```ref``` shown as literals (no reST parsing, no warnings)."""
    out: list[nodes.Node] = []
    pos = 0
    for match in _INLINE_LITERAL.finditer(text):
        if match.start() > pos:
            out.append(nodes.Text(text[pos : match.start()]))
        out.append(nodes.literal(text=(match.group(1) or match.group(2)).lstrip("~")))
        pos = match.end()
    if pos < len(text):
        out.append(nodes.Text(text[pos:]))
    return out


class DataclassFieldsDirective(SphinxDirective):
    """``.. command-output:: MODULE:FUNCTION``
        Call ``FUNCTION(args)`` with the whitespace-separated arguments of the directive's content, from
        the repository root (the parent of the doc directory), and show what it prints. Used to show the
        real ``run_script --plan`` output; a non-zero exit or an exception is a warning.
    ``.. dataclass-fields:: MODULE:CLASS`` -- the fields of a dataclass as a table."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name, _, class_name = self.arguments[0].partition(":")
        module = _import_or_note(self, module_name, self.arguments[0])
        if isinstance(module, list):
            return module
        cls = getattr(module, class_name, None)
        if cls is None:
            _log.warning("%s has no class %s", module_name, class_name, location=self.get_location())
            return []
        if not dataclasses.is_dataclass(cls):
            _log.warning("%s is not a dataclass", self.arguments[0], location=self.get_location())
            return []
        descriptions = parse_attributes_section(cls.__doc__)
        table, body = _table("mcal-dataclass-fields", {"Key": 22, "Type": 22, "Meaning": 56})
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            hints = {}
        for field in dataclasses.fields(cls):
            annotation = (
                field.type
                if isinstance(field.type, str)
                else getattr(field.type, "__name__", str(field.type))
            )
            description = descriptions.get(field.name)
            meaning = _inline(description) if description else [nodes.emphasis(text=MISSING_DESCRIPTION)]
            hint = hints.get(field.name)
            if isinstance(hint, type) and issubclass(hint, enum.StrEnum):
                meaning += _enum_values(hint)
            body += _row([[nodes.literal(text=field.name)], [nodes.literal(text=str(annotation))], meaning])
        return [table]


def _enum_values(cls: type[enum.StrEnum]) -> list[nodes.Node]:
    """`` One of: ``a`` (what a means), ``b`` (...).`` from the members of a status enum."""
    out: list[nodes.Node] = [nodes.Text(" One of: ")]
    for i, member in enumerate(cls):
        if i:
            out.append(nodes.Text("; "))
        out.append(nodes.literal(text=member.value))
        description = getattr(member, "description", "")
        if description:
            out.append(nodes.Text(f" ({description})"))
    out.append(nodes.Text("."))
    return out


def _row(cells: list[list[nodes.Node]]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        row += nodes.entry("", nodes.paragraph("", "", *cell))
    return row


def _not_yet(subject: str) -> nodes.note:
    """The note shown in place of ``subject`` when this version of the package does not have it."""
    note = nodes.note()
    note += nodes.paragraph(text=f"{subject} is not in this version of the package yet.")
    return note


def _import_or_note(directive: SphinxDirective, module_name: str, subject: str) -> Any:
    """Import ``module_name`` for ``directive``; if that fails, what the directive shows instead.

    A module this version does not have gives `_not_yet` of ``subject``; any other import error a
    warning and nothing (an empty list, which a module never is).
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return [_not_yet(subject)]
        _log.warning("Cannot import %s: %s", module_name, exc, location=directive.get_location())
        return []
    except Exception as exc:
        _log.warning("Cannot import %s: %s", module_name, exc, location=directive.get_location())
        return []


def _table(css_class: str, columns: Mapping[str, int]) -> tuple[nodes.table, nodes.tbody]:
    """An empty table of class ``css_class``: one header cell per column (name: relative width).

    Returns the table and its body, to which the caller adds one `_row` per line.
    """
    table = nodes.table(classes=[css_class])
    group = nodes.tgroup(cols=len(columns))
    table += group
    for width in columns.values():
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += _row([[nodes.Text(name)] for name in columns])
    body = nodes.tbody()
    group += body
    return table, body


def room_rules(docstring: str) -> tuple[str, str]:
    """Split a room docstring into its first paragraph and its "May import:" rule."""
    paragraphs = [" ".join(p.split()) for p in docstring.strip().split("\n\n") if p.strip()]
    summary = paragraphs[0] if paragraphs else ""
    rule = ""
    text = " ".join(docstring.split())
    index = text.find("May import:")
    if index >= 0:
        rule = text[index + len("May import:") :].strip()
    return summary, rule


def room_imports(package: Path) -> dict[str, set[str]]:
    """Map each room of ``package`` to the other rooms its modules import (relative or absolute)."""
    root_parts = _package_parts(package)
    result: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).parts
        if len(rel) < 2:
            continue  # top-level modules are not rooms
        room = rel[0]
        module_package = root_parts + list(rel[:-1])
        targets = result.setdefault(room, set())
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[list[str]] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module_package[: len(module_package) - (node.level - 1)]
                else:
                    base = []
                module = base + (node.module.split(".") if node.module else [])
                if node.module:
                    names.append(module)
                else:
                    names += [module + [alias.name] for alias in node.names]
            elif isinstance(node, ast.Import):
                names += [alias.name.split(".") for alias in node.names]
            for name in names:
                if name[: len(root_parts)] == root_parts and len(name) > len(root_parts):
                    target = name[len(root_parts)]
                    if target != room and (package / target).is_dir():
                        targets.add(target)
    return result


def _package_parts(package: Path) -> list[str]:
    """Dotted name of a package directory, found by walking up while ``__init__.py`` exists.

    Namespace packages (``lsst``, ``lsst.ts``) have no ``__init__.py``; they are taken up to the
    ``python`` source directory.
    """
    parts = [package.name]
    parent = package.parent
    while parent.name and parent.name != "python" and parent != parent.parent:
        parts.insert(0, parent.name)
        parent = parent.parent
    return parts


def _room_list(rooms: set[str]) -> list[nodes.Node]:
    if not rooms:
        return [nodes.emphasis(text="none")]
    out: list[nodes.Node] = []
    for i, room in enumerate(sorted(rooms)):
        if i:
            out.append(nodes.Text(", "))
        out.append(nodes.literal(text=room))
    return out


class PackageRoomsDirective(SphinxDirective):
    """``.. package-rooms:: PATH`` -- the subpackages of a package and what each may import."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        _, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        package = Path(path)
        rooms = sorted(p.parent for p in package.glob("*/__init__.py"))
        if not rooms:
            _log.warning("No subpackage found in %s", package, location=self.get_location())
            return []
        used = room_imports(package)
        table, body = _table(
            "mcal-rooms",
            {
                "Room": 12,
                "What it is": 40,
                "May import (its docstring)": 30,
                "Rooms it imports (the code)": 18,
            },
        )
        for room in rooms:
            init = room / "__init__.py"
            self.env.note_dependency(str(init))
            docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
            summary, rule = room_rules(docstring)
            body += _row(
                [
                    [nodes.literal(text=room.name)],
                    _inline(summary) if summary else [nodes.emphasis(text=MISSING_DESCRIPTION)],
                    _inline(rule) if rule else [nodes.emphasis(text="(not stated)")],
                    _room_list(used.get(room.name, set())),
                ]
            )
        return [table]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives and the ``mcal_examples_dir`` configuration value."""
    app.add_config_value("mcal_examples_dir", "../examples", "env")
    app.add_directive("config-schema", ConfigSchemaDirective)
    app.add_directive("config-defaults", ConfigDefaultsDirective)
    app.add_directive("example-config", ExampleConfigDirective)
    app.add_directive("example-configs", ExampleConfigsDirective)
    app.add_directive("command-help", CommandHelpDirective)
    app.add_directive("command-output", CommandOutputDirective)
    app.add_directive("dataclass-fields", DataclassFieldsDirective)
    app.add_directive("package-rooms", PackageRoomsDirective)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
