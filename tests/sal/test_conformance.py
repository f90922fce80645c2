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

"""Conformance with the real observatory stack, recorded as data in ``<repo>/../shared/reference``.

Three checks, each on the whole package and its tests (scanned with `ast`, never imported for this):

(a) every ``salobj.X`` (and ``salobj.Enum.MEMBER``) used outside `runtime` and `sal` exists in the real
    ``lsst.ts.salobj`` 8, and every name taken from `sal` exists where `sal` takes it from on the real
    stack (``lsst.ts.xml.enums.Script``, ``lsst.ts.utils``); the embedded enums have the real values;
(b) every call the project makes on ``ComCam`` / ``RemoteGroup`` binds to the real signature
    (positional count, keywords; for ``**kwargs`` only ComCam's instrument-setup keyword ``filter``),
    and the `control` mirror's methods have the real parameters;
(c) the embedded runtime's interfaces (`runtime.interfaces`) have the topics, field names, types and
    array lengths of the ts_xml definitions, and the indexing of SALSubsystems.xml.

The checkers are shown to fail on small fixture sources (``salobj.ScriptState``, a wrong
``take_imgtype`` keyword) so a slip cannot pass unnoticed. Everything skips, saying why, when the
reference folder is absent.
"""

import ast
import dataclasses
import enum
import inspect
import json
import pathlib
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from typing import Any

import pytest

from lsst.ts.makecalibrations import control, runtime
from lsst.ts.makecalibrations.runtime import interfaces

REPO = pathlib.Path(__file__).resolve().parents[2]


def _shared_folder(repo: pathlib.Path) -> pathlib.Path:
    """``<repo>/../shared``; for a git worktree, beside the main checkout the worktree belongs to."""
    shared = repo.parent / "shared"
    git = repo / ".git"
    if not shared.is_dir() and git.is_file():  # a worktree: ".git" says "gitdir: <main>/.git/worktrees/x"
        gitdir = pathlib.Path(git.read_text().partition("gitdir:")[2].strip())
        shared = gitdir.parents[2].parent / "shared"
    return shared


REFERENCE = _shared_folder(REPO) / "reference"
REAL_API = REFERENCE / "real-api"
TS_XML = REFERENCE / "ts_xml"
PACKAGE = REPO / "python" / "lsst" / "ts" / "makecalibrations"

#: Where the scan looks, and what it leaves out: the embedded runtime and the backend choice (they
#: *are* the salobj stand-in), and the runtime's own tests, which bind ``salobj`` to the runtime.
SCAN_ROOTS = (PACKAGE, REPO / "tests", REPO / "bench")
SCAN_EXCLUDED = (PACKAGE / "runtime", PACKAGE / "sal", REPO / "tests" / "runtime")

#: Names `sal` exports that are not taken from a real package (the backend switch).
SAL_OWN_NAMES = {"salobj", "BACKEND", "BACKEND_ENV_VAR"}
#: The module variables of ``sal/__init__.py`` and the real package each one is on the real stack.
SAL_SOURCES = {
    "_script_enums": "lsst.ts.xml.enums.Script",
    "_utils": "lsst.ts.utils",
    "salobj": "lsst.ts.salobj",
}

#: Receivers (dotted source text) that hold a client, besides names bound from a constructor call:
#: everywhere, and in the scripts (elsewhere ``self.camera`` is e.g. the simulated camera CSC).
KNOWN_RECEIVERS = {"comcam": "ComCam"}
SCRIPT_RECEIVERS = {
    "self.camera": "ComCam",
    "self._camera": "ComCam",
    "self.ocps_group": "RemoteGroup",
    "self._ocps_group": "RemoteGroup",
    "self._dome": "RemoteGroup",
}
REAL_CLASSES = {
    "RemoteGroup": "lsst.ts.observatory.control.remote_group.RemoteGroup",
    "BaseCamera": "lsst.ts.observatory.control.base_camera.BaseCamera",
    "ComCam": "lsst.ts.observatory.control.maintel.comcam.ComCam",
}
#: Real ComCam passes the ``**kwargs`` of its ``take_*`` methods to ``setup_instrument``, which accepts
#: only its ``instrument_setup_attributes`` (``["filter"]`` for ComCam); anything else is refused.
INSTRUMENT_SETUP_KEYWORDS = {"ComCam": {"filter"}, "BaseCamera": set(), "RemoteGroup": set()}

XML_INT_TYPES = {
    "byte",
    "short",
    "int",
    "long",
    "long long",
    "unsigned short",
    "unsigned int",
    "unsigned long",
}
XML_TYPES = {
    **{name: int for name in XML_INT_TYPES},
    "float": float,
    "double": float,
    "string": str,
    "boolean": bool,
}


def _load_json(name: str) -> Any:
    path = REAL_API / name
    if not path.is_file():
        pytest.skip(f"real-API reference {path} is absent (it lives in ../shared beside the repository)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def real_names() -> dict[str, dict[str, Any]]:
    """Real package -> {name: entry} (lsst.ts.salobj, lsst.ts.utils, lsst.ts.xml.enums.Script)."""
    data = _load_json("salobj-utils-xml-enums.json")
    return {package: dict(entry.get("names", {})) for package, entry in data.items()}


@pytest.fixture(scope="module")
def real_control() -> dict[str, Any]:
    """Real observatory-control class name -> {"init": signature, "members": {name: signature}}."""
    data = _load_json("observatory-control.json")
    return {short: data[full] for short, full in REAL_CLASSES.items()}


@pytest.fixture(scope="module")
def sal_sources() -> dict[str, tuple[str, str]]:
    return sal_name_sources((PACKAGE / "sal" / "__init__.py").read_text())


# --- (a) salobj names -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Use:
    """One use of a real-stack name in a source file."""

    where: str
    line: int
    package: str
    name: str
    member: str | None = None

    def describe(self) -> str:
        dotted = self.name + (f".{self.member}" if self.member else "")
        return f"{self.where}:{self.line}: {dotted} (from {self.package})"


def sal_name_sources(sal_source: str) -> dict[str, tuple[str, str]]:
    """Return ``{exported name: (real package, real name)}`` from ``X = _module.Y`` in sal's source."""
    sources: dict[str, tuple[str, str]] = {}
    for node in ast.walk(ast.parse(sal_source)):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id in SAL_SOURCES
        ):
            sources[node.targets[0].id] = (SAL_SOURCES[node.value.value.id], node.value.attr)
    return sources


def _is_sal_module(module: str | None, level: int) -> bool:
    """Is ``from <module> import ...`` an import of the project's `sal` package?"""
    if module is None:
        return False
    if level > 0:
        return module == "sal" or module.endswith(".sal")
    return module == "lsst.ts.makecalibrations.sal"


def salobj_uses(source: str, where: str, sal_sources: dict[str, tuple[str, str]]) -> Iterator[Use]:
    """Yield every use of a real-stack name in ``source``.

    ``salobj`` bound from `sal` (or ``lsst.ts.salobj``) gives ``salobj.X`` and ``salobj.X.Y`` uses;
    names imported from `sal` give the real package they come from, and their attributes.
    """
    tree = ast.parse(source)
    bound: dict[str, tuple[str, str]] = {}  # local name -> (real package, real name or "")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            from_sal = _is_sal_module(node.module, node.level)
            for alias in node.names:
                local = alias.asname or alias.name
                if from_sal and alias.name == "salobj":
                    bound[local] = ("lsst.ts.salobj", "")
                elif from_sal and alias.name not in SAL_OWN_NAMES:
                    package, real = sal_sources.get(alias.name, ("lsst.ts.makecalibrations.sal", alias.name))
                    bound[local] = (package, real)
                    yield Use(where, node.lineno, package, real)
                elif node.module == "lsst.ts" and node.level == 0 and alias.name == "salobj":
                    bound[local] = ("lsst.ts.salobj", "")
                elif node.module == "lsst.ts.salobj" and node.level == 0:
                    bound[local] = ("lsst.ts.salobj", alias.name)
                    yield Use(where, node.lineno, "lsst.ts.salobj", alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lsst.ts.salobj":
                    bound[alias.asname or "lsst"] = ("lsst.ts.salobj", "")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            package, real = bound[node.value.id]
            if real:  # an enum/class taken from a real package: ``ScriptState.DONE``
                yield Use(where, node.lineno, package, real, node.attr)
            else:  # the salobj module: ``salobj.State``
                yield Use(where, node.lineno, package, node.attr)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and bound.get(node.value.value.id, ("", "x"))[1] == ""
        ):
            # ``salobj.State.ENABLED``
            yield Use(where, node.lineno, bound[node.value.value.id][0], node.value.attr, node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and bound.get(node.args[0].id, ("", "x"))[1] == ""
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            yield Use(where, node.lineno, bound[node.args[0].id][0], node.args[1].value)


def missing_uses(uses: Iterator[Use], real_names: dict[str, dict[str, Any]]) -> list[str]:
    """Return a description of every use whose name (or enum member) the real package lacks."""
    problems = []
    for use in uses:
        entry = real_names.get(use.package, {}).get(use.name)
        if entry is None:
            problems.append(use.describe() + ": not exported by the real package")
        elif use.member is not None and entry.get("kind") == "enum":
            if use.member not in entry["members"] and not use.member.startswith("_"):
                problems.append(use.describe() + f": not a member of the real {use.name}")
    return problems


def scanned_files() -> list[pathlib.Path]:
    files = []
    for root in SCAN_ROOTS:
        for path in sorted(root.rglob("*.py")):
            if not any(path.is_relative_to(excluded) for excluded in SCAN_EXCLUDED):
                files.append(path)
    return files


def _where(path: pathlib.Path) -> str:
    return str(path.relative_to(REPO))


def test_every_salobj_name_the_project_uses_is_real(
    real_names: dict[str, dict[str, Any]], sal_sources: dict[str, tuple[str, str]]
) -> None:
    uses = [
        use for path in scanned_files() for use in salobj_uses(path.read_text(), _where(path), sal_sources)
    ]
    assert len({use.name for use in uses if use.package == "lsst.ts.salobj"}) > 10  # the scan sees them
    assert missing_uses(iter(uses), real_names) == []


def test_sal_takes_each_name_from_where_the_real_stack_keeps_it(
    real_names: dict[str, dict[str, Any]], sal_sources: dict[str, tuple[str, str]]
) -> None:
    from lsst.ts.makecalibrations import sal

    assert set(sal_sources) | SAL_OWN_NAMES == set(sal.__all__)
    missing = [
        f"sal.{name} = {pkg}.{real}"
        for name, (pkg, real) in sal_sources.items()
        if real not in real_names[pkg]
    ]
    assert missing == []
    # With the embedded backend each name is the runtime's object of the same name.
    assert all(getattr(sal, name) is getattr(runtime, real) for name, (_, real) in sal_sources.items())


@pytest.mark.parametrize(
    "package, name",
    [
        ("lsst.ts.salobj", "State"),
        ("lsst.ts.salobj", "SalRetCode"),
        ("lsst.ts.xml.enums.Script", "ScriptState"),
        ("lsst.ts.xml.enums.Script", "MetadataCoordSys"),
        ("lsst.ts.xml.enums.Script", "MetadataRotSys"),
        ("lsst.ts.xml.enums.Script", "MetadataDome"),
    ],
)
def test_embedded_enums_have_the_real_members(
    real_names: dict[str, dict[str, Any]], package: str, name: str
) -> None:
    embedded: type[enum.IntEnum] = getattr(runtime, name)
    members = {member_name: int(member) for member_name, member in embedded.__members__.items()}
    assert members == real_names[package][name]["members"]


SCRIPT_STATE_FIXTURE = """
from ..sal import ScriptState, salobj

def finished(state):
    return state in (ScriptState.DONE, salobj.ScriptState.FAILED, salobj.State.ENABLED)

def when():
    return salobj.current_tai() + getattr(salobj, "index_generator")
"""


def test_checker_catches_names_real_salobj_does_not_export(
    real_names: dict[str, dict[str, Any]], sal_sources: dict[str, tuple[str, str]]
) -> None:
    problems = missing_uses(salobj_uses(SCRIPT_STATE_FIXTURE, "fixture.py", sal_sources), real_names)
    assert sorted(problems) == [
        "fixture.py:5: ScriptState (from lsst.ts.salobj): not exported by the real package",
        "fixture.py:5: ScriptState.FAILED (from lsst.ts.salobj): not exported by the real package",
        "fixture.py:8: current_tai (from lsst.ts.salobj): not exported by the real package",
        "fixture.py:8: index_generator (from lsst.ts.salobj): not exported by the real package",
    ]
    wrong_member = "from ..sal import ScriptState\nx = ScriptState.FINISHED\n"
    assert missing_uses(salobj_uses(wrong_member, "f.py", sal_sources), real_names) == [
        "f.py:2: ScriptState.FINISHED (from lsst.ts.xml.enums.Script): not a member of the real ScriptState"
    ]


# --- (b) observatory-control signatures ----------------------------------------------------------


def real_signature(text: str) -> inspect.Signature | None:
    """An `inspect.Signature` from a recorded one such as ``async (self, n: int = 1) -> List[int]``.

    Annotations are dropped and defaults replaced by `None` (only names, kinds and whether a
    parameter is optional matter here); `None` for entries that are not callables.
    """
    text = text.removeprefix("async ").strip()
    if not text.startswith("("):
        return None
    text = re.sub(r"<[^<>]*>", "0", text)  # reprs such as <State.ENABLED: 2>
    function = ast.parse(f"def f{text}: pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
        argument.annotation = None
    for extra in (arguments.vararg, arguments.kwarg):
        if extra is not None:
            extra.annotation = None
    arguments.defaults = [ast.Constant(None) for _ in arguments.defaults]
    arguments.kw_defaults = [None if d is None else ast.Constant(None) for d in arguments.kw_defaults]
    function.returns = None
    namespace: dict[str, Any] = {}
    module = ast.fix_missing_locations(ast.Module([function], []))
    exec(compile(module, "<signature>", "exec"), namespace)
    return inspect.signature(namespace["f"])


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


@dataclasses.dataclass(frozen=True)
class ClientCall:
    """One call on an observatory-control client (``method`` ``__init__`` for the constructor)."""

    where: str
    line: int
    cls: str
    method: str
    n_positional: int
    keywords: tuple[str, ...]
    has_star: bool


def client_calls(source: str, where: str, script: bool = True) -> Iterator[ClientCall]:
    """Yield the calls on ``ComCam``/``RemoteGroup``/``BaseCamera`` objects (and their constructors).

    A receiver is known from `KNOWN_RECEIVERS` (and `SCRIPT_RECEIVERS` when ``script``) or from a name
    bound to a constructor call (``x = ComCam(...)``, ``async with ComCam(...) as x``).
    """
    tree = ast.parse(source)
    receivers = dict(KNOWN_RECEIVERS) | (SCRIPT_RECEIVERS if script else {})
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            cls = _dotted(node.value.func)
            if cls in REAL_CLASSES:
                for target in node.targets:
                    if (name := _dotted(target)) is not None:
                        receivers[name] = cls
        elif isinstance(node, ast.withitem) and isinstance(node.context_expr, ast.Call):
            cls = _dotted(node.context_expr.func)
            if cls in REAL_CLASSES and node.optional_vars is not None:
                if (name := _dotted(node.optional_vars)) is not None:
                    receivers[name] = cls
    # Calls a test makes inside ``with pytest.raises(...)`` are meant to be refused.
    refused_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
            isinstance(item.context_expr, ast.Call) and _dotted(item.context_expr.func) == "pytest.raises"
            for item in node.items
        ):
            refused_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or node.lineno in refused_lines:
            continue
        keywords = tuple(k.arg for k in node.keywords if k.arg is not None)
        has_star = any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        )
        func = _dotted(node.func)
        if func in REAL_CLASSES:
            yield ClientCall(where, node.lineno, func, "__init__", len(node.args), keywords, has_star)
        elif isinstance(node.func, ast.Attribute):
            receiver = _dotted(node.func.value)
            if receiver in receivers:
                cls = receivers[receiver]
                yield ClientCall(where, node.lineno, cls, node.func.attr, len(node.args), keywords, has_star)


def bad_client_calls(calls: Iterator[ClientCall], real_control: dict[str, Any]) -> list[str]:
    """Return a description of every call that the real class would refuse."""
    problems = []
    for call in calls:
        entry = real_control[call.cls]
        text = entry["init"] if call.method == "__init__" else entry["members"].get(call.method)
        where = f"{call.where}:{call.line}: {call.cls}.{call.method}"
        if text is None:
            problems.append(f"{where}: the real {call.cls} has no {call.method}")
            continue
        signature = real_signature(text)
        if signature is None:
            continue  # a property or an attribute
        parameters = signature.parameters
        named = [k for k in call.keywords if k not in parameters]
        var_keyword = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        allowed = INSTRUMENT_SETUP_KEYWORDS[call.cls] if var_keyword else set()
        refused = [k for k in named if k not in allowed]
        if refused:
            problems.append(f"{where}: keyword(s) {refused} not accepted (real signature {text})")
            continue
        extra = {k: None for k in named}
        bound_keywords = {k: None for k in call.keywords if k not in extra}
        receiver = [None] if "self" in parameters else []  # bound methods and constructors pass self
        try:
            if call.has_star:
                signature.bind_partial(*receiver, *[None] * call.n_positional, **bound_keywords)
            else:
                signature.bind(*receiver, *[None] * call.n_positional, **bound_keywords, **extra)
        except TypeError as error:
            problems.append(f"{where}: {error} (real signature {text})")
    return problems


def test_every_client_call_matches_the_real_signatures(real_control: dict[str, Any]) -> None:
    calls = [
        call
        for path in scanned_files()
        for call in client_calls(path.read_text(), _where(path), path.is_relative_to(PACKAGE / "scripts"))
    ]
    methods = {(call.cls, call.method) for call in calls}
    assert ("ComCam", "take_imgtype") in methods and ("RemoteGroup", "__init__") in methods  # scan sees them
    assert bad_client_calls(iter(calls), real_control) == []


TAKE_IMGTYPE_FIXTURE = """
async def take(self):
    await self.camera.take_imgtype("BIAS", 0.0, 1, group_id="g", exp_time=1.0)
    await self.camera.take_imgtype("FLAT", 1.0, 1, filter="r_03", note="fine")
    await self.camera.take_imgtype("DARK", 1.0)
    await self.camera.take_biases(3)
    async with ComCam(domain=None, logger=None) as cam:
        await cam.take_flats(1.0, 2, grating="x")
"""


def test_checker_catches_a_wrong_take_imgtype_keyword(real_control: dict[str, Any]) -> None:
    problems = bad_client_calls(client_calls(TAKE_IMGTYPE_FIXTURE, "fixture.py"), real_control)
    assert [problem.split(" (real signature")[0] for problem in problems] == [
        "fixture.py:3: ComCam.take_imgtype: keyword(s) ['exp_time'] not accepted",
        "fixture.py:5: ComCam.take_imgtype: missing a required argument: 'n'",
        "fixture.py:6: the real ComCam has no take_biases".replace(
            "fixture.py:6: ", "fixture.py:6: ComCam.take_biases: "
        ),
        "fixture.py:7: ComCam.__init__: keyword(s) ['logger'] not accepted",
        "fixture.py:8: ComCam.take_flats: keyword(s) ['grating'] not accepted",
    ]


def _parameters(signature: inspect.Signature) -> list[tuple[str, str, bool]]:
    return [(p.name, p.kind.name, p.default is not p.empty) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", sorted(REAL_CLASSES))
def test_control_mirror_has_the_real_signatures(real_control: dict[str, Any], name: str) -> None:
    """Each public method of the `control` mirror exists on the real class with the same parameters."""
    ours = getattr(control, name)
    real = real_control[name]
    problems = []
    for method_name, member in [("__init__", ours.__init__), *inspect.getmembers(ours)]:
        if (method_name.startswith("_") and method_name != "__init__") or not callable(member):
            continue
        if isinstance(inspect.getattr_static(ours, method_name, None), property):
            continue
        text = real["init"] if method_name == "__init__" else real["members"].get(method_name)
        if text is None:
            problems.append(f"{name}.{method_name}: not on the real {name}")
            continue
        expected = real_signature(text)
        if expected is None:
            problems.append(f"{name}.{method_name}: a method here, {text!r} on the real {name}")
            continue
        got = inspect.signature(member)  # from the class: instance methods include self
        if _parameters(got) != _parameters(expected):
            problems.append(f"{name}.{method_name}{got} differs from the real {text}")
        if inspect.iscoroutinefunction(member) != text.startswith("async "):
            problems.append(f"{name}.{method_name}: async here is {inspect.iscoroutinefunction(member)}")
    assert problems == [], "\n".join(problems)


# --- (c) the embedded interfaces against ts_xml ----------------------------------------------------

XML_KINDS = {
    "Commands": ("SALCommand", "command"),
    "Events": ("SALEvent", "logevent"),
    "Telemetry": ("SALTelemetry", ""),
}
#: AddedGenerics entries (SALSubsystems.xml) -> a topic each one adds, as the runtime names it.
ADDED_GENERIC_TOPICS = {
    "csc": ("commands", "enable"),
    "configurable": ("events", "configurationApplied"),
    "command_enterControl": ("commands", "enterControl"),
    "command_setLogLevel": ("commands", "setLogLevel"),
    "logevent_largeFileObjectAvailable": ("events", "largeFileObjectAvailable"),
}


def _xml_root(path: pathlib.Path) -> ElementTree.Element:
    if not path.is_file():
        pytest.skip(f"ts_xml reference {path} is absent (it lives in ../shared beside the repository)")
    return ElementTree.parse(path).getroot()


def xml_topics(root: ElementTree.Element) -> dict[str, dict[str, tuple[str, type, int]]]:
    """``{(kind, bare topic name): {field: (xml type, python type, array length or 0)}}`` of one file."""
    topics: dict[Any, dict[str, tuple[str, type, int]]] = {}
    for kind, (tag, infix) in XML_KINDS.items():
        for topic in root.iter(tag):
            full = topic.findtext("EFDB_Topic", "")
            name = full.split("_", 2)[-1] if infix else full.split("_", 1)[-1]
            fields = {}
            for item in topic.iter("item"):
                xml_type = item.findtext("IDL_Type", "").strip()
                count = int(item.findtext("Count", "1"))
                fields[item.findtext("EFDB_Name", "").strip()] = (
                    xml_type,
                    XML_TYPES[xml_type],
                    count if count > 1 and xml_type != "string" else 0,
                )
            topics[(kind.lower(), name)] = fields
    return topics


@pytest.fixture(scope="module")
def xml_generics() -> dict[Any, dict[str, tuple[str, type, int]]]:
    return xml_topics(_xml_root(TS_XML / "SALGenerics.xml"))


@pytest.fixture(scope="module")
def xml_subsystems() -> dict[str, ElementTree.Element]:
    root = _xml_root(TS_XML / "SALSubsystems.xml")
    return {sub.findtext("Name", ""): sub for sub in root.iter("SALSubsystem")}


def interface_problems(
    spec: interfaces.ComponentSpec,
    own: dict[Any, dict[str, tuple[str, type, int]]],
    generics: dict[Any, dict[str, tuple[str, type, int]]],
) -> list[str]:
    """Differences between an embedded component and its XML (own topics plus generics)."""
    problems = []
    for kind in ("commands", "events", "telemetry"):
        for name, topic in getattr(spec, kind).items():
            fields = own.get((kind, name), generics.get((kind, name)))
            if fields is None:
                problems.append(f"{spec.name} {kind} {name}: not in the XML")
                continue
            ours = {field.name: (field.type, field.count) for field in topic.fields}
            theirs = {field: (python_type, count) for field, (_, python_type, count) in fields.items()}
            if ours != theirs:
                wrong = sorted(set(ours.items()) ^ set(theirs.items()), key=str)
                problems.append(f"{spec.name} {kind} {name}: fields differ from the XML: {wrong}")
    return problems


#: Components whose own XML topics must all be in the runtime; CCCamera's XML has some 200 events,
#: of which the runtime defines the ones a camera client and the simulator use.
COMPLETE_COMPONENTS = {"Script", "CCOODS", "MTOODS", "ATOODS", "OCPS", "Test"}

#: Components the runtime defines whose XML is not among the reference files: their generic topics and
#: indexing are still checked, their own topics cannot be (the test says so instead of passing).
NO_REFERENCE_XML = {"ATSpectrograph"}


@pytest.mark.parametrize("name", sorted(interfaces.COMPONENTS))
def test_embedded_interfaces_match_ts_xml(
    name: str,
    xml_generics: dict[Any, dict[str, tuple[str, type, int]]],
    xml_subsystems: dict[str, ElementTree.Element],
) -> None:
    spec = interfaces.get_component_spec(name)
    if name in NO_REFERENCE_XML and not (TS_XML / name).is_dir():
        pytest.skip(f"ts_xml reference has no {name} XML: its own topics cannot be checked here")
    own: dict[Any, dict[str, tuple[str, type, int]]] = {}
    for kind in XML_KINDS:
        path = TS_XML / name / f"{name}_{kind}.xml"
        if path.is_file():
            own.update(xml_topics(_xml_root(path)))
    subsystem = xml_subsystems[name]
    problems = interface_problems(spec, own, xml_generics)
    indexed = subsystem.findtext("IndexEnumeration", "no").strip() != "no"
    if spec.indexed != indexed:
        problems.append(f"{name}: indexed={spec.indexed}, the XML says {indexed}")
    added = [g.strip() for g in subsystem.findtext("AddedGenerics", "").split(",") if g.strip()]
    for generic in added:
        kind, topic = ADDED_GENERIC_TOPICS[generic]
        if topic not in getattr(spec, kind):
            problems.append(f"{name}: AddedGenerics {generic} but no {kind} {topic}")
    if name in COMPLETE_COMPONENTS:
        missing = sorted(f"{kind} {topic}" for kind, topic in own if topic not in getattr(spec, kind))
        problems += [f"{name} {item}: in the XML, not in the runtime" for item in missing]
    assert problems == [], "\n".join(problems)


def test_interface_checker_catches_a_wrong_field() -> None:
    wrong = interfaces.component_spec(
        "OCPS", indexed=True, generics=["csc"], events={"job_result": "job_id: str, exit_code: float"}
    )
    xml = {
        ("events", "job_result"): {
            "job_id": ("string", str, 0),
            "exit_code": ("long", int, 0),
            "result": ("string", str, 0),
        }
    }
    problems = interface_problems(
        wrong, xml, {("events", "summaryState"): {"summaryState": ("long", int, 0)}}
    )
    differences = [("exit_code", (float, 0)), ("exit_code", (int, 0)), ("result", (str, 0))]
    assert f"OCPS events job_result: fields differ from the XML: {differences}" in problems
    assert "OCPS commands enable: not in the XML" in problems
