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
``python -m lsst.ts.makecalibrations.sim`` and ``run_script`` (`add_observatory_options`, then
`observatory_options`).

May import: the standard library, `calib.durations`, `butler.camera` and the sibling module `site`.
"""

from __future__ import annotations

__all__ = ["OCPS_EXECUTORS", "ObservatoryOptions", "add_observatory_options", "observatory_options"]

import argparse
import dataclasses
import os
import pathlib

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
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, not {self.time_scale}.")
        if self.size not in SIZE_PRESETS:
            raise ValueError(f"size must be one of {tuple(SIZE_PRESETS)}, not {self.size!r}.")
        if self.ocps_executor not in OCPS_EXECUTORS:
            raise ValueError(f"ocps_executor must be one of {OCPS_EXECUTORS}, not {self.ocps_executor!r}.")
        if self.bps_site_config is None:
            return
        if self.ocps_executor != "bps":
            raise ValueError("bps_site_config is for ocps_executor='bps' only.")
        site = pathlib.Path(os.fspath(self.bps_site_config))
        if not site.is_file():
            raise ValueError(f"cannot find the BPS site configuration {site}.")
        object.__setattr__(self, "bps_site_config", site)

    @classmethod
    def from_args(cls, parsed: argparse.Namespace) -> ObservatoryOptions:
        """The options of a command line parsed with `add_observatory_options`'s arguments."""
        return cls(
            time_scale=parsed.time_scale,
            size=parsed.size,
            ocps_executor=parsed.ocps_executor,
            bps_site_config=parsed.bps_site_config,
        )

    def run_site(self, max_processes: int | None = None) -> RunSite:
        """The observatory as its runs' duration estimates see it (`site.simulated_site`), on this
        machine's cores and load now; ``max_processes``: the running executor's own."""
        return simulated_site(self.size, self.time_scale, self.ocps_executor, max_processes=max_processes)


def add_observatory_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--time-scale``, ``--size``, ``--ocps-executor`` and ``--bps-site-config`` to ``parser``.

    Make the `ObservatoryOptions` of the parsed command line with `observatory_options`.
    """
    defaults = ObservatoryOptions()
    parser.add_argument(
        "--time-scale",
        type=float,
        default=defaults.time_scale,
        help=f"simulated seconds per wall second (default {defaults.time_scale:g})",
    )
    parser.add_argument(
        "--size",
        choices=tuple(SIZE_PRESETS),
        default=defaults.size,
        help=f"simulated image size (default: {defaults.size})",
    )
    parser.add_argument(
        "--ocps-executor",
        choices=OCPS_EXECUTORS,
        default=defaults.ocps_executor,
        help=f"how the simulated OCPS runs a job (default {defaults.ocps_executor}): pipetask (a pipetask "
        "run subprocess per job), warm (pipetask run forked by a warm worker that imported the stack "
        "once) or bps (bps submit with the Parsl plugin)",
    )
    parser.add_argument(
        "--bps-site-config",
        type=pathlib.Path,
        default=None,
        metavar="FILE",
        help="BPS YAML naming computeSite and its site section, for --ocps-executor bps "
        "(default: this machine, the Parsl plugin's local site)",
    )


def observatory_options(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> ObservatoryOptions:
    """The `ObservatoryOptions` of ``parsed``; exit through ``parser.error`` (status 2, the problem
    named) if they cannot work together."""
    try:
        return ObservatoryOptions.from_args(parsed)
    except ValueError as e:
        parser.error(str(e))
