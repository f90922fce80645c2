"""Create and open the LSSTComCam butler repository used by the script, the simulated camera and the
OCPS pipelines.

`create_repo` lays out a self-contained repo: SQLite registry + file datastore, the repo's own storage
classes and formatters (``data/seed_config.yaml``), the `instrument.LsstComCam` records, every dataset
type of contract §3, the RUN ``LSSTComCam/raw/all`` and the CALIBRATION collection ``LSSTComCam/calib``.
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
    "repo_seed_config",
]

import contextlib
import dataclasses
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsst.daf.butler import Butler, CollectionType, Config, DatasetType

from .camera import INSTRUMENT_NAME
from .formatters import INTERMEDIATE_IMAGE_DATASETS, IntermediateImageFormatter
from .instrument import LsstComCam

RAW_RUN = f"{INSTRUMENT_NAME}/raw/all"
"""RUN collection of the raws."""

CALIB_COLLECTION = f"{INSTRUMENT_NAME}/calib"
"""CALIBRATION collection of the reference calibrations."""

CURATED_RUN = f"{INSTRUMENT_NAME}/calib/curated"
"""RUN collection holding the reference calibration datasets."""

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
        DatasetTypeSpec("cpPtcExtract", _EXP_DET, "PhotonTransferCurve"),
    ]
    for kind in ("Bias", "Dark", "Flat"):
        specs += [
            DatasetTypeSpec(f"verify{kind}Stats", ("instrument",), "StructuredDataDict"),
            DatasetTypeSpec(f"verify{kind}ExpStats", ("instrument", "exposure"), "StructuredDataDict"),
            DatasetTypeSpec(f"verify{kind}DetStats", _EXP_DET, "StructuredDataDict"),
            DatasetTypeSpec(f"verify{kind}Proc", _EXP_DET, "MaskedImageV2"),
        ]
    for kind in ("Bias", "Dark", "Flat", "Ptc"):
        specs.append(DatasetTypeSpec(f"cp{kind}Proc", _EXP_DET, "MaskedImageV2"))
    return tuple(specs)


DATASET_TYPES: tuple[DatasetTypeSpec, ...] = _dataset_type_specs()
"""Every dataset type registered when the repo is created (contract §3)."""


def make_butler(repo: str | os.PathLike[str], *, writeable: bool = False, collections: Any = None) -> Butler:
    """Open the butler of ``repo`` (the instrument is always ``LSSTComCam``)."""
    return Butler.from_config(
        str(repo), writeable=writeable, collections=collections, instrument=INSTRUMENT_NAME
    )


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
    written uncompressed. Repositories made before these entries existed keep the lsst.images default
    (compressed) for them and work unchanged.
    """
    config = Config(str(_SEED_CONFIG))
    formatter = f"{IntermediateImageFormatter.__module__}.{IntermediateImageFormatter.__qualname__}"
    for name in INTERMEDIATE_IMAGE_DATASETS:
        config["datastore", "formatters", name] = formatter
    return config


def enable_intermediate_formatters(root: str | os.PathLike[str]) -> list[str]:
    """Map the intermediate dataset types of an existing repository to `IntermediateImageFormatter`.

    For repositories made before the mapping existed (`repo_seed_config`): adds the missing
    ``datastore.formatters`` entries to ``butler.yaml``. Datasets already written keep the formatter
    recorded with them and read back unchanged. Returns the dataset type names that were added.
    """
    path = Path(root) / "butler.yaml"
    config = Config(str(path))
    wanted = repo_seed_config()["datastore", "formatters"]
    added = [name for name in INTERMEDIATE_IMAGE_DATASETS if ("datastore", "formatters", name) not in config]
    for name in added:
        config["datastore", "formatters", name] = wanted[name]
    if added:
        config.dumpToUri(str(path))
    return added


def create_repo(root: str | os.PathLike[str]) -> Butler:
    """Lay out a new repository at ``root`` (or finish an interrupted layout) and return a writeable butler.

    Every step is idempotent: the instrument and dataset types are synced, the collections registered
    only if missing.
    """
    root = Path(root)
    if not (root / "butler.yaml").exists():
        Butler.makeRepo(str(root), config=repo_seed_config())
    butler = Butler.from_config(str(root), writeable=True)
    LsstComCam().register(butler.registry)
    register_dataset_types(butler)
    butler.registry.registerRun(RAW_RUN)
    butler.registry.registerRun(CURATED_RUN)
    butler.registry.registerCollection(CALIB_COLLECTION, CollectionType.CALIBRATION)
    return butler
