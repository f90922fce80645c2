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

"""A repository made and used before the per-detector ISR and the uncompressed intermediates still works.

Such a repository has no intermediate formatter entries in its ``butler.yaml`` and, once a job ran,
``<isr label>_metadata`` registered per exposure. The simulated OCPS then runs that ISR label per
exposure (and says so in the job log); the outputs are the same dataset types, written compressed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsst.daf.butler import Butler, DatasetType

from lsst.ts.makecalibrations.butler.images import masked_image_arrays
from lsst.ts.makecalibrations.calib.jobs import data_query
from lsst.ts.makecalibrations.sim.exposure import ExposureInfo
from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from tests.butler.helpers import make_info
from tests.butler.test_intermediate_format import compressed_planes, strip_intermediate_formatters
from tests.helpers import ocps_request

pytestmark = pytest.mark.slow

VERIFY = "${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyBias.yaml"


async def write(repo: Path, exposures: list[ExposureInfo]) -> None:
    writer = ButlerRawWriter(repo)
    await writer.start()
    for info in exposures:
        await writer.write_image(info)
    writer.close()


def test_old_repository_runs_isr_per_exposure(tmp_path: Path, tiny_copy) -> None:
    repo = tiny_copy("old_repo")
    exposures = [make_info(1, detectors=(0,)), make_info(2, detectors=(0,))]
    asyncio.run(write(repo, exposures))
    strip_intermediate_formatters(repo)
    butler = Butler.from_config(str(repo), writeable=True)
    # What the per-exposure verifyBiasIsr of an earlier job registered.
    butler.registry.registerDatasetType(
        DatasetType(
            "verifyBiasIsr_metadata",
            ("instrument", "exposure", "detector"),
            "TaskMetadata",
            universe=butler.dimensions,
        )
    )
    request = ocps_request(
        "old",
        VERIFY,
        "-j 1 -i LSSTComCam/calib --register-dataset-types",
        data_query("LSSTComCam", (0,), [info.exposure_id for info in exposures]),
    )
    executor = PipetaskExecutor(repo)
    outcome = asyncio.run(executor.run(request))
    assert outcome.exit_code == 0, outcome.message
    assert {"verifyBiasProc", "verifyBiasDetStats", "verifyBiasStats"} <= set(outcome.outputs)
    log = executor.log_path("old").read_text()
    assert "running them per exposure (SelectedIsrTask)" in log
    # The statistics then run per exposure too (the ISR cannot measure them): the unfused chain.
    assert "per-exposure statistics (CpVerifyDetTask)" in log
    butler = Butler.from_config(str(repo), collections=["u/ocps/old"])
    refs = list(butler.query_datasets("verifyBiasProc"))
    assert len(refs) == 2
    assert compressed_planes(butler.getURI(refs[0]).ospath)["IMAGE"]
    image, _, _, metadata = masked_image_arrays(butler.get(refs[0]))
    assert image.shape[0] > 0 and "LSST ISR BIAS SOURCE" in metadata
    # Every exposure got its own quantum: the metadata is per exposure.
    assert len(list(butler.query_datasets("verifyBiasIsr_metadata"))) == 2
    assert len(list(butler.query_datasets("verifyBiasDet_metadata"))) == 2
