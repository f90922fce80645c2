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

"""Fixtures shared by the rooms' tests."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest

from tests import watchdog
from tests.helpers import copy_repo


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A tiny repository (``ensure_repo(size="tiny")``: curated calibrations of the 9 detectors) built
    once per test session. Never written to: tests take a copy of it with `tiny_copy`."""
    from lsst.ts.makecalibrations.sim.repository import ensure_repo

    repo = tmp_path_factory.mktemp("tiny_template") / "repo"
    ensure_repo(repo, size="tiny")
    return repo


@pytest.fixture(scope="session")
def tiny_copy(
    tiny_template: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], pathlib.Path]:
    """Make a repository of one's own, equal to a new ``ensure_repo(size="tiny")``, by copying the
    session's template (a copy takes milliseconds where a build takes about 12 s of CPU).

    Call it with a name for the temporary folder; it returns the new repository's root.
    """

    def copy(name: str) -> pathlib.Path:
        return copy_repo(tiny_template, tmp_path_factory.mktemp(name) / "repo")

    return copy


@pytest.fixture(scope="session")
def tiny_repo(tiny_copy: Callable[[str], pathlib.Path]) -> pathlib.Path:
    """One tiny butler repository (with curated calibrations) for the script, CLI and end-to-end tests."""
    repo = tiny_copy("scripts_repo")
    os.environ.setdefault("LSST_TOPIC_SUBNAME", "test_scripts")
    return repo


def pytest_configure(config: pytest.Config) -> None:
    """Register the hung-test watchdog (`tests.watchdog`)."""
    watchdog.install(config)
