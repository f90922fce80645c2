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
