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

"""The butler raw writer: raws, exposure records and sequence numbers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from astropy.io import fits
from lsst.daf.butler import Butler

from lsst.ts.makecalibrations.butler.camera import amp_geometry
from lsst.ts.makecalibrations.butler.raw_image import RawImage
from lsst.ts.makecalibrations.butler.readers import exposure_observation_types
from lsst.ts.makecalibrations.butler.repository import RAW_RUN
from lsst.ts.makecalibrations.sim.raw_writer import ButlerRawWriter
from lsst.ts.makecalibrations.sim.repository import read_simulation_config
from lsst.ts.makecalibrations.sim.truth import TruthModel
from tests.butler.helpers import DAY_OBS, make_info


async def test_raws_and_exposure_records_round_trip(repo: Path, tmp_path: Path) -> None:
    writer = ButlerRawWriter(repo, size="tiny")
    assert writer.last_seq_num(DAY_OBS) == 0
    infos = [
        make_info(1, "BIAS", 0.0),
        make_info(2, "DARK", 30.0),
        make_info(3, "FLAT", 5.0, physical_filter="i_06", detectors=(4,)),
    ]
    for info in infos:
        await writer.write_image(info)
    assert writer.last_seq_num(DAY_OBS) == 3
    writer.close()
    # A new writer (a second run in the same repo) sees the registry.
    assert ButlerRawWriter(repo).last_seq_num(DAY_OBS) == 3
    assert ButlerRawWriter(repo).last_seq_num(DAY_OBS + 1) == 0

    butler = Butler(str(repo), collections=[RAW_RUN])
    refs = list(butler.registry.queryDatasets("raw", collections=RAW_RUN))
    assert sorted((r.dataId["exposure"], r.dataId["detector"]) for r in refs) == [
        (infos[0].exposure_id, 0),
        (infos[0].exposure_id, 4),
        (infos[1].exposure_id, 0),
        (infos[1].exposure_id, 4),
        (infos[2].exposure_id, 4),
    ]
    raw = butler.get("raw", detector="R22_S11", exposure=infos[1].exposure_id, instrument="LSSTComCam")
    assert isinstance(raw, RawImage)
    assert raw.amps["C00"].shape == amp_geometry("tiny").raw_shape and raw.amps["C00"].dtype == np.int32
    assert len(raw.amps) == 16
    md = raw.metadata
    assert (md["IMGTYPE"], md["EXPTIME"], md["DARKTIME"], md["DETECTOR"], md["DET_NAME"]) == (
        "DARK",
        30.0,
        30.5,
        4,
        "R22_S11",
    )
    assert md["OBSID"] == infos[1].obs_id and md["DATE-OBS"].startswith("2024-11-26T20:02:00")
    assert md["FILTER"] == "empty" and md["LSST_NUM"] == "ITL-3800C-283"
    metadata_only = butler.get("raw.metadata", detector=4, exposure=infos[1].exposure_id)
    assert metadata_only == md
    # The raw file is valid FITS, byte for byte what astropy's verified write of it gives (the
    # formatter skips the output verification) and with a header card per scalar metadata entry.
    path = butler.getURI("raw", detector=4, exposure=infos[1].exposure_id).ospath
    with fits.open(path) as hdus:
        hdus.verify("exception")
        assert [hdu.name for hdu in hdus[1:]] == [*raw.amps, "METADATA"]
        header = hdus[0].header
        numbers = {key: value for key, value in md.items() if isinstance(value, int | float)}
        assert numbers and all(header[key.upper()] == value for key, value in numbers.items())
        hdus.writeto(tmp_path / "verified.fits", output_verify="exception")
    assert (tmp_path / "verified.fits").read_bytes() == Path(path).read_bytes()

    # The pixels are the truth model's, exactly.
    truth = TruthModel.from_simulation_config(read_simulation_config(repo))
    expected = truth.make_raw_amps(4, infos[1].exposure_id, "DARK", 30.0, 30.5, "empty")
    assert all(np.array_equal(raw.amps[name], expected[name]) for name in expected)

    records = {r.id: r for r in butler.registry.queryDimensionRecords("exposure", instrument="LSSTComCam")}
    flat = records[infos[2].exposure_id]
    assert (flat.observation_type, flat.exposure_time, flat.dark_time, flat.physical_filter) == (
        "flat",
        5.0,
        5.5,
        "i_06",
    )
    assert (flat.group, flat.day_obs, flat.obs_id, flat.seq_num) == (
        f"{DAY_OBS}_flat",
        DAY_OBS,
        infos[2].obs_id,
        3,
    )
    assert flat.observation_reason == "flat"
    assert abs(flat.timespan.begin.unix_tai - infos[2].start_tai) < 1e-3
    assert abs(flat.timespan.end.unix_tai - infos[2].end_tai) < 1e-3
    # A zero-length bias still has a non-empty timespan (needed for calibration lookup).
    assert not records[infos[0].exposure_id].timespan.isEmpty()
    (day,) = butler.registry.queryDimensionRecords("day_obs", instrument="LSSTComCam")
    assert day.timespan.begin.isot.startswith("2024-11-26T12:00:00")

    types = exposure_observation_types(repo, [i.exposure_id for i in infos] + [1])
    assert types == {infos[0].exposure_id: "bias", infos[1].exposure_id: "dark", infos[2].exposure_id: "flat"}


async def test_event_loop_keeps_running_while_writing(repo: Path) -> None:
    writer = ButlerRawWriter(repo)
    await writer.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await writer.write_image(make_info(1, "FLAT", 5.0, detectors=tuple(range(9))))
    task.cancel()
    writer.close()
    assert ticks > 3
