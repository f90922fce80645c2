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

"""The heap policy of the simulated OCPS's job processes: image-sized arrays reused from the heap.

glibc's ``malloc`` serves every request above its mmap threshold (32 MiB at most) with an anonymous
mapping of its own and unmaps it again when the block is freed. A pipetask job allocates and frees
image planes all the time (a full-size detector plane is 65 MB in float32, twice that in float64),
so every one of them is mapped, faulted in and zeroed by the kernel page by page, then unmapped:
on a full-size BIAS verify job (20 images of one detector) that was 17.8 s of system CPU out of
53 s. With mappings off (``MALLOC_MMAP_MAX_=0``) and the top of the heap kept
(``MALLOC_TRIM_THRESHOLD_``), freed planes stay in the process and the next one reuses them: the
same job took 43.4 s of CPU instead of 49.8 s, the GAIN job 33.4 s instead of 38.6 s, with identical
outputs (``bench.bench_daily --replay``; doc/benchmarks.rst). A job process lives for one job, so
keeping its heap until it exits costs nothing after it.

`job_environment` adds the two glibc tunables to an environment; the executors start their job
processes with it (`pipetask_executor.PipetaskExecutor.job_environment`, the warm worker, whose forked
children inherit the allocator's settings, and the BPS executor's ``bps submit``). Other C libraries
ignore the variables.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["JOB_MALLOC_TUNABLES", "job_environment"]

from collections.abc import Mapping

JOB_MALLOC_TUNABLES: Mapping[str, str] = {
    # No block gets a mapping of its own: large blocks come from the heap and are reused.
    "MALLOC_MMAP_MAX_": "0",
    # The heap is not given back to the kernel until 4 GiB of its top are free (the job exits first).
    "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
}
"""glibc's environment tunables for the job processes (see the module docstring)."""


def job_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with `JOB_MALLOC_TUNABLES`, for the process of an OCPS job.

    Parameters
    ----------
    base : `~collections.abc.Mapping` [`str`, `str`]
        The environment the job would otherwise get (usually `os.environ`).

    Returns
    -------
    environment : `dict` [`str`, `str`]
        A new environment; a tunable already set in ``base`` keeps its value, so a site can choose
        its own.
    """
    return {**JOB_MALLOC_TUNABLES, **base}
