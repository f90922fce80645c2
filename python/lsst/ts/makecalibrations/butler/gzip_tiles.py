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

"""Decode lossless GZIP_1/GZIP_2 tile-compressed FITS images with zlib on whole tiles.

lsst.images writes the certified bias, dark and flat (and, in repositories made before the
uncompressed intermediates, every processed image) as FITS tile-compressed images: GZIP_2 (bytes
shuffled by significance, then gzip) in one-row tiles, floats not quantized. astropy decodes them in
Python tile by tile through the ``gzip`` module (two ``decompress`` calls, a CRC and a header parse per
tile) and copies each tile into place: 1.4 s of CPU for the three planes of a full-size detector,
about half of it outside zlib. `decode_tiles` reads the table and heap in one piece, inflates each
tile with one ``zlib.decompress`` call and undoes the shuffle with one copy per byte position for the
whole band, giving the same values as astropy bit for bit (``tests/butler/test_gzip_tiles.py``).

Only the layout lsst.images writes losslessly is decoded here (`is_lossless_gzip`): a 2-d image,
tiles of whole rows, one ``COMPRESSED_DATA`` column (no quantization columns, no ``ZBLANK`` or
scaling); anything else is left to astropy (`lossless_gzip_reader` returns `None`).

`ZlibTileFitsInputArchive` is lsst.images' ``FitsInputArchive`` with its ``get_array`` decoding
such HDUs this way (everything else, the tree, the headers kept as opaque metadata, tables, is the
base class's). `butler.formatters.CalibrationImageFormatter` reads the certified calibrations through
it, `butler.image_bands` the combine's inputs.

May import: numpy, astropy, lsst.images.
"""

from __future__ import annotations

__all__ = [
    "TileReader",
    "ZlibTileFitsInputArchive",
    "decode_tiles",
    "is_lossless_gzip",
    "lossless_gzip_reader",
    "tile_span",
]

import zlib
from collections.abc import Callable
from types import EllipsisType
from typing import IO, Any

import astropy.io.fits
import numpy as np
from lsst.images.fits import FitsInputArchive
from lsst.images.serialization import (
    ArchiveReadError,
    ArrayReferenceModel,
    InlineArrayModel,
    no_header_updates,
)

_BLOCK = 2880
_BITPIX_DTYPES = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip streams, as cfitsio and astropy write them


def is_lossless_gzip(header: astropy.io.fits.Header) -> bool:
    """Whether a compressed-image binary table header is in the layout `decode_tiles` decodes.

    ``header`` is the header as stored (the ``BINTABLE`` one with the ``Z*`` cards).
    """
    if not header.get("ZIMAGE", False) or header.get("ZCMPTYPE", "").strip() not in ("GZIP_1", "GZIP_2"):
        return False
    if header.get("ZNAXIS") != 2 or header.get("ZTILE1", header.get("ZNAXIS1")) != header.get("ZNAXIS1"):
        return False
    if header.get("TFIELDS") != 1 or header.get("TTYPE1", "").strip() != "COMPRESSED_DATA":
        return False
    tform = str(header.get("TFORM1", "")).strip().removeprefix("1")
    if (tform[:2], header.get("NAXIS1")) not in (("PB", 8), ("QB", 16)):
        return False
    if header.get("ZBITPIX") not in _BITPIX_DTYPES:
        return False
    if any(key in header for key in ("ZBLANK", "ZSCALE", "ZZERO", "BSCALE", "BZERO", "ZQUANTIZ", "ZDITHER0")):
        return False
    # Floats: the NOISEBIT card astropy writes with quantize_level 0 (no quantization) or nothing.
    for i in range(1, 10):
        name = header.get(f"ZNAME{i}")
        if name is None:
            break
        if name.strip() != "NOISEBIT" or header.get(f"ZVAL{i}") != 0:
            return False
    return True


def tile_span(header: astropy.io.fits.Header, rows: slice) -> tuple[int, int, int, int]:
    """``(first_tile, last_tile, start, stop)``: the tiles holding image rows ``rows`` (step 1)."""
    height = int(header["ZNAXIS2"])
    tile_rows = int(header.get("ZTILE2", 1))
    start, stop, step = rows.indices(height)
    if step != 1:
        raise ValueError(f"Row step {step} is not supported.")
    stop = max(start, stop)
    first_tile = start // tile_rows
    last_tile = -(-stop // tile_rows) if stop > start else first_tile
    return first_tile, last_tile, start, stop


def decode_tiles(
    header: astropy.io.fits.Header,
    descriptors: np.ndarray,
    heap: bytes | memoryview,
    rows: slice,
    heap_offset: int = 0,
) -> np.ndarray:
    """Decode the rows ``rows`` of a GZIP tile-compressed image (`is_lossless_gzip` layout).

    Parameters
    ----------
    header : `astropy.io.fits.Header`
        The stored binary table header.
    descriptors : `numpy.ndarray`
        ``(tiles, 2)`` integers: each tile's byte count and heap offset (the table's rows).
    heap : `bytes`
        The heap from byte ``heap_offset`` on: at least the gzip streams of the tiles of ``rows``.
    rows : `slice`
        Image rows to decode (step 1), within ``0 .. ZNAXIS2``.
    heap_offset : `int`, optional
        Heap offset of ``heap``'s first byte.

    Returns
    -------
    array : `numpy.ndarray`
        ``(rows, ZNAXIS1)`` in native byte order, the values astropy's ``CompImageHDU`` gives.
    """
    width = int(header["ZNAXIS1"])
    height = int(header["ZNAXIS2"])
    tile_rows = int(header.get("ZTILE2", 1))
    first_tile, last_tile, start, stop = tile_span(header, rows)
    stored = np.dtype(_BITPIX_DTYPES[int(header["ZBITPIX"])])
    size = stored.itemsize
    band_start = first_tile * tile_rows
    band_rows = min(last_tile * tile_rows, height) - band_start
    view = memoryview(heap)
    chunks = []
    for tile, (count, offset) in enumerate(descriptors[first_tile:last_tile].tolist(), start=first_tile):
        expected = (min((tile + 1) * tile_rows, height) - tile * tile_rows) * width * size
        begin = offset - heap_offset
        data = zlib.decompress(view[begin : begin + count], _GZIP_WBITS, expected)
        if len(data) != expected:
            raise ArchiveReadError(f"Tile {tile} inflated to {len(data)} bytes, expected {expected}.")
        chunks.append(data)
    raw = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    values = np.empty((band_rows, width), dtype=stored.newbyteorder("="))
    if header["ZCMPTYPE"].strip() == "GZIP_2" and size > 1:
        # GZIP_2 stores each tile as its values' first bytes, then their second bytes, ... (big-endian
        # significance order). One copy per byte position and run of equal tiles puts them back in
        # native order (a strided copy of whole values' bytes at once was 3-10x slower).
        out = values.reshape(-1).view(np.uint8).reshape(-1, size)
        done = 0
        full = (band_rows // tile_rows) * tile_rows * width  # values in whole tiles
        for count, per_tile in (
            (full, tile_rows * width),
            (band_rows * width - full, band_rows * width - full),
        ):
            if count == 0:
                continue
            tiles = raw[done * size : (done + count) * size].reshape(-1, size, per_tile)
            target = out[done : done + count].reshape(-1, per_tile, size)
            for k in range(size):
                target[:, :, k] = tiles[:, size - 1 - k if np.little_endian else k, :]
            done += count
    else:
        values[...] = raw.view(stored).reshape(band_rows, width)
    return values[start - band_start : stop - band_start]


class TileReader:
    """Reads of one GZIP tile-compressed HDU (`is_lossless_gzip`), made by `lossless_gzip_reader`.

    The tile descriptors are read once; each `read` then reads from the stream just the heap bytes of
    the tiles it decodes (a band of rows of a combine input needs only its band's tiles).

    Parameters
    ----------
    header : `astropy.io.fits.Header`
        The stored binary table header.
    stream : `typing.IO` [`bytes`]
        The open file, kept open while this is used.
    data_start : `int`
        Stream offset of the HDU's data (the table, then the heap).
    """

    def __init__(self, header: astropy.io.fits.Header, stream: IO[bytes], data_start: int) -> None:
        self.header = header
        self._stream = stream
        table_size = int(header["NAXIS1"]) * int(header["NAXIS2"])
        self._heap_start = data_start + int(header.get("THEAP", table_size))
        stream.seek(data_start)
        table = stream.read(table_size)
        if len(table) != table_size:
            raise ArchiveReadError(f"Compressed HDU truncated: {len(table)} of {table_size} table bytes.")
        descriptor = ">i4" if int(header["NAXIS1"]) == 8 else ">i8"
        self._descriptors = np.frombuffer(table, dtype=descriptor).reshape(-1, 2).astype(np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the image."""
        return int(self.header["ZNAXIS2"]), int(self.header["ZNAXIS1"])

    def read(self, slices: tuple[slice, ...] | EllipsisType = ...) -> np.ndarray:
        """The image, or ``image[slices]`` (decoding only the tiles of the rows asked for)."""
        if slices is ...:
            return self._rows(slice(None))
        row_slice = slices[0] if slices else slice(None)
        if not isinstance(row_slice, slice) or row_slice.step not in (None, 1):
            return self._rows(slice(None))[slices]
        return self._rows(row_slice)[(slice(None), *slices[1:])]

    def _rows(self, rows: slice) -> np.ndarray:
        first_tile, last_tile, _, _ = tile_span(self.header, rows)
        tiles = self._descriptors[first_tile:last_tile]
        begin = int(tiles[:, 1].min()) if len(tiles) else 0
        end = int((tiles[:, 1] + tiles[:, 0]).max()) if len(tiles) else 0
        self._stream.seek(self._heap_start + begin)
        heap = self._stream.read(end - begin)
        if len(heap) != end - begin:
            raise ArchiveReadError(f"Compressed HDU truncated: {len(heap)} of {end - begin} heap bytes.")
        return decode_tiles(self.header, self._descriptors, heap, rows, heap_offset=begin)


def lossless_gzip_reader(stream: IO[bytes]) -> TileReader | None:
    """A `TileReader` of the HDU that starts at ``stream``'s offset 0, or `None` if it is not in the
    `is_lossless_gzip` layout (astropy reads those)."""
    stream.seek(0)
    header = astropy.io.fits.Header.fromfile(stream, padding=True)
    if header.get("XTENSION", "").strip() != "BINTABLE" or not is_lossless_gzip(header):
        return None
    return TileReader(header, stream, stream.tell())


class ZlibTileFitsInputArchive(FitsInputArchive):
    """lsst.images' ``FitsInputArchive`` decoding lossless GZIP tile-compressed arrays with `decode_tiles`.

    Open it as the base class (``ZlibTileFitsInputArchive.open_tree(path, partial=...)``); the objects
    read are those the base class reads, with the same arrays and opaque headers.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self._tile_readers: dict[Any, TileReader | None] = {}

    def get_array(
        self,
        model: ArrayReferenceModel | InlineArrayModel,
        *,
        slices: tuple[slice, ...] | EllipsisType = ...,
        strip_header: Callable[[astropy.io.fits.Header], None] = no_header_updates,
    ) -> np.ndarray:
        if not isinstance(model, ArrayReferenceModel):
            return super().get_array(model, slices=slices, strip_header=strip_header)
        key, reader = self._get_source_reader(model.source, is_table=False)
        if reader._hdu_cls is not astropy.io.fits.CompImageHDU:
            return super().get_array(model, slices=slices, strip_header=strip_header)
        if key not in self._tile_readers:
            self._tile_readers[key] = lossless_gzip_reader(reader._stream)
        tiles = self._tile_readers[key]
        if tiles is None:
            return super().get_array(model, slices=slices, strip_header=strip_header)
        array = tiles.read(slices)
        if key not in self._opaque_metadata.headers:
            # As the base class: the image header astropy derives from the table header.
            opaque_header = reader.header.copy(strip=True)
            strip_header(opaque_header)
            self._opaque_metadata.add_header(opaque_header, key=key)
        return array
