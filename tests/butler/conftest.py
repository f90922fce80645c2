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

"""Shared fixtures of the butler-room tests: one tiny repository made per session, copied per test."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from lsst.ts.makecalibrations.sim.repository import ensure_repo


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly created tiny repository (do not modify: copy it with the ``repo`` fixture)."""
    path = tmp_path_factory.mktemp("template") / "repo"
    # What the creation said (its progress lines) and which warnings the butler logged meanwhile.
    handler = logging.Handler(logging.WARNING)
    warnings: list[str] = []
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("lsst")
    logger.addHandler(handler)
    try:
        ensure_repo(path, size="tiny", progress=CREATION["progress"].append)
    finally:
        logger.removeHandler(handler)
    CREATION["warnings"] = warnings
    return path


CREATION: dict[str, list[str]] = {"progress": [], "warnings": []}
"""Progress lines and butler warnings of the ``template_repo`` creation."""


@pytest.fixture
def repo(template_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny template repository."""
    path = tmp_path / "repo"
    shutil.copytree(template_repo, path)
    return path


@pytest.fixture(scope="session")
def template_repo_creation(template_repo: Path) -> dict[str, list[str]]:
    """What the ``template_repo`` creation said (progress lines) and the butler warnings it logged."""
    return CREATION
