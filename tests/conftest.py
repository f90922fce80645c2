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

import pytest


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One tiny butler repository (with curated calibrations) for the script, CLI and end-to-end tests."""
    from lsst.ts.makecalibrations.sim.repository import ensure_repo

    repo = tmp_path_factory.mktemp("scripts_repo") / "repo"
    ensure_repo(repo, size="tiny")
    os.environ.setdefault("LSST_TOPIC_SUBNAME", "test_scripts")
    return repo
