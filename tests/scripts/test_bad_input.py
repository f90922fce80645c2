"""The bad-input corpus over the bus: each case ends CONFIGURE_FAILED naming the key, no image taken.

The corpus (tests/data/bad_inputs.yaml) is sent to MakeComCamCalibrations by a Script remote against
the simulated observatory, as the ScriptQueue would. The cases that need a repository (read-only,
not a repository, a RUN collection as calib_collection, a missing input collection, an unknown task
label or config field) follow; `run_script --plan` is tested on several of them too.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import pytest_asyncio
import yaml
from conftest import run_calibrations

from lsst.ts.makecalibrations.calib.config import MAX_CONFIG_CHARS
from lsst.ts.makecalibrations.sal import ScriptState, salobj
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory

CORPUS_PATH = pathlib.Path(__file__).parents[1] / "data" / "bad_inputs.yaml"


def _corpus() -> list[dict[str, Any]]:
    entries = yaml.safe_load(CORPUS_PATH.read_text())
    for entry in entries:
        text = entry["config"]
        if "note_chars" in entry:
            text = text.replace("xxxx", "x" * entry["note_chars"])
        entry["text"] = text
    return entries


CORPUS = _corpus()


def assert_refused(result: Any, key: str | None, fragment: str) -> None:
    """CONFIGURE_FAILED before any image, the reason naming the key and the problem."""
    assert result.final_state == ScriptState.CONFIGURE_FAILED, result.reason
    assert fragment in result.reason
    if key is not None:
        assert f"{key}: " in result.reason
    assert result.observatory.camera.images_started == 0
    assert result.images == []
    assert result.report is None


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def observatory() -> Any:
    """One simulated observatory (no repository) for the whole corpus: each case is a new script."""
    salobj.set_test_topic_subname(randomize=True)
    async with SimulatedObservatory(time_scale=500.0, size="tiny") as observatory:
        yield observatory


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
async def test_bad_input_is_refused_at_configure(
    tmp_path: pathlib.Path, observatory: SimulatedObservatory, entry: dict[str, Any]
) -> None:
    result = await run_calibrations(entry["text"], report_dir=tmp_path, timeout=30, observatory=observatory)
    assert_refused(result, entry["key"], entry["fragment"])
    # A text too long to use is not echoed back (salobj's reason repeats the configuration text).
    if len(entry["text"]) > MAX_CONFIG_CHARS:
        assert len(result.reason) < 5000
