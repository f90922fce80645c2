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

"""Check ``-c label:field=value`` overrides against the pipeline a job sends them to, before the job.

`override_problems` loads the pipeline (``${CP_PIPE_DIR}``/``${CP_VERIFY_DIR}`` expanded by
`locations.expand_pipeline_uri`, ``#subset`` applied), applies every override to its task's
configuration as ``pipetask run -c`` does (``Pipeline.addConfigOverride`` then
``Pipeline.to_graph``, which builds and validates each task's config), and says what is wrong: a
label that is not a task of the pipeline, a field the task's config does not have, a value the field
refuses. The pipeline graph is built once per (pipeline, overrides) in a process.

The seed's bare label ``isr`` (``-c isr:doDefect=False``), where a job string still carries it, is
checked against every task of the pipeline whose label ends in ``Isr``, as the simulated executor
applies it.

May import: lsst.pipe.base, the standard library and this room's modules.
"""

from __future__ import annotations

__all__ = ["override_problems"]

import functools
from collections.abc import Sequence

from .locations import expand_pipeline_uri

_BARE_ISR = "isr"


def override_problems(pipeline: str, overrides: Sequence[tuple[str, str, str]]) -> list[str]:
    """Return what is wrong with ``overrides`` for ``pipeline`` (empty if nothing is).

    Parameters
    ----------
    pipeline : `str`
        Pipeline string as sent to the OCPS (``${CP_PIPE_DIR}/pipelines/LSSTComCam/cpBias.yaml``).
    overrides : `~collections.abc.Sequence` [`tuple` [`str`, `str`, `str`]]
        ``(label, field, value)`` of each ``-c``.
    """
    return list(_problems(pipeline, tuple(tuple(o) for o in overrides)))


@functools.cache
def _problems(pipeline: str, overrides: tuple[tuple[str, str, str], ...]) -> tuple[str, ...]:
    from lsst.pipe.base import Pipeline

    name = pipeline.rsplit("/", 1)[-1]
    try:
        loaded = Pipeline.from_uri(expand_pipeline_uri(pipeline))
    except Exception as e:
        return (f"cannot load the pipeline {pipeline}: {e}",)
    labels = list(loaded.task_labels)
    problems = []
    applied = []
    for label, field, value in overrides:
        targets = [label]
        if label not in labels:
            isr_labels = [task for task in labels if task.endswith("Isr")]
            if label == _BARE_ISR and isr_labels:
                targets = isr_labels
            else:
                problems.append(
                    f"-c {label}:{field}={value}: {name} has no task labelled {label!r} "
                    f"(its tasks: {', '.join(labels)})"
                )
                continue
        for target in targets:
            loaded.addConfigOverride(target, field, value)
        applied.append((label, field, value))
    if problems or not applied:
        return tuple(problems)
    try:
        loaded.to_graph()
    except Exception as e:
        # pex_config names the config class and the field ("IsrTaskConfig has no attribute doFoo").
        described = ", ".join(f"-c {label}:{field}={value}" for label, field, value in applied)
        return (f"{described}: {name} refuses it: {e}",)
    return ()
