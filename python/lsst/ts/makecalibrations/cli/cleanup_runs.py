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

"""``cleanup_runs``: remove the intermediate OCPS outputs of finished runs, keeping what matters.

::

    cleanup_runs DIR|REPORT.json ... [--repo REPO] [--dry-run]

For every run report given (or found in a report folder) of a run that is over (``DONE``,
``FAILED`` or ``STOPPED``; a report still being written is skipped), the output runs
``u/ocps/<job_id>`` of its jobs are cleaned in the run's repository (``--repo`` overrides the
report's ``repo``) as `butler.cleanup` decides: runs holding certified calibrations are kept without
their intermediate images, other job runs are removed whole. Raws, reference calibrations, the
CALIBRATION collections, the job logs (which the HTML report links to), the reports and their plots
are never touched. ``--dry-run`` prints the same lines and removes nothing.

May import: `calib`, `butler` and the standard library.
"""

from __future__ import annotations

__all__ = ["FINISHED_STATES", "finished_runs", "main"]

import argparse
import pathlib
import sys
from collections.abc import Sequence

from ..calib.report import RunReport

FINISHED_STATES = ("DONE", "FAILED", "STOPPED")
"""Final states of a run whose job outputs may be cleaned."""


def finished_runs(paths: Sequence[pathlib.Path]) -> tuple[list[tuple[pathlib.Path, RunReport]], list[str]]:
    """The readable reports of finished runs among ``paths`` (files or folders), and what was skipped."""
    files: list[pathlib.Path] = []
    for path in paths:
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    runs, skipped = [], []
    for path in files:
        try:
            report = RunReport.load(path)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            skipped.append(f"{path}: not a run report ({e.__class__.__name__})")
            continue
        if report.final_state not in FINISHED_STATES:
            skipped.append(f"{path}: run not over (state {report.final_state or 'running'!r})")
            continue
        runs.append((path, report))
    return runs, skipped


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point ``cleanup_runs``."""
    parser = argparse.ArgumentParser(prog="cleanup_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=pathlib.Path, help="report folders or JSON run reports")
    parser.add_argument("--repo", help="the butler repository (default: each report's repo)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    parsed = parser.parse_args(args)
    from ..butler.cleanup import apply_cleanup, plan_cleanup

    runs, skipped = finished_runs(parsed.reports)
    for line in skipped:
        print(f"skip {line}")
    by_repo: dict[str, list[str]] = {}
    for path, report in runs:
        repo = parsed.repo or str(report.config.get("repo", ""))
        if not repo:
            print(f"skip {path}: the report names no repository (give --repo)")
            continue
        by_repo.setdefault(repo, []).extend(j.output_collection for j in report.jobs if j.output_collection)
    if not by_repo:
        print("cleanup_runs: no finished run with OCPS jobs", file=sys.stderr)
        return 1
    for repo, collections in by_repo.items():
        try:
            plan = plan_cleanup(repo, collections)
        except Exception as e:
            print(f"cleanup_runs: cannot read the repository {repo}: {e}", file=sys.stderr)
            return 2
        print(f"{repo}:" + (" (dry run: nothing removed)" if parsed.dry_run else ""))
        for line in plan.describe():
            print(f"  {line}")
        if not parsed.dry_run:
            apply_cleanup(repo, plan)
    return 0
