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

"""One HTML page per run, beside its JSON report: everything a calibration scientist opens first.

`write_html_report` renders a `calib.report.RunReport` with the jinja2 template
``templates/run_report.html.j2`` (autoescaped) into ``<report stem>.html`` next to the JSON: the
summary (final state, failing step and reason, times, estimated and actual duration), the exposures
per type, every OCPS job with a link to its log, the verification tables, the certifications, the
per-pair gains and read noise (one row per pair and detector, one column per amplifier) and the run's
PNG plots. The plots are embedded as ``data:`` URIs and the job logs linked by paths relative to the
page, so the page reads offline, from a copy of the report folder too (the logs stay in the repo).

May import: jinja2, the standard library and `calib`.
"""

from __future__ import annotations

__all__ = ["html_report_path", "render_html_report", "write_html_report", "run_plots"]

import base64
import os
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from ..calib.report import GainRecord, JobRecord, RunReport, tai_to_iso

_FINAL_CLASSES = {"DONE": "ok", "FAILED": "bad", "STOPPED": "warn"}


def html_report_path(json_path: str | os.PathLike[str]) -> Path:
    """The HTML page of a JSON report: same folder and stem, suffix ``.html``."""
    return Path(json_path).with_suffix(".html")


def run_plots(json_path: str | os.PathLike[str]) -> list[Path]:
    """The PNG plots `report.plots.make_run_plots` drew for a report (``<stem>_*.png``), sorted."""
    path = Path(json_path)
    return sorted(path.parent.glob(f"{path.stem}_*.png"))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _log_link(job: JobRecord, directory: Path) -> str:
    """A link to the job's log: relative to the page for a local file, else the URI as given."""
    if not job.log_uri:
        return ""
    parsed = urllib.parse.urlparse(job.log_uri)
    if parsed.scheme != "file":
        return job.log_uri
    local = Path(urllib.request.url2pathname(parsed.path))
    try:
        return Path(os.path.relpath(local, directory)).as_posix()
    except ValueError:  # another drive
        return job.log_uri


def _gain_tables(gains: Iterable[GainRecord]) -> dict[str, Any]:
    """Gains and noise pivoted: rows (pair, detector), one column per amplifier."""
    amps: list[str] = sorted({g.amp for g in gains})
    rows: dict[tuple[str, int], dict[str, GainRecord]] = {}
    for g in gains:
        rows.setdefault(("-".join(str(p) for p in g.pair), g.detector), {})[g.amp] = g
    return {
        "amps": amps,
        "rows": [
            {"pair": pair, "detector": det, "cells": [values.get(a) for a in amps]}
            for (pair, det), values in sorted(rows.items())
        ],
    }


def _exposure_rows(report: RunReport) -> list[dict[str, Any]]:
    rows = []
    types = [a.image_type for a in report.acquisitions] or sorted({e.image_type for e in report.exposures})
    for image_type in types:
        records = [e for e in report.exposures if e.image_type == image_type]
        acquisition = next((a for a in report.acquisitions if a.image_type == image_type), None)
        kept = [e for e in records if not e.discarded]
        rows.append(
            {
                "image_type": image_type,
                "planned": acquisition.n_planned if acquisition else len(records),
                "taken": len([e for e in records if not e.recovered]),
                "recovered": len([e for e in records if e.recovered]),
                "discarded": len(records) - len(kept),
                "in_oods": len([e for e in kept if e.in_oods]),
                "kept": len(kept),
                "exp_times": sorted({e.exp_time for e in kept}),
                "status": acquisition.status if acquisition else "",
                "missing": acquisition.missing_exposure_ids if acquisition else [],
                "ids": [e.exposure_id for e in kept],
            }
        )
    return rows


def _embedded_plots(plots: Sequence[Path], stem: str) -> list[dict[str, str]]:
    result = []
    for path in plots:
        title = path.stem[len(stem) + 1 :] if path.stem.startswith(stem + "_") else path.stem
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        result.append(
            {"title": title.replace("_", " "), "file": path.name, "src": f"data:image/png;base64,{data}"}
        )
    return result


def render_html_report(
    report: RunReport, directory: str | os.PathLike[str], plots: Sequence[Path] = ()
) -> str:
    """The HTML page of ``report``, for a page written in ``directory``, embedding ``plots``."""
    directory = Path(directory).resolve()
    stem = Path(report.report_path).stem if report.report_path else ""
    jobs = [{"job": job, "log": _log_link(job, directory)} for job in report.jobs]
    context = {
        "report": report,
        "final_class": _FINAL_CLASSES.get(report.final_state, "warn"),
        "start_iso": tai_to_iso(report.start_tai),
        "end_iso": tai_to_iso(report.end_tai),
        "duration": report.duration,
        "exposures": _exposure_rows(report),
        "jobs": jobs,
        "gains": _gain_tables(report.gains),
        "plots": _embedded_plots(plots, stem),
        "config_items": sorted(report.config.items()),
    }
    return _environment().get_template("run_report.html.j2").render(**context)


def write_html_report(json_path: str | os.PathLike[str], plots: Sequence[Path] | None = None) -> Path:
    """Render the JSON report at ``json_path`` into `html_report_path` and return that path.

    Parameters
    ----------
    json_path : `str` or `os.PathLike`
        A report written by the script.
    plots : `~collections.abc.Sequence` [`~pathlib.Path`], optional
        PNGs to embed; default `run_plots` of ``json_path``.
    """
    json_path = Path(json_path)
    report = RunReport.load(json_path)
    if not report.report_path:
        report.report_path = str(json_path)
    out = html_report_path(json_path)
    text = render_html_report(report, out.parent, run_plots(json_path) if plots is None else plots)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
