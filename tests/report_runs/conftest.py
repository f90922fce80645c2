"""Fixtures of the run-report tests: the script runner of ``tests/scripts`` and a tiny repository.

The runner (`run_calibrations`, which drives the real Script over the bus against the simulated
observatory) is loaded from ``tests/scripts/conftest.py`` under its own module name, so the two
``conftest`` modules do not shadow each other.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import pytest

_SCRIPTS_CONFTEST = pathlib.Path(__file__).parents[1] / "scripts" / "conftest.py"


def _load_script_runner():
    name = "_scripts_run_helpers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _SCRIPTS_CONFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


runner = _load_script_runner()


@pytest.fixture(scope="session")
def report_repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One tiny butler repository (with curated calibrations) shared by the report tests."""
    from lsst.ts.makecalibrations.sim.repository import ensure_repo

    repo = tmp_path_factory.mktemp("report_runs_repo") / "repo"
    ensure_repo(repo, size="tiny")
    os.environ.setdefault("LSST_TOPIC_SUBNAME", "test_report_runs")
    return repo
