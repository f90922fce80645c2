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

"""Create and open the LSSTComCam butler repository used by the script, the simulated camera and the
OCPS pipelines.

`create_repo` lays out a self-contained repo: SQLite registry + file datastore, the repo's own storage
classes and formatters (``data/seed_config.yaml``), the `instrument.LsstComCam` records, every dataset
type of doc/dev/contracts.md ("Butler gateway"), the RUN ``LSSTComCam/raw/all`` and the CALIBRATION
collection ``LSSTComCam/calib``.
Filling that collection with reference calibrations is the simulated observatory's job
(`lsst.ts.makecalibrations.sim.repository`), since they come from the simulated truth.

May import: lsst.daf.butler, lsst.pipe.base, numpy, astropy and this room's modules.
"""

from __future__ import annotations

__all__ = [
    "CALIB_COLLECTION",
    "CURATED_BEGIN",
    "CURATED_END",
    "CURATED_RUN",
    "DATASET_TYPES",
    "INSTRUMENT_CLASS",
    "RAW_RUN",
    "DatasetTypeSpec",
    "RepositoryError",
    "create_repo",
    "creation_lock",
    "enable_intermediate_formatters",
    "make_butler",
    "register_dataset_types",
    "repo_instrument",
    "repo_seed_config",
    "shared_butlers",
    "calib_collection",
    "curated_run",
    "raw_run",
]

import contextlib
import dataclasses
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsst.daf.butler import Butler, CollectionType, Config, DatasetType

from .camera import INSTRUMENT_NAME
from .formatters import (
    CALIBRATION_IMAGE_DATASETS,
    INTERMEDIATE_IMAGE_DATASETS,
    CalibrationImageFormatter,
    IntermediateImageFormatter,
)
from .instrument import INSTRUMENT_CLASSES


def raw_run(instrument: str = INSTRUMENT_NAME) -> str:
    """RUN collection of the raws of ``instrument`` (``<instrument>/raw/all``)."""
    return f"{instrument}/raw/all"


def calib_collection(instrument: str = INSTRUMENT_NAME) -> str:
    """CALIBRATION collection of ``instrument``'s reference calibrations (``<instrument>/calib``)."""
    return f"{instrument}/calib"


def curated_run(instrument: str = INSTRUMENT_NAME) -> str:
    """RUN collection of ``instrument``'s reference calibration datasets."""
    return f"{instrument}/calib/curated"


RAW_RUN = raw_run()
"""RUN collection of the LSSTComCam raws."""

CALIB_COLLECTION = calib_collection()
"""CALIBRATION collection of the LSSTComCam reference calibrations."""

CURATED_RUN = curated_run()
"""RUN collection holding the LSSTComCam reference calibration datasets."""

CURATED_BEGIN = "1950-01-01"
"""Start (TAI) of the reference calibrations' validity range."""

CURATED_END = "2050-01-01"
"""End (TAI, exclusive) of the reference calibrations' validity range."""

INSTRUMENT_CLASS = "lsst.ts.makecalibrations.butler.instrument.LsstComCam"
"""Full class name of the instrument, as pipeline YAMLs name it."""

_SEED_CONFIG = Path(__file__).parent / "data" / "seed_config.yaml"
_LOCK_FILE = ".makecalibrations.lock"


class RepositoryError(RuntimeError):
    """The repository exists but cannot be used as asked (e.g. a different simulation size)."""


@dataclasses.dataclass(frozen=True)
class DatasetTypeSpec:
    """Definition of one dataset type of the repo.

    Attributes
    ----------
    name : `str`
        Dataset type name.
    dimensions : `tuple` [`str`, ...]
        Dimensions.
    storage_class : `str`
        Storage class name.
    is_calibration : `bool`
        Whether it can be certified into CALIBRATION collections.
    """

    name: str
    dimensions: tuple[str, ...]
    storage_class: str
    is_calibration: bool = False


_EXP_DET = ("instrument", "exposure", "detector")


def _dataset_type_specs() -> tuple[DatasetTypeSpec, ...]:
    specs = [
        DatasetTypeSpec("raw", _EXP_DET, "RawImage"),
        DatasetTypeSpec("bias", ("instrument", "detector"), "MaskedImageV2", True),
        DatasetTypeSpec("dark", ("instrument", "detector"), "MaskedImageV2", True),
        DatasetTypeSpec("flat", ("instrument", "detector", "physical_filter"), "MaskedImageV2", True),
        DatasetTypeSpec("defects", ("instrument", "detector"), "DefectTable", True),
        DatasetTypeSpec("ptc", ("instrument", "detector"), "PhotonTransferCurve", True),
        DatasetTypeSpec("cpPtcPartial", _EXP_DET, "PhotonTransferCurve"),
        DatasetTypeSpec("cpPtcExtract", _EXP_DET, "PhotonTransferCurve"),
    ]
    for kind in ("Bias", "Dark", "Flat"):
        run_dimensions = ("instrument", "physical_filter") if kind == "Flat" else ("instrument",)
        specs += [
            DatasetTypeSpec(f"verify{kind}Stats", run_dimensions, "StructuredDataDict"),
            DatasetTypeSpec(f"verify{kind}ExpStats", ("instrument", "exposure"), "StructuredDataDict"),
            DatasetTypeSpec(f"verify{kind}DetStats", _EXP_DET, "StructuredDataDict"),
            DatasetTypeSpec(f"verify{kind}Proc", _EXP_DET, "MaskedImageV2"),
        ]
    for kind in ("Bias", "Dark", "Flat", "Ptc"):
        specs.append(DatasetTypeSpec(f"cp{kind}Proc", _EXP_DET, "MaskedImageV2"))
    return tuple(specs)


DATASET_TYPES: tuple[DatasetTypeSpec, ...] = _dataset_type_specs()
"""Every dataset type registered when the repo is created (doc/dev/contracts.md, "Butler gateway")."""


def make_butler(
    repo: str | os.PathLike[str],
    *,
    writeable: bool = False,
    collections: Any = None,
    instrument: str | None = None,
) -> Butler:
    """Open the butler of ``repo`` with ``instrument`` as default data ID (`repo_instrument` if `None`;
    no default data ID if ``""``, for code that must also open a repository without instrument records).

    Inside `shared_butlers` this is a clone of one butler per repository, mode and instrument.
    """
    if instrument is None:
        instrument = repo_instrument(repo)
    defaults: dict[str, Any] = {"instrument": instrument} if instrument else {}
    with _SHARED_LOCK:
        key = _shared_key(repo, writeable, instrument) if _SHARED is not None else None
        if _SHARED is None or key is None:
            base = None
        elif (base := _SHARED.get(key)) is None:
            base = _SHARED[key] = Butler.from_config(str(repo), writeable=writeable, **defaults)
    if base is not None:
        return base.clone(collections=collections)
    return Butler.from_config(str(repo), writeable=writeable, collections=collections, **defaults)


_SHARED_LOCK = threading.Lock()
_SHARED: dict[tuple[Any, ...], Butler] | None = None
_SHARED_DEPTH = 0


def _shared_key(repo: str | os.PathLike[str], writeable: bool, instrument: str) -> tuple[Any, ...] | None:
    """What a shared butler of ``repo`` is kept under: the resolved path and the identity and
    modification time of its ``butler.yaml`` (a repository re-created or re-configured at the same path
    gets a new butler); `None` (not shared) if ``repo`` has no ``butler.yaml`` on the local disk."""
    try:
        stat = (Path(repo) / "butler.yaml").stat()
    except (OSError, ValueError):
        return None
    return (str(Path(repo).resolve()), stat.st_dev, stat.st_ino, stat.st_mtime_ns, writeable, instrument)


@contextlib.contextmanager
def shared_butlers() -> Iterator[None]:
    """Within the block, `make_butler` opens each repository once (per mode and instrument) and
    returns a clone of that butler at every call.

    For a long process that reads the repository many times (``run_script``: the script's readers,
    the simulated OCPS's output queries, the raw writer): ``Butler.from_config`` costs 0.1-0.3 s of
    CPU (reading the configuration, SQLAlchemy building the registry's tables), ``Butler.clone`` a
    few milliseconds. A clone has its own database sessions (daf_butler shares only the connection
    pool between clones) and starts with the same caches as a newly opened butler, because the
    shared butler itself is never used: its dataset type and dimension record caches stay empty and
    the collection caches are off outside ``caching_context``. So a clone sees the datasets,
    collections and dataset types that other processes (the concurrent ``pipetask`` jobs) registered
    after the shared butler was opened, as a newly opened butler would. The shared butlers are
    closed when the outermost block ends; blocks may nest and threads may call `make_butler`
    concurrently (each call gets its own clone).
    """
    global _SHARED, _SHARED_DEPTH
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = {}
        _SHARED_DEPTH += 1
    try:
        yield
    finally:
        with _SHARED_LOCK:
            _SHARED_DEPTH -= 1
            closing = list(_SHARED.values()) if _SHARED is not None and _SHARED_DEPTH == 0 else []
            if _SHARED_DEPTH == 0:
                _SHARED = None
        for butler in closing:
            butler.close()


_REPO_INSTRUMENTS: dict[str, str] = {}


def repo_instrument(repo: str | os.PathLike[str]) -> str:
    """The instrument of a repository made by `create_repo` (its only ``instrument`` record).

    A repository without (or with several) instrument records, or a path that is not a repository,
    gives ``LSSTComCam``. The answer is
    remembered per resolved path once the repository has exactly one instrument.
    """
    key = str(Path(repo).resolve())
    if key in _REPO_INSTRUMENTS:
        return _REPO_INSTRUMENTS[key]
    if not (Path(repo) / "butler.yaml").exists():
        return INSTRUMENT_NAME  # not (yet) a repository: whoever opens it says what is missing
    butler = Butler.from_config(str(repo))
    try:
        names = [record.name for record in butler.registry.queryDimensionRecords("instrument")]
    finally:
        butler.close()
    if len(names) != 1:
        return INSTRUMENT_NAME
    _REPO_INSTRUMENTS[key] = names[0]
    return names[0]


def register_dataset_types(butler: Butler) -> None:
    """Register every dataset type of `DATASET_TYPES` (no-op for those already registered)."""
    for spec in DATASET_TYPES:
        butler.registry.registerDatasetType(
            DatasetType(
                spec.name,
                spec.dimensions,
                spec.storage_class,
                universe=butler.dimensions,
                isCalibration=spec.is_calibration,
            )
        )


@contextlib.contextmanager
def creation_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``root`` (created if missing) while repos are made."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / _LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def repo_seed_config() -> Config:
    """The configuration merged into a new repository's ``butler.yaml``.

    ``data/seed_config.yaml`` (the repo's storage classes and formatters) plus one datastore formatter
    entry per dataset type of `formatters.INTERMEDIATE_IMAGE_DATASETS`, so those processed images are
    written uncompressed, and of `formatters.CALIBRATION_IMAGE_DATASETS`, so the certified bias, dark
    and flat (written as before) are read with the zlib tile decoder. Repositories made before these
    entries existed keep the lsst.images default for them and work unchanged.
    """
    config = Config(str(_SEED_CONFIG))
    for names, cls in (
        (INTERMEDIATE_IMAGE_DATASETS, IntermediateImageFormatter),
        (CALIBRATION_IMAGE_DATASETS, CalibrationImageFormatter),
    ):
        for name in names:
            config["datastore", "formatters", name] = f"{cls.__module__}.{cls.__qualname__}"
    return config


def enable_intermediate_formatters(root: str | os.PathLike[str]) -> list[str]:
    """Map the intermediate dataset types of an existing repository to `IntermediateImageFormatter`
    (and the calibrations to `CalibrationImageFormatter`).

    For repositories made before the mapping existed (`repo_seed_config`): adds the missing
    ``datastore.formatters`` entries to ``butler.yaml``. Datasets already written keep the formatter
    recorded with them and read back unchanged. Returns the dataset type names that were added.
    """
    path = Path(root) / "butler.yaml"
    config = Config(str(path))
    wanted = repo_seed_config()["datastore", "formatters"]
    added = [
        name
        for name in (*INTERMEDIATE_IMAGE_DATASETS, *CALIBRATION_IMAGE_DATASETS)
        if ("datastore", "formatters", name) not in config
    ]
    for name in added:
        config["datastore", "formatters", name] = wanted[name]
    if added:
        config.dumpToUri(str(path))
    return added


def create_repo(root: str | os.PathLike[str], instrument: str = INSTRUMENT_NAME) -> Butler:
    """Lay out a new repository at ``root`` (or finish an interrupted layout) and return a writeable butler.

    Every step is idempotent: the instrument and dataset types are synced, the collections registered
    only if missing.

    Parameters
    ----------
    root : `str` or `os.PathLike`
        Repository root.
    instrument : `str`, optional
        The repository's one instrument (``LSSTComCam``, ``LSSTCam``, ``LATISS``).
    """
    root = Path(root)
    try:
        instrument_class = INSTRUMENT_CLASSES[instrument]
    except KeyError:
        raise ValueError(
            f"Unknown instrument {instrument!r}; expected one of {sorted(INSTRUMENT_CLASSES)}."
        ) from None
    if not (root / "butler.yaml").exists():
        Butler.makeRepo(str(root), config=repo_seed_config())
    butler = Butler.from_config(str(root), writeable=True)
    others = [r.name for r in butler.registry.queryDimensionRecords("instrument") if r.name != instrument]
    if others:
        raise RepositoryError(f"Repository {root} holds instrument {others[0]}, not {instrument}.")
    instrument_class().register(butler.registry)
    register_dataset_types(butler)
    butler.registry.registerRun(raw_run(instrument))
    butler.registry.registerRun(curated_run(instrument))
    butler.registry.registerCollection(calib_collection(instrument), CollectionType.CALIBRATION)
    return butler
