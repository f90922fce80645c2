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

"""How a simulated observatory runs, as one value: `ObservatoryOptions` (time scale, image size, OCPS
executor, BPS site), taken by `observatory.SimulatedObservatory` and ``run_script``, and the
command-line options that make it, one statement for the two commands that start an observatory:
``python -m lsst.ts.makecalibrations.sim`` and ``run_script`` (`ObservatoryArguments`). The checks
are `ObservatoryOptions.problem`'s; a command line only says them with its flags
(``--bps-site-config is for --ocps-executor bps only``).

May import: the standard library, `calib.durations`, `butler.camera` and the sibling module `site`.
"""

from __future__ import annotations

__all__ = ["OCPS_EXECUTORS", "ObservatoryArguments", "ObservatoryOptions"]

import argparse
import dataclasses
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from ..butler.camera import SIZE_PRESETS
from ..calib.durations import RunSite
from .site import DEFAULT_OCPS_EXECUTOR, simulated_site

OCPS_EXECUTORS = ("pipetask", "warm", "bps")
"""How the simulated OCPS runs a job on a butler repo: ``pipetask run`` as a subprocess, ``pipetask
run`` in the warm worker, or ``bps submit`` (Parsl)."""


@dataclasses.dataclass(frozen=True)
class ObservatoryOptions:
    """How a simulated observatory runs; checked when made.

    Attributes
    ----------
    time_scale : `float`
        Simulated seconds per wall second (> 0).
    size : `str`
        Raw image size preset (`butler.camera.SIZE_PRESETS`).
    ocps_executor : `str`
        How OCPS jobs run on a butler repository (`OCPS_EXECUTORS`): ``pipetask`` (a ``pipetask run``
        subprocess per job), ``warm`` (``pipetask run`` forked by a warm worker that imported the
        stack once) or ``bps`` (``bps submit`` with the Parsl plugin).
    bps_site_config : `pathlib.Path` or `None`
        BPS YAML file naming the compute site (``computeSite`` and ``site``), for ``ocps_executor``
        ``bps`` only; this machine (the Parsl plugin's local site) if `None`.

    Raises
    ------
    ValueError
        If a value is out of range, ``bps_site_config`` is given without ``ocps_executor="bps"`` or
        names no file.
    """

    time_scale: float = 100.0
    size: str = "default"
    ocps_executor: str = DEFAULT_OCPS_EXECUTOR
    bps_site_config: pathlib.Path | None = None

    def __post_init__(self) -> None:
        problem = self.problem({field.name: getattr(self, field.name) for field in dataclasses.fields(self)})
        if problem is not None:
            raise ValueError(problem)
        if self.bps_site_config is not None:
            object.__setattr__(self, "bps_site_config", pathlib.Path(os.fspath(self.bps_site_config)))

    @staticmethod
    def problem(values: Mapping[str, Any], say: Callable[..., str] | None = None) -> str | None:
        """Why ``values`` (a value per field) make no `ObservatoryOptions`; `None` if they make one.

        Parameters
        ----------
        values : `~collections.abc.Mapping` [`str`, `~typing.Any`]
            A value for each field.
        say : callable, optional
            ``say(field)`` and ``say(field, value)`` name a field, and a value of it, in the caller's
            words (a command line's flags: `ObservatoryArguments`); by default the field's name and
            ``field='value'``.
        """
        name = say if say is not None else _field_words
        if not values["time_scale"] > 0:
            return f"{name('time_scale')} must be > 0, not {values['time_scale']}."
        if values["size"] not in SIZE_PRESETS:
            return f"{name('size')} must be one of {tuple(SIZE_PRESETS)}, not {values['size']!r}."
        if values["ocps_executor"] not in OCPS_EXECUTORS:
            executor = values["ocps_executor"]
            return f"{name('ocps_executor')} must be one of {OCPS_EXECUTORS}, not {executor!r}."
        site = values["bps_site_config"]
        if site is None:
            return None
        if values["ocps_executor"] != "bps":
            return f"{name('bps_site_config')} is for {name('ocps_executor', 'bps')} only."
        if not pathlib.Path(os.fspath(site)).is_file():
            return f"{name('bps_site_config')}: cannot find the BPS site configuration {site}."
        return None

    def run_site(self, max_processes: int | None = None) -> RunSite:
        """The observatory as its runs' duration estimates see it (`site.simulated_site`), on this
        machine's cores and load now; ``max_processes``: the running executor's own."""
        return simulated_site(self.size, self.time_scale, self.ocps_executor, max_processes=max_processes)


def _field_words(field: str, value: str | None = None) -> str:
    """A field of `ObservatoryOptions` (and a value of it) as its own errors name them."""
    return field if value is None else f"{field}={value!r}"


class ObservatoryArguments:
    """The command-line options of an `ObservatoryOptions`, added to ``parser``: ``--time-scale``,
    ``--size``, ``--ocps-executor`` and ``--bps-site-config``.

    Parameters
    ----------
    parser : `argparse.ArgumentParser`
        The command line.

    Attributes
    ----------
    flags : `dict` [`str`, `str`]
        The flag of each field (the field is the option's ``dest``).
    """

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        defaults = ObservatoryOptions()
        actions = (
            parser.add_argument(
                "--time-scale",
                type=float,
                default=defaults.time_scale,
                help=f"simulated seconds per wall second (default {defaults.time_scale:g})",
            ),
            parser.add_argument(
                "--size",
                choices=tuple(SIZE_PRESETS),
                default=defaults.size,
                help=f"simulated image size (default: {defaults.size})",
            ),
            parser.add_argument(
                "--ocps-executor",
                choices=OCPS_EXECUTORS,
                default=defaults.ocps_executor,
                help=f"how the simulated OCPS runs a job (default {defaults.ocps_executor}): pipetask (a "
                "pipetask run subprocess per job), warm (pipetask run forked by a warm worker that "
                "imported the stack once) or bps (bps submit with the Parsl plugin)",
            ),
            parser.add_argument(
                "--bps-site-config",
                type=pathlib.Path,
                default=None,
                metavar="FILE",
                help="BPS YAML naming computeSite and its site section, for --ocps-executor bps "
                "(default: this machine, the Parsl plugin's local site)",
            ),
        )
        self.flags = {action.dest: action.option_strings[0] for action in actions}

    def options(self, parsed: argparse.Namespace) -> ObservatoryOptions:
        """The `ObservatoryOptions` of ``parsed``; exit through ``parser.error`` (status 2) with
        `ObservatoryOptions.problem` said with the flags if they cannot work together."""
        values = {field: getattr(parsed, field) for field in self.flags}
        problem = ObservatoryOptions.problem(values, say=self._flag_words)
        if problem is not None:
            self.parser.error(problem)
        return ObservatoryOptions(**values)

    def _flag_words(self, field: str, value: str | None = None) -> str:
        return self.flags[field] if value is None else f"{self.flags[field]} {value}"
