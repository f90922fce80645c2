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

"""The command-line options of a simulated observatory, one statement for the two commands that start
one: ``python -m lsst.ts.makecalibrations.sim`` and ``run_script``.

May import: the standard library, `butler.camera` and the sibling module `observatory`.
"""

from __future__ import annotations

__all__ = ["add_observatory_options", "check_observatory_options"]

import argparse
import pathlib

from ..butler.camera import SIZE_PRESETS
from .observatory import DEFAULT_OCPS_EXECUTOR, OCPS_EXECUTORS


def add_observatory_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--time-scale``, ``--size``, ``--ocps-executor`` and ``--bps-site-config`` to ``parser``.

    Check them with `check_observatory_options` after parsing.
    """
    parser.add_argument(
        "--time-scale", type=float, default=100.0, help="simulated seconds per wall second (default 100)"
    )
    parser.add_argument(
        "--size",
        choices=tuple(SIZE_PRESETS),
        default="default",
        help="simulated image size (default: default)",
    )
    parser.add_argument(
        "--ocps-executor",
        choices=OCPS_EXECUTORS,
        default=DEFAULT_OCPS_EXECUTOR,
        help=f"how the simulated OCPS runs a job (default {DEFAULT_OCPS_EXECUTOR}): pipetask (a pipetask "
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


def check_observatory_options(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> None:
    """Exit through ``parser.error`` (status 2, the problem named) if the options cannot work together."""
    if not parsed.time_scale > 0:
        parser.error("--time-scale must be > 0")
    if parsed.bps_site_config is not None:
        if parsed.ocps_executor != "bps":
            parser.error("--bps-site-config needs --ocps-executor bps")
        if not parsed.bps_site_config.is_file():
            parser.error(f"cannot find the BPS site configuration {parsed.bps_site_config}")
