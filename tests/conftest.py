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
