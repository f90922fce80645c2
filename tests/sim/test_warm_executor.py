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

"""The warm pipetask worker of the simulated OCPS: same datasets as a pipetask subprocess, abort kills
the job's child, a crashed worker fails its job visibly and the next job starts a new worker.

Real ``cpBias`` jobs on a tiny one-detector repository (three biases); the worker is a real
`sim.pipetask_server` process.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from lsst.daf.butler import Butler

from lsst.ts.makecalibrations.butler.images import masked_image_arrays
from lsst.ts.makecalibrations.butler.readers import datasets_in_run
from lsst.ts.makecalibrations.sim import job_heap, pipetask_server
from lsst.ts.makecalibrations.sim.ocps_jobs import JobOutcome, JobRequest
from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor
from lsst.ts.makecalibrations.sim.process_tree_guard import is_alive
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from lsst.ts.makecalibrations.sim.warm_executor import WarmJob, WarmPipetaskExecutor
from tests.butler.helpers import make_info
from tests.helpers import ocps_request, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the warm worker needs Linux")

DAY_OBS = 20261125
BIAS_IDS = [int(f"{DAY_OBS}{seq:05d}") for seq in (1, 2, 3)]
QUERY = f"instrument='LSSTComCam' AND detector IN (0) AND exposure IN ({', '.join(map(str, BIAS_IDS))})"
CONFIG = "-j 1 -i LSSTComCam/calib --register-dataset-types -c cpBiasIsr:doDefect=False"


def request(job_id: str) -> JobRequest:
    return ocps_request(job_id, "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpBias.yaml", CONFIG, QUERY)


@pytest.fixture(scope="module")
def bias_repo(tiny_copy: Callable[[str], Path]) -> Path:
    """A tiny ComCam repository with three biases of detector 0."""
    repo = tiny_copy("warm_worker")

    async def write() -> None:
        writer = ButlerRawWriter(repo, size="tiny")
        await writer.start()
        for seq in (1, 2, 3):
            await writer.write_image(make_info(seq, detectors=(0,), day_obs=DAY_OBS))
        writer.close()

    asyncio.run(write())
    return repo


async def started(executor: PipetaskExecutor, job_id: str) -> WarmJob:
    """The job's child once the executor knows it (a real job: a few seconds at most)."""
    await wait_until(lambda: job_id in executor._processes, timeout=60.0, interval=0.05)
    process = executor._processes[job_id]
    assert isinstance(process, WarmJob)
    return process


async def gone(pid: int) -> bool:
    """Is process ``pid`` gone (or a zombie) within 30 s? (A SIGKILL takes effect asynchronously.)"""
    try:
        await wait_until(lambda: not is_alive(pid), timeout=30.0, interval=0.05)
    except TimeoutError:
        return False
    return True


async def test_warm_jobs_write_what_pipetask_writes_and_abort_kills_the_child(
    bias_repo: Path, tmp_path: Path
) -> None:
    subprocesses = PipetaskExecutor(bias_repo, log_dir=tmp_path)
    warm = WarmPipetaskExecutor(bias_repo, log_dir=tmp_path)
    progress: list[tuple[str, int, int, int]] = []
    warm.progress = lambda *args: progress.append(args)
    warm.progress_interval = 0.2
    try:
        jobs = (subprocesses.run(request("pt")), warm.run(request("warm")))
        by_pipetask, by_warm = await asyncio.gather(*jobs)
        assert by_pipetask.exit_code == 0, by_pipetask.message
        assert by_warm.exit_code == 0, by_warm.message
        assert by_warm.outputs == by_pipetask.outputs == ["bias", "cpBiasProc"]
        assert by_warm.command == by_pipetask.command == "pipetask run"
        expected = datasets_in_run(bias_repo, "u/ocps/pt")
        found = datasets_in_run(bias_repo, "u/ocps/warm")
        assert set(found) == set(expected)
        assert {key[0] for key in found} >= {"bias", "cpBiasProc", "packages", "cpBiasIsr_metadata"}
        butler = Butler.from_config(str(bias_repo))
        for key in (key for key in expected if key[0] in ("bias", "cpBiasProc")):
            want = masked_image_arrays(butler.get(expected[key]))[:3]
            got = masked_image_arrays(butler.get(found[key]))[:3]
            for a, b in zip(want, got, strict=True):
                np.testing.assert_array_equal(a, b)
        # The job's own package-version record, as pipetask writes it: the same packages and versions.
        packages = ("packages", ())
        assert butler.get(found[packages]).difference(butler.get(expected[packages])) == {}
        assert butler.get(found[packages]).missing(butler.get(expected[packages])) == {}
        # Beyond the subprocess's record, only what the worker imported for every job (e.g. the task
        # modules' jsonschema); every job forked by the worker records the same packages (below).
        assert "jsonschema" in butler.get(found[packages]).extra(butler.get(expected[packages]))
        log = warm.log_path("warm").read_text()
        assert "[ocps] run by the warm pipetask worker" in log and "QuantumGraph contains 2 quanta" in log
        assert log.rstrip().endswith("[ocps] exit_code=0 phase=completed")
        assert progress and progress[-1] == ("warm", 2, 0, 2)
        assert warm.job_cpu["warm"] > 0
        # The imported stack is in the collector's permanent generation before any fork.
        assert warm.worker.ready["frozen"] > 100_000
        # The worker started with the job heap policy, which its forked children inherit.
        assert warm.worker.pid is not None
        environ = Path(f"/proc/{warm.worker.pid}/environ").read_bytes().split(b"\0")
        for key, value in job_heap.JOB_MALLOC_TUNABLES.items():
            assert f"{key}={value}".encode() in environ
        again = await warm.run(request("warm-again"))
        assert again.exit_code == 0, again.message
        found_again = datasets_in_run(bias_repo, "u/ocps/warm-again")
        assert dict(butler.get(found_again[packages])) == dict(butler.get(found[packages]))

        # Abort: the child and its group are killed; the worker stays for the next job.
        job = asyncio.create_task(warm.run(request("aborted")))
        child = await started(warm, "aborted")
        await warm.abort("aborted")
        outcome: JobOutcome = await asyncio.wait_for(job, timeout=30)
        assert (outcome.exit_code, outcome.phase) == (255, "aborted")
        assert child.returncode is not None and child.returncode < 0
        assert not is_alive(child.pid)
        assert warm.worker.starts == 1 and warm.worker.alive
    finally:
        await warm.close()
    assert warm.worker.process is None


def test_the_worker_caches_the_distribution_map_lsst_utils_asks_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """The map the worker hands to lsst.utils is the standard library's, as a new copy each call."""
    from lsst.utils import packages

    monkeypatch.setattr(packages, "packages_distributions", packages.packages_distributions)
    cached = pipetask_server.cache_package_distributions()
    assert packages.packages_distributions is cached
    first = packages.packages_distributions()
    assert first == importlib.metadata.packages_distributions() and "yaml" in first
    first["yaml"].append("changed by the caller")
    del first["numpy"]
    assert packages.packages_distributions() == importlib.metadata.packages_distributions()


def test_every_module_the_worker_imports_for_the_jobs_exists() -> None:
    """`pipetask_server.JOB_IMPORTS` names modules of the pinned stack (a name a later stack no longer
    has would be skipped silently by the worker, so this is where it shows)."""
    import importlib.util

    missing = [name for name in pipetask_server.JOB_IMPORTS if importlib.util.find_spec(name) is None]
    assert not missing


async def test_a_crashed_worker_fails_its_job_and_the_next_job_starts_another(
    bias_repo: Path, tmp_path: Path
) -> None:
    warm = WarmPipetaskExecutor(bias_repo, log_dir=tmp_path)
    try:
        job = asyncio.create_task(warm.run(request("crash")))
        child = await started(warm, "crash")
        worker_pid = warm.worker.pid
        assert worker_pid is not None
        os.kill(worker_pid, signal.SIGKILL)
        outcome = await asyncio.wait_for(job, timeout=30)
        assert (outcome.exit_code, outcome.phase) == (1, "error")
        assert "was lost" in outcome.message and f"worker (pid {worker_pid})" in outcome.message
        assert await gone(child.pid)
        assert "[ocps] exit_code=1 phase=error" in warm.log_path("crash").read_text()

        after = await warm.run(request("after"))
        assert after.exit_code == 0, after.message
        assert warm.worker.starts == 2 and warm.worker.pid != worker_pid
    finally:
        await warm.close()
