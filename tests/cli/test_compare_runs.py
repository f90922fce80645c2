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

"""``compare_runs``: list the runs of a folder; compare two runs' (or a run's and the truth's) gains."""

from __future__ import annotations

import json
import pathlib

import pytest

from lsst.ts.makecalibrations.calib.report import GainRecord, RunReport
from lsst.ts.makecalibrations.cli.compare_runs import amp_values, compare, list_runs, main


def write_run(directory: pathlib.Path, name: str, start: float, gains: list[GainRecord]) -> pathlib.Path:
    report = RunReport(script="MakeComCamCalibrations", final_state="DONE", start_tai=start, gains=gains)
    path = directory / f"{name}.json"
    report.write(path)
    return path


def test_list_and_compare(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    older = write_run(
        tmp_path,
        "b_older",
        100.0,
        [GainRecord([1, 2], 0, "C00", 1.40, 7.0), GainRecord([3, 4], 0, "C00", 1.50, 9.0)],
    )
    newer = write_run(tmp_path, "a_newer", 200.0, [GainRecord([5, 6], 0, "C00", 1.60, 8.5)])
    (tmp_path / "not_a_report.json").write_text("[]")
    assert [p for p, _ in list_runs(tmp_path)] == [older, newer]  # by start time, unreadable skipped
    # Noise in electrons: each pair's overscan noise (ADU) times its gain, 9.8 and 13.5 e-.
    assert amp_values(RunReport.load(older)) == {(0, "C00"): (pytest.approx(1.45), pytest.approx(11.65))}
    assert compare(amp_values(RunReport.load(older)), {}) == []

    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"2 run(s) in {tmp_path}:") and out.index("b_older") < out.index("a_newer")

    plot = tmp_path / "diff.png"
    assert main([str(older), str(newer), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "  0  C00   1.450   1.600  +0.150   11.65   13.60  +1.95" in out
    assert "1 amplifiers; |gain B-A| median 0.1500" in out
    assert plot.read_bytes().startswith(b"\x89PNG")

    # Against the truth a simulated repository records.
    repo = tmp_path / "repo"
    (repo / "simulation").mkdir(parents=True)
    truth = {"detectors": {"0": {"gain": {"C00": 1.5, "C01": 1.2}, "read_noise": {"C00": 8.0, "C01": 6.0}}}}
    (repo / "simulation" / "truth.json").write_text(json.dumps(truth))
    assert main([str(newer), "--truth", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "  0  C00   1.600   1.500  -0.100   13.60    8.00  -5.60" in out
    assert "max 0.1000 e-/ADU (B-A median -0.1000)" in out  # the run's gain is above the truth
    with pytest.raises(SystemExit):
        main([str(newer)])  # one report and no --truth: refused
