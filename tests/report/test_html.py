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

"""``report.html``: the run's HTML page rendered from a report (escaping, log links, gains, plots)."""

from __future__ import annotations

import base64
import pathlib

from lsst.ts.makecalibrations.calib.report import (
    ExposureRecord,
    GainRecord,
    JobRecord,
    RunReport,
)
from lsst.ts.makecalibrations.report.html import html_report_path, run_plots, write_html_report

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def test_page_beside_the_json(tmp_path: pathlib.Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    log = tmp_path / "repo" / "ocps" / "abc" / "outs" / "ocps.log"
    log.parent.mkdir(parents=True)
    log.write_text("log\n")
    report = RunReport(
        script="MakeComCamCalibrations",
        instrument="LSSTComCam",
        final_state="FAILED",
        failure_step="DARK combine",
        failure_reason="exit code 1 <b>not bold</b>",
        start_tai=100.0,
        end_tai=160.0,
        notes=["<script>alert(1)</script>"],
        config={"n_bias": 2},
    )
    report.exposures = [
        ExposureRecord(1, "BIAS", 0.0, discarded=True),
        ExposureRecord(2, "BIAS", 0.0, in_oods=True),
    ]
    report.jobs = [
        JobRecord("BIAS combine", "combine", "bias", "cpBias.yaml", "-j 1", "q", job_id="abc",
                  status="succeeded", exit_code=0, start_tai=110.0, end_tai=130.0, log_uri=log.as_uri()),
        JobRecord("DARK combine", "combine", "dark", "cpDark.yaml", "-j 1", "q", job_id="def",
                  status="failed", exit_code=1, log_uri="https://example.org/uws/def/log"),
    ]  # fmt: skip
    report.add_failure(
        "PTC", "2 of 16 amplifiers bad in the PTC", "ghi", details=["det 0 C00: x", "det 0 <C01>"]
    )
    report.gains = [
        GainRecord([3, 4], 0, "C00", 1.5, 6.25),
        GainRecord([3, 4], 0, "C01", 1.25, 7.0),
    ]
    path = reports / "run_1.json"
    report.report_path = str(path)
    report.write(path)
    (reports / "run_1_ptc.png").write_bytes(PNG)
    (reports / "other_run_ptc.png").write_bytes(PNG)  # another run's plot: not embedded

    assert run_plots(path) == [reports / "run_1_ptc.png"]
    page = write_html_report(path)
    assert page == html_report_path(path) == reports / "run_1.html"
    text = page.read_text()
    assert 'id="final-state">FAILED<' in text
    # Everything from the report is escaped.
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in text
    # A summarised failure lists its details on the page.
    assert "<summary>all 2</summary><ul><li>det 0 C00: x</li><li>det 0 &lt;C01&gt;</li></ul>" in text
    # Logs: a local one linked relative to the page, a remote one as given.
    assert '<a href="../repo/ocps/abc/outs/ocps.log">log</a>' in text
    assert '<a href="https://example.org/uws/def/log">log</a>' in text
    # Gains pivoted per pair and detector, one column per amplifier; the run's plot embedded.
    assert "<th>C00</th><th>C01</th>" in text and "1.500" in text and "7.00" in text
    assert text.count('<img src="data:image/png;base64,') == 1 and "run_1_ptc.png" in text
    assert "other_run_ptc" not in text
