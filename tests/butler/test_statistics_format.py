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

"""The ``StructuredDataDict`` datasets (cp_verify statistics) through `butler.formatters.LibyamlFormatter`.

What is checked: a new repository maps the storage class to it; a dataset it writes holds exactly the
bytes daf_butler's ``YamlFormatter`` writes (``yaml.safe_dump(..., sort_keys=False)``) and reads back
equal; a repository made before the mapping keeps ``YamlFormatter`` and reads both.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import yaml
from lsst.daf.butler import Butler

from lsst.ts.makecalibrations.butler import formatters
from lsst.ts.makecalibrations.butler.repository import repo_seed_config

RUN = "u/test/stats"

STATS = {
    "AMP": {
        "C10": {"MEAN": 0.125, "NOISE": 4.5e-7, "CR_NOISE": float("nan"), "N": 12},
        "C11": {"MEAN": -3.0, "NOISE": 1e300, "CR_NOISE": float("inf"), "N": 0},
    },
    "VERIFY": {"C10": {"NOISE": True, "MEAN": False}},
    "SUCCESS": False,
    "NOTE": "a long explanation " * 8,
    "LIST": [1, 2.5, "x: y", None, [0.1, 0.2]],
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def recorded_formatter(repo: Path, ref: object) -> str:
    """The formatter the datastore recorded for ``ref`` (what reads it back)."""
    with sqlite3.connect(repo / "gen3.sqlite3") as db:
        rows = db.execute(
            "SELECT formatter FROM file_datastore_records WHERE dataset_id = ?",
            (ref.id.hex,),  # type: ignore[attr-defined]
        ).fetchall()
    assert len(rows) == 1
    return str(rows[0][0])


def test_seed_config_maps_structured_data_to_libyaml() -> None:
    name = repo_seed_config()["datastore", "formatters", "StructuredDataDict"]
    assert name == f"{formatters.__name__}.LibyamlFormatter"
    if yaml.__with_libyaml__:
        assert formatters._SAFE_LOADER is yaml.CSafeLoader
        assert formatters._SAFE_DUMPER is yaml.CSafeDumper


def test_same_bytes_as_yaml_formatter_and_reads_back(repo: Path) -> None:
    butler = Butler.from_config(str(repo), writeable=True, run=RUN)
    ref = butler.put(STATS, "verifyBiasStats", instrument="LSSTComCam")
    assert recorded_formatter(repo, ref).endswith(".LibyamlFormatter")
    data = butler.getURI(ref).read()
    assert data == yaml.safe_dump(STATS, sort_keys=False).encode()
    assert _same(butler.get(ref), STATS)


def test_repository_made_before_keeps_yaml_formatter_and_reads_both(repo: Path) -> None:
    new = Butler.from_config(str(repo), writeable=True, run=RUN)
    new_ref = new.put(STATS, "verifyBiasStats", instrument="LSSTComCam")
    path = repo / "butler.yaml"
    config = yaml.safe_load(path.read_text())
    del config["datastore"]["formatters"]["StructuredDataDict"]
    path.write_text(yaml.safe_dump(config))
    old = Butler.from_config(str(repo), writeable=True, run=RUN + "/old")
    old_ref = old.put(STATS, "verifyBiasStats", instrument="LSSTComCam")
    assert recorded_formatter(repo, old_ref) == "lsst.daf.butler.formatters.yaml.YamlFormatter"
    assert recorded_formatter(repo, new_ref).endswith(".LibyamlFormatter")
    assert old.getURI(old_ref).read() == new.getURI(new_ref).read()
    for ref in (old_ref, new_ref):
        assert _same(old.get(ref), STATS)
