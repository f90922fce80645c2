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

"""Processed images that only the next task of a job reads are written uncompressed; products are not.

Both layouts read back in row bands from a file opened once (`butler.image_bands`, the combine's reads).

`butler.formatters.IntermediateImageFormatter` is mapped (by `butler.repository.repo_seed_config`) to
each dataset type of `INTERMEDIATE_IMAGE_DATASETS`; every other MaskedImage (the certified bias, dark
and flat) keeps lsst.images' compressed default. A repository made before that mapping existed (its
``butler.yaml`` without those entries) keeps writing them compressed, and each dataset reads back with
the formatter it was written with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from astropy.io import fits
from lsst.daf.butler import Butler
from lsst.images import Box

from lsst.ts.makecalibrations.butler.formatters import INTERMEDIATE_IMAGE_DATASETS
from lsst.ts.makecalibrations.butler.image_bands import ImageBands, open_image_bands
from lsst.ts.makecalibrations.butler.images import make_masked_image, masked_image_arrays
from lsst.ts.makecalibrations.butler.repository import RAW_RUN, repo_seed_config

RUN = "u/test/format"


def strip_intermediate_formatters(repo: Path) -> None:
    """Make ``repo``'s configuration what a repository made before the intermediate format had."""
    path = repo / "butler.yaml"
    config = yaml.safe_load(path.read_text())
    for name in INTERMEDIATE_IMAGE_DATASETS:
        del config["datastore"]["formatters"][name]
    path.write_text(yaml.safe_dump(config))


def sample(rows: int = 40, cols: int = 48) -> object:
    rng = np.random.default_rng(7)
    image = rng.normal(100.0, 8.0, (rows, cols)).astype(np.float32)
    bad = np.zeros((rows, cols), bool)
    bad[3, 5] = True
    return make_masked_image(
        image,
        bad=bad,
        variance=np.full((rows, cols), 64.0, np.float32),
        metadata={"EXPTIME": 5.0, "L": [1, 2]},
    )


def put_both(repo: Path) -> tuple[Butler, object, object]:
    butler = Butler.from_config(str(repo), writeable=True, run=RUN)
    data_id = {"instrument": "LSSTComCam", "detector": 0}
    image = sample()
    proc_id = {**data_id, "exposure": _an_exposure(butler)}
    proc_ref = butler.put(image, "verifyBiasProc", proc_id)
    bias_ref = butler.put(image, "bias", data_id)
    return butler, proc_ref, bias_ref


def _an_exposure(butler: Butler) -> int:
    records = list(butler.registry.queryDimensionRecords("exposure", instrument="LSSTComCam"))
    if records:
        return int(records[0].id)
    import astropy.time
    from lsst.daf.butler import Timespan

    begin = astropy.time.Time("2026-11-25T12:00:00", scale="tai")
    end = begin + astropy.time.TimeDelta(1.0, format="sec")
    butler.registry.syncDimensionData(
        "day_obs", {"instrument": "LSSTComCam", "id": 20261125, "timespan": Timespan(begin, end)}
    )
    butler.registry.syncDimensionData("group", {"instrument": "LSSTComCam", "name": "g"})
    butler.registry.syncDimensionData(
        "exposure",
        {
            "instrument": "LSSTComCam",
            "id": 2026112500001,
            "obs_id": "CC_O_20261125_000001",
            "physical_filter": "empty",
            "group": "g",
            "day_obs": 20261125,
            "exposure_time": 0.0,
            "dark_time": 0.0,
            "observation_type": "bias",
            "observation_reason": "test",
            "seq_num": 1,
            "seq_start": 1,
            "seq_end": 1,
            "has_simulated": True,
            "can_see_sky": False,
            "timespan": Timespan(begin, end),
        },
    )
    return 2026112500001


def compressed_planes(path: str) -> dict[str, bool]:
    with fits.open(path) as hdus:
        return {
            hdu.name: isinstance(hdu, fits.CompImageHDU)
            for hdu in hdus
            if hdu.name in ("IMAGE", "MASK", "VARIANCE")
        }


def check_round_trip(butler: Butler, ref: object) -> None:
    image, bad, variance, metadata = masked_image_arrays(butler.get(ref))
    want_image, want_bad, want_variance, want_md = masked_image_arrays(sample())
    np.testing.assert_array_equal(image, want_image)
    np.testing.assert_array_equal(bad, want_bad)
    np.testing.assert_array_equal(variance, want_variance)
    assert metadata["EXPTIME"] == 5.0 and metadata["L"] == [1, 2]
    band = butler.get(ref, parameters={"bbox": Box.factory[10:20, 0:48]})
    np.testing.assert_array_equal(band.image.array, want_image[10:20])


def test_seed_config_maps_every_intermediate() -> None:
    formatters = repo_seed_config()["datastore", "formatters"]
    for name in INTERMEDIATE_IMAGE_DATASETS:
        assert formatters[name].endswith("IntermediateImageFormatter")
    for product in ("bias", "dark", "flat", "MaskedImageV2"):
        assert product not in INTERMEDIATE_IMAGE_DATASETS
        assert not str(formatters.get(product, "")).endswith("IntermediateImageFormatter")


def test_intermediates_uncompressed_products_compressed(repo: Path) -> None:
    butler, proc_ref, bias_ref = put_both(repo)
    assert compressed_planes(butler.getURI(proc_ref).ospath) == {
        "IMAGE": False,
        "MASK": False,
        "VARIANCE": False,
    }
    assert compressed_planes(butler.getURI(bias_ref).ospath) == {
        "IMAGE": True,
        "MASK": True,
        "VARIANCE": True,
    }
    for ref in (proc_ref, bias_ref):
        check_round_trip(butler, ref)


def test_repository_made_before_keeps_compressing_and_reads_both(repo: Path) -> None:
    # An intermediate written by the new layout, then the repo configuration of an older repository.
    butler, new_ref, _ = put_both(repo)
    strip_intermediate_formatters(repo)
    old = Butler.from_config(str(repo), writeable=True, run=RUN + "/old")
    old_ref = old.put(sample(), "verifyBiasProc", new_ref.dataId)
    assert compressed_planes(old.getURI(old_ref).ospath) == {"IMAGE": True, "MASK": True, "VARIANCE": True}
    for ref in (old_ref, new_ref):
        check_round_trip(old, ref)
    assert RAW_RUN in old.collections.query("*")


def test_image_bands_read_the_stored_planes(repo: Path) -> None:
    """The combine's band reads from one open file: same pixels and excluded planes as the butler."""
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 8.0, (40, 48)).astype(np.float32)
    planes = {name: rng.random(image.shape) < 0.05 for name in ("SAT", "INTRP", "DETECTED", "CR")}
    masked = make_masked_image(image, variance=np.full(image.shape, 64.0, np.float32), masks=planes)
    butler = Butler.from_config(str(repo), writeable=True, run=RUN)
    data_id = {"instrument": "LSSTComCam", "detector": 0}
    refs = [
        butler.put(masked, "verifyBiasProc", {**data_id, "exposure": _an_exposure(butler)}),  # plain HDUs
        butler.put(masked, "bias", data_id),  # tile-compressed HDUs
    ]
    wanted = ("SAT", "INTRP", "DETECTED", "NOT_A_PLANE")
    excluded = planes["SAT"] | planes["INTRP"] | planes["DETECTED"]
    box = Box.factory[10:23, 0:48]
    for ref in refs:
        with open_image_bands(butler.getURI(ref), wanted) as bands:
            assert bands.reads_raw_mask
            band_image, band_excluded, variance = bands.read(box, with_variance=True)
            np.testing.assert_array_equal(band_image, image[10:23])
            np.testing.assert_array_equal(band_excluded, excluded[10:23])
            np.testing.assert_array_equal(variance, 64.0)
            # The lsst.images mask (the path for other layouts) says the same.
            slow = ImageBands(bands._reader, wanted, None)
            np.testing.assert_array_equal(slow.read(box, with_variance=False)[1], excluded[10:23])
            assert bands.corner().metadata == butler.get(ref).metadata
