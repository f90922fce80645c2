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

"""The checks of a prepared run against the repository and the camera, made before the first image.

`check_before_run` is called by the script's ``configure`` and by ``run_script --plan``, so a
configuration that passes ``--plan`` is one that configure accepts. It finds, and reports together
as one `calib.config.ConfigError` naming the keys:

* ``repo`` that does not exist, is a file, is not a butler repository or cannot be written (checked
  first: nothing else can be checked without it);
* recovered exposures (``exposure_ids``, or those of ``resume_from_report``) that are not in the
  repository with the right observation type;
* a ``filter`` that is not in the filter changer;
* a ``calib_collection`` that exists but is not a CALIBRATION collection (a RUN or CHAINED one);
* input collections of the jobs (``input_collections_*``) that do not exist (those the run makes
  itself, the combine jobs' outputs and ``calib_collection``, are not required);
* ``-c label:field=value`` overrides naming a task that is not in the job's pipeline, or a config
  field that task does not have (`pipelines.overrides`, run in a thread: loading a pipeline imports
  its tasks, which takes seconds, so this check is made only when the ones above found nothing);
* certifications already in ``calib_collection`` over an overlapping validity range (only when
  nothing else is wrong, since it reads the collection).

May import: `calib`, `pipelines` (lazily, for the override check), `.butler_gateway` and the standard
library.
"""

from __future__ import annotations

__all__ = ["check_before_run"]

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ..calib.config import ConfigError, ConfigProblem, ImageType
from ..calib.jobs import JobBuilder, JobKind, JobSpec, Placeholder, ocps_output_collection
from ..calib.prepare import PreparedRun
from .butler_gateway import ButlerGateway


def _inputs_key(job: JobSpec) -> str:
    if job.kind is JobKind.VERIFY:
        return f"input_collections_verify_{job.product}"
    if job.kind in (JobKind.PTC, JobKind.GAIN):
        return "input_collections_ptc"
    return f"input_collections_{job.product}"


def _options_key(job: JobSpec) -> str:
    return (
        "config_options_ptc" if job.kind in (JobKind.PTC, JobKind.GAIN) else f"config_options_{job.product}"
    )


def _option_jobs(prepared: PreparedRun, jobs: Sequence[JobSpec]) -> list[tuple[JobSpec, bool]]:
    """The jobs whose ``-c`` overrides are checked, and whether the run sends them.

    The jobs of the run, and for each ``config_options_*`` no job of the run uses, the job it would
    go to (so a bad override is found even in a key this run does not use).
    """
    used = {_options_key(job) for job in jobs if job.kind is not JobKind.VERIFY}
    builder = JobBuilder(prepared.config)
    ids = Placeholder("exposure ids")
    nominal = [builder.combine(image_type, ids) for image_type in ImageType]
    nominal += [builder.defects(ids), builder.ptc(ids)]
    return [(job, True) for job in jobs] + [(job, False) for job in nominal if _options_key(job) not in used]


def _override_problems(option_jobs: Sequence[tuple[JobSpec, bool]]) -> list[ConfigProblem]:
    from ..pipelines.overrides import override_problems

    problems = []
    for job, sent in option_jobs:
        overrides = job.overrides
        if not overrides:
            continue
        what = f"the {job.name} job" if sent else f"not used by this run; checked for the {job.name} job"
        for message in override_problems(job.pipeline, overrides):
            problems.append(ConfigProblem(_options_key(job), f"{message} ({what})"))
    return problems


async def check_before_run(
    prepared: PreparedRun,
    butler: ButlerGateway,
    *,
    available_filters: Sequence[str] | None = None,
    flat_physical_filter: str | None = None,
) -> list[str]:
    """Check the run against the repository and the camera (see the module docstring).

    Parameters
    ----------
    prepared : `calib.prepare.PreparedRun`
        The run.
    butler : `ButlerGateway`
        The door to the run's repository.
    available_filters : `~collections.abc.Sequence` [`str`], optional
        Filters in the filter changer; `None` if not known (the filter is not checked).
    flat_physical_filter : `str`, optional
        Butler ``physical_filter`` of the run's flats (LATISS: ``filter~grating``), for the conflict
        check of flats; `None`: not known, flats of every filter are compared.

    Returns
    -------
    lines : `list` [`str`]
        What was checked, one line each, for the log.

    Raises
    ------
    calib.config.ConfigError
        With every problem found.
    """
    cfg = prepared.config
    plan = prepared.plan
    jobs = plan.planned_jobs()
    if not (jobs or cfg.exposure_ids or plan.certified_products):
        # Images only: the script never opens the repository (the OODS ingests into its own).
        problem = _filter_problem(cfg.filter, available_filters)
        if problem is not None:
            raise ConfigError([problem])
        return []
    repo_problem = await butler.repository_problem()
    if repo_problem is not None:
        raise ConfigError([ConfigProblem("repo", repo_problem)])
    problems: list[ConfigProblem] = []
    lines = [f"Repository {cfg.repo} can be written"]
    if jobs:
        outdated = await butler.outdated_dataset_types()
        stems = {Path(job.pipeline).stem for job in jobs}
        problems += [ConfigProblem("repo", problem) for stem, problem in outdated.values() if stem in stems]

    if cfg.exposure_ids:
        problems += await _recovered_exposure_problems(prepared, butler)

    problems += [p for p in [_filter_problem(cfg.filter, available_filters)] if p is not None]

    made_by_run = {cfg.calib_collection} if plan.certified_products else set()
    needed: dict[str, tuple[str, str]] = {}
    for job in jobs:
        for name in job.input_collections:
            if name.startswith(ocps_output_collection("")) or name in made_by_run:
                continue
            needed.setdefault(name, (_inputs_key(job), job.name))
    names = list(needed) + ([cfg.calib_collection] if plan.certified_products else [])
    types = await butler.collection_types(names) if names else {}
    if plan.certified_products and types.get(cfg.calib_collection) not in (None, "CALIBRATION"):
        problems.append(
            ConfigProblem(
                "calib_collection",
                f"{cfg.calib_collection} is a {types[cfg.calib_collection]} collection in {cfg.repo}; "
                "calibrations are certified into a CALIBRATION collection (give a new name and it is made)",
            )
        )
    for name, (key, job_name) in needed.items():
        if types.get(name) is None:
            problems.append(
                ConfigProblem(
                    key, f"collection {name!r} does not exist in {cfg.repo} (the {job_name} job reads it)"
                )
            )
    if needed:
        lines.append(f"Input collections exist: {', '.join(needed)}")

    if problems:
        # Loading the pipelines takes seconds (their tasks are imported): refuse at once what is
        # already known to be wrong.
        raise ConfigError(problems)
    override_problems = await asyncio.to_thread(_override_problems, _option_jobs(prepared, jobs))
    problems += override_problems
    if not override_problems:
        lines.append("Every -c override names a task and a config field of its job's pipeline")

    if not problems and plan.certified_products:
        products = plan.certified_products
        conflicts = await butler.find_conflicts(
            cfg.calib_collection,
            products,
            cfg.certify_calib_begin_date,
            cfg.certify_calib_end_date,
            physical_filter=flat_physical_filter,
            detectors=cfg.detector_ids,
        )
        if conflicts:
            described = "; ".join(str(c) for c in conflicts)
            problems.append(
                ConfigProblem(
                    "calib_collection",
                    f"calib_collection {cfg.calib_collection} already holds calibrations this run would "
                    f"certify over [{cfg.certify_calib_begin_date}, {cfg.certify_calib_end_date}): "
                    f"{described}. Choose another calib_collection or validity range; no image was taken.",
                )
            )
        else:
            lines.append(
                f"No certification of {', '.join(products)} in {cfg.calib_collection} overlaps "
                f"[{cfg.certify_calib_begin_date}, {cfg.certify_calib_end_date})"
            )
    if problems:
        raise ConfigError(problems)
    return lines


def _filter_problem(filter_name: str | None, available: Sequence[str] | None) -> ConfigProblem | None:
    """The problem of a filter that is not in the filter changer (when it is known which are)."""
    if filter_name is None or available is None or filter_name in available:
        return None
    return ConfigProblem(
        "filter", f"{filter_name!r} is not in the filter changer; available: {list(available)}"
    )


async def _recovered_exposure_problems(prepared: PreparedRun, butler: ButlerGateway) -> list[ConfigProblem]:
    """Recovered exposures that are not in the repository with the right observation type."""
    cfg = prepared.config
    all_ids = [i for ids in cfg.exposure_ids.values() for i in ids]
    try:
        found = await butler.exposure_observation_types(all_ids)
    except Exception as e:
        return [ConfigProblem("exposure_ids", f"cannot look up the exposures in {cfg.repo}: {e}")]
    problems = []
    for image_type, ids in cfg.exposure_ids.items():
        missing = [i for i in ids if i not in found]
        wrong = [f"{i} is {found[i]}" for i in ids if i in found and found[i].lower() != image_type.key]
        key = f"exposure_ids.{image_type.key}"
        if missing:
            problems.append(ConfigProblem(key, f"exposures not found in {cfg.repo}: {missing}"))
        if wrong:
            problems.append(ConfigProblem(key, f"not {image_type.plural}: " + ", ".join(wrong)))
    return problems
