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

"""The documentation builds with no warning, and the generated pages say what the code says."""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "doc"
SCHEMA = ROOT / "python" / "lsst" / "ts" / "makecalibrations" / "calib" / "schema.yaml"
PACKAGE = ROOT / "python" / "lsst" / "ts" / "makecalibrations"

sys.path.insert(0, str(DOC / "_ext"))
import mcal_sphinx  # noqa: E402


def sphinx_build(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``sphinx -W --keep-going -b html`` as ``make doc`` does."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            *extra,
            str(source),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def schema_property_names(schema: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every property name of the schema, nested ones as ``parent.child``."""
    for name, prop in (schema.get("properties") or {}).items():
        yield f"{prefix}{name}"
        if isinstance(prop, Mapping) and "properties" in prop:
            yield from schema_property_names(prop, f"{prefix}{name}.")


def visible_text(page: str) -> str:
    """The text of an HTML page, tags removed and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.fixture(scope="module")
def built_doc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    result = sphinx_build(DOC, out, "-d", str(tmp_path_factory.mktemp("doctrees")))
    assert result.returncode == 0, f"sphinx failed:\n{result.stdout}\n{result.stderr}"
    assert "WARNING" not in result.stderr, result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    return out


def test_every_page_is_built(built_doc: Path) -> None:
    pages = [
        "index",
        "operators/procedure",
        "operators/examples",
        "operators/accessing",
        "operators/troubleshooting",
        "reference/configuration",
        "reference/run-script",
        "reference/report",
        "install",
        "dev/architecture",
        "dev/interfaces",
        "benchmarks",
        "version-history",
    ]
    for page in pages:
        assert (built_doc / f"{page}.html").stat().st_size > 2000, page


def test_configuration_reference_lists_every_schema_property(built_doc: Path) -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    names = list(schema_property_names(schema))
    assert len(names) > 40
    page = (built_doc / "reference" / "configuration.html").read_text()
    text = visible_text(page)
    missing = [name for name in names if name not in text]
    assert not missing, f"schema properties missing from the configuration reference: {missing}"
    for name in names:
        assert f'id="{mcal_sphinx.property_id(name)}"' in page, name
    # Every default is shown next to its property.
    for name, prop in schema["properties"].items():
        if "default" in prop:
            entry = page.split(f'id="{mcal_sphinx.property_id(name)}"', 1)[1].split('id="config-', 1)[0]
            assert mcal_sphinx._scalar(prop["default"]) in visible_text(entry), name


def test_examples_page_shows_every_example(built_doc: Path) -> None:
    text = visible_text((built_doc / "operators" / "examples.html").read_text())
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        assert f"examples/{example.name}" in text, example.name
        first_key = next(
            (line for line in example.read_text().splitlines() if line and not line.startswith("#")), None
        )
        if first_key:
            assert first_key.split(":")[0] in text
    assert "No other example configuration yet." not in text
    assert "Every example configuration of examples/" in text


def test_architecture_page_has_every_room(built_doc: Path) -> None:
    text = visible_text((built_doc / "dev" / "architecture.html").read_text())
    for init in PACKAGE.glob("*/__init__.py"):
        assert init.parent.name in text
    assert "May import" in text


def test_report_page_lists_report_fields(built_doc: Path) -> None:
    from lsst.ts.makecalibrations.calib.report import JobRecord, RunReport

    text = visible_text((built_doc / "reference" / "report.html").read_text())
    for cls in (RunReport, JobRecord):
        for name in cls.__dataclass_fields__:
            assert name in text, name
    # Every field of every record is described (from the dataclasses' Attributes sections).
    assert "No description in the schema yet." not in text
    assert "The HTML page" in text
    # Every status, with its meaning, listed from the status enums.
    from lsst.ts.makecalibrations.calib import statuses

    for cls in (
        statuses.AcquisitionStatus,
        statuses.JobStatus,
        statuses.VerificationStatus,
        statuses.CertificationStatus,
    ):
        for member in cls:
            assert f"{member.value} ({member.description})" in text, member


def test_missing_descriptions_and_examples_do_not_break_the_build(tmp_path: Path) -> None:
    """A property without description gets a visible placeholder; the -W build still passes."""
    source = tmp_path / "src"
    (source / "examples").mkdir(parents=True)
    (source / "examples" / "present.yaml").write_text("# An example.\nn_bias: 3\n")
    (source / "schema.yaml").write_text(
        textwrap.dedent(
            """\
            type: object
            required: [needed]
            properties:
              documented: {type: integer, default: 3, minimum: 1, description: "A documented value."}
              bare: {type: string}
              needed: {anyOf: [{type: number, exclusiveMinimum: 0}, {type: "null"}]}
              nested:
                type: object
                properties:
                  inner: {type: array, items: {type: integer}}
            """
        )
    )
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOC / '_ext')!r})\n"
        "extensions = ['mcal_sphinx']\nmcal_examples_dir = 'examples'\nhtml_theme = 'alabaster'\n"
    )
    (source / "index.rst").write_text(
        textwrap.dedent(
            """\
            Test
            ====

            .. config-schema:: schema.yaml

            .. config-defaults:: schema.yaml

            .. example-config:: present.yaml

            .. example-config:: absent.yaml

            .. example-configs::
               :exclude: present.yaml

            .. command-help:: lsst.ts.makecalibrations.no_such_module:main

            .. dataclass-fields:: lsst.ts.makecalibrations.calib.report:GainRecord

            .. command-output:: lsst.ts.makecalibrations.cli.run_script:main

               maintel/make_comcam_calibrations.py -p script_mode=BIAS n_bias=2 --plan
            """
        )
    )
    result = sphinx_build(source, tmp_path / "out")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "WARNING" not in result.stderr
    text = visible_text((tmp_path / "out" / "index.html").read_text())
    for name in ("documented", "bare", "needed", "nested", "nested.inner"):
        assert name in text
    assert text.count(mcal_sphinx.MISSING_DESCRIPTION) == 4  # bare, needed, nested, nested.inner
    assert "A documented value." in text
    assert "(required)" in text and "(no default)" in text
    assert "number or null" in text and "array of integer" in text
    assert "examples/present.yaml" in text and "n_bias: 3" in text
    assert "examples/absent.yaml is not in this version of the package yet" in text
    assert "Every example configuration of examples/ (1) is shown above:" in text
    assert "is not in this version of the package yet" in text
    assert "Read noise as measured by the extraction" in text
    assert "BIAS: 1 discarded + 2 kept biases" in text  # the real --plan output


def test_describe_type_and_constraints() -> None:
    prop = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "array", "items": {"type": "number"}}]}
    assert mcal_sphinx.describe_type(prop) == "number or array of number"
    assert mcal_sphinx.describe_type({"type": "string", "enum": ["A", "B"]}) == 'one of "A", "B"'
    assert mcal_sphinx.describe_type({"type": ["string", "null"]}) == "string or null"
    assert mcal_sphinx.describe_type({}) == "any"
    assert "as number: ≥ 0" in mcal_sphinx._constraints(prop)


def test_parse_attributes_section() -> None:
    doc = """Summary.

    Attributes
    ----------
    first, second : `float`
        Shared ``text``
        on two lines.
    third : `int`
        Alone.

    Notes
    -----
    ignored : not an attribute
    """
    assert mcal_sphinx.parse_attributes_section(doc) == {
        "first": "Shared ``text`` on two lines.",
        "second": "Shared ``text`` on two lines.",
        "third": "Alone.",
    }


def test_architecture_layers_are_the_imports() -> None:
    """The layer block of doc/dev/architecture.rst names exactly what each room imports, bottom up."""
    text = (DOC / "dev" / "architecture.rst").read_text()
    block = text.split("The layers, bottom up", 1)[1].split(".. code-block:: text", 1)[1]
    lines = [line.strip() for line in block.split("\n\n", 2)[1].splitlines() if line.strip()]
    imports = mcal_sphinx.room_imports(PACKAGE)
    seen: list[str] = []
    for line in lines:
        room, _, on = line.partition(" ")
        on = on.rsplit(" on ", 1)[1]
        drawn = set() if on == "nothing" else {name.strip() for name in on.split(",")}
        assert drawn == imports.get(room, set()), room
        assert drawn <= set(seen), f"{room} imports a room drawn above it"
        seen.append(room)
    assert set(seen) == {init.parent.name for init in PACKAGE.glob("*/__init__.py")}


def test_room_imports_follow_the_code() -> None:
    imports = mcal_sphinx.room_imports(PACKAGE)
    assert "sal" in imports["control"]
    assert "scripts" not in imports.get("sim", set())
    assert not imports.get("calib")
    assert not imports.get("runtime")


def test_every_module_says_what_it_may_import() -> None:
    """House rule: each module's docstring says what it may import (the rooms' rule, or narrower)."""
    silent = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "May import:" not in (ast.get_docstring(ast.parse(path.read_text())) or "")
    ]
    assert silent == [], f"modules whose docstring has no 'May import:' line: {silent}"
