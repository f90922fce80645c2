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

"""``run_script``: run a SAL Script against the simulated observatory, like ScriptQueue's
``run_one_script``, in one process.

::

    run_script SCRIPT [-c CONFIG.yaml] [-p key=value ...] [--index N] [-l LEVEL] [--repo DIR]
               [--time-scale F] [--size tiny|default|full] [--report-dir DIR] [--plan] [--no-progress]
               [--ocps-executor pipetask|bps] [--bps-site-config FILE]

``SCRIPT`` is a path to a script file or a name such as ``maintel/make_comcam_calibrations.py``
found in the package's scripts directory. The embedded SAL bus lives in one process, so the script
module is loaded in-process; the simulated CCCamera, CCHeaderService, CCOODS and OCPS:2 are started
with the butler repository (``--repo``, else the configuration's ``repo``) and the script is driven
over the bus exactly as ``run_one_script`` does: a ``Remote("Script", index, evt_max_history=0)``
sends ``configure``, ``setLogLevel``, ``setGroupId`` and ``run``; log messages and state changes are
printed as they happen, with a compact progress line (`cli.progress`: images taken of the total per
type, OCPS jobs queued/running/done, elapsed and estimated remaining time) printed only when something
changed and at most every few seconds; ``--no-progress`` leaves it out. Unlike ``run_one_script``
the exit code tells the outcome: 0 only if the final state is DONE. Ctrl-C sends ``stop`` (a second
one quits at once).

``-p key=value`` pairs (YAML-typed, ``-p`` repeatable) override the keys of ``-c``; ``--repo`` and
``--report-dir`` override ``repo`` and ``report_dir``; the file's text is edited, not dumped again, so
error positions stay those of the file (`build_config_text`). Errors of the command line (a ``-p``
value that is not YAML, a file that is not UTF-8) are one line on stderr, exit code 2; a failed
configure is printed once, without the traceback (shown at ``-l DEBUG``). ``--plan`` validates the
configuration and prints the exposure sequence, the estimated duration and every OCPS job as it
would be sent (ids not known before the run shown as ``<placeholders>``) without starting anything.
The simulated OCPS forks each job's ``pipetask run`` from a warm worker that imported the stack once
(``--ocps-executor warm``, the default: `sim.warm_executor`); ``--ocps-executor pipetask`` starts a
``pipetask run`` subprocess per job instead, and ``--ocps-executor bps`` runs each job through
``bps submit`` with the Parsl plugin (`sim.bps_executor`); ``--bps-site-config`` names the compute
site.

May import: everything in this package.
"""

from __future__ import annotations

__all__ = [
    "main",
    "parse_args",
    "find_script",
    "load_script_class",
    "build_config_text",
    "read_config_file",
    "print_plan",
]

import argparse
import ast
import asyncio
import contextlib
import inspect
import logging
import os
import pathlib
import random
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

import yaml

if TYPE_CHECKING:
    from ..calib.durations import RunSite
    from ..sim.options import ObservatoryOptions
    from .bus_driver import BusDriver


def parse_args(args: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``observatory`` is the simulated observatory's
    `sim.options.ObservatoryOptions`."""
    parser = argparse.ArgumentParser(
        prog="run_script",
        description="Run a SAL Script against the simulated observatory (in one process), "
        "or print its plan with --plan.",
    )
    parser.add_argument("script", help="script file, or a name like maintel/make_comcam_calibrations.py")
    parser.add_argument("-c", "--config", type=pathlib.Path, help="configuration file (YAML)")
    parser.add_argument(
        "-p",
        "--parameters",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="configuration values (YAML-typed); they override the keys of -c; repeatable "
        "(-p a=1 -p b=2 is -p a=1 b=2)",
    )
    parser.add_argument("--index", type=int, default=None, help="script SAL index (default: random)")
    parser.add_argument("-l", "--loglevel", default=None, help="script log level (number or name)")
    from ..calib.config import schema_defaults

    parser.add_argument(
        "--repo",
        default=None,
        help="butler repository for the observatory and the script (default: the configuration's "
        f"repo, else {schema_defaults()['repo']})",
    )
    parser.add_argument(
        "--component-state",
        action="append",
        default=[],
        metavar="NAME=STATE",
        help="initial state of a state-only simulated CSC, e.g. MTDome=FAULT (LSSTCam: MTDome, "
        "MTDomeTrajectory); repeatable",
    )
    from ..sim.options import ObservatoryArguments

    observatory = ObservatoryArguments(parser)
    parser.add_argument(
        "--report-dir",
        default=None,
        help="directory of the run report (default: the configuration's report_dir, else <repo>/reports)",
    )
    parser.add_argument("--plan", action="store_true", help="print the plan and the OCPS jobs; take no data")
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="do not print the progress lines (images taken, OCPS jobs, time left)",
    )
    parsed = parser.parse_args(args)
    if parsed.index is None:
        parsed.index = random.randint(1, 99999)
    if not 0 < parsed.index <= 2**31 - 1:
        parser.error(f"--index {parsed.index} must be in [1, 2**31 - 1]")
    if parsed.config is not None and not parsed.config.is_file():
        parser.error(f"cannot find the configuration file {parsed.config}")
    for item in parsed.parameters:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            parser.error(f"-p {item!r}: expected key=value")
        try:
            yaml.safe_load(value)
        except yaml.YAMLError as e:
            what = " ".join(str(p) for p in (getattr(e, "context", None), getattr(e, "problem", None)) if p)
            parser.error(
                f"-p {item!r}: the value {value!r} of {key.strip()} is not valid YAML ({what or e}); "
                "e.g. detectors=[0,1], exp_times_dark=5, filter=r_03"
            )
    parsed.observatory = observatory.options(parsed)
    if parsed.loglevel is not None:
        level = parsed.loglevel
        parsed.loglevel = (
            int(level) if str(level).lstrip("-").isdigit() else logging.getLevelName(level.upper())
        )
        if not isinstance(parsed.loglevel, int):
            parser.error(f"unknown log level {level!r}")
    return parsed


def find_script(name: str) -> pathlib.Path:
    """Resolve a script path or name (relative to the package's scripts directory).

    Raises
    ------
    FileNotFoundError
        If there is no such script.
    """
    from ..scripts.utils import get_scripts_dir

    path = pathlib.Path(name)
    if path.is_file():
        return path.resolve()
    candidate = get_scripts_dir() / name
    if candidate.is_file():
        return candidate
    known = sorted(
        p.relative_to(get_scripts_dir()).as_posix()
        for p in get_scripts_dir().rglob("*.py")
        if p.is_file() and not p.name.startswith("_")
    )
    raise FileNotFoundError(
        f"Cannot find script {name!r} (not a file, nor in {get_scripts_dir()}); "
        f"known scripts: {', '.join(known) or 'none'}"
    )


def load_script_class(path: pathlib.Path) -> type:
    """Load a script file as a module, without starting it, and return its script class.

    An executable script ends with ``asyncio.run(SomeScript.amain())``; that top-level statement is
    left out (found with `ast`) and ``SomeScript`` is returned. Without such a statement, the only
    concrete ``BaseScript`` subclass the file defines or imports is returned.
    """
    from ..sal import salobj

    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    class_name = None
    body = []
    for node in tree.body:
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "asyncio.run":
            inner = call.args[0] if call.args else None
            if (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr == "amain"
            ):
                class_name = ast.unparse(inner.func.value)
            continue
        body.append(node)
    tree.body = body
    namespace: dict[str, Any] = {"__name__": f"_run_script_{path.stem}", "__file__": str(path)}
    exec(compile(tree, str(path), "exec"), namespace)
    if class_name is not None:
        script_class = eval(class_name, namespace)
        if inspect.isclass(script_class) and issubclass(script_class, salobj.BaseScript):
            return script_class
    candidates = [
        value
        for value in namespace.values()
        if inspect.isclass(value) and issubclass(value, salobj.BaseScript) and not inspect.isabstract(value)
    ]
    if len(candidates) == 1:
        return candidates[0]
    raise RuntimeError(
        f"Cannot tell which script class {path} runs (found {[c.__name__ for c in candidates]})"
    )


def build_config_text(
    config_text: str, parameters: Sequence[str], overrides: dict[str, Any] | None = None
) -> str:
    """The configuration text sent to the script: ``-c`` text with ``-p`` and option overrides.

    The text is edited, not dumped again, so that the script's error positions are those of the
    user's file: the lines of each overridden top-level key are replaced by a comment (the same
    number of lines) and the overriding ``key: value`` lines are appended at the end. Every ``-p``
    is kept (a later ``-p`` of the same key wins). A text that does not parse (syntax error) is sent
    verbatim, for the script to report precisely; a text that is not a block mapping (``{a: 1}``)
    is parsed, updated and dumped again.
    """
    updates: dict[str, Any] = {}
    for item in parameters:
        key, _, value = item.partition("=")
        updates[key.strip()] = yaml.safe_load(value)
    updates.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if not updates:
        return config_text
    try:
        node = yaml.compose(config_text, Loader=yaml.SafeLoader) if config_text.strip() else None
    except yaml.YAMLError:
        return config_text
    if node is not None and not (isinstance(node, yaml.MappingNode) and not node.flow_style):
        data = yaml.safe_load(config_text)
        if not isinstance(data, dict):
            return config_text
        data.update(updates)
        return yaml.safe_dump(data, sort_keys=False)
    lines = config_text.splitlines()
    if node is not None:
        for key_node, value_node in node.value:
            if str(key_node.value) not in updates:
                continue
            first = key_node.start_mark.line
            end = value_node.end_mark
            last = end.line if end.column > 0 else end.line - 1
            for i in range(first, max(first, last) + 1):
                lines[i] = f"# {key_node.value}: overridden by run_script (see the end)" if i == first else ""
    appended = [
        yaml.safe_dump({key: value}, default_flow_style=False, width=1_000_000, sort_keys=False).rstrip("\n")
        for key, value in updates.items()
    ]
    return "\n".join(lines + ["# run_script -p / --repo / --report-dir:"] + appended) + "\n"


def print_plan(
    script_class: type,
    config_text: str,
    out: TextIO | None = None,
    check_repo: bool = False,
    site: RunSite | None = None,
) -> int:
    """Validate the configuration and print the plan and every OCPS job. Return the exit code.

    With ``check_repo``, the checks the script's configure makes against the repository and the
    camera (`scripts.preflight.check_before_run`) run too, against the configuration's ``repo`` and
    the simulated camera's filter changer; a repository that does not exist yet (``run_script``
    makes it on the first run) is said so and not checked. The estimated duration is that of the run
    at ``site`` (``run_script`` passes the simulated observatory's, `sim.site.simulated_site`; the real
    observatory by default), as the script's configure estimates it.
    """
    out = out if out is not None else sys.stdout
    from ..calib.config import ConfigError
    from ..calib.prepare import prepare_run
    from ..sal import current_tai

    get_instrument = getattr(script_class, "get_instrument", None)
    if get_instrument is None:
        print(f"{script_class.__name__} has no calibration plan to show.", file=out)
        return 1
    instrument = get_instrument()
    try:
        prepared = prepare_run(config_text, instrument, current_tai(), site=site)
        if prepared.resume is not None:
            print(f"Resuming {prepared.config.resume_from_report}: {prepared.resume.describe()}", file=out)
        if check_repo:
            for line in _check_against_repo(prepared):
                print(line, file=out)
    except ConfigError as e:
        print(e.describe(), file=out)
        return 1
    plan = prepared.plan
    print(f"Plan of {script_class.__name__} (nothing is taken or sent):", file=out)
    print(plan.describe(), file=out)
    jobs = plan.planned_jobs()
    print(f"OCPS:{instrument.ocps_index} execute commands ({len(jobs)}), as they would be sent:", file=out)
    for i, job in enumerate(jobs, 1):
        print(f"{i}. {job.describe()}", file=out)
    return 0


def _check_against_repo(prepared: Any) -> list[str]:
    """Run `scripts.preflight.check_before_run` for ``--plan``; return what it checked."""
    from ..scripts.butler_gateway import ButlerGateway
    from ..scripts.preflight import check_before_run
    from ..sim.cameras import observatory_spec

    repo = prepared.config.repo
    if not pathlib.Path(repo).exists():
        return [f"Repository {repo} does not exist yet (run_script makes it): not checked against it"]
    spec = observatory_spec(prepared.config.instrument.name)
    filters = list(spec.filters) if spec.has_filter_changer else None
    cfg = prepared.config
    flat_filter = cfg.instrument.physical_filter_of({"filter": cfg.filter, **cfg.extras})
    return asyncio.run(
        check_before_run(
            prepared, ButlerGateway(repo), available_filters=filters, flat_physical_filter=flat_filter
        )
    )


def configure_failure_message(result: str, config_text: str = "") -> str:
    """What went wrong in a failed ``configure``, without salobj's ``config(<whole text>) failed:``."""
    text = result.removeprefix("Failed: ")
    prefix = f"config({config_text}) failed: "
    if text.startswith(prefix):
        return text[len(prefix) :]
    if text.startswith("config("):
        at = text.find(") failed: ")
        if at >= 0:
            return text[at + len(") failed: ") :]
    return text


def read_config_file(path: pathlib.Path) -> str:
    """The text of a configuration file.

    Raises
    ------
    ValueError
        If the file cannot be read or is not UTF-8 text (naming the file, the line and the byte).
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read the configuration file {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"the configuration file {path} is not UTF-8 text: byte 0x{data[e.start]:02x} on line {line} "
            f"cannot be decoded ({e.reason}); save it as UTF-8"
        ) from None


def _config_value(config_text: str, key: str) -> Any:
    """The value of a top-level key of the configuration text (`None` if absent or unreadable: the
    script itself reports what is wrong with the text)."""
    try:
        data = yaml.safe_load(config_text) if config_text.strip() else {}
    except yaml.YAMLError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def _script_instrument(script_class: type) -> Any:
    """The `calib.instrument.InstrumentSpec` of a calibration script class (LSSTComCam otherwise)."""
    from ..calib.instrument import COMCAM

    get_instrument = getattr(script_class, "get_instrument", None)
    return get_instrument() if get_instrument is not None else COMCAM


def _effective_repo(config_text: str, instrument: Any = None) -> str:
    """The repo the configuration names (the instrument's script default if absent or unreadable)."""
    from ..calib.config import schema_defaults
    from ..calib.instrument import COMCAM

    repo = _config_value(config_text, "repo")
    default = schema_defaults(instrument or COMCAM)["repo"]
    return str(repo) if isinstance(repo, str) and repo else str(default)


class _Interrupts:
    """Counts interrupts (SIGINT, SIGTERM): the first stops the script, a repeat within
    ``runtime.base_script.SIGNAL_REPEAT_WINDOW`` is the same interrupt (``timeout -s INT`` and
    Ctrl-C signal the whole process group), a later one quits at once.
    """

    def __init__(self, window: float | None = None) -> None:
        if window is None:
            from ..runtime.base_script import SIGNAL_REPEAT_WINDOW

            window = SIGNAL_REPEAT_WINDOW
        self.window = window
        self.first: float | None = None

    def on_signal(self, now: float | None = None) -> str:
        """Return ``"stop"``, ``"repeat"`` or ``"quit"`` for a signal received at ``now``."""
        now = time.monotonic() if now is None else now
        if self.first is None:
            self.first = now
            return "stop"
        return "repeat" if now - self.first < self.window else "quit"


async def _send_stop(driver: BusDriver) -> None:
    """Send ``stop`` to the script; a refused or unanswered stop is reported, never raised."""
    from ..sal import salobj

    try:
        await driver.stop(timeout=10)
    except (salobj.AckError, TimeoutError) as e:
        print(f"{_now()} stop not acknowledged: {e}", flush=True)


def _effective_detectors(config_text: str, instrument: Any = None) -> list[int] | None:
    """The detectors the configuration names (`None`: all, or not readable here: the script says why).

    The simulated observatory makes reference calibrations and raws for these only.
    """
    detectors = _config_value(config_text, "detectors")
    if not isinstance(detectors, list) or not detectors:
        return None
    from ..calib.instrument import COMCAM

    valid = (instrument or COMCAM).detector_ids
    if not all(isinstance(d, int) and not isinstance(d, bool) and d in valid for d in detectors):
        return None
    return sorted(set(detectors))


def _effective_filter(config_text: str, instrument_name: str = "LSSTComCam") -> str:
    """The physical filter the flats will be taken in: the configuration's, else the simulated camera's
    (LATISS: ``filter~grating``)."""
    from ..sim.cameras import observatory_spec

    spec = observatory_spec(instrument_name)
    name = _config_value(config_text, "filter")
    name = name if isinstance(name, str) and name in spec.filters else spec.initial_filter
    if not spec.gratings:
        return name
    grating = _config_value(config_text, "grating")
    return f"{name}~{grating if isinstance(grating, str) and grating in spec.gratings else spec.gratings[0]}"


def _now() -> str:
    return time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"


async def run_script(
    script_class: type,
    index: int,
    config_text: str,
    repo: str,
    options: ObservatoryOptions,
    loglevel: int | None = None,
    out: TextIO | None = None,
    progress: bool = True,
    progress_interval: float = 5.0,
    component_states: dict[str, Any] | None = None,
) -> int:
    """Start the simulated observatory, run the script over the bus; return 0 only if DONE.

    The observatory is the one of the script's instrument (``get_instrument``: LSSTComCam, LSSTCam or
    LATISS), run as ``options`` say; ``component_states`` sets the initial states of its state-only
    CSCs (the dome).
    """
    stream = out if out is not None else sys.stdout
    from astropy.time import Time

    from ..sal import ScriptState, salobj
    from ..sim.observatory import SimulatedObservatory

    os.environ.setdefault("LSST_TOPIC_SUBNAME", "run_script")
    from .bus_driver import FINAL_STATES, BusDriver

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    try:
        from ..sim.repository import ensure_repo
    except ImportError as e:  # pragma: no cover - the butler is part of the install
        say(f"Cannot create the butler repository: {e}")
        return 1
    instrument = _script_instrument(script_class)
    detectors = _effective_detectors(config_text, instrument)
    say(f"preparing the butler repository {repo} (size {options.size})")
    loop = asyncio.get_running_loop()

    def creation_step(line: str) -> None:
        loop.call_soon_threadsafe(say, f"{_now()} {line}")

    try:
        await asyncio.to_thread(
            ensure_repo,
            repo,
            size=options.size,
            detectors=detectors,
            filters=[_effective_filter(config_text, instrument.name)],
            progress=creation_step,
            instrument=instrument.name,
        )
    except Exception as e:
        say(f"Cannot use the butler repository {repo}: {e}")
        return 1

    async with SimulatedObservatory(
        options,
        repo=repo,
        detectors=detectors,
        instrument=instrument.name,
        component_states=component_states,
    ) as observatory:
        async with salobj.Domain() as domain:
            debug = loglevel is not None and loglevel <= logging.DEBUG

            def on_log(data: Any) -> None:
                if not debug and data.message.startswith("config(") and data.message.endswith(") failed"):
                    return  # salobj's "config(<the whole text>) failed"; the reason follows, once
                say(f"{_now()} {logging.getLevelName(data.level)}: {data.message}")
                if data.traceback and debug:
                    say(data.traceback)

            def on_state(state: ScriptState, reason: str) -> None:
                # A configure failure is printed once, when its command fails (below).
                shown = reason if state != ScriptState.CONFIGURE_FAILED or debug else ""
                say(f"{_now()} state: {state.name}" + (f" ({shown})" if shown else ""))

            driver = BusDriver(domain, index, on_state=on_state, on_log=on_log)
            await driver.start()
            loop = asyncio.get_running_loop()
            finished = driver.final
            # The simulated observatory's size, cores, load and time scale: one site for the
            # script's estimate (given before configure) and the progress line's.
            site = observatory.run_site()
            reporter = None
            if progress:
                from .progress import ProgressReporter, ProgressState, build_plan

                plan = build_plan(script_class, config_text, site)
                if plan is not None:
                    reporter = ProgressReporter(
                        domain,
                        ProgressState.from_plan(plan),
                        index,
                        plan.config.instrument.ocps_index,
                        lambda line: say(f"{_now()} {line}"),
                        min_interval=progress_interval,
                        camera=observatory.spec.camera,
                        oods=observatory.spec.oods,
                    )
                    await reporter.start()

            say("starting the script")
            script = script_class(index=index)
            script.site = site
            script.log.propagate = False
            interrupts = _Interrupts()

            def on_signal(signum: int) -> None:
                name = signal.Signals(signum).name
                action = interrupts.on_signal()
                if action == "repeat":
                    return
                if action == "quit":
                    say(f"second interrupt ({name}): quitting now")
                    if not finished.done():
                        finished.set_result((ScriptState.FAILED, "interrupted"))
                    return
                say(f"{name}: sending stop to the script (interrupt again to quit at once)")
                asyncio.ensure_future(_send_stop(driver))

            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(signum, on_signal, signum)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
            try:
                say("waiting for the script to load")
                await asyncio.wait_for(driver.unconfigured, timeout=60)
                say("waiting for the script to be configured")
                try:
                    await driver.configure(config_text, timeout=120)
                except salobj.AckError as e:
                    say(f"configure failed: {configure_failure_message(e.ackcmd.result, config_text)}")
                    await asyncio.wait_for(asyncio.shield(finished), timeout=10)
                    return 1
                if loglevel is not None:
                    say(f"setting script log level to {loglevel}")
                    await driver.set_log_level(loglevel)
                group_id = Time.now().tai.isot
                say(f"setting group ID={group_id}")
                await driver.set_group_id(group_id)
                say("running the script")
                run_task = driver.run(timeout=7 * 24 * 3600)
                state, reason = await finished
                run_task.cancel()
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(BaseException):
                        loop.remove_signal_handler(signum)
                if reporter is not None:
                    with contextlib.suppress(Exception):
                        await reporter.close()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(script.done_task, timeout=10)
                with contextlib.suppress(BaseException):
                    await script.close()
    if state == ScriptState.FAILED and reason == "interrupted":
        # Quitting at once does not hide where the script got to: it may have reached a final state.
        reached = ScriptState(script.state.state)
        if reached in FINAL_STATES:
            state, reason = reached, script.state.reason
    if state == ScriptState.DONE:
        say("script succeeded (DONE)")
        return 0
    say(f"script ended {state.name}" + (f": {reason}" if reason else ""))
    return 1


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point ``run_script``; returns (and exits with) the exit code."""
    parsed = parse_args(args)
    try:
        path = find_script(parsed.script)
        script_class = load_script_class(path)
    except (FileNotFoundError, RuntimeError, SyntaxError) as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    config_text = ""
    if parsed.config is not None:
        try:
            config_text = read_config_file(parsed.config)
        except ValueError as e:
            print(e, file=sys.stderr)
            sys.exit(2)
    overrides = {"repo": parsed.repo, "report_dir": parsed.report_dir}
    text = build_config_text(config_text, parsed.parameters, overrides)
    if parsed.plan:
        code = print_plan(script_class, text, check_repo=True, site=parsed.observatory.run_site())
        sys.exit(code)
    repo = parsed.repo or _effective_repo(text, _script_instrument(script_class))
    try:
        component_states = _parse_component_states(parsed.component_state)
    except ValueError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    print(f"index={parsed.index}; script={path}; config={text!r}", flush=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    for handler in logging.getLogger().handlers:
        # The simulated CSCs log at INFO; only their warnings and errors are worth showing here.
        handler.setLevel(logging.WARNING)
    from ..butler.repository import shared_butlers

    with shared_butlers():  # one butler per repository for the script's and the OCPS's many reads
        code = asyncio.run(
            run_script(
                script_class,
                parsed.index,
                text,
                repo=repo,
                options=parsed.observatory,
                loglevel=parsed.loglevel,
                progress=parsed.progress,
                component_states=component_states,
            )
        )
    sys.exit(code)


def _parse_component_states(items: Sequence[str]) -> dict[str, Any]:
    """``["MTDome=FAULT"]`` -> ``{"MTDome": State.FAULT}``.

    Raises
    ------
    ValueError
        For an item that is not ``NAME=STATE`` or an unknown state name.
    """
    from ..sal import salobj

    states = {}
    for item in items:
        name, sep, state = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--component-state {item!r}: expected NAME=STATE, e.g. MTDome=FAULT")
        try:
            states[name] = salobj.State[state.upper()]
        except KeyError:
            raise ValueError(
                f"--component-state {item!r}: unknown state {state!r}; expected one of "
                f"{[s.name for s in salobj.State]}"
            ) from None
    return states
