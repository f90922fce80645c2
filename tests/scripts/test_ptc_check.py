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

"""The script's PTC check on a PTC the solver made with one amplifier at a bound of its fit: the
amplifier is named with the solver's reason and the PTC is not usable (so not certified)."""

import math

import yaml

from lsst.ts.makecalibrations.butler.calib_types import PhotonTransferCurve
from lsst.ts.makecalibrations.butler.repository import create_repo, make_butler
from lsst.ts.makecalibrations.calib.jobs import JobBuilder
from lsst.ts.makecalibrations.calib.prepare import prepare_run
from lsst.ts.makecalibrations.pipelines.tasks.ptc_tasks import PtcSolveConfig, solve_ptc
from lsst.ts.makecalibrations.sal import current_tai
from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations
from lsst.ts.makecalibrations.scripts.butler_gateway import ButlerGateway
from lsst.ts.makecalibrations.scripts.run_context import RunContext
from tests.helpers import finished_job

RUN = "u/ocps/ptc_check"


def partials(detector: int, noiseless: str | None) -> list[PhotonTransferCurve]:
    """Six Eq. 16 flat pairs (70 e- to 17 ke-) of amps C00 and C01 with 7 e- read noise; the amp
    ``noiseless`` has none, so the fit's n00 ends at its lower bound (0)."""
    result = []
    for i in range(6):
        partial = PhotonTransferCurve(detector, f"R22_S0{detector}", "PARTIAL", ["C00", "C01"])
        mean = 50.0 * 3.0**i
        for amp in partial.amp_names:
            n00 = 0.0 if amp == noiseless else 49.0
            bf = math.expm1(2 * -2e-6 * 1.4 * mean) / (2 * -2e-6 * 1.4 * mean)
            partial.input_exp_id_pairs[amp] = [[2 * i, 2 * i + 1]]
            partial.raw_means[amp] = [mean]
            partial.raw_vars[amp] = [mean / 1.4 * bf + n00 / 1.4**2]
            partial.exp_id_mask[amp] = [True]
        result.append(partial)
    return result


async def test_a_ptc_with_an_amp_at_a_fit_bound_is_not_usable(tmp_path) -> None:
    repo = tmp_path / "repo"
    create_repo(repo, "LSSTComCam")
    butler = make_butler(repo, writeable=True)
    butler.registry.registerRun(RUN)
    bounded = solve_ptc(partials(0, noiseless="C01"), PtcSolveConfig())
    good = solve_ptc(partials(1, noiseless=None), PtcSolveConfig())
    assert bounded.bad_amps == ["C01"] and not good.bad_amps
    reason = bounded.metadata["PTC BAD AMP REASONS"]["C01"]
    assert "at a bound of the fit" in reason
    for ptc in (bounded, good):
        butler.put(ptc, "ptc", instrument="LSSTComCam", detector=ptc.detector, run=RUN)

    script = MakeComCamCalibrations(index=1)
    try:
        text = yaml.safe_dump({"repo": str(repo), "detectors": [0, 1], "do_ptc": True})
        prepared = prepare_run(text, script.instrument, current_tai(), site=script.site)
        script.context = RunContext(
            config=prepared.config,
            plan=prepared.plan,
            job_builder=JobBuilder(prepared.config),
            butler=ButlerGateway(str(repo)),
        )
        job = finished_job("ptc", "ptc", RUN, name="PTC", pipeline="cpPtc.yaml")
        assert await script._ptc_is_usable(job) is False
        (failure,) = script.report.failures
        assert failure.step == "PTC" and failure.collection == RUN
        assert failure.reason.startswith("1 of 32 amplifiers bad in the PTC")
        assert failure.details == [f"detector 0 C01: {reason}"]
        # The same check passes a PTC without bad amplifiers.
        good_run = RUN + "_good"
        butler.registry.registerRun(good_run)
        butler.put(good, "ptc", instrument="LSSTComCam", detector=0, run=good_run)
        job.output_collection = good_run
        assert await script._ptc_is_usable(job) is True
        assert len(script.report.failures) == 1
    finally:
        await script.close()
