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

"""``run_script``: the executable, config overrides, and real runs whose exit code tells the outcome."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from lsst.ts.makecalibrations.calib.config import ConfigError, parse_config_text
from lsst.ts.makecalibrations.cli.run_script import (
    build_config_text,
    find_script,
    load_script_class,
    main,
    parse_args,
)
from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations, get_scripts_dir
from lsst.ts.makecalibrations.sim.observatory import DEFAULT_OCPS_EXECUTOR
from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

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
    assert yaml.safe_load(merged) == {"n_bias": 3, "n_dark": 5, "detectors": [0, 1], "repo": "/r"}
    # The file's lines stay where they were: the overridden key's line becomes a comment.
    overridden = "# n_dark: overridden by run_script (see the end)"
    assert merged.splitlines()[:2] == ["n_bias: 3  # comment", overridden]
    # A multi-line value is replaced by as many lines; a later -p of the same key wins.
    text = "detectors:\n- 0\n- 1\nnote: |\n  a\n  b\nn_flat: 2\n"
    merged = build_config_text(text, ["detectors=[2]", "n_flat=3", "n_flat=4"])
    assert merged.splitlines()[6] == "# n_flat: overridden by run_script (see the end)"
    assert yaml.safe_load(merged) == {"detectors": [2], "note": "a\nb\n", "n_flat": 4}
    # A duplicate key that is not overridden stays, for the script to refuse it precisely.
    duplicated = "n_bias: 3\nn_bias: 4\n"
    with pytest.raises(ConfigError, match="duplicate key"):
        parse_config_text(build_config_text(duplicated, ["n_dark=2"]))
    # A text that is not valid YAML is sent as is.
    assert build_config_text("n_bias: [3\n", ["n_dark=2"]) == "n_bias: [3\n"


def test_repeated_p_keeps_every_value() -> None:
    parsed = parse_args([SCRIPT, "-p", "n_bias=1", "-p", "n_dark=2", "n_flat=3"])
    assert parsed.parameters == ["n_bias=1", "n_dark=2", "n_flat=3"]
    text = build_config_text("", parsed.parameters)
    assert yaml.safe_load(text) == {"n_bias": 1, "n_dark": 2, "n_flat": 3}


def test_ocps_executor_options(tmp_path, capsys) -> None:
    assert parse_args([SCRIPT]).ocps_executor == DEFAULT_OCPS_EXECUTOR
    assert parse_args([SCRIPT, "--ocps-executor", "warm"]).ocps_executor == "warm"
    site = tmp_path / "site.yaml"
    site.write_text("computeSite: local\n")
    parsed = parse_args([SCRIPT, "--ocps-executor", "bps", "--bps-site-config", str(site)])
    assert parsed.observatory == ObservatoryOptions(ocps_executor="bps", bps_site_config=site)
    for args, words in (
        (["--bps-site-config", str(site)], "--bps-site-config is for --ocps-executor bps only."),
        (
            ["--ocps-executor", "bps", "--bps-site-config", str(tmp_path / "no.yaml")],
            "--bps-site-config: cannot find the BPS site configuration",
        ),
        (["--ocps-executor", "condor"], "invalid choice: 'condor'"),
        (["--time-scale", "0"], "--time-scale must be > 0, not 0.0."),
    ):
        with pytest.raises(SystemExit):
            parse_args([SCRIPT, *args])
        assert words in capsys.readouterr().err


def test_bad_p_value_is_a_clear_error(capsys) -> None:
    assert run_main([SCRIPT, "-p", "detectors=[0", "--plan"]) == 2
    err = capsys.readouterr().err
    assert "-p 'detectors=[0': the value '[0' of detectors is not valid YAML" in err
    assert "Traceback" not in err


def test_non_utf8_file_is_a_clear_error(tmp_path, capsys) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("n_bias: 3\nnote: caf\u00e9\n".encode("latin-1"))
    assert run_main([SCRIPT, "-c", str(path), "--plan"]) == 2
    err = capsys.readouterr().err
    assert f"the configuration file {path} is not UTF-8 text: byte 0xe9 on line 2" in err
    assert "Traceback" not in err


def test_error_positions_are_the_files_with_overrides(tmp_path, capsys) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# a comment\nn_bias: 3\nn_flat: 0\nn_dark: 2\n")
    code = run_main([SCRIPT, "-c", str(path), "-p", "n_bias=4", "detectors=[0]", "--repo", "/r", "--plan"])
    out = capsys.readouterr().out
    assert code == 1
    assert "n_flat: 0 is less than the minimum of 1 (line 3, column 1)" in out


def tiny_run_options(repo: pathlib.Path, report_dir: pathlib.Path) -> list[str]:
    """run_script's options for a quick run on the tiny simulated observatory."""
    return ["--repo", str(repo), "--size", "tiny", "--time-scale", "500", "--report-dir", str(report_dir)]


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
            *tiny_run_options(tiny_repo, reports),
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
    last = "progress: BIAS 3/3 DARK 2/2 | OODS 5/5 | jobs 0 queued, 0 running, 0 done of 0 | elapsed"
    assert last in progress[-1]
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
            # Exists (so configure accepts it) but holds no bias: the verify job fails in processing.
            "input_collections_verify_bias=LSSTComCam/raw/all",
            *tiny_run_options(tiny_repo, tmp_path),
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
    # One clear message: no traceback, no repetition of the configuration text.
    message = "n_bias: 0 is less than the minimum of 1"
    assert f"configure failed: Invalid configuration (1 problem):\n  - {message}" in out
    assert out.count(message) == 1
    assert "Traceback" not in out and "config(" not in out

    assert "configure failed" in out and "n_bias" in out


def test_unknown_script_lists_the_known_ones_and_help_gives_defaults(capsys) -> None:
    known = r"known scripts: auxtel/make_latiss_calibrations\.py, maintel/make_comcam_calibrations\.py"
    with pytest.raises(FileNotFoundError, match=known):
        find_script("maintel/no_such_script.py")
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: the configuration's repo, else /repo/LSSTComCam)" in help_text
