"""Read, from a run report and the butler, the inputs of the run plots.

The report names the OCPS jobs of the run and their output RUN collections (``u/ocps/<job_id>``);
the products of each job are read from that collection: ``ptc`` (solved PTC), ``cpPtcExtract``
(gain from flat pairs), ``verify*Stats`` (run-level verification) and ``bias``/``dark``/``flat``
(combined calibrations). Whatever does not exist is left empty so the caller skips that plot.

May import: `butler` (and, through it, lsst.daf.butler), numpy.
"""

from __future__ import annotations

__all__ = ["PlotInputs", "file_prefix", "load_plot_inputs", "run_name"]

import dataclasses
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

_JOB_KINDS: dict[str, str] = {
    "cpBias": "bias",
    "cpDark": "dark",
    "cpFlat": "flat",
    "verifyBias": "verify_bias",
    "verifyDark": "verify_dark",
    "verifyFlat": "verify_flat",
    "cpPtcGainFromFlatPairs": "gain",
    "cpPtc": "ptc",
    "cpDefects": "defects",
}


@dataclasses.dataclass
class PlotInputs:
    """What the run plots are drawn from; empty members are skipped.

    Attributes
    ----------
    ptcs : `dict` [`int`, `typing.Any`]
        Solved PTC per detector.
    pair_gains : `list`
        Gain-from-flat-pairs rows ``(pair, detector, amp, gain, noise)``.
    verify_stats : `dict` [`str`, `dict`]
        Run-level verification statistics per calibration type.
    mosaics : `dict` [`str`, `dict` [`int`, `typing.Any`]]
        Combined calibration image per detector, per calibration type.
    """

    ptcs: dict[int, Any] = dataclasses.field(default_factory=dict)
    pair_gains: list[Any] = dataclasses.field(default_factory=list)
    verify_stats: dict[str, dict[Any, Any]] = dataclasses.field(default_factory=dict)
    mosaics: dict[str, dict[int, Any]] = dataclasses.field(default_factory=dict)


def run_name(report: Mapping[str, Any]) -> str:
    """A human name for the run, for figure titles."""
    for key in ("run_name", "name", "run_id"):
        if report.get(key):
            return str(report[key])
    script = report.get("script") or {}
    parts = [str(script.get("name", "make_comcam_calibrations"))] if isinstance(script, Mapping) else []
    index = script.get("index") if isinstance(script, Mapping) else report.get("index")
    if index is not None:
        parts.append(f"index {index}")
    start = report.get("start_time") or report.get("started")
    if start:
        parts.append(str(start))
    return " ".join(parts) or "calibration run"


def file_prefix(report: Mapping[str, Any]) -> str:
    """Prefix for the PNG names, so several runs can share one report directory."""
    for key in ("run_id", "report_stem", "name"):
        if report.get(key):
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(report[key])).strip("_")
            if stem:
                return f"{stem}_"
    return ""


def _job_kind(job: Mapping[str, Any]) -> str | None:
    kind = job.get("kind") or job.get("type")
    if isinstance(kind, str) and kind in _JOB_KINDS.values():
        return kind
    pipeline = str(job.get("pipeline", ""))
    for marker, name in _JOB_KINDS.items():
        if marker in pipeline:
            return name
    return None


def _job_collection(job: Mapping[str, Any]) -> str | None:
    for key in ("output_collection", "collection", "output_run"):
        if job.get(key):
            return str(job[key])
    if job.get("job_id"):
        return f"u/ocps/{job['job_id']}"
    return None


def _jobs(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    jobs = report.get("jobs") or report.get("ocps_jobs") or []
    if isinstance(jobs, Mapping):
        jobs = list(jobs.values())
    return [job for job in jobs if isinstance(job, Mapping) and job.get("exit_code", 0) == 0]


def load_plot_inputs(report: Mapping[str, Any], repo: Path) -> PlotInputs:
    """Load from ``repo`` every plot input that the run described by ``report`` produced.

    Parameters
    ----------
    report : `~collections.abc.Mapping`
        Run report (JSON dict).
    repo : `pathlib.Path`
        Butler repository.

    Returns
    -------
    inputs : `PlotInputs`
        What was found; missing products are left empty.
    """
    inputs = PlotInputs()
    jobs = [(kind, _job_collection(job)) for job in _jobs(report) if (kind := _job_kind(job))]
    if not jobs or not Path(repo).exists():
        return inputs
    try:
        from lsst.daf.butler import Butler
    except ImportError:  # pragma: no cover - the stack is a dependency
        return inputs
    butler = Butler.from_config(str(repo), writeable=False)
    try:
        for kind, collection in jobs:
            if collection is None:
                continue
            try:
                _load_job(butler, kind, collection, inputs)
            except Exception as exc:
                _log.warning("Could not read the %s products of %s: %s", kind, collection, exc)
    finally:
        butler.close()
    return inputs


def _per_detector(butler: Any, dataset_type: str, collection: str) -> dict[int, Any]:
    refs = butler.query_datasets(dataset_type, collections=[collection], explain=False)
    return {int(ref.dataId["detector"]): butler.get(ref) for ref in refs}


def _load_job(butler: Any, kind: str, collection: str, inputs: PlotInputs) -> None:
    if kind in ("bias", "dark", "flat"):
        images = _per_detector(butler, kind, collection)
        if images:
            inputs.mosaics.setdefault(kind, {}).update(images)
    elif kind == "ptc":
        inputs.ptcs.update(_per_detector(butler, "ptc", collection))
    elif kind == "gain":
        for ref in butler.query_datasets("cpPtcExtract", collections=[collection], explain=False):
            ptc = butler.get(ref)
            for amp in ptc.amp_names:
                pairs = ptc.input_exp_id_pairs.get(amp) or [[int(ref.dataId["exposure"])]]
                inputs.pair_gains.append(
                    (tuple(pairs[0]), int(ref.dataId["detector"]), amp, ptc.gain[amp], ptc.noise[amp])
                )
    elif kind.startswith("verify_"):
        calib_type = kind.removeprefix("verify_")
        dataset_type = f"verify{calib_type.capitalize()}Stats"
        refs = butler.query_datasets(dataset_type, collections=[collection], explain=False)
        for ref in refs:
            inputs.verify_stats[calib_type] = butler.get(ref)
