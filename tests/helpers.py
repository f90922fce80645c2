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

"""Helpers shared by the rooms' tests."""

from __future__ import annotations

__all__ = [
    "BAD_INPUTS_PATH",
    "SIM_START_TAI",
    "SMALL_BIAS_DARK",
    "TINY_PTC_FLATS",
    "TINY_PTC_OPTIONS",
    "certified_in_repo",
    "certifying_run",
    "copy_repo",
    "finished_job",
    "load_bad_inputs",
    "ocps_request",
    "wait_until",
]

import asyncio
import datetime
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import yaml

from lsst.ts.makecalibrations.calib.report import JobRecord
from lsst.ts.makecalibrations.sim.ocps_jobs import JobRequest

BAD_INPUTS_PATH = pathlib.Path(__file__).parent / "data" / "bad_inputs.yaml"
"""The bad-input corpus: configurations the script must refuse, each naming the key at fault."""

TINY_PTC_OPTIONS = "-c cpPtcSolve:flagUnconstrainedAmps=False"
"""``config_options_ptc`` of a script test that makes a PTC at the tiny size: its few flat pairs leave
the read noise loosely determined, so the PTC's bad-amp flagging is switched off."""

TINY_PTC_FLATS: dict[str, Any] = dict(
    n_flat=8, exp_times_flat=[0.1, 0.1, 2, 2, 3, 3, 4, 4], config_options_ptc=TINY_PTC_OPTIONS
)
"""Flats of a script test's tiny PTC: a low-flux pair for a read-noise lever arm (left out of the flat
combine, `calib.flat_levels`) and three more, so the three-parameter fit has a degree of freedom and
hence a gain error (with three pairs it goes through every point and its errors are NaN, as
cp_pipe's). At 1,280 pixels an amp a PTC gain can still land 20 % from its pairs' gains (seen with
three pairs on one day's noise), and the gain check then rightly refuses the PTC: the test driver's
fixed simulated day, `SIM_START_TAI`, keeps the noise the same from day to day."""

SIM_START_TAI = 1796176800.0
"""Simulated start (TAI unix seconds, 2026-12-02T02:00, observing day 20261201) of every script run of
the test driver (`tests.scripts.driver.run_calibrations`) unless a test says otherwise. The observing
day seeds the simulated noise (through the exposure ids), so a fixed one keeps the tests' statistics
the same whatever the date of the machine: on 2026-12-02 a tiny PTC test failed for that reason."""


SMALL_BIAS_DARK: dict[str, Any] = dict(script_mode="BIAS_DARK", n_bias=2, n_dark=2, exp_times_dark=2)
"""The images of a small bias and dark run (after the discarded ones): two biases, two 2 s darks."""


def finished_job(
    kind: str, product: str, collection: str, status: str = "succeeded", **keys: Any
) -> JobRecord:
    """The `JobRecord` of an OCPS job of ``kind`` (``combine``, ``verify``, ``ptc`` ...) and ``product``
    that ended ``status`` with its outputs in ``collection`` (the job id: its last part), as the
    script records it; ``keys`` set the other fields (``name`` is ``"<product> <kind>"`` otherwise)."""
    fields: dict[str, Any] = dict(
        name=f"{product} {kind}",
        pipeline="",
        config="",
        data_query="",
        job_id=collection.rsplit("/", 1)[-1],
        exit_code=0 if status == "succeeded" else 1,
    )
    fields.update(keys)
    return JobRecord(kind=kind, product=product, output_collection=collection, status=status, **fields)


def ocps_request(job_id: str, pipeline: str, config: str, data_query: str, run_id: str = "1") -> JobRequest:
    """The ``execute`` command of an OCPS job as a test sends it to an executor: no version, the outputs
    in ``u/ocps/<job_id>``."""
    return JobRequest(
        job_id=job_id,
        run_id=run_id,
        pipeline=pipeline,
        version="",
        config=config,
        data_query=data_query,
        output_collection=f"u/ocps/{job_id}",
    )


def certifying_run(calib_collection: str, day: str, **keys: Any) -> dict[str, Any]:
    """The configuration of a script test run that makes calibrations with one OCPS process and
    certifies them into ``calib_collection`` for the one day from ``day`` (``YYYY-MM-DD``).

    ``keys`` add the run's own keys (images, detectors, products) or override these.
    """
    end = datetime.date.fromisoformat(day) + datetime.timedelta(days=1)
    return {
        "generate_calibrations": True,
        "n_processes": 1,
        "calib_collection": calib_collection,
        "certify_calib_begin_date": day,
        "certify_calib_end_date": end.isoformat(),
        **keys,
    }


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.005) -> None:
    """Poll ``predicate`` until it is true.

    Raises
    ------
    TimeoutError
        If it is not true within ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(interval)


def certified_in_repo(repo: str | os.PathLike[str], collection: str) -> dict[str, set[tuple]]:
    """Dataset type -> {(detector, begin, end)} certified in ``collection`` of ``repo``."""
    from lsst.ts.makecalibrations.butler.readers import list_certified

    result: dict[str, set[tuple]] = {}
    for calib in list_certified(repo, collection):
        result.setdefault(calib.dataset_type, set()).add((calib.data_id["detector"], calib.begin, calib.end))
    return result


def load_bad_inputs() -> list[dict[str, Any]]:
    """The entries of `BAD_INPUTS_PATH`, each with ``text`` the configuration text to send."""
    entries = yaml.safe_load(BAD_INPUTS_PATH.read_text())
    for entry in entries:
        text = entry["config"]
        if "note_chars" in entry:
            text = text.replace("xxxx", "x" * entry["note_chars"])
        entry["text"] = text
    return entries


def copy_repo(template: str | os.PathLike[str], dest: str | os.PathLike[str]) -> pathlib.Path:
    """Copy a butler repository folder (its butler.yaml roots are relative, so the copy is a repository
    of its own) and return the copy's root."""
    dest = pathlib.Path(dest)
    shutil.copytree(template, dest, symlinks=True)
    return dest
