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

"""Butler formatters for the repo's own storage classes: ``RawImage``, ``PhotonTransferCurve`` and
``DefectTable``.

The storage classes and these formatters are declared in ``data/seed_config.yaml``, which
`repository.create_repo` passes to ``Butler.makeRepo`` so they end up in the repo's ``butler.yaml``
(the repo is self-contained; only this package must be importable to read the datasets).

* ``RawImage`` → FITS like a real LSST raw: the primary header carries the metadata as cards, then one
  int32 image HDU per amp (``EXTNAME`` = amp name), then a ``METADATA`` HDU with the metadata as JSON
  so it reads back exactly (types and key case). ``component="metadata"`` reads only that HDU. The
  amp HDUs are not tile-compressed: Rice compression saves 70% of the disk but made writing a
  default-size exposure 5x slower (1.5 s instead of 0.3 s for 9 detectors) and every read 8x slower,
  which costs more than the disk on these 2-core machines.
* ``PhotonTransferCurve`` → JSON (`calib_types.PhotonTransferCurve.to_json`).
* ``DefectTable`` (`calib_types.Defects`) → ECSV table ``x0, y0, width, height`` with the metadata.
* `IntermediateImageFormatter`: the lsst.images ``MaskedImageV2`` FITS layout without tile
  compression, for the processed images that exist to be read by the next task of the same OCPS job
  (`INTERMEDIATE_IMAGE_DATASETS`). lsst.images' default is lossless GZIP_2 in one-row tiles, which
  astropy compresses row by row at level 9: at the default size writing one processed detector image
  takes 0.47 s compressed and 0.05 s uncompressed, reading it 0.54 s against 0.05 s (file 3.2 MB vs
  12 MB). The files are ordinary lsst.images FITS archives (``butler.get`` returns the same
  ``MaskedImage``, any FITS reader opens them); certified products (bias, dark, flat) keep the
  compressed default. The datastore records the formatter of each dataset, so datasets written
  before (compressed) read back as before.
* `CalibrationImageFormatter`: lsst.images' ``GenericFormatter`` for the certified bias, dark and
  flat (`CALIBRATION_IMAGE_DATASETS`): it writes the same files (lossless GZIP_2 in one-row tiles,
  the product's format), and a whole-dataset read decodes the tiles with zlib
  (`gzip_tiles.ZlibTileFitsInputArchive`) instead of astropy: the same ``MaskedImage`` bit for bit,
  0.85 s of CPU instead of 1.4 s for a full-size detector. Every job reads each calibration once per
  detector (`pipelines.tasks.detector_isr_task`). Calibrations written before the mapping keep
  ``GenericFormatter`` in their datastore record and read as before.
* `LibyamlFormatter`: daf_butler's ``YamlFormatter`` (the ``StructuredDataDict`` datasets: the
  cp_verify statistics ``verify*DetStats``, ``verify*ExpStats``, ``verify*Stats``) parsing and emitting
  with libyaml (PyYAML's ``CSafeLoader``/``CSafeDumper``) instead of PyYAML's pure-Python loader and
  dumper. The files are the same YAML, byte for byte (the representer and resolver are PyYAML's own,
  only the scanner/parser and the emitter are C): over the 74 statistics files of a small daily default
  the pure-Python loader took 0.83 s and the dumper 0.49 s, libyaml 0.14 s and 0.10 s. Without libyaml
  (a PyYAML built without it) it falls back to the pure-Python classes.

May import: lsst.daf.butler, lsst.resources, numpy, astropy, yaml and this package's `butler` modules.
"""

from __future__ import annotations

__all__ = [
    "CALIBRATION_IMAGE_DATASETS",
    "INTERMEDIATE_IMAGE_DATASETS",
    "CalibrationImageFormatter",
    "DefectsFormatter",
    "IntermediateImageFormatter",
    "LibyamlFormatter",
    "PhotonTransferCurveFormatter",
    "RawImageFormatter",
]

import json
import warnings
from typing import Any

import numpy as np
import yaml
from astropy.io import fits
from astropy.table import Table
from lsst.daf.butler import FormatterV2
from lsst.daf.butler.formatters.yaml import YamlFormatter
from lsst.images.formatters import GenericFormatter
from lsst.images.serialization import Reader
from lsst.resources import ResourcePath

from .calib_types import Defects, PhotonTransferCurve
from .gzip_tiles import ZlibTileFitsInputArchive
from .images import json_default
from .raw_image import RawImage

_METADATA_EXTNAME = "METADATA"

INTERMEDIATE_IMAGE_DATASETS: tuple[str, ...] = (
    "cpBiasProc",
    "cpDarkProc",
    "cpFlatProc",
    "cpPtcProc",
    "cpDefectsDarkProc",
    "cpDefectsFlatProc",
    "cpDefectsDark",
    "cpDefectsFlat",
    "verifyBiasProc",
    "verifyDarkProc",
    "verifyFlatProc",
)
"""Dataset types written with `IntermediateImageFormatter` (`repository.create_repo` maps each one)."""

CALIBRATION_IMAGE_DATASETS: tuple[str, ...] = ("bias", "dark", "flat")
"""Dataset types written and read with `CalibrationImageFormatter` (`repository.create_repo` maps each)."""

_IMAGE_PLANES = ("image", "mask", "variance")


def _header_cards(metadata: dict[str, Any]) -> list[tuple[str, Any]]:
    """Return the metadata items that fit in FITS header cards (scalars, printable strings)."""
    cards = []
    for key, value in metadata.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | float | str) and (
            not isinstance(value, str) or value.isprintable()
        ):
            if isinstance(value, str) and len(value) > 60:
                continue
            cards.append((str(key).upper(), value))
    return cards


class RawImageFormatter(FormatterV2):
    """Read and write `RawImage` as a multi-extension FITS file (one HDU per amp)."""

    default_extension = ".fits"
    supported_extensions = frozenset({".fits"})
    can_read_from_local_file = True

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        with fits.open(path, memmap=False) as hdus:
            metadata = json.loads(bytes(hdus[_METADATA_EXTNAME].data).decode())
            if component == "metadata":
                return metadata
            if component is not None:
                raise ValueError(f"Unknown RawImage component {component!r}.")
            amps = {}
            for hdu in hdus[1:]:
                if hdu.name == _METADATA_EXTNAME:
                    continue
                amps[hdu.name] = np.asarray(hdu.data, dtype=np.int32)
        return RawImage(amps=amps, metadata=metadata)

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        raw: RawImage = in_memory_dataset
        primary = fits.PrimaryHDU()
        with warnings.catch_warnings():
            # Keys longer than 8 characters become HIERARCH cards; astropy warns about each one.
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            for key, value in _header_cards(raw.metadata):
                primary.header[key] = value
        hdus = [primary]
        for name in raw.amp_names:
            array = np.asarray(raw.amps[name])
            if not np.issubdtype(array.dtype, np.integer):
                array = np.rint(array)
            hdus.append(fits.ImageHDU(np.ascontiguousarray(array, dtype=np.int32), name=name))
        payload = np.frombuffer(json.dumps(raw.metadata, default=json_default).encode(), dtype=np.uint8)
        hdus.append(fits.ImageHDU(payload, name=_METADATA_EXTNAME))
        # No output verification: every card was checked when astropy made it (keyword, value type,
        # printable text; `_header_cards` keeps only such values) and the structural cards are
        # astropy's own. Verifying again looked astropy's configuration up about 500 times per raw,
        # a third of the write's CPU; the bytes are the same (tests/butler checks that a raw passes
        # verify("exception") and that astropy's verified write of it gives the identical file).
        fits.HDUList(hdus).writeto(uri.ospath, overwrite=True, output_verify="ignore")


class PhotonTransferCurveFormatter(FormatterV2):
    """Read and write `PhotonTransferCurve` as JSON."""

    default_extension = ".json"
    supported_extensions = frozenset({".json"})
    can_read_from_uri = True

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        ptc = PhotonTransferCurve.from_json(uri.read())
        if component is None:
            return ptc
        return getattr(ptc, component)

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        return in_memory_dataset.to_json().encode()


class DefectsFormatter(FormatterV2):
    """Read and write `Defects` as an ECSV table with columns ``x0, y0, width, height``."""

    default_extension = ".ecsv"
    supported_extensions = frozenset({".ecsv"})
    can_read_from_local_file = True

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        defects = Defects.from_table(Table.read(path, format="ascii.ecsv"))
        if component is None:
            return defects
        return getattr(defects, component)

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        in_memory_dataset.to_table().write(uri.ospath, format="ascii.ecsv", overwrite=True)


class IntermediateImageFormatter(GenericFormatter):
    """lsst.images ``GenericFormatter`` writing the image, mask and variance HDUs uncompressed.

    Everything else (the FITS archive layout, the JSON tree, the butler provenance header, reading
    with components and ``bbox``) is `lsst.images.formatters.GenericFormatter`'s. Used for the
    datasets of `INTERMEDIATE_IMAGE_DATASETS` (see the module docstring).
    """

    def _get_compression_options(self) -> dict[str, Any]:
        # ``None`` for a plane makes lsst.images write a plain ImageHDU
        # (FitsOutputArchive.add_array); tests/butler checks that the HDUs stay uncompressed.
        return dict.fromkeys(_IMAGE_PLANES)


class CalibrationImageFormatter(GenericFormatter):
    """lsst.images ``GenericFormatter`` whose whole-dataset FITS reads decode GZIP tiles with zlib.

    Writes exactly as ``GenericFormatter`` (the certified products keep their format). Reading the
    whole dataset from a local FITS file goes through `gzip_tiles.ZlibTileFitsInputArchive` (see the
    module docstring); component and ``bbox`` reads, and other formats, are ``GenericFormatter``'s.
    """

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        if component is not None or self.file_descriptor.parameters or not path.endswith(".fits"):
            return super().read_from_local_file(path, component, expected_size)
        pytype = self.file_descriptor.storageClass.pytype
        with ZlibTileFitsInputArchive.open_tree(path, partial=False) as (archive, tree, info):
            self._cache_tree(tree)
            return Reader(archive, tree, info, pytype).read()


_SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SAFE_DUMPER: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class LibyamlFormatter(YamlFormatter):
    """daf_butler's ``YamlFormatter`` with libyaml's safe loader and dumper (see the module docstring).

    Reads what ``YamlFormatter`` reads and writes the same bytes for plain data (mappings, lists,
    scalars); anything else (pydantic models, dataclasses, ``unsafe_dump``) goes through
    ``YamlFormatter.to_bytes`` unchanged.
    """

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        yaml_bytes = uri.read()
        try:
            return yaml.load(yaml_bytes, Loader=_SAFE_LOADER)
        except yaml.YAMLError as e:
            e.add_note(f"Error parsing YAML from {uri}, starting with {yaml_bytes[:60]!r}")
            raise

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        if not isinstance(in_memory_dataset, dict | list) or self.write_parameters.get("unsafe_dump", False):
            return super().to_bytes(in_memory_dataset)
        return yaml.dump(in_memory_dataset, Dumper=_SAFE_DUMPER, sort_keys=False).encode()
