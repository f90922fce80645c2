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

"""The zlib tile decoder gives astropy's values bit for bit; the calibrations read through it.

`butler.gzip_tiles` decodes lossless GZIP_1/GZIP_2 tile-compressed HDUs; the certified bias, dark and
flat are written as before (lsst.images' GZIP_2 one-row tiles) and read through it by
`butler.formatters.CalibrationImageFormatter`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lsst.daf.butler import Butler
from lsst.images import MaskedImage
from lsst.images.serialization import Reader, open_archive, write_archive

from lsst.ts.makecalibrations.butler.formatters import CALIBRATION_IMAGE_DATASETS
from lsst.ts.makecalibrations.butler.gzip_tiles import (
    ZlibTileFitsInputArchive,
    is_lossless_gzip,
    lossless_gzip_reader,
)
from lsst.ts.makecalibrations.butler.images import make_masked_image
from lsst.ts.makecalibrations.butler.repository import repo_seed_config

RUN = "u/test/gzip"


def awkward_values(shape: tuple[int, int], dtype: str) -> np.ndarray:
    """Values with every byte pattern a decoder could get wrong (signs, NaN, inf, subnormals)."""
    rng = np.random.default_rng(11)
    if np.dtype(dtype).kind == "f":
        values = rng.normal(0.0, 1e3, shape).astype(dtype)
        flat = values.reshape(-1)
        flat[:5] = [np.nan, np.inf, -np.inf, np.finfo(dtype).tiny / 4, -0.0]
        return values
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def compressed_file(path: Path, values: np.ndarray, **options: object) -> None:
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(values, **options)]).writeto(path)


def stored_header_and_reader(path: Path) -> tuple[fits.Header, object]:
    with fits.open(path, disable_image_compression=True) as hdus:
        header = hdus[1].header.copy()
    stream = open(path, "rb")  # noqa: SIM115 (closed by the caller through the reader's stream)
    with fits.open(path) as hdus:
        start = hdus[1].fileinfo()["hdrLoc"]
    stream.seek(start)

    class Shifted:
        """``stream`` with the HDU at offset 0 (as lsst.images hands each HDU to a reader)."""

        def seek(self, offset: int, whence: int = 0) -> int:
            return stream.seek(offset + start) - start

        def tell(self) -> int:
            return stream.tell() - start

        def read(self, n: int = -1) -> bytes:
            return stream.read(n)

    return header, Shifted()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int16", "uint8"])
@pytest.mark.parametrize("compression", ["GZIP_1", "GZIP_2"])
@pytest.mark.parametrize("tile_rows", [1, 3])
def test_tiles_decode_as_astropy_bit_for_bit(
    tmp_path: Path, dtype: str, compression: str, tile_rows: int
) -> None:
    values = awkward_values((17, 23), dtype)
    path = tmp_path / "c.fits"
    compressed_file(
        path, values, compression_type=compression, tile_shape=(tile_rows, 23), quantize_level=0.0
    )
    header, stream = stored_header_and_reader(path)
    assert is_lossless_gzip(header)
    tiles = lossless_gzip_reader(stream)
    assert tiles is not None and tiles.shape == (17, 23)
    with fits.open(path) as hdus:
        expected = hdus[1].data
        band = hdus[1].section[4:11, 2:20]
    decoded = tiles.read()
    assert decoded.dtype == expected.dtype.newbyteorder("=") and decoded.dtype.isnative
    assert decoded.tobytes() == np.ascontiguousarray(expected, dtype=decoded.dtype).tobytes()
    # A band of rows (as the combine reads) decodes only its tiles, to the same values.
    part = tiles.read((slice(4, 11), slice(2, 20)))
    assert part.tobytes() == np.ascontiguousarray(band, dtype=decoded.dtype).tobytes()


@pytest.mark.parametrize(
    "options",
    [
        {"compression_type": "RICE_1"},
        {"compression_type": "GZIP_2", "quantize_level": 16.0},  # quantized floats: ZSCALE/ZZERO columns
        {"compression_type": "GZIP_2", "tile_shape": (4, 8)},  # tiles narrower than a row
    ],
)
def test_other_layouts_are_left_to_astropy(tmp_path: Path, options: dict) -> None:
    path = tmp_path / "c.fits"
    compressed_file(path, awkward_values((12, 16), "float32"), **options)
    header, stream = stored_header_and_reader(path)
    assert not is_lossless_gzip(header)
    assert lossless_gzip_reader(stream) is None


def sample_image(shape: tuple[int, int] = (37, 41)) -> MaskedImage:
    rng = np.random.default_rng(5)
    image = awkward_values(shape, "float32")
    masks = {name: rng.random(shape) < 0.1 for name in ("SAT", "CR", "UNMASKEDNAN")}
    return make_masked_image(
        image,
        bad=rng.random(shape) < 0.1,
        variance=rng.normal(50.0, 3.0, shape).astype(np.float32),
        metadata={"EXPTIME": 5.0, "INPUTS": [1, 2, 3]},
        masks=masks,
    )


def assert_same_masked_image(a: MaskedImage, b: MaskedImage) -> None:
    for plane in ("image", "variance"):
        assert getattr(a, plane).array.tobytes() == getattr(b, plane).array.tobytes()
        assert getattr(a, plane).array.dtype == getattr(b, plane).array.dtype
    assert a.mask.schema == b.mask.schema
    assert a.mask.array.tobytes() == b.mask.array.tobytes()
    assert dict(a.metadata) == dict(b.metadata)
    assert a.bbox == b.bbox
    headers_a = {key: str(header) for key, header in a._opaque_metadata.headers.items()}
    headers_b = {key: str(header) for key, header in b._opaque_metadata.headers.items()}
    assert headers_a == headers_b


def test_archive_reads_what_lsst_images_reads(tmp_path: Path) -> None:
    path = tmp_path / "bias.fits"
    write_archive(sample_image(), str(path))  # lsst.images' default: GZIP_2 in one-row tiles
    with fits.open(path, disable_image_compression=True) as hdus:
        assert all(is_lossless_gzip(hdus[name].header) for name in ("IMAGE", "MASK", "VARIANCE"))
    with open_archive(path, cls=MaskedImage, partial=False) as reader:
        expected = reader.read()
    with ZlibTileFitsInputArchive.open_tree(path, partial=False) as (archive, tree, info):
        got = Reader(archive, tree, info, MaskedImage).read()
    assert_same_masked_image(got, expected)


def cards(header: fits.Header) -> list[tuple[str, object, str]]:
    return [(c.keyword, c.value, c.comment) for c in header.cards if c.keyword != "DATE"]


def test_calibrations_are_written_as_before_and_read_through_the_decoder(repo: Path, tmp_path: Path) -> None:
    formatters = repo_seed_config()["datastore", "formatters"]
    for name in CALIBRATION_IMAGE_DATASETS:
        assert formatters[name].endswith("CalibrationImageFormatter")
    butler = Butler.from_config(str(repo), writeable=True, run=RUN)
    image = sample_image()
    ref = butler.put(image, "bias", {"instrument": "LSSTComCam", "detector": 0})
    path = butler.getURI(ref).ospath
    assert butler._datastore.getStoredItemsInfo(ref)[0].formatter.endswith("CalibrationImageFormatter")
    # The file is lsst.images' own layout: the same HDUs, headers and data as GenericFormatter's write
    # (which write_archive is), apart from the dates of writing.
    reference = tmp_path / "reference.fits"
    write_archive(image, str(reference))
    with (
        fits.open(path, disable_image_compression=True) as got,
        fits.open(reference, disable_image_compression=True) as want,
    ):
        assert [hdu.name for hdu in got] == [hdu.name for hdu in want]
        for name in ("IMAGE", "MASK", "VARIANCE"):
            assert got[name].data.tobytes() == want[name].data.tobytes()
            assert cards(got[name].header) == cards(want[name].header)
    with open_archive(path, cls=MaskedImage, partial=False) as reader:
        expected = reader.read()
    assert_same_masked_image(butler.get(ref), expected)
