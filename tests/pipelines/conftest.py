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

"""End-to-end fixture of the PTC/defects tests: one default-size repo (no brighter-fatter) with
simulated flats and darks, and three OCPS jobs run once through the
`sim.pipetask_executor.PipetaskExecutor` (real ``pipetask run`` subprocesses):

* ``ptc``: ``cpPtc.yaml`` on detectors `DETECTORS` over the twenty 5 s flats plus a 17-pair ramp (and
  one dark, which the flat-only ISR must leave out);
* ``subset``: ``cpPtc.yaml#cpPtcGainFromFlatPairs`` on four 5 s flats of one detector;
* ``defects``: ``cpDefects.yaml`` on five 30 s darks and six 5 s flats of one detector.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from lsst.ts.makecalibrations.calib.jobs import data_query
from lsst.ts.makecalibrations.sim.exposure import ExposureInfo
from lsst.ts.makecalibrations.sim.ocps_jobs import JobOutcome, JobRequest
from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from lsst.ts.makecalibrations.sim.repository import ensure_repo, read_simulation_config
from lsst.ts.makecalibrations.sim.truth import TruthModel
from tests.butler.helpers import make_info
from tests.helpers import ocps_request
from tests.pipelines.ptc_helpers import (
    DARK_TIMES,
    DAY_OBS,
    DEFECTS_DETECTOR,
    DETECTORS,
    GAIN_FLAT_TIMES,
    N_DEFECT_FLATS,
    N_SUBSET_FLATS,
    RAMP_FLAT_TIMES,
    SUBSET_DETECTOR,
    EndToEnd,
)


def _infos() -> tuple[list[ExposureInfo], dict[str, list[int]]]:
    infos: list[ExposureInfo] = []
    ids: dict[str, list[int]] = {"gain": [], "ramp": [], "dark": []}
    seq = 0
    for kind, image_type, times, detectors in (
        ("gain", "FLAT", GAIN_FLAT_TIMES, DETECTORS),
        ("ramp", "FLAT", RAMP_FLAT_TIMES, DETECTORS),
        ("dark", "DARK", DARK_TIMES, (DEFECTS_DETECTOR,)),
    ):
        for exp_time in times:
            seq += 1
            info = make_info(seq, image_type, exp_time, detectors=tuple(detectors), day_obs=DAY_OBS)
            infos.append(info)
            ids[kind].append(info.exposure_id)
    return infos, ids


async def _run(
    repo: Path, infos: list[ExposureInfo], jobs: dict[str, JobRequest], seconds: dict[str, float]
) -> dict[str, JobOutcome]:
    start = time.monotonic()
    writer = ButlerRawWriter(repo)
    try:
        for info in infos:
            await writer.write_image(info)
    finally:
        writer.close()
    seconds["raws"] = time.monotonic() - start
    executor = PipetaskExecutor(repo, log_dir=repo.parent / "ocps")
    outcomes = {}
    for name, request in jobs.items():
        start = time.monotonic()
        outcomes[name] = await executor.run(request)
        seconds[name] = time.monotonic() - start
    return outcomes


@pytest.fixture(scope="session")
def end_to_end(tmp_path_factory: pytest.TempPathFactory) -> EndToEnd:
    """Create the repo, write the raws and run the three jobs (a minute or two on 2 cores)."""
    seconds: dict[str, float] = {}
    start = time.monotonic()
    repo = tmp_path_factory.mktemp("ptc_e2e") / "repo"
    ensure_repo(repo, size="default", brighter_fatter=False)
    seconds["repo"] = time.monotonic() - start
    infos, ids = _infos()
    # The seed's default config_options_ptc / config_options_defects, as the job builder sends them.
    ptc_config = "-j 1 -i LSSTComCam/calib --register-dataset-types -c cpPtcIsr:doCrosstalk=False"
    subset_config = "-j 1 -i LSSTComCam/calib --register-dataset-types -c cpPtcExtract:doCrosstalk=False"
    defects_config = (
        "-j 1 -i LSSTComCam/calib --register-dataset-types "
        "-c cpDefectsDarkIsr:doDefect=False -c cpDefectsFlatIsr:doDefect=False"
    )
    specs = {
        # The default FULLCOVARIANCE fit on 4 lags, not 8: the same code path at a fraction of the CPU.
        "ptc": (
            "cpPtc.yaml",
            ptc_config
            + " -c cpPtcExtract:doCrosstalk=False -c cpPtcSolve:maximumRangeCovariancesAstierFullCovFit=4",
            DETECTORS,
            ids["gain"] + ids["ramp"] + ids["dark"][:1],
        ),
        "subset": (
            "cpPtc.yaml#cpPtcGainFromFlatPairs",
            subset_config,
            (SUBSET_DETECTOR,),
            ids["gain"][:N_SUBSET_FLATS],
        ),
        "defects": (
            "cpDefects.yaml",
            defects_config,
            (DEFECTS_DETECTOR,),
            ids["dark"] + ids["gain"][:N_DEFECT_FLATS],
        ),
    }
    jobs = {
        name: ocps_request(
            f"test{name}",
            f"${{CP_PIPE_DIR}}/pipelines/LSSTComCam/{pipeline}",
            job_config,
            data_query("LSSTComCam", detectors, exposures),
            run_id=str(i),
        )
        for i, (name, (pipeline, job_config, detectors, exposures)) in enumerate(specs.items())
    }
    outcomes = asyncio.run(_run(repo, infos, jobs, seconds))
    print("\n[PTC/defects e2e timing, s] " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    model = TruthModel.from_simulation_config(read_simulation_config(repo))
    return EndToEnd(
        repo=repo,
        model=model,
        gain_flats=ids["gain"],
        ramp_flats=ids["ramp"],
        darks=ids["dark"],
        outcomes=outcomes,
        collections={name: job.output_collection for name, job in jobs.items()},
        seconds=seconds,
    )
