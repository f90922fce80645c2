"""``run_script``: the executable, config overrides, and real runs whose exit code tells the outcome."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from lsst.ts.makecalibrations.cli.run_script import build_config_text, find_script, load_script_class, main
from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations, get_scripts_dir

ROOT = pathlib.Path(__file__).parents[2]
SCRIPT = "maintel/make_comcam_calibrations.py"


def run_main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as excinfo:
        main(args)
    return int(excinfo.value.code or 0)


def test_executable_and_schema() -> None:
    path = get_scripts_dir() / SCRIPT
    assert path.is_file() and os.access(path, os.X_OK)
    assert path.read_text().startswith("#!/usr/bin/env python\n")
    assert find_script(SCRIPT) == path
    assert load_script_class(path) is MakeComCamCalibrations
    env = dict(
        os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    output = subprocess.run(
        [str(path), "1", "--schema"], capture_output=True, text=True, timeout=120, check=True, env=env
    )
    assert "calib_collection" in output.stdout and "additionalProperties: false" in output.stdout


def test_config_overrides() -> None:
    text = "n_bias: 3  # comment\nn_dark: 4\n"
    assert build_config_text(text, []) == text
    merged = build_config_text(text, ["n_dark=5", "detectors=[0, 1]"], {"repo": "/r", "report_dir": None})
    assert merged.splitlines() == ["n_bias: 3", "n_dark: 5", "detectors:", "- 0", "- 1", "repo: /r"]
    # A text with a duplicate key is sent as is, for the script to refuse it precisely.
    duplicated = "n_bias: 3\nn_bias: 4\n"
    assert build_config_text(duplicated, ["n_dark=2"]) == duplicated


def test_run_ends_done_with_exit_0(tmp_path, tiny_repo, capsys) -> None:
    reports = tmp_path / "reports"
    code = run_main(
        [
            SCRIPT,
            "-p",
            "script_mode=BIAS_DARK",
            "n_bias=2",
            "n_dark=1",
            "do_verify=false",
            "--repo",
            str(tiny_repo),
            "--size",
            "tiny",
            "--time-scale",
            "500",
            "--report-dir",
            str(reports),
            "--index",
            "7",
            "-l",
            "DEBUG",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for line in (
        "waiting for the script to be configured",
        "state: RUNNING",
        "state: DONE",
        "script succeeded",
    ):
        assert line in out
    assert "INFO: Took 3 biases" in out
    # Live progress: a first line when the run starts, the last when it ends, few in between.
    progress = [line for line in out.splitlines() if " progress: " in line]
    assert "progress: BIAS 0/3 DARK 0/2 | jobs 0 queued, 0 running, 0 done of 0 | elapsed 0:00" in progress[0]
    assert "progress: BIAS 3/3 DARK 2/2 | jobs 0 queued, 0 running, 0 done of 0 | elapsed" in progress[-1]
    assert progress[-1].endswith("| DONE") and len(progress) <= 6
    (report,) = reports.glob("make_comcam_calibrations_*_7.json")
    data = json.loads(report.read_text())
    assert data["final_state"] == "DONE" and data["config"]["repo"] == str(tiny_repo)


def test_failed_run_exits_non_zero(tmp_path, tiny_repo, capsys) -> None:
    code = run_main(
        [
            SCRIPT,
            "-p",
            "script_mode=BIAS",
            "n_bias=1",
            "detectors=[0]",
            "input_collections_verify_bias=no/such/collection",
            "--repo",
            str(tiny_repo),
            "--size",
            "tiny",
            "--time-scale",
            "500",
            "--report-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "state: FAILED" in out and "BIAS verify" in out
    assert " progress: " not in out
    assert "script ended FAILED" in out


def test_configure_failure_exits_non_zero(tmp_path, tiny_repo, capsys) -> None:
    code = run_main(
        [SCRIPT, "-p", "n_bias=0", "--repo", str(tiny_repo), "--size", "tiny", "--report-dir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "configure failed" in out and "n_bias" in out
