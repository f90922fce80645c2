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

"""cpBias, cpDark, cpFlat and verify* run for real (pipetask subprocesses) in a tiny tmp repo.

One module fixture copies the session's tiny repository (`tiny_copy`), adds `ButlerRawWriter` raws
(detectors 0 and 1), then runs the calibration chain through `PipetaskExecutor` as the OCPS would:
each product is certified with `butler.certification.certify` before the next job needs it. The tests
then check the outcomes, the products against the simulated truth, and the verification results.
"""

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lsst.daf.butler import Butler, CollectionType

from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.butler.certification import certify
from lsst.ts.makecalibrations.butler.images import masked_image_arrays
from lsst.ts.makecalibrations.butler.readers import read_verify_stats
from lsst.ts.makecalibrations.calib.jobs import data_query
from lsst.ts.makecalibrations.sim.exposure import ExposureInfo
from lsst.ts.makecalibrations.sim.ocps_jobs import JobOutcome, JobRequest
from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from lsst.ts.makecalibrations.sim.repository import read_simulation_config
from lsst.ts.makecalibrations.sim.truth import TruthModel
from tests.butler.helpers import make_info
from tests.helpers import ocps_request, wait_until

pytestmark = pytest.mark.slow

DAY_OBS = 20261125
DETECTORS = (0, 1)
CALIB = "u/test/calib"
NOISY_CALIB = "u/test/noisy_calib"
BEGIN, END = "2026-11-01", "2026-12-01"
NOISY = (1, "C17", 25.0)
CP = "${CP_PIPE_DIR}/pipelines/LSSTComCam"
VERIFY = "${CP_VERIFY_DIR}/pipelines/LSSTComCam"


def query(exposures: list[ExposureInfo]) -> str:
    return data_query("LSSTComCam", DETECTORS, [info.exposure_id for info in exposures])


@dataclasses.dataclass
class Chain:
    repo: Path
    truth: TruthModel
    exposures: dict[str, list[ExposureInfo]]
    outcomes: dict[str, JobOutcome]
    requests: dict[str, JobRequest]


async def write_raws(repo: Path) -> dict[str, list[ExposureInfo]]:
    writer = ButlerRawWriter(repo)
    await writer.start()
    plan = {"bias": ("BIAS", 6, 0.0), "dark": ("DARK", 5, 30.0), "flat": ("FLAT", 6, 5.0)}
    exposures: dict[str, list[ExposureInfo]] = {}
    seq = 1
    for name, (kind, count, exposure_time) in plan.items():
        exposures[name] = []
        for _ in range(count):
            info = make_info(seq, kind, exposure_time, detectors=DETECTORS, day_obs=DAY_OBS)
            await writer.write_image(info)
            exposures[name].append(info)
            seq += 1
    # Four more biases in which R22_S01 C17 is noisy (fault injected in the truth).
    assert writer.truth is not None
    writer.truth = dataclasses.replace(writer.truth, noisy_amps=(NOISY,))
    exposures["noisy_bias"] = []
    for _ in range(4):
        info = make_info(seq, "BIAS", detectors=DETECTORS, day_obs=DAY_OBS)
        await writer.write_image(info)
        exposures["noisy_bias"].append(info)
        seq += 1
    writer.close()
    return exposures


async def run_chain(repo: Path, exposures: dict[str, list[ExposureInfo]]) -> Chain:
    executor = PipetaskExecutor(repo, max_processes=1)
    outcomes: dict[str, JobOutcome] = {}
    requests: dict[str, JobRequest] = {}

    async def job(name: str, pipeline: str, exps: list[ExposureInfo], config: str) -> JobOutcome:
        request = ocps_request(f"job{name}", pipeline, config, query(exps))
        requests[name] = request
        outcomes[name] = await executor.run(request)
        return outcomes[name]

    # The seed's bare ``-c isr:...`` as the script's job builder sends it: the pipeline's ISR label.
    cp_config = f"-j 4 -i {CALIB},LSSTComCam/calib --register-dataset-types -c cpBiasIsr:doDefect=False"
    for name, pipeline, product in (
        ("bias", f"{CP}/cpBias.yaml", "bias"),
        ("dark", f"{CP}/cpDark.yaml", "dark"),
        ("flat", f"{CP}/cpFlat.yaml", "flat"),
    ):
        label = f"cp{name.capitalize()}Isr"
        outcome = await job(name, pipeline, exposures[name], cp_config.replace("cpBiasIsr", label))
        assert outcome.exit_code == 0, outcome.message
        certify(repo, f"u/ocps/job{name}", CALIB, product, BEGIN, END)
    verify_config = f"-j 1 -i {CALIB},LSSTComCam/calib --register-dataset-types"
    # Several jobs at once against one repo, as the OCPS may run them.
    await asyncio.gather(
        job("verify_bias", f"{VERIFY}/verifyBias.yaml", exposures["bias"], verify_config),
        job("verify_dark", f"{VERIFY}/verifyDark.yaml", exposures["dark"], verify_config),
        job("verify_flat", f"{VERIFY}/verifyFlat.yaml", exposures["flat"], verify_config),
    )
    # Internal verification of the faulty set, as the script does: combine, certify, verify the same frames.
    outcome = await job(
        "noisy", f"{CP}/cpBias.yaml", exposures["noisy_bias"], cp_config.replace(CALIB, NOISY_CALIB)
    )
    assert outcome.exit_code == 0, outcome.message
    certify(repo, "u/ocps/jobnoisy", NOISY_CALIB, "bias", BEGIN, END)
    noisy_config = verify_config.replace(CALIB, NOISY_CALIB)
    await job("verify_noisy", f"{VERIFY}/verifyBias.yaml", exposures["noisy_bias"], noisy_config)
    truth = TruthModel.from_simulation_config(read_simulation_config(repo))
    return Chain(repo=repo, truth=truth, exposures=exposures, outcomes=outcomes, requests=requests)


@pytest.fixture(scope="module")
def chain(tiny_copy) -> Chain:
    repo = tiny_copy("pipelines")
    registry = Butler(str(repo), writeable=True).registry
    for collection in (CALIB, NOISY_CALIB):
        registry.registerCollection(collection, CollectionType.CALIBRATION)
    exposures = asyncio.run(write_raws(repo))
    return asyncio.run(run_chain(repo, exposures))


def test_jobs_succeed_with_their_products(chain: Chain) -> None:
    expected = {
        "bias": {"cpBiasProc", "bias"},
        "dark": {"cpDarkProc", "dark"},
        "flat": {"cpFlatProc", "cpFlatStatistics", "cpFlatNormScales", "flat"},
        # verifyBiasDetSettings: the verifyBiasDet label's config, read by the fused ISR quanta.
        "verify_bias": {
            "verifyBiasProc",
            "verifyBiasDetStats",
            "verifyBiasExpStats",
            "verifyBiasStats",
            "verifyBiasDetSettings",
        },
    }
    for name, outputs in expected.items():
        outcome = chain.outcomes[name]
        assert (outcome.exit_code, outcome.phase) == (0, "completed"), outcome.message
        assert set(outcome.outputs) == outputs
        assert outcome.end_tai > outcome.start_tai
    for name in ("verify_dark", "verify_flat", "verify_noisy"):
        assert chain.outcomes[name].exit_code == 0, chain.outcomes[name].message


def test_job_log_shows_alias_and_clamp(chain: Chain) -> None:
    outcome = chain.outcomes["bias"]
    assert outcome.log_uri == (chain.repo / "ocps" / "jobbias" / "outs" / "ocps.log").as_uri()
    log = Path(outcome.log_uri.removeprefix("file://")).read_text()
    assert "-j 4 requested; running with -j 1" in log
    assert "--output-run u/ocps/jobbias" in log and "-c cpBiasIsr:doDefect=False" in log
    # One ISR quantum per detector (6 exposures each: calibrations read once) + one combine per detector.
    assert "Executed 4 quanta successfully" in log


def test_certified_products_match_truth(chain: Chain) -> None:
    butler = Butler(str(chain.repo), collections=[CALIB])
    first = chain.exposures["bias"][0].exposure_id
    n_bias, n_dark, dark_time = len(chain.exposures["bias"]), len(chain.exposures["dark"]), 30.0
    geometry = chain.truth.geometry
    flats = {}
    for det in DETECTORS:
        detector = get_camera()[det]
        bias, bias_bad, _, bias_md = masked_image_arrays(
            butler.get("bias", detector=det, exposure=first, instrument="LSSTComCam")
        )
        dark, _, _, dark_md = masked_image_arrays(
            butler.get("dark", detector=det, exposure=first, instrument="LSSTComCam")
        )
        flats[det], _, _, flat_md = masked_image_arrays(
            butler.get("flat", detector=det, exposure=first, instrument="LSSTComCam", physical_filter="empty")
        )
        assert (bias_md["OBSTYPE"], bias_md["EXPTIME"], bias_md["IMGTYPE"]) == ("BIAS", 0.0, "BIAS")
        assert (dark_md["OBSTYPE"], dark_md["DARKTIME"]) == ("DARK", 1.0)
        assert (flat_md["OBSTYPE"], flat_md["FLATSRC"]) == ("FLAT", "TWILIGHT")
        assert bias_md["CPP_INPUT_0"] == first and bias_md["CPP_N_INPUTS"] == n_bias
        assert not bias_bad.any()
        ref_bias, ref_dark = chain.truth.reference_bias(det), chain.truth.reference_dark(det)
        defects = chain.truth.detector(det).defect_mask(geometry, border=0)
        for amp in detector:
            box = amp.bbox_slices(geometry)
            # 6 frames: the clipped mean costs ~5%, the overscan fits ~4%: within 20% of RN/sqrt(N).
            bias_noise = np.std(bias[box] - ref_bias[box])
            assert bias_noise < 1.2 * amp.read_noise / np.sqrt(n_bias)
            # The dark job subtracted the combined (noisy) bias: both frame sets count.
            good = ~defects[box]
            dark_noise = np.std((dark[box] - ref_dark[box])[good])
            expected = amp.read_noise / dark_time * np.sqrt(1 / n_dark + 1 / n_bias)
            assert dark_noise < 1.25 * expected
    # Flats keep the detectors' relative throughput, normalised over the detectors of the job.
    ref = {det: chain.truth.reference_flat(det) for det in DETECTORS}
    job_mean = np.mean([chain.truth.detector(det).response.mean() for det in DETECTORS])
    for det in DETECTORS:
        ratio = flats[det] / ref[det]
        assert np.median(ratio) == pytest.approx(chain.truth.mean_response / job_mean, rel=2e-3)
        assert np.std(ratio) < 0.01  # pixel response (1% PRNU) is reproduced to well below 1%


def test_verification_passes_on_good_data(chain: Chain) -> None:
    for name, dataset in (("bias", "verifyBiasStats"), ("dark", "verifyDarkStats")):
        stats = read_verify_stats(chain.repo, f"u/ocps/jobverify_{name}", dataset)
        ids = {info.exposure_id for info in chain.exposures[name]}
        assert stats["SUCCESS"] is True
        assert set(stats) == ids | {"SUCCESS"}
        assert all(stats[i] == {"SUCCESS": True} for i in ids)
    flat = read_verify_stats(chain.repo, "u/ocps/jobverify_flat", "verifyFlatStats")
    assert flat["SUCCESS"] is True, flat
    butler = Butler(str(chain.repo), collections=["u/ocps/jobverify_bias"])
    first = chain.exposures["bias"][0].exposure_id
    exp_stats = butler.get("verifyBiasExpStats", instrument="LSSTComCam", exposure=first)
    assert exp_stats == {"R22_S00": {"SUCCESS": True}, "R22_S01": {"SUCCESS": True}, "SUCCESS": True}
    det_stats = butler.get("verifyBiasDetStats", instrument="LSSTComCam", exposure=first, detector=0)
    assert set(det_stats["AMP"]) == set(get_camera()[0].amp_names) and det_stats["SUCCESS"] is True


def test_verification_fails_on_noisy_amp(chain: Chain) -> None:
    stats = read_verify_stats(chain.repo, "u/ocps/jobverify_noisy", "verifyBiasStats")
    assert stats["SUCCESS"] is False
    for info in chain.exposures["noisy_bias"]:
        entry: dict[str, Any] = stats[info.exposure_id]
        assert entry["SUCCESS"] is False
        assert "R22_S01 C17 NOISE" in entry["FAILURES"]
        assert all(failure.startswith("R22_S01 C17 ") for failure in entry["FAILURES"])


def run_job(executor: PipetaskExecutor, job_id: str, config: str, pipeline: str = f"{CP}/cpBias.yaml") -> Any:
    query = "instrument='LSSTComCam' AND detector IN (0) AND exposure IN (2026112500001)"
    request = ocps_request(job_id, pipeline, config, query, run_id="9")
    return executor.run(request)


@pytest.mark.parametrize(
    "config, words",
    [
        ("-j 2 --extend-run", ["'--extend-run'"]),
        ("-j 2 -o u/someone", ["'-o'"]),
        ("-c isr:doDefect=False; rm -rf /", ["';'", "a shell would interpret"]),
        ("-c isr:doDefect=False rm -rf /", ["'rm'"]),
        ("-i 'unbalanced", ["cannot split"]),
        ("-i 'a b'", ["'a b' is not a valid collection name"]),
        ("-j two", ["-j", "'two'"]),
        ("-c cpBiasCombine:clip", ["label:field=value"]),
        ("-c notATask:doDefect=False", ["'notATask'", "cpBiasIsr"]),
    ],
)
async def test_refused_config(tmp_path: Path, config: str, words: list[str]) -> None:
    executor = PipetaskExecutor(tmp_path / "repo", log_dir=tmp_path / "logs")
    outcome = await run_job(executor, "refused", config)
    assert (outcome.exit_code, outcome.phase) == (1, "error")
    assert outcome.message.startswith("Job refused")
    for word in words:
        assert word in outcome.message
    log = (tmp_path / "logs" / "refused" / "outs" / "ocps.log").read_text()
    assert "[ocps] exit_code=1" in log and "command:" not in log


async def test_unknown_pipeline_variable(tmp_path: Path) -> None:
    executor = PipetaskExecutor(tmp_path / "repo", log_dir=tmp_path / "logs")
    outcome = await run_job(executor, "badvar", "-j 1", pipeline="${OBS_LSST_DIR}/pipelines/cpBias.yaml")
    assert outcome.exit_code == 1 and "OBS_LSST_DIR" in outcome.message


async def test_abort_kills_the_job(tmp_path: Path) -> None:
    """A job whose process never ends (stand-in command) is killed by abort: exit 255, aborted."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    repo = tmp_path / "repo"
    executor = PipetaskExecutor(repo, log_dir=tmp_path / "logs", pipetask=sleeper)
    task = asyncio.create_task(run_job(executor, "longjob", "-j 1"))
    await wait_until(lambda: "longjob" in executor._processes, timeout=5.0, interval=0.05)
    process = executor._processes["longjob"]
    await executor.abort("longjob")
    outcome = await asyncio.wait_for(task, timeout=10)
    assert (outcome.exit_code, outcome.phase) == (255, "aborted")
    assert process.returncode is not None and process.returncode < 0


async def test_success_without_outputs_is_a_failure(tmp_path: Path, chain: Chain) -> None:
    """pipetask exits 0 when every quantum finds no work; the job must still fail (stand-in command)."""
    quiet = [sys.executable, "-c", "pass"]
    executor = PipetaskExecutor(chain.repo, log_dir=tmp_path / "logs", pipetask=quiet)
    outcome = await run_job(executor, "nothing", "-j 1 --register-dataset-types")
    assert (outcome.exit_code, outcome.phase) == (1, "error")
    assert "produced no output datasets" in outcome.message


async def test_empty_query_fails(chain: Chain, tmp_path: Path) -> None:
    executor = PipetaskExecutor(chain.repo, log_dir=tmp_path / "logs")
    query = "instrument='LSSTComCam' AND exposure IN (2026112599999)"
    request = ocps_request("empty", f"{CP}/cpBias.yaml", "-j 1 --register-dataset-types", query, run_id="3")
    outcome = await executor.run(request)
    assert outcome.exit_code == 1 and "QuantumGraph was empty" in outcome.message


async def test_missing_pipetask_command(tmp_path: Path) -> None:
    missing = [str(tmp_path / "nope")]
    executor = PipetaskExecutor(tmp_path / "repo", log_dir=tmp_path / "logs", pipetask=missing)
    outcome = await run_job(executor, "nocmd", "-j 1")
    assert (outcome.exit_code, outcome.phase) == (1, "error") and "Cannot start pipetask" in outcome.message
