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

"""Read what the script needs back from the repository: verification statistics, per-pair gains,
exposure types and certified calibrations.

All functions open their own butler (they are synchronous; the script calls them with
``asyncio.to_thread``) and return plain Python objects.

May import: lsst.daf.butler, astropy and this room's modules.
"""

from __future__ import annotations

__all__ = [
    "PAIR_GAIN_DATASETS",
    "CertifiedCalibration",
    "PairGain",
    "collections_have_dataset",
    "datasets_in_run",
    "exposure_observation_types",
    "raw_detectors",
    "list_certified",
    "read_pair_gains",
    "read_ptc_bad_amps",
    "read_ptc_fit_fallbacks",
    "read_verify_exposure_stats",
    "read_verify_stats",
]

import dataclasses
import os
from collections.abc import Iterable
from typing import Any, NamedTuple

from lsst.daf.butler import Butler, DatasetRef, MissingDatasetTypeError
from lsst.daf.butler.registry import MissingCollectionError

from .calib_types import PhotonTransferCurve
from .camera import AMP_NAMES
from .certification import format_tai
from .repository import make_butler, raw_run

PAIR_GAIN_DATASETS = ("cpPtcPartial", "cpPtcExtract")
"""Per-pair gain datasets, current cp_pipe name first, then the pre-2024 name of older repositories."""


@dataclasses.dataclass(frozen=True)
class PairGain:
    """Gain of one amp measured from one flat pair (a ``cpPtcExtract`` entry).

    Attributes
    ----------
    exposure_pair : `tuple` [`int`, `int`]
        Exposure ids of the pair.
    detector : `int`
        Detector id.
    amp : `str`
        Amp name.
    gain : `float`
        Gain (e-/ADU).
    noise : `float`
        Overscan read noise (ADU, as cp_pipe stores it in the partial PTC).
    """

    exposure_pair: tuple[int, int]
    detector: int
    amp: str
    gain: float
    noise: float


class CertifiedCalibration(NamedTuple):
    """One certified dataset: ``(dataset_type, data_id, begin, end)``; begin/end ISO TAI or ±inf."""

    dataset_type: str
    data_id: dict[str, Any]
    begin: str
    end: str


def _instrument(butler: Any) -> str:
    """The butler's default instrument (`repository.make_butler` sets the repository's own)."""
    return str(butler.registry.defaults.dataId["instrument"])


def _collection_exists(butler: Butler, collection: str) -> bool:
    try:
        butler.registry.getCollectionType(collection)
    except MissingCollectionError:
        return False
    return True


def read_verify_stats(repo: str | os.PathLike[str], collection: str, dataset_type: str) -> dict:
    """Return a run-level verification dict (``verifyBiasStats``, ``verifyDarkStats``, ``verifyFlatStats``).

    ``verifyFlatStats`` has dimensions instrument + physical_filter (as cp_verify; one per filter of
    the job); repositories made before that change hold it with dimensions instrument only. Every
    dataset of ``dataset_type`` in ``collection`` is read, whatever its dimensions, and merged: the
    exposure entries of each, ``"SUCCESS"`` true only if every one succeeded.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Repository root.
    collection : `str`
        Collection to search (e.g. ``u/ocps/<job_id>``).
    dataset_type : `str`
        Run-level statistics dataset type.

    Returns
    -------
    stats : `dict`
        The cp_verify structure: integer exposure ids and ``"SUCCESS"`` as keys.

    Raises
    ------
    LookupError
        If the collection or the dataset does not exist (the message names both).
    """
    butler = make_butler(repo)
    if not _collection_exists(butler, collection):
        raise LookupError(f"Cannot read {dataset_type}: collection {collection!r} does not exist.")
    try:
        refs = list(butler.registry.queryDatasets(dataset_type, collections=[collection], findFirst=True))
    except MissingDatasetTypeError as e:
        raise LookupError(f"No {dataset_type} for {_instrument(butler)} in collection {collection!r}.") from e
    refs = [ref for ref in refs if ref.dataId["instrument"] == _instrument(butler)]
    if not refs:
        raise LookupError(f"No {dataset_type} for {_instrument(butler)} in collection {collection!r}.")
    merged: dict[Any, Any] = {}
    success = True
    for ref in refs:
        stats = dict(butler.get(ref))
        success = success and bool(stats.pop("SUCCESS", False))
        merged.update(stats)
    merged["SUCCESS"] = success
    return merged


def collections_have_dataset(repo: str | os.PathLike[str], collections: str, dataset_type: str) -> bool:
    """True if any of the comma-separated ``collections`` (that exist) holds a ``dataset_type``."""
    butler = make_butler(repo)
    names = [c for c in (name.strip() for name in collections.split(",")) if c]
    existing = [c for c in names if _collection_exists(butler, c)]
    if not existing:
        return False
    try:
        refs = butler.registry.queryDatasets(dataset_type, collections=existing, findFirst=False)
        return any(True for _ in refs)
    except MissingDatasetTypeError:
        return False


def read_verify_exposure_stats(
    repo: str | os.PathLike[str], collection: str, dataset_type: str
) -> dict[int, dict[str, Any]]:
    """Return the exposure-level verification dicts (``verifyFlatExpStats``...) keyed by exposure id.

    These name the failing detector and amp (``"C17 NOISE"``) also for flats, whose run-level stats
    do not; the strict certification rule reads them. Empty if the collection or dataset type does
    not exist.
    """
    butler = make_butler(repo)
    if not _collection_exists(butler, collection):
        return {}
    try:
        refs = list(butler.registry.queryDatasets(dataset_type, collections=collection, findFirst=True))
    except MissingDatasetTypeError:
        return {}
    return {int(ref.dataId["exposure"]): dict(butler.get(ref)) for ref in refs}


def _ptcs(repo: str | os.PathLike[str], collection: str) -> list[tuple[int, PhotonTransferCurve]]:
    """``(detector, ptc)`` of every ``ptc`` in ``collection`` (empty if none or no such collection)."""
    butler = make_butler(repo)
    if not _collection_exists(butler, collection):
        return []
    try:
        refs = list(butler.registry.queryDatasets("ptc", collections=collection, findFirst=True))
    except MissingDatasetTypeError:
        return []
    return [(int(ref.dataId["detector"]), butler.get(ref)) for ref in refs]


def read_ptc_bad_amps(repo: str | os.PathLike[str], collection: str) -> dict[int, dict[str, str]]:
    """Return ``{detector: {amp: reason}}`` for the bad amps of every ``ptc`` in ``collection``.

    The reason is the solver's (``PTC BAD AMP REASONS`` in the PTC metadata: fit failed, gain or
    noise at a fit bound, noise not constrained); detectors without bad amps are left out.
    """
    result: dict[int, dict[str, str]] = {}
    for detector, ptc in _ptcs(repo, collection):
        if ptc.bad_amps:
            reasons = ptc.metadata.get("PTC BAD AMP REASONS", {})
            result[detector] = {amp: str(reasons.get(amp, "bad amp")) for amp in ptc.bad_amps}
    return result


def read_ptc_fit_fallbacks(repo: str | os.PathLike[str], collection: str) -> dict[int, str]:
    """Return ``{detector: why}`` for every ``ptc`` in ``collection`` fitted with another type than the
    configured one (``PTC FIT FALLBACK`` in its metadata: too few pairs for FULLCOVARIANCE, so
    EXPAPPROXIMATION); detectors fitted as configured are left out."""
    return {
        detector: str(ptc.metadata["PTC FIT FALLBACK"])
        for detector, ptc in _ptcs(repo, collection)
        if ptc.metadata.get("PTC FIT FALLBACK")
    }


def read_pair_gains(repo: str | os.PathLike[str], collection: str) -> list[PairGain]:
    """Return the per-amp gains of every ``cpPtcPartial`` (one flat pair each) in ``collection``.

    Collections written before the rename hold ``cpPtcExtract`` (the pre-2024 cp_pipe name) only; those
    are read when there is no ``cpPtcPartial``.

    Returns
    -------
    gains : `list` [`PairGain`]
        Sorted by pair, detector and amp readout order; empty if there is none.
    """
    butler = make_butler(repo)
    if not _collection_exists(butler, collection):
        return []
    refs: list[DatasetRef] = []
    for dataset_type in PAIR_GAIN_DATASETS:
        try:
            refs = list(butler.registry.queryDatasets(dataset_type, collections=collection, findFirst=True))
        except MissingDatasetTypeError:
            continue
        if refs:
            break
    gains: list[PairGain] = []
    for ref in refs:
        partial: PhotonTransferCurve = butler.get(ref)
        for amp in partial.amp_names:
            pairs = partial.input_exp_id_pairs.get(amp) or []
            if pairs:
                pair = (int(pairs[0][0]), int(pairs[0][1]))
            else:
                pair = (int(ref.dataId["exposure"]), int(ref.dataId["exposure"]))
            gains.append(
                PairGain(
                    exposure_pair=pair,
                    detector=int(ref.dataId["detector"]),
                    amp=amp,
                    gain=float(partial.gain.get(amp, float("nan"))),
                    noise=float(partial.noise.get(amp, float("nan"))),
                )
            )
    order = {name: i for i, name in enumerate(AMP_NAMES)}
    gains.sort(key=lambda g: (g.exposure_pair, g.detector, order.get(g.amp, len(order))))
    return gains


def exposure_observation_types(repo: str | os.PathLike[str], exposure_ids: Iterable[int]) -> dict[int, str]:
    """Return ``{exposure id: observation_type}`` for the given exposures (unknown ids are left out)."""
    ids = sorted({int(i) for i in exposure_ids})
    if not ids:
        return {}
    butler = make_butler(repo)
    records = butler.registry.queryDimensionRecords(
        "exposure",
        instrument=_instrument(butler),
        where=f"exposure IN ({', '.join(str(i) for i in ids)})",
    )
    return {int(record.id): str(record.observation_type) for record in records}


def raw_detectors(repo: str | os.PathLike[str], exposure_ids: Iterable[int]) -> dict[int, list[int]]:
    """Return ``{exposure id: sorted detectors with a raw in the raw collection}``.

    Every exposure of ``exposure_ids`` registered in the repo is a key (with an empty list when it has
    no raw at all); exposures the registry does not know are left out.
    """
    ids = sorted({int(i) for i in exposure_ids})
    if not ids:
        return {}
    butler = make_butler(repo)
    where = f"exposure IN ({', '.join(str(i) for i in ids)})"
    result: dict[int, set[int]] = {
        int(record.id): set()
        for record in butler.registry.queryDimensionRecords(
            "exposure", instrument=_instrument(butler), where=where
        )
    }
    if result:
        try:
            refs = butler.registry.queryDatasets(
                "raw",
                collections=raw_run(_instrument(butler)),
                instrument=_instrument(butler),
                where=where,
                findFirst=True,
            )
            for ref in refs:
                result.setdefault(int(ref.dataId["exposure"]), set()).add(int(ref.dataId["detector"]))
        except (MissingDatasetTypeError, MissingCollectionError):
            pass
    return {exposure: sorted(detectors) for exposure, detectors in result.items()}


def list_certified(repo: str | os.PathLike[str], calib_collection: str) -> list[CertifiedCalibration]:
    """List every dataset certified in ``calib_collection`` with its validity range.

    Returns
    -------
    certified : `list` [`CertifiedCalibration`]
        Sorted by dataset type, data ID and begin; empty if the collection does not exist.
    """
    butler = make_butler(repo)
    if not _collection_exists(butler, calib_collection):
        return []
    result: list[CertifiedCalibration] = []
    for dataset_type in butler.registry.queryDatasetTypes():
        if not dataset_type.isCalibration():
            continue
        for association in butler.registry.queryDatasetAssociations(
            dataset_type, collections=calib_collection
        ):
            span = association.timespan
            data_id = {key: association.ref.dataId[key] for key in association.ref.dataId.required}
            result.append(
                CertifiedCalibration(
                    dataset_type=dataset_type.name,
                    data_id=data_id,
                    begin=format_tai(span.begin if span else None, "-inf"),
                    end=format_tai(span.end if span else None, "+inf"),
                )
            )
    result.sort(key=lambda c: (c.dataset_type, sorted(c.data_id.items()), c.begin))
    return result


def datasets_in_run(repo: str | os.PathLike[str], run: str) -> dict[tuple[str, tuple[Any, ...]], Any]:
    """Every dataset of a RUN collection, keyed by (dataset type name, required data ID values).

    The key is what two runs of the same job share (the refs' ids differ); used to compare the
    outputs of one job run by two executors (``bench/bench_executors.py``, the BPS executor's test).
    """
    butler = make_butler(repo)
    found: dict[tuple[str, tuple[Any, ...]], Any] = {}
    for dataset_type in butler.registry.queryDatasetTypes():
        for ref in butler.registry.queryDatasets(dataset_type, collections=run, findFirst=False):
            found[(dataset_type.name, tuple(ref.dataId.required_values))] = ref
    return found
