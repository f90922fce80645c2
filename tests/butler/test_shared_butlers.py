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

"""`butler.repository.shared_butlers`: one butler opened per repository, a clone per call, and what
other processes register after the opening is seen."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsst.daf.butler import Butler, DatasetType

from lsst.ts.makecalibrations.butler import repository
from lsst.ts.makecalibrations.butler.readers import read_verify_stats
from lsst.ts.makecalibrations.butler.repository import make_butler, shared_butlers
from lsst.ts.makecalibrations.sim.pipetask_executor import _output_dataset_types


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A bare repository of one's own (`repository.create_repo`: instrument, dataset types)."""
    repository.create_repo(tmp_path / "repo").close()
    return tmp_path / "repo"


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``writeable`` flag of every ``Butler.from_config`` that `make_butler` makes."""
    made: list[bool] = []
    original = Butler.from_config

    def counting(*args: object, **kwargs: object) -> Butler:
        made.append(bool(kwargs.get("writeable")))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repository.Butler, "from_config", counting)
    return made


def _other_process_writes(repo: Path, run: str, name: str, value: dict) -> None:
    """What a concurrent ``pipetask`` job does: its own butler (own engine and connections) registers
    a new dataset type and a new RUN collection and puts a dataset there."""
    writer = Butler.from_config(str(repo), writeable=True, run=run)
    try:
        writer.registry.registerDatasetType(
            DatasetType(name, ["instrument"], "StructuredDataDict", universe=writer.dimensions)
        )
        writer.put(value, name, instrument="LSSTComCam")
    finally:
        writer.close()


def test_one_open_per_repository_mode_and_configuration(repo: Path, opens: list[bool]) -> None:
    repository.repo_instrument(repo)  # remembered once, before counting
    opens.clear()
    with shared_butlers():
        first, second = make_butler(repo), make_butler(repo, collections="LSSTComCam/calib")
        assert first is not second
        assert list(second.collections.defaults) == ["LSSTComCam/calib"]
        assert not list(first.collections.defaults)
        assert second.registry.defaults.dataId["instrument"] == "LSSTComCam"
        writer = make_butler(repo, writeable=True)
        assert writer.isWriteable() and not first.isWriteable()
        make_butler(repo, writeable=True)
        assert opens == [False, True]
        config = repo / "butler.yaml"
        config.write_text(config.read_text() + "\n")  # as enable_intermediate_formatters rewrites it
        make_butler(repo)  # a new configuration: opened again
        make_butler(repo)
        assert opens == [False, True, False]
    make_butler(repo)  # outside the block: opened each time again
    make_butler(repo)
    assert opens == [False, True, False, False, False]


def test_clones_see_what_other_processes_register_after_the_opening(repo: Path) -> None:
    with shared_butlers():
        before = make_butler(repo)
        assert not before.registry.queryDatasetTypes("verifyNewStats")
        _other_process_writes(repo, "u/ocps/later", "verifyNewStats", {"SUCCESS": True, "1": {"A": 1}})
        assert _output_dataset_types(str(repo), "u/ocps/later") == ["verifyNewStats"]
        assert read_verify_stats(repo, "u/ocps/later", "verifyNewStats") == {"1": {"A": 1}, "SUCCESS": True}
        after = make_butler(repo)
        assert [t.name for t in after.registry.queryDatasetTypes("verifyNew*")] == ["verifyNewStats"]
        assert "u/ocps/later" in after.registry.queryCollections("u/ocps/*")
        # A second job, after the first clones were used (their caches filled), is seen too.
        _other_process_writes(repo, "u/ocps/second", "verifySecondStats", {"SUCCESS": False})
        assert _output_dataset_types(str(repo), "u/ocps/second") == ["verifySecondStats"]
        assert [t.name for t in make_butler(repo).registry.queryDatasetTypes("verify*Second*")] == [
            "verifySecondStats"
        ]
