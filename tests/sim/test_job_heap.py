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

"""The job heap policy: the job processes reuse freed image planes instead of mapping new ones."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from lsst.ts.makecalibrations.sim import job_heap
from lsst.ts.makecalibrations.sim.bps_executor import BpsExecutor
from lsst.ts.makecalibrations.sim.pipetask_executor import PipetaskExecutor

# Allocate, touch and free a 128 MiB plane five times; the page faults of the last four.
_PLANES = """
import json, resource
import numpy as np
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
plane = np.ones((4096, 4096), dtype=np.float64); del plane
before = faults()
for _ in range(4):
    plane = np.ones((4096, 4096), dtype=np.float64); del plane
print(json.dumps(faults() - before))
"""


def test_the_tunables_are_added_and_a_site_s_own_values_kept() -> None:
    env = job_heap.job_environment({"PATH": "/bin", "MALLOC_TRIM_THRESHOLD_": "1"})
    assert env == {"PATH": "/bin", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "1"}
    env = job_heap.job_environment({"PATH": "/bin"})
    assert env["MALLOC_MMAP_MAX_"] == "0" and int(env["MALLOC_TRIM_THRESHOLD_"]) >= 1 << 30


def test_the_executors_start_their_jobs_with_the_policy(tmp_path: object) -> None:
    for executor in (PipetaskExecutor, BpsExecutor):
        env = executor(tmp_path).job_environment()  # type: ignore[arg-type]
        assert env is not None
        assert {k: env[k] for k in job_heap.JOB_MALLOC_TUNABLES} == dict(job_heap.JOB_MALLOC_TUNABLES)
        assert env["PATH"].endswith(os.environ.get("PATH", ""))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the tunables are glibc's")
def test_with_the_policy_a_freed_plane_is_reused_without_page_faults() -> None:
    def faults(env: dict[str, str]) -> int:
        out = subprocess.run([sys.executable, "-c", _PLANES], env=env, check=True, capture_output=True)
        return int(json.loads(out.stdout))

    plain = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    # 4 planes of 128 MiB: mapped afresh each time, at least one fault per 2 MiB huge page.
    assert faults(plain) > 4 * 64 / 2
    # Reused from the heap: nothing faulted in again.
    assert faults(job_heap.job_environment(plain)) < 50
