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

"""The butler-backed image sink of the simulated camera: makes the pixels and ingests ``raw`` datasets.

`ButlerRawWriter` implements `exposure.ImageSink`. For every image it

1. makes sure the repository exists (`sim.repository.ensure_repo`, in a worker thread, once);
2. registers the ``day_obs``, ``group`` and ``exposure`` dimension records (TAI timespans);
3. makes the pixels of each detector from the repo's truth model (`truth.TruthModel`, rebuilt from
   ``<repo>/simulation/truth.json`` so raws and curated calibrations agree) in a worker thread;
4. puts one ``raw`` (`butler.raw_image.RawImage`) per detector into RUN ``LSSTComCam/raw/all``.

Every butler call goes through one dedicated writer thread (a Butler is not thread-safe), with retries
when SQLite reports the database locked by a concurrent pipetask, so the event loop is never blocked
by pixel making or I/O. Sequence numbers come from one `seq_numbers.SequenceNumbers` per repository
(a counter under a file lock, started above the registry's highest number of the day), so two
observatories on one repository never hand out the same exposure id; `last_seq_num` and
`reserve_seq_num` use it (the registry is queried with a read-only butler of its own).

May import: `butler`, `.exposure`, `.seq_numbers`, `.truth`, numpy, astropy, lsst.daf.butler.
"""

from __future__ import annotations

__all__ = ["ButlerRawWriter", "raw_metadata"]

import asyncio
import concurrent.futures
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import astropy.time
from lsst.daf.butler import Butler, Timespan

from ..butler.camera import INSTRUMENT_NAME
from ..butler.instrument import INSTRUMENT_FILTERS
from ..butler.raw_image import RawImage
from ..butler.repository import make_butler, raw_run
from .exposure import ExposureInfo
from .repository import TRUTH_FILE, ensure_repo, read_simulation_config
from .seq_numbers import SequenceNumbers
from .truth import TruthModel

_LOCK_RETRY_SECONDS = 60.0


def _tai(tai_unix: float) -> astropy.time.Time:
    return astropy.time.Time(tai_unix, format="unix_tai", scale="tai")


def _day_obs_timespan(day_obs: int) -> Timespan:
    """Observing day ``YYYYMMDD``: from 12:00 TAI on that date to 12:00 TAI the next day."""
    text = str(day_obs)
    begin = astropy.time.Time(f"{text[:4]}-{text[4:6]}-{text[6:]}T12:00:00", scale="tai")
    return Timespan(begin, begin + astropy.time.TimeDelta(86400.0, format="sec"))


def _exposure_timespan(info: ExposureInfo) -> Timespan:
    """Timespan of the exposure; zero-length (bias) exposures get 1 ms so the span is not empty."""
    end = max(info.end_tai, info.start_tai + 1e-3)
    return Timespan(_tai(info.start_tai), _tai(end))


def raw_metadata(info: ExposureInfo, detector: int, truth: TruthModel) -> dict[str, Any]:
    """Header of the raw of ``detector`` for the image ``info``.

    Parameters
    ----------
    info : `ExposureInfo`
        The image.
    detector : `int`
        Detector id.
    truth : `TruthModel`
        Truth model that made the pixels (its seed and size are recorded).

    Returns
    -------
    metadata : `dict` [`str`, `typing.Any`]
        Header keywords (scalars only).
    """
    det = truth.camera[detector]
    start, end = _tai(info.start_tai), _tai(info.end_tai)
    raft, slot = det.name.split("_")
    return {
        "TELESCOP": "Simonyi Survey Telescope",
        "INSTRUME": truth.instrument,
        "TIMESYS": "TAI",
        "DATE-OBS": start.isot,
        "DATE-END": end.isot,
        "MJD-OBS": float(start.mjd),
        "MJD-END": float(end.mjd),
        "OBSID": info.obs_id,
        "EXPID": info.exposure_id,
        "DAYOBS": str(info.day_obs),
        "SEQNUM": info.seq_num,
        "GROUPID": info.group_id,
        "IMGTYPE": info.image_type.upper(),
        "OBSTYPE": info.image_type.upper(),
        "REASON": info.reason,
        "PROGRAM": info.program,
        "OBSNOTE": info.note,
        "EXPTIME": float(info.exposure_time),
        "DARKTIME": float(info.dark_time),
        "SHUTTIME": float(info.exposure_time),
        "FILTER": info.physical_filter,
        "DETECTOR": detector,
        "DET_NAME": det.name,
        "RAFTBAY": raft,
        "CCDSLOT": slot,
        "LSST_NUM": det.serial,
        "CCD_TYPE": det.vendor,
        "CCD_MANU": det.vendor,
        "SIMULATE": True,
        "SIM_SEED": truth.seed,
        "SIM_SIZE": truth.size_name,
        "SIM_BF": truth.brighter_fatter,
    }


def _retry_locked[T](func: Callable[[], T]) -> T:
    """Call ``func``, retrying while SQLite says the database is locked by another process."""
    deadline = time.monotonic() + _LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            return func()
        except Exception as e:
            if "database is locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


class ButlerRawWriter:
    """`ImageSink` that writes simulated raws into a butler repository.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Repository root; created on first use if needed.
    size : `str`, optional
        Simulation size preset; `None` accepts the size of an existing repo (``default`` if new).
        A different size than the existing repo's raises `butler.repository.RepositoryError`.
    clock : `SimClock`, optional
        Simulated clock (only used for the ``DATE`` header of the file).
    truth_seed : `int`, optional
        Truth-model seed; `None` accepts the repo's.
    brighter_fatter : `bool`, optional
        Brighter-fatter in the flats; `None` accepts the repo's.
    log : `logging.Logger`, optional
        Logger.
    instrument : `str`, optional
        Camera of the repository (``LSSTComCam``, ``LSSTCam``, ``LATISS``).
    """

    def __init__(
        self,
        repo: str | os.PathLike[str],
        size: str | None = None,
        clock: Any = None,
        truth_seed: int | None = None,
        brighter_fatter: bool | None = None,
        log: logging.Logger | None = None,
        instrument: str = INSTRUMENT_NAME,
    ) -> None:
        self.repo = Path(repo)
        self.instrument = instrument
        self.size = size
        self.clock = clock
        self.truth_seed = truth_seed
        self.brighter_fatter = brighter_fatter
        self.log = log if log is not None else logging.getLogger(type(self).__name__)
        self.truth: TruthModel | None = None
        self.n_written = 0
        self._butler: Butler | None = None
        self._read_butler: Butler | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-writer")
        self._ready_lock = asyncio.Lock()
        self._sequence = SequenceNumbers(self.repo / "simulation", self._registry_last_seq_num)

    # ------------------------------------------------------------------ set-up

    async def start(self) -> None:
        """Create/check the repository and load the truth model (done by the first write otherwise)."""
        async with self._ready_lock:
            if self._butler is None:
                await self._in_writer_thread(self._open)

    def _open(self) -> None:
        ensure_repo(
            self.repo,
            size=self.size,
            seed=self.truth_seed,
            brighter_fatter=self.brighter_fatter,
            instrument=self.instrument,
        )
        self.truth = TruthModel.from_simulation_config(read_simulation_config(self.repo))
        self._butler = make_butler(
            self.repo, writeable=True, collections=[raw_run(self.instrument)], instrument=self.instrument
        )

    async def _in_writer_thread[T](self, func: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)

    def close(self) -> None:
        """Release the writer thread (pending writes complete first)."""
        self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------ ImageSink

    async def write_image(self, info: ExposureInfo) -> None:
        """Make and ingest the raws of every detector of ``info``.

        Parameters
        ----------
        info : `ExposureInfo`
            The image, as the camera took it.
        """
        await self.start()
        self._sequence.note(info.day_obs, info.seq_num)
        assert self.truth is not None
        truth = self.truth
        await self._in_writer_thread(lambda: _retry_locked(lambda: self._register_records(info)))
        for detector in info.detectors:
            raw = await asyncio.to_thread(self._make_raw, truth, info, detector)
            await self._in_writer_thread(functools.partial(self._put_raw, info, detector, raw))
        self.n_written += 1

    def last_seq_num(self, day_obs: int) -> int:
        """Highest sequence number used on ``day_obs``: in the registry or handed out on this repo."""
        return self._sequence.last(day_obs)

    def reserve_seq_num(self, day_obs: int) -> int:
        """Hand out the next sequence number of ``day_obs`` for the whole repository."""
        return self._sequence.reserve(day_obs)

    # ------------------------------------------------------------------ internals

    def _registry_last_seq_num(self, day_obs: int) -> int:
        if not (self.repo / TRUTH_FILE).exists():
            return 0
        if self._read_butler is None:
            self._read_butler = make_butler(self.repo, instrument=self.instrument)
        butler = self._read_butler

        def query() -> int:
            records = butler.registry.queryDimensionRecords(
                "exposure", instrument=self.instrument, where=f"exposure.day_obs = {int(day_obs)}"
            )
            return max((int(record.seq_num) for record in records), default=0)

        return _retry_locked(query)

    def _register_records(self, info: ExposureInfo) -> None:
        butler = self._butler
        assert butler is not None
        known = INSTRUMENT_FILTERS[self.instrument]
        physical_filter = info.physical_filter if info.physical_filter in known else "unknown"
        group = info.group_id or info.obs_id
        with butler.registry.transaction():
            butler.registry.syncDimensionData(
                "day_obs",
                {
                    "instrument": self.instrument,
                    "id": info.day_obs,
                    "timespan": _day_obs_timespan(info.day_obs),
                },
            )
            butler.registry.syncDimensionData("group", {"instrument": self.instrument, "name": group})
            butler.registry.syncDimensionData(
                "exposure",
                {
                    "instrument": self.instrument,
                    "id": info.exposure_id,
                    "obs_id": info.obs_id,
                    "physical_filter": physical_filter,
                    "group": group,
                    "day_obs": info.day_obs,
                    "exposure_time": float(info.exposure_time),
                    "dark_time": float(info.dark_time),
                    "observation_type": info.image_type.lower(),
                    "observation_reason": info.reason or info.image_type.lower(),
                    "science_program": info.program,
                    "seq_num": info.seq_num,
                    "seq_start": info.seq_num,
                    "seq_end": info.seq_num,
                    "has_simulated": True,
                    "can_see_sky": False,
                    "timespan": _exposure_timespan(info),
                },
            )

    def _make_raw(self, truth: TruthModel, info: ExposureInfo, detector: int) -> RawImage:
        amps = truth.make_raw_amps(
            detector,
            info.exposure_id,
            info.image_type,
            info.exposure_time,
            info.dark_time,
            info.physical_filter,
        )
        metadata = raw_metadata(info, detector, truth)
        if self.clock is not None:
            metadata["DATE"] = self.clock.time().isot
        return RawImage(amps=amps, metadata=metadata)

    def _put_raw(self, info: ExposureInfo, detector: int, raw: RawImage) -> None:
        butler = self._butler
        assert butler is not None
        _retry_locked(
            lambda: butler.put(
                raw,
                "raw",
                instrument=self.instrument,
                exposure=info.exposure_id,
                detector=detector,
                run=raw_run(self.instrument),
            )
        )
