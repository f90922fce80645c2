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

"""Remove the intermediate outputs of finished OCPS jobs, keeping the certified calibrations.

Every OCPS job writes into its own RUN collection (``u/ocps/<job_id>``). Once its run is over, most
of that is no longer needed: the verification jobs' runs hold ISR-processed images and statistics the
run report already summarises, and the ISR-processed images of a combine, defects or PTC job
(`formatters.INTERMEDIATE_IMAGE_DATASETS`) were read only by the next task of the same job.

`plan_cleanup` decides, for the output runs it is given (those of the jobs of finished runs, which
the caller reads from their reports):

* a run holding a dataset associated with any CALIBRATION collection (a certified calibration, found
  in the registry, whichever run certified it) is **kept**, only its intermediate images removed;
* any other RUN collection is **removed** whole (datasets and files);
* a name that is not in the repository, or not a RUN collection, is left alone and said so.

`apply_cleanup` does it (``Butler.pruneDatasets(purge=True)`` and ``Butler.removeRuns``). Files
outside the butler (the job logs in ``<repo>/ocps/<job_id>``, which the HTML report links to) are
never touched. The sizes are those of the files the datastore holds for the datasets removed.

May import: lsst.daf.butler and this room's modules.
"""

from __future__ import annotations

__all__ = ["CleanupPlan", "plan_cleanup", "apply_cleanup"]

import dataclasses
import os
from collections.abc import Iterable

from lsst.daf.butler import Butler, CollectionType, DatasetRef
from lsst.daf.butler.registry import MissingCollectionError

from .formatters import INTERMEDIATE_IMAGE_DATASETS
from .repository import make_butler


@dataclasses.dataclass
class CleanupPlan:
    """What `apply_cleanup` removes.

    Attributes
    ----------
    remove_runs : `dict` [`str`, `int`]
        RUN collections removed whole, with the bytes of their files.
    prune : `dict` [`str`, `list` [`DatasetRef`]]
        Kept runs (they hold certified calibrations), with the intermediate datasets removed from each.
    prune_bytes : `dict` [`str`, `int`]
        Bytes of the files of ``prune``, per run.
    left_alone : `dict` [`str`, `str`]
        Names not touched, with the reason.
    """

    remove_runs: dict[str, int] = dataclasses.field(default_factory=dict)
    prune: dict[str, list[DatasetRef]] = dataclasses.field(default_factory=dict)
    prune_bytes: dict[str, int] = dataclasses.field(default_factory=dict)
    left_alone: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        """Bytes freed in all."""
        return sum(self.remove_runs.values()) + sum(self.prune_bytes.values())

    def describe(self) -> list[str]:
        """One line per collection, then the total."""
        lines = [f"remove run {name} ({_mb(size)})" for name, size in self.remove_runs.items()]
        for name, refs in self.prune.items():
            types = sorted({ref.datasetType.name for ref in refs})
            lines.append(
                f"keep run {name} (certified calibrations); remove its {len(refs)} intermediate "
                f"datasets ({', '.join(types)}; {_mb(self.prune_bytes[name])})"
            )
        lines += [f"leave {name}: {reason}" for name, reason in self.left_alone.items()]
        lines.append(
            f"{len(self.remove_runs)} runs removed, intermediates of {len(self.prune)} kept runs removed: "
            f"{_mb(self.total_bytes)} freed"
        )
        return lines


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _file_bytes(butler: Butler, refs: Iterable[DatasetRef]) -> int:
    total = 0
    for ref in refs:
        try:
            uri = butler.getURI(ref)
        except (FileNotFoundError, RuntimeError, LookupError):
            continue
        if uri.isLocal and os.path.exists(uri.ospath):
            total += os.path.getsize(uri.ospath)
    return total


def _certified_runs(butler: Butler) -> set[str]:
    """RUN collections holding a dataset associated with some CALIBRATION collection."""
    registry = butler.registry
    calibration = list(registry.queryCollections(collectionTypes={CollectionType.CALIBRATION}))
    runs: set[str] = set()
    if not calibration:
        return runs
    for dataset_type in registry.queryDatasetTypes():
        if not dataset_type.isCalibration():
            continue
        for association in registry.queryDatasetAssociations(
            dataset_type, collections=calibration, collectionTypes={CollectionType.CALIBRATION}
        ):
            runs.add(association.ref.run)
    return runs


def plan_cleanup(repo: str | os.PathLike[str], runs: Iterable[str]) -> CleanupPlan:
    """What to remove of the output runs ``runs``; see the module docstring. Changes nothing."""
    butler = make_butler(repo)
    registry = butler.registry
    certified = _certified_runs(butler)
    registered = {dt.name for dt in registry.queryDatasetTypes()}
    intermediate = [name for name in INTERMEDIATE_IMAGE_DATASETS if name in registered]
    plan = CleanupPlan()
    for name in dict.fromkeys(runs):
        try:
            kind = registry.getCollectionType(name)
        except MissingCollectionError:
            plan.left_alone[name] = "not in the repository (already removed?)"
            continue
        if kind is not CollectionType.RUN:
            plan.left_alone[name] = f"a {kind.name} collection, not a job's output run"
            continue
        if name in certified:
            refs = list(registry.queryDatasets(intermediate, collections=name)) if intermediate else []
            if refs:
                plan.prune[name] = refs
                plan.prune_bytes[name] = _file_bytes(butler, refs)
            else:
                plan.left_alone[name] = "holds certified calibrations and no intermediate image"
            continue
        plan.remove_runs[name] = _file_bytes(butler, registry.queryDatasets(..., collections=name))
    return plan


def apply_cleanup(repo: str | os.PathLike[str], plan: CleanupPlan) -> None:
    """Remove what ``plan`` lists (datasets, their files, and the runs removed whole)."""
    butler = make_butler(repo, writeable=True)
    for refs in plan.prune.values():
        butler.pruneDatasets(refs, disassociate=True, unstore=True, purge=True)
    if plan.remove_runs:
        # Files go with the runs (the only behaviour of daf_butler >= v29; its default before).
        butler.removeRuns(list(plan.remove_runs))
