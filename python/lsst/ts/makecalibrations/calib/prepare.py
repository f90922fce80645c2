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

"""One way to prepare a run: configuration text -> validated config, resume, templates, plan.

`prepare_run` is what the script's ``configure`` and ``run_script --plan`` both do before anything
that needs the observatory: validate the text, take the complete image sets and certified products of
``resume_from_report`` (the report is read from its file), fill the ``{timestamp}`` of
``calib_collection`` and build the `CalibrationPlan`. The checks that need the repository or the
camera come after it (`scripts.preflight`).

May import: the standard library and the other `calib` modules.
"""

from __future__ import annotations

__all__ = ["PreparedRun", "prepare_run"]

import dataclasses
from collections.abc import Collection, Mapping

from .config import CalibConfig, ConfigError, ConfigProblem, parse_config_text, resolve_templates
from .durations import RunSite
from .instrument import InstrumentSpec
from .plan import CalibrationPlan
from .recovery import ResumeInfo, resume_config
from .report import RunReport


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """A run ready to be checked against the observatory and started.

    Attributes
    ----------
    config : `CalibConfig`
        The validated configuration, resumed and with its templates filled in.
    plan : `CalibrationPlan`
        What the run takes and processes.
    resume : `ResumeInfo` or `None`
        What was taken from ``resume_from_report`` (`None` without it).
    """

    config: CalibConfig
    plan: CalibrationPlan
    resume: ResumeInfo | None = None

    @property
    def already_certified(self) -> frozenset[str]:
        """Products the resumed run already certified (not processed again)."""
        return self.resume.already_certified if self.resume is not None else frozenset()

    @property
    def notes(self) -> tuple[str, ...]:
        """Remarks about the configuration that are not errors."""
        return self.config.notes


def prepare_run(
    text: str | None,
    instrument: InstrumentSpec,
    now: float,
    read_out_time: float | None = None,
    raws_in_repo: Mapping[int, Collection[int]] | None = None,
    site: RunSite | None = None,
) -> PreparedRun:
    """Validate ``text`` and plan the run.

    Parameters
    ----------
    text : `str` or `None`
        The configuration text (YAML).
    instrument : `InstrumentSpec`
        The camera.
    now : `float`
        TAI unix seconds of configure (fills ``{timestamp}``).
    read_out_time : `float`, optional
        Read-out time of the camera (s); the instrument's nominal one when `None`.
    raws_in_repo : `~collections.abc.Mapping` [`int`, `~collections.abc.Collection` [`int`]], optional
        For a resume: the detectors with a raw in the repository of each exposure of the report
        (`calib.recovery.resume_config`); `None` trusts the report (``--plan``).
    site : `RunSite`, optional
        Where the run happens, for its estimated duration: the real observatory by default
        (`RunSite.observatory`); the simulated observatory gives its own (``sim.site``).

    Raises
    ------
    ConfigError
        With every problem of the text, or if the report to resume from cannot be read.
    """
    config = parse_config_text(text, instrument)
    resume = None
    if config.resume_from_report:
        path = str(config.resume_from_report)
        try:
            old = RunReport.load(path)
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(
                [ConfigProblem("resume_from_report", f"cannot read the report {path}: {e}")]
            ) from e
        config, resume = resume_config(config, old, raws_in_repo)
    config = resolve_templates(config, now)
    plan = CalibrationPlan.from_config(
        config,
        read_out_time=read_out_time,
        already_certified=resume.already_certified if resume is not None else frozenset(),
        cost_model=(site or RunSite.observatory()).cost_model,
        time_scale=(site or RunSite.observatory()).time_scale,
    )
    return PreparedRun(config=config, plan=plan, resume=resume)
