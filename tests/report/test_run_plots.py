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

"""make_run_plots against a real butler repository: products are read from the job collections named
in the run report, and one PNG is written per product that exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from lsst.ts.makecalibrations.butler.repository import CURATED_RUN, make_butler
from lsst.ts.makecalibrations.calib.report import RunReport
from lsst.ts.makecalibrations.report import plots
from tests.helpers import finished_job

VERIFY_RUN = "u/ocps/verifytest"
RUN_STATS = {
    2026112500010: {"SUCCESS": True},
    2026112500011: {"SUCCESS": False, "FAILURES": ["R22_S11 C04 NOISE", "R22_S11 C05 NOISE"]},
    "SUCCESS": False,
}


@pytest.fixture(scope="module")
def repo(tiny_copy) -> Path:
    """A tiny repository: its curated calibrations stand in for the outputs of OCPS jobs."""
    root = tiny_copy("repo")
    butler = make_butler(root, writeable=True)
    try:
        butler.collections.register(VERIFY_RUN)
        butler.put(RUN_STATS, "verifyBiasStats", instrument="LSSTComCam", run=VERIFY_RUN)
    finally:
        butler.close()
    return root


def test_make_run_plots_from_butler(repo: Path, tmp_path: Path) -> None:
    report = RunReport(script="MakeComCamCalibrations", script_index=3, final_state="DONE")
    report.report_path = str(tmp_path / "run3.json")
    report.jobs = [
        finished_job("combine", "bias", CURATED_RUN),
        finished_job("combine", "dark", CURATED_RUN),
        finished_job("ptc", "ptc", CURATED_RUN),
        finished_job("verify", "bias", VERIFY_RUN),
        finished_job("verify", "dark", "u/ocps/does-not-exist"),  # read error: skipped, not raised
        finished_job("combine", "defects", CURATED_RUN, status="failed"),  # failed job: ignored
    ]
    paths = plots.make_run_plots(report.to_dict(), repo, tmp_path)
    names = sorted(p.name for p in paths)
    assert {"run3_mosaic_bias.png", "run3_mosaic_dark.png", "run3_ptc.png", "run3_gain_noise_ptc.png"} <= set(
        names
    )
    assert "run3_verification_failures.png" in names
    assert not any("gain_noise_flat_pairs" in n for n in names)
    for path in paths:
        assert path.parent == tmp_path
        pixels = imread(path)
        assert path.stat().st_size > 10_000
        assert float(np.var(pixels[..., :3])) > 1e-4, path.name


class FakeRef:
    def __init__(self, **data_id: object) -> None:
        self.dataId = data_id


class FakeButler:
    """Answers query_datasets/get like a butler holding flats of two filters."""

    def __init__(self) -> None:
        self.refs = [FakeRef(detector=d, physical_filter=f) for f in ("r_03", "g_01") for d in (0, 4)]

    def query_datasets(self, dataset_type: str, collections: list[str], explain: bool) -> list[FakeRef]:
        return self.refs if dataset_type == "flat" else []

    def get(self, ref: FakeRef) -> str:
        return f"{ref.dataId['physical_filter']}-{ref.dataId['detector']}"


def test_flat_mosaics_are_split_by_physical_filter() -> None:
    from lsst.ts.makecalibrations.report import _loaders

    inputs = _loaders.PlotInputs()
    flat_job = {"kind": "combine", "product": "flat", "output_collection": "u/ocps/x"}
    _loaders._load_job(FakeButler(), flat_job, inputs)
    assert inputs.mosaics == {
        "flat g_01": {0: "g_01-0", 4: "g_01-4"},
        "flat r_03": {0: "r_03-0", 4: "r_03-4"},
    }
