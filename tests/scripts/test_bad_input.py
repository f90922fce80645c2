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

"""The bad-input corpus over the bus: each case ends CONFIGURE_FAILED naming the key, no image taken.

The corpus (tests/data/bad_inputs.yaml) is sent to MakeComCamCalibrations by a Script remote against
the simulated observatory, as the ScriptQueue would. The cases that need a repository (read-only,
not a repository, a RUN collection as calib_collection, a missing input collection, an unknown task
label or config field) follow; `run_script --plan` is tested on several of them too.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest
import pytest_asyncio

from lsst.ts.makecalibrations.calib.config import MAX_CONFIG_CHARS
from lsst.ts.makecalibrations.cli.run_script import main
from lsst.ts.makecalibrations.sal import ScriptState, salobj
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
from lsst.ts.makecalibrations.sim.options import ObservatoryOptions
from tests.helpers import load_bad_inputs
from tests.scripts.driver import bare_repo, run_calibrations

ROOT = pathlib.Path(__file__).parents[2]
SCRIPT = "maintel/make_comcam_calibrations.py"

CORPUS = load_bad_inputs()


def assert_refused(result: Any, key: str | None, fragment: str) -> None:
    """CONFIGURE_FAILED before any image, the reason naming the key and the problem."""
    assert result.final_state == ScriptState.CONFIGURE_FAILED, result.reason
    assert fragment in result.reason
    if key is not None:
        assert f"{key}: " in result.reason
    assert result.observatory.camera.images_started == 0
    assert result.images == []
    assert result.report is None


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def observatory() -> Any:
    """One simulated observatory (no repository) for the whole corpus: each case is a new script."""
    salobj.set_test_topic_subname(randomize=True)
    async with SimulatedObservatory(ObservatoryOptions(time_scale=500.0, size="tiny")) as observatory:
        yield observatory


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
async def test_bad_input_is_refused_at_configure(
    tmp_path: pathlib.Path, observatory: SimulatedObservatory, entry: dict[str, Any]
) -> None:
    result = await run_calibrations(entry["text"], report_dir=tmp_path, timeout=30, observatory=observatory)
    assert_refused(result, entry["key"], entry["fragment"])
    # A text too long to use is not echoed back (salobj's reason repeats the configuration text).
    if len(entry["text"]) > MAX_CONFIG_CHARS:
        assert len(result.reason) < 5000


# --- cases that need a repository -----------------------------------------------------------------

EXTERNAL = (ROOT / "examples" / "ptc_and_defects_external.yaml").read_text()


def repo_cases(repo: pathlib.Path, tmp_path: pathlib.Path) -> dict[str, tuple[str, str, str]]:
    """id -> (configuration text, key, fragment) for a run against ``repo``."""
    a_file = tmp_path / "not_a_repo.txt"
    a_file.write_text("not a repository\n")
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir(exist_ok=True)
    processed = "script_mode: BIAS\nn_bias: 2\ndetectors: [0]\n"
    return {
        "repo_is_a_file": (f"{processed}repo: {a_file}\n", "repo", "is a file, not a butler repository"),
        "repo_is_not_a_repository": (f"{processed}repo: {empty_dir}\n", "repo", "it has no butler.yaml"),
        "repo_does_not_exist": (f"{processed}repo: {tmp_path / 'nowhere'}\n", "repo", "does not exist"),
        "calib_collection_is_a_run": (
            f"{processed}generate_calibrations: true\ncalib_collection: LSSTComCam/raw/all\nrepo: {repo}\n",
            "calib_collection",
            "LSSTComCam/raw/all is a RUN collection",
        ),
        "input_collection_missing": (
            f"{EXTERNAL}repo: {repo}\n",
            "input_collections_verify_bias",
            "collection 'LSSTComCam/calib/u/plazas/2021SEP16.1' does not exist",
        ),
        "unknown_config_field": (
            f"{processed}config_options_bias: '-c isr:doFoo=True'\nrepo: {repo}\n",
            "config_options_bias",
            "IsrConfig has no attribute doFoo",
        ),
        "unknown_task_label": (
            f"{processed}generate_calibrations: true\ncalib_collection: u/me/c\n"
            f"config_options_bias: '-c cpFooIsr:doDefect=False'\nrepo: {repo}\n",
            "config_options_bias",
            "cpBias.yaml has no task labelled 'cpFooIsr'",
        ),
        "bad_config_value": (
            f"{processed}config_options_ptc: '-c isr:doCrosstalk=maybe'\nrepo: {repo}\n",
            "config_options_ptc",
            "doCrosstalk",
        ),
    }


REPO_CASES = [
    "repo_is_a_file",
    "repo_is_not_a_repository",
    "repo_does_not_exist",
    "calib_collection_is_a_run",
    "input_collection_missing",
    "unknown_config_field",
    "unknown_task_label",
    "bad_config_value",
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", REPO_CASES)
async def test_repository_problems_are_refused_at_configure(
    tmp_path: pathlib.Path, tiny_repo: pathlib.Path, observatory: SimulatedObservatory, case: str
) -> None:
    text, key, fragment = repo_cases(tiny_repo, tmp_path)[case]
    result = await run_calibrations(text, report_dir=tmp_path, timeout=60, observatory=observatory)
    assert_refused(result, key, fragment)


def run_plan(args: list[str]) -> int:
    with pytest.raises(SystemExit) as excinfo:
        main([SCRIPT, "--plan", *args])
    return int(excinfo.value.code or 0)


@pytest.mark.parametrize(
    "case",
    ["calib_collection_is_a_run", "input_collection_missing", "unknown_config_field", "repo_is_a_file"],
)
def test_plan_makes_the_repository_checks(tmp_path, tiny_repo, capsys, case: str) -> None:
    text, key, fragment = repo_cases(tiny_repo, tmp_path)[case]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert run_plan(["-c", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{key}: " in out and fragment in out
    assert "Plan of" not in out


def test_plan_of_the_external_example_names_the_missing_collection(tiny_repo, capsys) -> None:
    code = run_plan(
        ["-c", str(ROOT / "examples" / "ptc_and_defects_external.yaml"), "--repo", str(tiny_repo)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "collection 'LSSTComCam/calib/u/plazas/2021SEP16.1' does not exist" in out


def test_plan_names_an_unknown_config_field(tiny_repo, capsys) -> None:
    code = run_plan(["-p", "config_options_bias=-c isr:doFoo=True", "--repo", str(tiny_repo)])
    out = capsys.readouterr().out
    assert code == 1
    assert "config_options_bias: " in out and "doFoo" in out


def test_plan_passes_the_repository_checks_of_a_good_configuration(tiny_repo, capsys) -> None:
    code = run_plan(
        ["-c", str(ROOT / "examples" / "demo_generate_and_certify.yaml"), "--repo", str(tiny_repo)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Repository {tiny_repo} can be written" in out
    assert "Every -c override names a task and a config field" in out
    assert "No certification of bias, dark, flat" in out


@pytest.mark.parametrize(
    "entry_id", ["exp_times_dark_nan", "options_command_substitution", "yaml_alias_bomb"]
)
def test_plan_refuses_corpus_entries(tmp_path, capsys, entry_id: str) -> None:
    (entry,) = [e for e in CORPUS if e["id"] == entry_id]
    path = tmp_path / "config.yaml"
    path.write_text(entry["text"])
    assert run_plan(["-c", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{entry['key']}: " in out and entry["fragment"] in out


def test_plan_names_a_read_only_repository(tmp_path) -> None:
    """On a read-only file system (a read-only bind mount, in a mount namespace of its own)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount the repository read-only")
    repo = tmp_path / "repo"
    shutil.copytree(bare_repo(), repo)
    run_script = pathlib.Path(sys.executable).parent / "run_script"
    command = (
        f"mount --bind {repo} {repo} && mount -o remount,bind,ro {repo} && "
        f"exec {run_script} {SCRIPT} --plan -p script_mode=BIAS n_bias=2 --repo {repo}"
    )
    try:
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=300
        )
    except OSError as e:
        pytest.skip(f"cannot run unshare: {e}")
    if "mount" in done.stderr and "Plan of" not in done.stdout and "repo:" not in done.stdout:
        pytest.skip(f"cannot mount read-only here (needs CAP_SYS_ADMIN): {done.stderr.strip()}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"repo: {repo} cannot be written (Read-only file system" in done.stdout
