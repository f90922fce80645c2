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

"""Read, from a run report (`calib.report.RunReport.to_dict`) and the butler, the inputs of the plots.

* Gains per flat pair come from the report itself (``gains``: pair, detector, amp, gain, noise).
* Every other product is read from the output RUN collection (``u/ocps/<job_id>``) of the OCPS job
  that made it, as listed in the report's ``jobs`` (only jobs with status ``succeeded``): the solved
  ``ptc`` of the ``ptc`` job, the exposure-level ``verify{Bias,Dark,Flat}ExpStats`` (with the
  run-level verdict of ``verify*Stats``) of each ``verify`` job, and the combined
  ``bias``/``dark``/``flat`` of each ``combine`` job.

Whatever does not exist is left empty, so the caller skips that plot; a product that cannot be read
is logged as a warning and skipped.

May import: `butler` (whose `butler.repository.make_butler` opens the repo), `calib.report`,
`report.verification_plot` (for `VerificationStats`), the standard library.
"""

from __future__ import annotations

__all__ = ["PlotInputs", "file_prefix", "load_plot_inputs", "rule_verdicts", "run_name"]

import dataclasses
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..butler.calib_types import PhotonTransferCurve
from ..calib.report import GainRecord
from .verification_plot import VerificationStats

_log = logging.getLogger(__name__)

_VERIFY_DATASETS: dict[str, str] = {
    "bias": "verifyBias",
    "dark": "verifyDark",
    "flat": "verifyFlat",
}


@dataclasses.dataclass
class PlotInputs:
    """What the run plots are drawn from; empty members are skipped.

    Attributes
    ----------
    ptcs : `dict` [`int`, `butler.calib_types.PhotonTransferCurve`]
        Solved PTC per detector.
    pair_gains : `list` [`calib.report.GainRecord`]
        The gains per flat pair of the report.
    verify_stats : `dict` [`str`, `report.verification_plot.VerificationStats`]
        cp_verify's statistics per calibration type.
    mosaics : `dict` [`str`, `dict` [`int`, ``lsst.images.MaskedImage``]]
        Combined calibration image per detector, per calibration type.
    """

    ptcs: dict[int, PhotonTransferCurve] = dataclasses.field(default_factory=dict)
    pair_gains: list[GainRecord] = dataclasses.field(default_factory=list)
    verify_stats: dict[str, VerificationStats] = dataclasses.field(default_factory=dict)
    mosaics: dict[str, dict[int, Any]] = dataclasses.field(default_factory=dict)


def run_name(report: Mapping[str, Any]) -> str:
    """A human name for the run, for figure titles: script, index, start time and final state."""
    parts = [str(report.get("script") or "MakeComCamCalibrations")]
    if report.get("script_index"):
        parts.append(f"index {report['script_index']}")
    start = str(report.get("start_iso") or "")
    if start:
        parts.append(f"started {start[:19]} TAI")
    text = ", ".join(parts)
    if report.get("final_state"):
        text += f" ({report['final_state']})"
    return text


def file_prefix(report: Mapping[str, Any]) -> str:
    """Prefix of the PNG names: the report file's stem, so several runs can share one directory."""
    stem = Path(str(report.get("report_path") or "")).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_")
    return f"{stem}_" if stem else ""


def rule_verdicts(report: Mapping[str, Any]) -> dict[str, str]:
    """The certification rule's outcome per calibration type, from the report's ``verifications``."""
    verdicts: dict[str, str] = {}
    for record in report.get("verifications") or []:
        if not isinstance(record, Mapping) or not record.get("image_type"):
            continue
        text = str(record.get("status", ""))
        decision = record.get("decision") or {}
        if isinstance(decision, Mapping) and "n_failed_exposures" in decision:
            text += (
                f", {decision['n_failed_exposures']}/{decision.get('n_exposures', '?')} exposures with "
                f">= {decision.get('failure_limit', '?')} failures of one test "
                f"({decision.get('max_failed_exposures', '?')} refuse)"
            )
        verdicts[str(record["image_type"]).lower()] = text
    return verdicts


def _succeeded_jobs(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    jobs = report.get("jobs") or []
    return [
        job
        for job in jobs
        if isinstance(job, Mapping) and job.get("status") == "succeeded" and job.get("output_collection")
    ]


def load_plot_inputs(report: Mapping[str, Any], repo: Path) -> PlotInputs:
    """Load every plot input that the run described by ``report`` produced.

    Parameters
    ----------
    report : `~collections.abc.Mapping`
        Run report (JSON dict of `calib.report.RunReport`).
    repo : `pathlib.Path`
        Butler repository the run wrote into.

    Returns
    -------
    inputs : `PlotInputs`
        What was found; missing products are left empty.
    """
    inputs = PlotInputs()
    for gain in report.get("gains") or []:
        if isinstance(gain, Mapping):
            inputs.pair_gains.append(
                GainRecord(
                    list(gain.get("pair", ())),
                    gain["detector"],
                    gain["amp"],
                    gain["gain"],
                    float("nan") if gain.get("noise") is None else float(gain["noise"]),
                )
            )
    jobs = _succeeded_jobs(report)
    if not jobs or not (Path(repo) / "butler.yaml").exists():
        return inputs
    from ..butler.repository import make_butler

    butler = make_butler(repo)
    try:
        for job in jobs:
            try:
                _load_job(butler, job, inputs)
            except Exception as exc:
                _log.warning(
                    "Could not read the products of OCPS job %s (%s) from %s: %s",
                    job.get("job_id"),
                    job.get("name"),
                    job.get("output_collection"),
                    exc,
                )
    finally:
        butler.close()
    return inputs


def _per_detector(butler: Any, dataset_type: str, collection: str) -> dict[str, dict[int, Any]]:
    """Datasets of one type per detector, grouped by physical filter (``""`` when not a dimension)."""
    refs = butler.query_datasets(dataset_type, collections=[collection], explain=False)
    groups: dict[str, dict[int, Any]] = {}
    for ref in refs:
        physical_filter = str(ref.dataId["physical_filter"]) if "physical_filter" in ref.dataId else ""
        groups.setdefault(physical_filter, {})[int(ref.dataId["detector"])] = butler.get(ref)
    return groups


def _load_job(butler: Any, job: Mapping[str, Any], inputs: PlotInputs) -> None:
    kind, product, collection = job.get("kind"), str(job.get("product", "")), str(job["output_collection"])
    if kind == "combine" and product in ("bias", "dark", "flat"):
        groups = _per_detector(butler, product, collection)
        for physical_filter, images in sorted(groups.items()):
            name = f"{product} {physical_filter}" if len(groups) > 1 else product
            inputs.mosaics.setdefault(name, {}).update(images)
    elif kind == "ptc":
        for images in _per_detector(butler, "ptc", collection).values():
            inputs.ptcs.update(images)
    elif kind == "verify" and product in _VERIFY_DATASETS:
        inputs.verify_stats[product] = _verify_stats(butler, _VERIFY_DATASETS[product], collection)


def _verify_stats(butler: Any, prefix: str, collection: str) -> VerificationStats:
    """The exposure-level ``<prefix>ExpStats`` per exposure and the run-level ``<prefix>Stats``."""
    run_refs = butler.query_datasets(f"{prefix}Stats", collections=[collection], explain=False)
    exp_refs = butler.query_datasets(f"{prefix}ExpStats", collections=[collection], explain=False)
    return VerificationStats(
        exposures={int(ref.dataId["exposure"]): butler.get(ref) for ref in exp_refs},
        run=dict(butler.get(run_refs[0])) if run_refs else {},
    )
