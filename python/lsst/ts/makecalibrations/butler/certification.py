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

"""Certify calibrations into CALIBRATION collections, and find validity-range conflicts beforehand.

This is what ``butler certify-calibrations REPO RUN CALIB --begin-date B --end-date E TYPE`` does,
through the daf_butler API, with errors that name the dataset type, the collection and the range in
ISO TAI (daf_butler's own conflict message prints Julian dates).

Dates are ``YYYY-MM-DD`` (00:00 TAI) or ISO-8601 date-times, always TAI. Note that daf_butler stores
times as nanoseconds since 1970-01-01 TAI and clamps earlier times to that epoch, which it treats as
unbounded: a range starting at the seed procedure's default 1950-01-01 is stored (and reported here)
as ``[-inf, end)``. `make_timespan` makes such a begin unbounded itself (daf_butler would log a
warning "... is earlier than epoch time" for every range it clamps).

May import: lsst.daf.butler, astropy and this room's modules.
"""

from __future__ import annotations

__all__ = [
    "BUTLER_EPOCH",
    "CertificationConflict",
    "CertificationError",
    "certify",
    "find_conflicts",
    "format_tai",
    "make_timespan",
    "parse_tai",
]

import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import Any

import astropy.time
from lsst.daf.butler import Butler, CollectionType, DatasetRef, MissingDatasetTypeError, Timespan
from lsst.daf.butler.registry import ConflictingDefinitionError, MissingCollectionError

from .repository import make_butler

BUTLER_EPOCH = astropy.time.Time("1970-01-01T00:00:00", format="isot", scale="tai")
"""daf_butler's time epoch: a validity range beginning at or before it is unbounded below."""


class CertificationError(RuntimeError):
    """Certification was refused (conflicting validity range, nothing to certify, bad collection)."""


@dataclasses.dataclass(frozen=True)
class CertificationConflict:
    """An existing certification that overlaps a requested validity range.

    Attributes
    ----------
    dataset_type : `str`
        Dataset type of the existing datasets.
    begin_iso : `str`
        Start of their validity range (ISO, TAI; ``-inf`` if unbounded).
    end_iso : `str`
        End of their validity range (ISO, TAI; ``+inf`` if unbounded).
    n_datasets : `int`
        Number of datasets (data IDs) certified over that range.
    """

    dataset_type: str
    begin_iso: str
    end_iso: str
    n_datasets: int

    def __str__(self) -> str:
        return f"{self.n_datasets} {self.dataset_type} certified over [{self.begin_iso}, {self.end_iso})"


def parse_tai(value: str | astropy.time.Time) -> astropy.time.Time:
    """Parse ``YYYY-MM-DD`` or an ISO date-time as TAI.

    Raises
    ------
    ValueError
        If the string is not a valid date.
    """
    if isinstance(value, astropy.time.Time):
        return value.tai
    try:
        return astropy.time.Time(str(value).strip(), scale="tai")
    except ValueError as e:
        raise ValueError(
            f"Invalid date {value!r}; expected YYYY-MM-DD or an ISO-8601 date-time (TAI)."
        ) from e


def format_tai(value: astropy.time.Time | None, unbounded: str = "inf") -> str:
    """Format a TAI time as ISO (``YYYY-MM-DDTHH:MM:SS``, fractional seconds only when non-zero)."""
    if value is None:
        return unbounded
    text = value.tai.isot
    if "." in text:
        whole, fraction = text.split(".", 1)
        fraction = fraction.rstrip("0")
        text = f"{whole}.{fraction}" if fraction else whole
    return text


def make_timespan(begin: str | astropy.time.Time, end: str | astropy.time.Time) -> Timespan:
    """Return the TAI `Timespan` ``[begin, end)``, refusing an empty or reversed range."""
    begin_time, end_time = parse_tai(begin), parse_tai(end)
    if not begin_time < end_time:
        raise ValueError(f"Validity range [{begin}, {end}) is empty: the end must be after the begin.")
    # daf_butler stores a begin before its epoch as unbounded; say so rather than let it warn.
    return Timespan(None if begin_time <= BUTLER_EPOCH else begin_time, end_time)


def _range_text(timespan: Timespan) -> str:
    return f"[{format_tai(timespan.begin, '-inf')}, {format_tai(timespan.end, '+inf')})"


def _collection_type(butler: Butler, collection: str) -> CollectionType | None:
    try:
        return butler.registry.getCollectionType(collection)
    except MissingCollectionError:
        return None


def _conflicts(
    butler: Butler,
    calib_collection: str,
    dataset_types: Iterable[str],
    timespan: Timespan,
    physical_filter: str | None,
    detectors: Sequence[int] | None,
    data_ids: set[Any] | None = None,
) -> list[CertificationConflict]:
    if _collection_type(butler, calib_collection) is None:
        return []
    registered = {dataset_type.name for dataset_type in butler.registry.queryDatasetTypes()}
    conflicts: list[CertificationConflict] = []
    for dataset_type in dataset_types:
        if dataset_type not in registered:
            continue
        counts: dict[tuple[Any, Any], int] = {}
        spans: dict[tuple[Any, Any], Timespan] = {}
        for association in butler.registry.queryDatasetAssociations(
            dataset_type, collections=calib_collection
        ):
            span = association.timespan
            if span is None or not span.overlaps(timespan):
                continue
            data_id = association.ref.dataId
            if physical_filter is not None and "physical_filter" in data_id.dimensions.names:
                if data_id["physical_filter"] != physical_filter:
                    continue
            if detectors is not None and "detector" in data_id.dimensions.names:
                if data_id["detector"] not in detectors:
                    continue
            if data_ids is not None and data_id.required_values not in data_ids:
                continue
            key = (span.begin, span.end)
            spans[key] = span
            counts[key] = counts.get(key, 0) + 1
        for key, count in counts.items():
            span = spans[key]
            conflicts.append(
                CertificationConflict(
                    dataset_type=dataset_type,
                    begin_iso=format_tai(span.begin, "-inf"),
                    end_iso=format_tai(span.end, "+inf"),
                    n_datasets=count,
                )
            )
    conflicts.sort(key=lambda c: (c.dataset_type, c.begin_iso, c.end_iso))
    return conflicts


def find_conflicts(
    repo: str | os.PathLike[str],
    calib_collection: str,
    dataset_types: Iterable[str],
    begin: str | astropy.time.Time,
    end: str | astropy.time.Time,
    physical_filter: str | None = None,
    detectors: Sequence[int] | None = None,
) -> list[CertificationConflict]:
    """List the existing certifications that overlap ``[begin, end)`` in ``calib_collection``.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Repository root.
    calib_collection : `str`
        CALIBRATION collection to look in; no conflicts if it does not exist.
    dataset_types : `~collections.abc.Iterable` [`str`]
        Dataset types to check (unregistered ones have no conflicts).
    begin, end : `str` or `astropy.time.Time`
        Requested validity range (TAI).
    physical_filter : `str`, optional
        Only consider datasets of this filter (for dataset types with a ``physical_filter`` dimension).
    detectors : `~collections.abc.Sequence` [`int`], optional
        Only consider these detectors (all if `None`).

    Returns
    -------
    conflicts : `list` [`CertificationConflict`]
        One entry per dataset type and existing validity range, sorted.
    """
    timespan = make_timespan(begin, end)
    butler = make_butler(repo)
    return _conflicts(butler, calib_collection, dataset_types, timespan, physical_filter, detectors)


def _refs_to_certify(butler: Butler, run_collection: str, dataset_type: str) -> list[DatasetRef]:
    collection_type = _collection_type(butler, run_collection)
    if collection_type is None:
        raise CertificationError(
            f"Cannot certify {dataset_type}: collection {run_collection!r} does not exist."
        )
    search = run_collection
    if collection_type is CollectionType.CHAINED:
        # As `butler certify-calibrations` without --search-all-inputs: the chain's first child (the
        # output run of `pipetask run -o`).
        children = butler.registry.getCollectionChain(run_collection)
        if not children:
            raise CertificationError(f"Cannot certify {dataset_type}: chain {run_collection!r} is empty.")
        search = children[0]
    elif collection_type is not CollectionType.RUN:
        raise CertificationError(
            f"Cannot certify {dataset_type} from {run_collection!r}: it is a {collection_type.name} "
            "collection, expected a RUN (or the CHAINED output of pipetask -o)."
        )
    try:
        dataset_type_def = butler.registry.getDatasetType(dataset_type)
    except MissingDatasetTypeError as e:
        raise CertificationError(f"Cannot certify {dataset_type}: no such dataset type in the repo.") from e
    if not dataset_type_def.isCalibration():
        raise CertificationError(f"Cannot certify {dataset_type}: it is not a calibration dataset type.")
    return list(butler.registry.queryDatasets(dataset_type, collections=search, findFirst=True))


def certify(
    repo: str | os.PathLike[str],
    run_collection: str,
    calib_collection: str,
    dataset_type: str,
    begin: str | astropy.time.Time,
    end: str | astropy.time.Time,
) -> int:
    """Certify every ``dataset_type`` dataset of ``run_collection`` into ``calib_collection``.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Repository root.
    run_collection : `str`
        RUN holding the datasets (or a CHAINED collection, whose first child is used).
    calib_collection : `str`
        CALIBRATION collection; created if missing.
    dataset_type : `str`
        Calibration dataset type (``bias``, ``dark``, ``flat``, ``defects``, ``ptc``...).
    begin, end : `str` or `astropy.time.Time`
        Validity range ``[begin, end)``, TAI.

    Returns
    -------
    n_certified : `int`
        Number of datasets certified.

    Raises
    ------
    CertificationError
        If the run holds no such dataset, or the range overlaps an existing certification of the same
        data IDs; the message names the dataset type, the collection and the range.
    ValueError
        If a date is invalid or the range is empty.
    """
    timespan = make_timespan(begin, end)
    butler = make_butler(repo, writeable=True)
    range_text = _range_text(timespan)
    refs = _refs_to_certify(butler, run_collection, dataset_type)
    if not refs:
        raise CertificationError(
            f"No {dataset_type} datasets in {run_collection!r} to certify into {calib_collection!r} "
            f"for {range_text}."
        )
    existing_type = _collection_type(butler, calib_collection)
    if existing_type is None:
        butler.registry.registerCollection(calib_collection, CollectionType.CALIBRATION)
    elif existing_type is not CollectionType.CALIBRATION:
        raise CertificationError(
            f"Cannot certify {dataset_type} into {calib_collection!r}: it is a {existing_type.name} "
            "collection, not CALIBRATION."
        )
    try:
        butler.registry.certify(calib_collection, refs, timespan)
    except ConflictingDefinitionError as e:
        conflicts = _conflicts(
            butler,
            calib_collection,
            [dataset_type],
            timespan,
            physical_filter=None,
            detectors=None,
            data_ids={ref.dataId.required_values for ref in refs},
        )
        details = "; ".join(str(c) for c in conflicts) or str(e)
        raise CertificationError(
            f"Cannot certify {len(refs)} {dataset_type} from {run_collection!r} into {calib_collection!r} "
            f"for {range_text}: the range overlaps existing certifications ({details})."
        ) from e
    return len(refs)
