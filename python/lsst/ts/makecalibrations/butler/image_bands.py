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

"""Row bands of a stored ``MaskedImage``, read from a file opened once.

A calibration combine reads every input in bands of full rows (`pipelines.combine`). A butler read
with ``parameters={"bbox": ...}`` for each band re-opens the file and re-parses its archive tree and
headers each time (580 reads for 20 full-size inputs in 29 bands). `open_image_bands` opens the file
once with lsst.images' FITS archive reader (`gzip_tiles.ZlibTileFitsInputArchive`, the reader of
`formatters.CalibrationImageFormatter`; lsst.images' ``open_archive`` for files that are not local
FITS) and `ImageBands.read` then reads each band from the open file: an uncompressed image reads just
the band's rows, a tile-compressed one decompresses just the band's tiles.

The mask is read from the same file with astropy, straight from the HDUs the archive tree points at:
lsst.images stores a mask in FITS as int32 planes and rebuilds its in-memory mask plane by plane,
which took three times as long as reading the image; the combine only needs "is any of these planes
set", one ``&`` with the planes' bits. `ImageBands.read` falls back to the lsst.images mask when the
file is not a local FITS file or its mask is stored in another layout.

May import: numpy, astropy, lsst.images, lsst.resources and this room's `gzip_tiles`.
"""

from __future__ import annotations

__all__ = ["ImageBands", "excluded_pixels", "open_image_bands"]

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from astropy.io import fits
from lsst.images import Box, Mask, MaskedImage, MaskSchema
from lsst.images.fits import ExtensionKey
from lsst.images.serialization import ArrayReferenceModel, Reader, open_archive
from lsst.resources import ResourcePath, ResourcePathExpression

from .gzip_tiles import ZlibTileFitsInputArchive


class ImageBands:
    """Band reads from one open ``MaskedImage`` file (made by `open_image_bands`).

    Parameters
    ----------
    reader : `lsst.images.serialization.Reader`
        The open archive.
    planes : `~collections.abc.Sequence` [`str`]
        Mask planes whose pixels `read` reports as excluded (planes the file lacks are ignored).
    raw_masks : `list` [`tuple`], optional
        ``(section, bits, bbox)`` of each stored mask array holding one of ``planes``: read with
        astropy (see the module docstring). `None` reads the mask through ``reader``.
    """

    def __init__(
        self, reader: Any, planes: Sequence[str], raw_masks: list[tuple[Any, int, Box]] | None
    ) -> None:
        self._reader = reader
        self._planes = tuple(planes)
        self._raw_masks = raw_masks

    @property
    def reads_raw_mask(self) -> bool:
        """Whether the mask is read from the stored int32 planes (the fast path)."""
        return self._raw_masks is not None

    def corner(self) -> MaskedImage:
        """The image's first pixel, with its metadata (for the header)."""
        return self._reader.read(bbox=Box.factory[0:1, 0:1])

    def read(self, box: Box, with_variance: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Read the pixels of ``box``.

        Returns
        -------
        image : `numpy.ndarray`
            float32 image values.
        excluded : `numpy.ndarray`
            True where one of the planes is set.
        variance : `numpy.ndarray` or `None`
            float32 variance, when ``with_variance``.
        """
        image = np.asarray(self._reader.get_component("image", bbox=box).array, dtype=np.float32)
        if self._raw_masks is not None:
            excluded = np.zeros(image.shape, dtype=bool)
            for section, bits, stored in self._raw_masks:
                excluded |= _any_bit(section[box.slice_within(stored)], bits)
        else:
            excluded = excluded_pixels(self._reader.get_component("mask", bbox=box), self._planes)
        variance = None
        if with_variance:
            variance = np.asarray(self._reader.get_component("variance", bbox=box).array, dtype=np.float32)
        return image, excluded, variance


def excluded_pixels(mask: Mask, planes: Sequence[str]) -> np.ndarray:
    """True where any of ``planes`` is set in an lsst.images ``mask`` (planes it lacks are ignored)."""
    present = [plane for plane in planes if plane in mask.schema.names]
    if not present:
        return np.zeros(mask.array.shape[:-1], dtype=bool)
    return np.any(mask.array & mask.schema.bitmask(*present), axis=-1)


def _any_bit(values: np.ndarray, bits: int) -> np.ndarray:
    """``(values & bits) != 0`` without converting big-endian FITS integers to native order.

    ``&`` acts on each byte alone, so the stored bytes and the bits in the same byte order give the
    same answer five times faster than a byte swap of every value first.
    """
    if values.dtype.isnative:
        return (values & bits) != 0
    native = values.dtype.newbyteorder("=")
    return (values.view(native) & np.array(bits, dtype=values.dtype).view(native)) != 0


@contextlib.contextmanager
def open_image_bands(uri: ResourcePathExpression, planes: Sequence[str]) -> Iterator[ImageBands]:
    """Open a stored ``MaskedImage`` once for band reads (see the module docstring).

    Parameters
    ----------
    uri : `lsst.resources.ResourcePathExpression`
        The dataset's file (``butler.getURI(ref)``).
    planes : `~collections.abc.Sequence` [`str`]
        Mask planes of the excluded pixels.

    Yields
    ------
    bands : `ImageBands`
        Valid inside the ``with`` block.
    """
    path = ResourcePath(uri)
    with contextlib.ExitStack() as stack:
        raw_masks = None
        if path.isLocal and path.getExtension() == ".fits":
            archive, tree, info = stack.enter_context(ZlibTileFitsInputArchive.open_tree(path, partial=True))
            reader = Reader(archive, tree, info, MaskedImage)
            raw_masks = _raw_masks(stack, path.ospath, reader.get_tree(), planes)
        else:
            reader = stack.enter_context(open_archive(path, cls=MaskedImage, partial=True))
        yield ImageBands(reader, planes, raw_masks)


def _raw_masks(
    stack: contextlib.ExitStack, path: str, tree: Any, planes: Sequence[str]
) -> list[tuple[Any, int, Box]] | None:
    """The stored int32 mask arrays holding ``planes``, or `None` for a layout this does not read."""
    model = getattr(tree, "mask", None)
    if model is None:
        return None
    schemas = MaskSchema(model.planes, dtype=model.dtype.to_numpy()).split(np.int32)
    if len(schemas) != len(model.data):
        return None
    wanted = []
    for ref, schema in zip(model.data, schemas, strict=True):
        present = [plane for plane in planes if plane in schema.names]
        if not present:
            continue
        if not isinstance(ref, ArrayReferenceModel) or not isinstance(ref.source, str) or len(ref.shape) != 2:
            return None
        wanted.append((ExtensionKey.from_str(ref.source), int(schema.bitmask(*present)[0])))
    if not wanted:
        return []
    hdus = stack.enter_context(fits.open(path, memmap=False, lazy_load_hdus=True))
    return [(hdus[key.name, key.ver].section, bits, model.bbox) for key, bits in wanted]
