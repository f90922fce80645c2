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

"""Checks of a repository made before a run: is it a repository we can write, what are its collections.

`repository_problem` says why a path cannot be used as the run's repository (it does not exist, is
a file, is a directory without ``butler.yaml``, or cannot be written: the OODS could not ingest the
images nor the script certify anything). `outdated_dataset_types` names the dataset types that an
older version registered with other dimensions than this one writes (``verifyFlatStats`` had
instrument only; cp_verify's has instrument + physical_filter), with the pipeline that writes them.
`collection_types` tells the type (``RUN``, ``CALIBRATION``, ``CHAINED``, ``TAGGED``) of named
collections, `None` for those that do not exist.

May import: lsst.daf.butler, the standard library and this room's modules.
"""

from __future__ import annotations

__all__ = ["DIMENSION_CHANGES", "outdated_dataset_types", "repository_problem", "collection_types"]

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .repository import DATASET_TYPES, make_butler

DIMENSION_CHANGES: dict[str, str] = {"verifyFlatStats": "verifyFlat"}
"""Dataset types whose dimensions changed between versions, and the pipeline (file stem) writing them."""


def repository_problem(repo: str | os.PathLike[str]) -> str | None:
    """Return why ``repo`` cannot be used as the repository of a run, or `None` if it can.

    Writability is tested by creating (and removing) a file in the repository and by asking the
    system whether the registry file may be written, so that a read-only file system is found
    even by root.
    """
    path = Path(repo)
    if not path.exists():
        return f"{repo} does not exist"
    if not path.is_dir():
        return f"{repo} is a file, not a butler repository (a directory holding butler.yaml)"
    if not (path / "butler.yaml").is_file():
        return f"{repo} is not a butler repository: it has no butler.yaml"
    consequence = "the OODS could not ingest the images nor the script certify the calibrations"
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as e:
        return f"{repo} cannot be written ({e.strerror or e}): {consequence}"
    registry = path / "gen3.sqlite3"
    if registry.exists() and not os.access(registry, os.W_OK):
        return f"{repo} cannot be written (its registry {registry} is read-only): {consequence}"
    return None


def collection_types(repo: str | os.PathLike[str], names: Sequence[str]) -> dict[str, str | None]:
    """Return the type name of each collection (``RUN``, ``CALIBRATION``...), `None` if it does not exist."""
    from lsst.daf.butler import MissingCollectionError

    butler = make_butler(repo)
    types: dict[str, str | None] = {}
    for name in names:
        try:
            types[name] = butler.registry.getCollectionType(name).name
        except MissingCollectionError:
            types[name] = None
    return types


def outdated_dataset_types(repo: str | os.PathLike[str]) -> dict[str, tuple[str, str]]:
    """Return ``{dataset type: (pipeline file stem, problem)}`` for each of `DIMENSION_CHANGES`
    registered in ``repo`` with other dimensions than this version writes (that pipeline cannot run
    there)."""
    from lsst.daf.butler import MissingDatasetTypeError

    wanted = {spec.name: tuple(spec.dimensions) for spec in DATASET_TYPES if spec.name in DIMENSION_CHANGES}
    butler = make_butler(repo)
    problems: dict[str, tuple[str, str]] = {}
    for name, dimensions in wanted.items():
        try:
            registered = butler.registry.getDatasetType(name)
        except MissingDatasetTypeError:
            continue
        old = sorted(registered.dimensions.required)
        if set(old) != set(dimensions):
            problems[name] = (
                DIMENSION_CHANGES[name],
                (
                    f"{repo} was made by an older version: its {name} has dimensions {{{', '.join(old)}}}, "
                    f"this version (as cp_verify) writes {{{', '.join(dimensions)}}}, so the "
                    f"{DIMENSION_CHANGES[name]} pipeline cannot run there. Use a new repository, or remove "
                    f"the old definition (butler remove-dataset-type {repo} {name}, after removing its "
                    "datasets with butler remove-runs or prune-datasets)"
                ),
            )
    return problems
