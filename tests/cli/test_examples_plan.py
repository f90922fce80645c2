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

"""`run_script maintel/make_comcam_calibrations.py -c examples/<each>.yaml --plan` works for each."""

import pathlib
import subprocess
import sys

import pytest

from lsst.ts.makecalibrations.cli.run_script import main

ROOT = pathlib.Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SCRIPT = "maintel/make_comcam_calibrations.py"


def run_main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as excinfo:
        main(args)
    return int(excinfo.value.code or 0)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_plan_of_every_example(example: pathlib.Path, capsys) -> None:
    code = run_main([SCRIPT, "-c", str(example), "--plan"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Exposures:" in out and "Estimated duration:" in out
    assert "execute commands" in out and "data_query: instrument='LSSTComCam'" in out
    assert "{timestamp}" not in out


def test_plan_console_script_and_overrides() -> None:
    run_script = pathlib.Path(sys.executable).parent / "run_script"
    result = subprocess.run(
        [
            str(run_script),
            SCRIPT,
            "-c",
            str(ROOT / "examples" / "daily_default.yaml"),
            "--plan",
            "-p",
            "n_bias=3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BIAS: 1 discarded + 3 kept biases" in result.stdout
    assert "1. BIAS verify:" in result.stdout


def test_plan_refuses_bad_config(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("exp_times_flats: 3\n")
    assert run_main([SCRIPT, "-c", str(bad), "--plan"]) == 1
    assert "did you mean exp_times_flat?" in capsys.readouterr().out


def test_plan_of_the_seed_defaults_shows_the_translated_isr_labels(tmp_path, capsys) -> None:
    """The seed's ``-c isr:...`` defaults go out with the labels current cp_pipe/cp_verify have."""
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "script_mode: BIAS_DARK_FLAT\ngenerate_calibrations: true\ndo_defects: true\ndo_ptc: true\n"
    )
    assert run_main([SCRIPT, "-c", str(seed), "--plan"]) == 0
    out = capsys.readouterr().out
    configs = [
        line.split("config:", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("config:")
    ]
    assert any(c.endswith("-c cpBiasIsr:doDefect=False") for c in configs), out
    assert any(c.endswith("-c cpDarkIsr:doDefect=False") for c in configs), out
    assert any(c.endswith("-c cpFlatIsr:doDefect=False") for c in configs), out
    assert any(
        c.endswith("-c cpDefectsDarkIsr:doDefect=False -c cpDefectsFlatIsr:doDefect=False") for c in configs
    )
    assert any(c.endswith("-c cpPtcExtract:doCrosstalk=False") for c in configs), out
    assert "isr:" not in " ".join(c.replace("Isr:", "") for c in configs)
