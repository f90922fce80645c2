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


"""The pipeline a job runs in a repository made by older code of this package.

The pipelines changed how work is split into quanta, which a repository remembers: pipetask
registers ``<label>_metadata`` with the label's quantum dimensions the first time a label runs, and
a later definition with other dimensions is refused. Two changes matter:

* ISR labels run `tasks.detector_isr_task.DetectorIsrTask` (one quantum per detector and day);
  before, one quantum per exposure. A label whose metadata the repository has *per exposure* is run
  with `tasks.selected_isr_task.SelectedIsrTask` (same config fields, same outputs, per exposure).
* The cp_verify pipelines measure the per-detector statistics in the ISR quanta
  (`tasks.verify_isr_task.VerifyIsrTask` at ``verify*Isr``, the settings on ``verify*Det``,
  `tasks.verify_tasks.CpVerifyDetSettingsTask`, one quantum per instrument); before, ``verify*Det``
  ran `tasks.verify_tasks.CpVerifyDetTask` per exposure and detector, reading ``verify*Proc`` back.
  When the repository has ``verify*Det_metadata`` per exposure (or runs that ISR label per exposure),
  the pair is "unfused" back: the ISR label runs the plain ISR task and ``verify*Det`` the per-exposure
  statistics task with the same config fields, on the same dataset types.

`pipeline_for_repo` returns the pipeline to run (the original, or a rewritten copy in a directory)
and what was changed, for the job log. The outputs (``verify*Proc``, ``verify*DetStats``,
``verify*Stats``, ...) are the same dataset types either way, and so are the statistics.

May import: the standard library, yaml, lsst.daf.butler, `.locations`, `butler.repository` (lazily).
"""

from __future__ import annotations

__all__ = [
    "DETECTOR_ISR_CLASS",
    "DET_SETTINGS_CLASS",
    "DET_STATS_CLASS",
    "EXPOSURE_ISR_CLASS",
    "VERIFY_ISR_CLASS",
    "pipeline_for_repo",
]

from pathlib import Path
from typing import Any

from .locations import pipeline_path

_TASKS = "lsst.ts.makecalibrations.pipelines.tasks"
DETECTOR_ISR_CLASS = f"{_TASKS}.detector_isr_task.DetectorIsrTask"
"""ISR task with one quantum per detector (the pipelines' default)."""
VERIFY_ISR_CLASS = f"{_TASKS}.verify_isr_task.VerifyIsrTask"
"""ISR + per-detector statistics (the cp_verify pipelines' ``verify*Isr``)."""
EXPOSURE_ISR_CLASS = f"{_TASKS}.selected_isr_task.SelectedIsrTask"
"""Per-exposure ISR task with the same config fields and outputs, for repositories that used it."""
DET_SETTINGS_CLASS = f"{_TASKS}.verify_tasks.CpVerifyDetSettingsTask"
"""``verify*Det`` of a fused cp_verify pipeline (settings only)."""
DET_STATS_CLASS = f"{_TASKS}.verify_tasks.CpVerifyDetTask"
"""``verify*Det`` per exposure and detector, reading ``verify*Proc``."""

_ISR_CLASSES = (DETECTOR_ISR_CLASS, VERIFY_ISR_CLASS)
_FUSED_ONLY_KEYS = ("connections.outputStats", "connections.detStatsConfig")


def _per_exposure(butler: Any, label: str) -> bool:
    """Whether the repository registered ``<label>_metadata`` with the exposure dimension."""
    from lsst.daf.butler import MissingDatasetTypeError

    try:
        dataset_type = butler.get_dataset_type(f"{label}_metadata")
    except MissingDatasetTypeError:
        return False
    return "exposure" in dataset_type.dimensions.names


def _fused_pairs(tasks: dict[str, Any]) -> dict[str, str]:
    """``{isr label: det label}`` of the fused verify pairs of a pipeline document."""
    settings = {
        (task.get("config") or {}).get("connections.outputSettings"): label
        for label, task in tasks.items()
        if isinstance(task, dict) and task.get("class") == DET_SETTINGS_CLASS
    }
    pairs = {}
    for label, task in tasks.items():
        if isinstance(task, dict) and task.get("class") == VERIFY_ISR_CLASS:
            det = settings.get((task.get("config") or {}).get("connections.detStatsConfig"))
            if det is not None:
                pairs[label] = det
    return pairs


def _unfuse(tasks: dict[str, Any], isr: str, det: str) -> None:
    """Turn a fused pair back into ISR + per-exposure statistics (same dataset types)."""
    isr_config = tasks[isr].setdefault("config", {})
    det_config = tasks[det].setdefault("config", {})
    stats_name = isr_config.get("connections.outputStats", "verifyBiasDetStats")
    proc_name = isr_config.get("connections.outputExposure", "verifyBiasProc")
    for key in _FUSED_ONLY_KEYS:
        isr_config.pop(key, None)
    det_config.pop("connections.outputSettings", None)
    tasks[isr]["class"] = DETECTOR_ISR_CLASS
    tasks[det]["class"] = DET_STATS_CLASS
    det_config["connections.inputExp"] = proc_name
    det_config["connections.outputStats"] = stats_name


def pipeline_for_repo(repo: str, pipeline_uri: str, directory: Path) -> tuple[str, list[str]]:
    """The pipeline to run in ``repo``, and a note per change made for it (empty: run it as is).

    Parameters
    ----------
    repo : `str`
        Butler repository.
    pipeline_uri : `str`
        Expanded pipeline path, optionally with ``#subset``.
    directory : `pathlib.Path`
        Where a rewritten copy is written (the job's directory).

    Returns
    -------
    uri : `str`
        ``pipeline_uri`` or the rewritten copy (same ``#subset``).
    notes : `list` [`str`]
        What was changed and why.
    """
    import yaml

    from ..butler.repository import make_butler

    path = pipeline_path(pipeline_uri)
    document = yaml.safe_load(path.read_text())
    tasks = document.get("tasks") or {}
    isr_labels = [
        label for label, task in tasks.items() if isinstance(task, dict) and task.get("class") in _ISR_CLASSES
    ]
    if not isr_labels:
        return pipeline_uri, []
    butler = make_butler(repo, instrument="")  # also a repository without instrument records
    per_exposure_isr = [label for label in isr_labels if _per_exposure(butler, label)]
    notes = []
    for isr, det in _fused_pairs(tasks).items():
        if isr in per_exposure_isr or _per_exposure(butler, det):
            _unfuse(tasks, isr, det)
            notes.append(
                f"The repository ran {det} per exposure before (its {det}_metadata or {isr}_metadata "
                f"has the exposure dimension): {isr} runs the ISR only and {det} the per-exposure "
                f"statistics ({DET_STATS_CLASS.rsplit('.', 1)[1]}), on the same dataset types."
            )
    if per_exposure_isr:
        for label in per_exposure_isr:
            tasks[label]["class"] = EXPOSURE_ISR_CLASS
        notes.append(
            f"The repository ran {', '.join(per_exposure_isr)} with one quantum per exposure before "
            f"(its <label>_metadata has the exposure dimension): running them per exposure "
            f"({EXPOSURE_ISR_CLASS.rsplit('.', 1)[1]})."
        )
    if not notes:
        return pipeline_uri, []
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / path.name
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    fragment = pipeline_uri.split("#", 1)[1] if "#" in pipeline_uri else ""
    uri = f"{copy}#{fragment}" if fragment else str(copy)
    return uri, [*notes, f"Pipeline run: {uri}."]
