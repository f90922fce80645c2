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


"""The cp_verify pipelines measure the per-detector statistics in the ISR quanta (fused), unchanged.

One verifyDark job (2 detectors x 2 darks, tiny size) runs through the simulated OCPS executor with a
``-c verifyDarkDet:...`` override. Its ``verifyDarkDetStats`` must equal, value for value, what the
per-exposure statistics task (`CpVerifyDetTask`, the unfused chain) computes from the
``verifyDarkProc`` images the job wrote, with the override's config, and differ from the default
config's: the override reaches the ISR quanta. The quanta are one per detector (ISR + statistics) and
one for the settings label. `pipeline_for_repo` is checked on repositories that ran the statistics per
exposure (the unfused chain comes back, with the same config fields and dataset types).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from lsst.daf.butler import Butler, DatasetType
from lsst.pipe.base import Pipeline

from lsst.ts.makecalibrations.calib.jobs import data_query
from lsst.ts.makecalibrations.pipelines.locations import expand_pipeline_uri
from lsst.ts.makecalibrations.pipelines.repo_compat import (
    DET_SETTINGS_CLASS,
    DET_STATS_CLASS,
    DETECTOR_ISR_CLASS,
    EXPOSURE_ISR_CLASS,
    VERIFY_ISR_CLASS,
    pipeline_for_repo,
)
from lsst.ts.makecalibrations.pipelines.tasks.verify_tasks import CpVerifyDetConfig, CpVerifyDetTask
from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from tests.butler.helpers import make_info
from tests.helpers import ocps_request

VERIFY_DARK = "${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyDark.yaml"
VERIFY_BIAS = expand_pipeline_uri("${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyBias.yaml")
CLIP = 3.0


@pytest.mark.slow
def test_fused_statistics_equal_the_per_exposure_task(tmp_path: Path, tiny_copy) -> None:
    repo = tiny_copy("fused")
    darks = [make_info(i, "DARK", 30.0, detectors=(0, 1)) for i in (1, 2)]

    async def write() -> None:
        writer = ButlerRawWriter(repo)
        await writer.start()
        for info in darks:
            await writer.write_image(info)
        writer.close()

    asyncio.run(write())
    request = ocps_request(
        "fused",
        VERIFY_DARK,
        f"-j 1 -i LSSTComCam/calib --register-dataset-types -c verifyDarkDet:numSigmaClip={CLIP}",
        data_query("LSSTComCam", (0, 1), [info.exposure_id for info in darks]),
    )
    outcome = asyncio.run(PipetaskExecutor(repo).run(request))
    assert outcome.exit_code == 0, outcome.message
    assert {"verifyDarkProc", "verifyDarkDetStats", "verifyDarkExpStats", "verifyDarkStats"} <= set(
        outcome.outputs
    )
    butler = Butler.from_config(str(repo), collections=["u/ocps/fused"])
    # One ISR quantum per detector made every image and its statistics; one settings quantum.
    assert len(list(butler.query_datasets("verifyDarkIsr_metadata"))) == 2
    assert len(list(butler.query_datasets("verifyDarkDet_metadata"))) == 1
    assert butler.get("verifyDarkDetSettings").numSigmaClip == CLIP

    overridden, default = CpVerifyDetConfig(), CpVerifyDetConfig()
    overridden.stageName = default.stageName = "DARK"
    overridden.numSigmaClip = CLIP
    stats_refs = list(butler.query_datasets("verifyDarkDetStats"))
    assert len(stats_refs) == 4
    n_changed = 0
    for ref in stats_refs:
        image = butler.get("verifyDarkProc", dataId=ref.dataId)
        detector = int(ref.dataId["detector"])
        fused = butler.get(ref)
        unfused = CpVerifyDetTask(config=overridden).run(image, detector_id=detector).outputStats
        assert fused == unfused, ref.dataId
        with_default = CpVerifyDetTask(config=default).run(image, detector_id=detector).outputStats
        n_changed += with_default["AMP"] != fused["AMP"]
    assert n_changed == len(stats_refs)  # the override changed every detector's NOISE


def _old_repo(tmp_path: Path, *labels: str) -> str:
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    for label in labels:
        butler.registry.registerDatasetType(
            DatasetType(
                f"{label}_metadata",
                ("instrument", "exposure", "detector"),
                "TaskMetadata",
                universe=butler.dimensions,
            )
        )
    return str(root)


def _classes(uri: str) -> dict[str, str]:
    document = yaml.safe_load(Path(uri.split("#", 1)[0]).read_text())
    return {label: task["class"] for label, task in document["tasks"].items()}


def test_new_repository_runs_the_fused_pipeline(tmp_path: Path) -> None:
    uri, notes = pipeline_for_repo(_old_repo(tmp_path), VERIFY_BIAS, tmp_path / "job")
    assert (uri, notes) == (VERIFY_BIAS, [])
    classes = _classes(uri)
    assert (classes["verifyBiasIsr"], classes["verifyBiasDet"]) == (VERIFY_ISR_CLASS, DET_SETTINGS_CLASS)


@pytest.mark.parametrize(
    ("labels", "isr_class"),
    [(("verifyBiasDet",), DETECTOR_ISR_CLASS), (("verifyBiasIsr", "verifyBiasDet"), EXPOSURE_ISR_CLASS)],
)
def test_repository_with_per_exposure_statistics_runs_them_unfused(
    tmp_path: Path, labels: tuple[str, ...], isr_class: str
) -> None:
    uri, notes = pipeline_for_repo(_old_repo(tmp_path, *labels), VERIFY_BIAS, tmp_path / "job")
    assert uri != VERIFY_BIAS and any("per-exposure statistics (CpVerifyDetTask)" in n for n in notes)
    classes = _classes(uri)
    assert (classes["verifyBiasIsr"], classes["verifyBiasDet"]) == (isr_class, DET_STATS_CLASS)
    # The rewritten pipeline is valid, keeps the config fields (an override of each label applies)
    # and writes the same dataset types.
    pipeline = Pipeline.from_uri(uri)
    pipeline.addConfigOverride("verifyBiasDet", "numSigmaClip", "4.0")
    pipeline.addConfigOverride("verifyBiasIsr", "doDefect", "False")
    graph = pipeline.to_graph()
    assert graph.tasks["verifyBiasDet"].config.numSigmaClip == 4.0
    det_inputs = {edge.dataset_type_name for edge in graph.tasks["verifyBiasDet"].inputs.values()}
    det_outputs = {edge.dataset_type_name for edge in graph.tasks["verifyBiasDet"].outputs.values()}
    assert det_inputs == {"verifyBiasProc"} and det_outputs == {"verifyBiasDetStats"}
