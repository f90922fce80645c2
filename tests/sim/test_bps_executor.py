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

"""The BPS (Parsl) executor of the simulated OCPS: same datasets as pipetask, abort kills every process.

The fast tests check the per-detector clustering, the submit configuration, the observatory's choice
and the process-tree guard (a process that leaves the job's process group, as Parsl's worker pools
do, still dies). The slow
one runs a real ``bps submit`` job with the Parsl plugin's local site on a tiny two-detector ComCam
repository and compares it with the same ``cpBias`` job run by ``pipetask run`` (dataset types, data
IDs, pixel values, progress). The abort of a running bps job by a script stop, with no process of it
left, is ``tests/scripts/test_stop_bps_job.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from lsst.daf.butler import Butler

from lsst.ts.makecalibrations.butler.images import masked_image_arrays
from lsst.ts.makecalibrations.butler.readers import datasets_in_run
from lsst.ts.makecalibrations.pipelines.locations import expand_pipeline_uri
from lsst.ts.makecalibrations.sim.bps_executor import (
    LOCAL_SITE_CLASS,
    PARSL_SERVICE,
    BpsExecutor,
    detector_clusters,
)
from lsst.ts.makecalibrations.sim.ocps_jobs import JobRequest
from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor, PreparedJob
from lsst.ts.makecalibrations.sim.process_tree_guard import descendants, is_alive, tree_guard_command
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from lsst.ts.makecalibrations.sim.repository import ensure_repo
from lsst.ts.makecalibrations.sim.warm_executor import WarmPipetaskExecutor
from tests.butler.helpers import make_info
from tests.helpers import ocps_request

DAY_OBS = 20261125
DETECTORS = (0, 1)
CP = "${CP_PIPE_DIR}/pipelines/LSSTComCam"
BIAS_IDS = [int(f"{DAY_OBS}{seq:05d}") for seq in (1, 2, 3)]
QUERY = f"instrument='LSSTComCam' AND detector IN (0, 1) AND exposure IN ({', '.join(map(str, BIAS_IDS))})"
CONFIG = "-j 2 -i LSSTComCam/calib --register-dataset-types -c cpBiasIsr:doDefect=False"

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard needs Linux")


def request(job_id: str, pipeline: str = f"{CP}/cpBias.yaml", query: str = QUERY) -> JobRequest:
    return ocps_request(job_id, pipeline, CONFIG, query)


def test_detector_clusters_end_at_tasks_without_detector() -> None:
    """cpFlatNormalize needs every detector: the flat's clusters are the stages before and after it."""
    assert detector_clusters(expand_pipeline_uri(f"{CP}/cpFlat.yaml")) == {
        "detectorStage0": ["cpFlatIsr", "cpFlatMeasure"],
        "detectorStage1": ["cpFlatCombine"],
    }
    assert detector_clusters(expand_pipeline_uri(f"{CP}/cpBias.yaml")) == {
        "detectorStage0": ["cpBiasIsr", "cpBiasCombine"]
    }
    verify = expand_pipeline_uri("${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyBias.yaml")
    # The per-detector statistics are measured by the ISR quanta; verifyBiasDet (settings) is per instrument.
    assert detector_clusters(verify) == {"detectorStage0": ["verifyBiasIsr"]}


def prepared(tmp_path: Path, job_id: str = "cfg", query: str = QUERY) -> PreparedJob:
    return PreparedJob(
        request=request(job_id, query=query),
        pipeline=expand_pipeline_uri(f"{CP}/cpBias.yaml"),
        inputs=["LSSTComCam/raw/all", "LSSTComCam/calib"],
        processes=2,
        overrides=["cpBiasIsr:doDefect=False"],
        register_dataset_types=True,
        job_dir=tmp_path / job_id,
        log_path=tmp_path / job_id / "outs" / "ocps.log",
    )


def test_submit_config(tmp_path: Path) -> None:
    executor = BpsExecutor(tmp_path / "repo", max_processes=2)
    config = executor.submit_config(prepared(tmp_path))
    assert config["wmsServiceClass"] == PARSL_SERVICE
    assert config["computeSite"] == "local"
    assert config["site"]["local"] == {
        "class": LOCAL_SITE_CLASS,
        "cores": 2,
        "retries": 0,
        "run_dir": str(tmp_path / "cfg" / "bps" / "runinfo"),
    }
    assert config["payload"]["output"] == config["payload"]["outputRun"] == "u/ocps/cfg"
    assert config["pipetaskOutput"] == "" and config["finalJob"]["updateOutputChain"] == ""
    assert config["extraQgraphOptions"] == "-c cpBiasIsr:doDefect=False"
    assert config["cluster"] == {
        "detectorStage0": {"pipetasks": "cpBiasIsr,cpBiasCombine", "dimensions": "detector"}
    }
    grouped = BpsExecutor(tmp_path / "repo", detectors_per_job=24).submit_config(prepared(tmp_path))
    assert grouped["cluster"]["detectorStage0"] == {
        "pipetasks": "cpBiasIsr,cpBiasCombine",
        "dimensions": "instrument",
        "partitionDimensions": "detector",
        "partitionMaxSize": 24,
    }
    with pytest.raises(ValueError, match="braces"):
        executor.submit_config(prepared(tmp_path, query="instrument='{x}'"))
    site = tmp_path / "slurm.yaml"
    site.write_text(yaml.safe_dump({"computeSite": "slurm", "site": {"slurm": {"class": "x"}}}))
    with_site = BpsExecutor(tmp_path / "repo", site_config=site).submit_config(prepared(tmp_path))
    assert with_site["includeConfigs"] == [str(site)] and "site" not in with_site
    with pytest.raises(ValueError, match="does not exist"):
        BpsExecutor(tmp_path / "repo", site_config=tmp_path / "missing.yaml")


ESCAPER = (
    "import os, subprocess, sys, time\n"
    # A grandchild in a process group of its own, whose parent exits: as Parsl starts a worker pool.
    "subprocess.Popen(['bash', '-c', 'setsid sleep 300 & echo $! > ' + sys.argv[1]])\n"
    "time.sleep(float(sys.argv[2]))\n"
)


@linux_only
@pytest.mark.parametrize("how", ["command exits", "guard terminated"])
def test_tree_guard_kills_processes_outside_the_group(tmp_path: Path, how: str) -> None:
    pid_file = tmp_path / "pid"
    wait = "0.5" if how == "command exits" else "300"
    guard = subprocess.Popen(
        tree_guard_command([sys.executable, "-c", ESCAPER, str(pid_file), wait]), start_new_session=True
    )
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    escaped = int(pid_file.read_text())
    # The pid is written as soon as bash forks, maybe before setsid has made the new session.
    while is_alive(escaped) and os.getsid(escaped) != escaped and time.monotonic() < deadline:
        time.sleep(0.05)
    assert is_alive(escaped) and os.getpgid(escaped) != guard.pid
    if how == "guard terminated":
        assert escaped in descendants(guard.pid)  # re-parented to the guard, not to init
        os.killpg(guard.pid, signal.SIGTERM)
    code = guard.wait(timeout=30)
    assert code == (0 if how == "command exits" else 128 + signal.SIGTERM)
    assert not is_alive(escaped)


# --- real bps submit runs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bias_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ComCam repository with reference calibrations and three biases of detectors 0 and 1."""
    repo = tmp_path_factory.mktemp("bps") / "repo"
    ensure_repo(repo, size="tiny", detectors=DETECTORS, filters=["empty"])

    async def write() -> None:
        writer = ButlerRawWriter(repo, size="tiny")
        await writer.start()
        for seq in (1, 2, 3):
            await writer.write_image(make_info(seq, detectors=DETECTORS, day_obs=DAY_OBS))
        writer.close()

    asyncio.run(write())
    return repo


@pytest.mark.slow
async def test_bps_and_pipetask_give_the_same_datasets(bias_repo: Path, tmp_path: Path) -> None:
    progress: list[tuple[str, int, int, int]] = []
    pipetask = PipetaskExecutor(bias_repo, max_processes=2, log_dir=tmp_path)
    bps = BpsExecutor(bias_repo, max_processes=2, log_dir=tmp_path)
    bps.progress = lambda *args: progress.append(args)
    bps.progress_interval = 0.5
    by_pipetask, by_bps = await asyncio.gather(pipetask.run(request("pt")), bps.run(request("bps")))
    assert by_pipetask.exit_code == 0, by_pipetask.message
    assert by_bps.exit_code == 0, by_bps.message
    assert by_bps.outputs == by_pipetask.outputs == ["bias", "cpBiasProc"]
    assert by_bps.command == "bps submit" and by_pipetask.command == "pipetask run"
    assert by_bps.to_uws_json(request("bps"), 0.0)["parameters"]["command"] == "bps submit"

    butler = Butler.from_config(str(bias_repo))
    expected = datasets_in_run(bias_repo, "u/ocps/pt")
    found = datasets_in_run(bias_repo, "u/ocps/bps")
    # BPS writes the software versions once more per job; pipetask once per run.
    assert {key for key in expected if key[0] != "packages"} == {key for key in found if key[0] != "packages"}
    assert {key[0] for key in found} >= {"bias", "cpBiasProc", "cpBiasIsr_metadata", "cpBiasCombine_log"}
    for (name, data_id), ref in expected.items():
        if name in ("bias", "cpBiasProc"):
            want = masked_image_arrays(butler.get(ref))[:3]  # image, mask, variance
            got = masked_image_arrays(butler.get(found[(name, data_id)]))[:3]
            for a, b in zip(want, got, strict=True):
                np.testing.assert_array_equal(a, b)
    # No CHAINED collection: like pipetask's --output-run, the outputs are in the RUN only.
    assert not list(butler.collections.query("u/ocps/bps*", collection_types={"CHAINED"}))
    # Progress: 2 clusters (one per detector) of 2 quanta; the last report is every quantum done.
    assert progress and progress[-1] == ("bps", 4, 0, 4)
    log = bps.log_path("bps").read_text()
    assert "QuantumGraph contains 4 quanta" in log and "[ocps] exit_code=0 phase=completed" in log


def test_the_observatory_chooses_the_executor(tmp_path: Path) -> None:
    from lsst.ts.makecalibrations.sim.observatory import DEFAULT_OCPS_EXECUTOR, SimulatedObservatory
    from lsst.ts.makecalibrations.sim.options import ObservatoryOptions

    observatory = SimulatedObservatory(ObservatoryOptions(ocps_executor="bps"), repo=tmp_path)
    assert isinstance(observatory.executor, BpsExecutor)
    assert observatory.executor.max_processes == (os.cpu_count() or 1)
    # Detectors per BPS job are chosen per camera: one for ComCam's 9, 24 for LSSTCam's 189.
    assert observatory.executor.detectors_per_job == 1
    lsstcam = SimulatedObservatory(
        ObservatoryOptions(ocps_executor="bps"), repo=tmp_path, instrument="LSSTCam"
    ).executor
    assert isinstance(lsstcam, BpsExecutor) and lsstcam.detectors_per_job == 24
    executors = {"pipetask": PipetaskExecutor, "warm": WarmPipetaskExecutor}
    for name, executor_class in executors.items():
        assert (
            type(SimulatedObservatory(ObservatoryOptions(ocps_executor=name), repo=tmp_path).executor)
            is executor_class
        )
    default = SimulatedObservatory(repo=tmp_path)
    assert type(default.executor) is executors[DEFAULT_OCPS_EXECUTOR]
    with pytest.raises(ValueError, match="ocps_executor must be one of"):
        ObservatoryOptions(ocps_executor="condor")
    with pytest.raises(ValueError, match="time_scale must be > 0, not 0"):
        ObservatoryOptions(time_scale=0)
    with pytest.raises(ValueError, match="bps_site_config is for ocps_executor='bps' only"):
        ObservatoryOptions(bps_site_config=tmp_path / "site.yaml")
    with pytest.raises(ValueError, match="bps_site_config: cannot find the BPS site configuration"):
        ObservatoryOptions(ocps_executor="bps", bps_site_config=tmp_path / "site.yaml")
