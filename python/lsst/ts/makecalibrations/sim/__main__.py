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

"""Run the simulated observatory of one camera (LSSTComCam by default: CCCamera, CCHeaderService,
CCOODS, OCPS:2; ``--instrument LSSTCam`` or ``LATISS`` for theirs) until interrupted.

Usage: ``python -m lsst.ts.makecalibrations.sim --time-scale 100 [--repo PATH] [--instrument NAME]``.
The CSCs share the embedded SAL bus of this process's event loop (or the real SAL when
``lsst.ts.salobj`` is in use).

May import: `sal`, the standard library and the sibling `sim` modules.
"""

from __future__ import annotations

__all__ = ["main", "amain", "parse_args"]

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .cameras import OBSERVATORIES
from .observatory import SimulatedObservatory
from .options import ObservatoryArguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``observatory`` is its `options.ObservatoryOptions`."""
    parser = argparse.ArgumentParser(
        prog="python -m lsst.ts.makecalibrations.sim",
        description="Run the simulated CSCs of one camera and its OCPS until Ctrl-C.",
    )
    parser.add_argument(
        "--instrument",
        default="LSSTComCam",
        choices=sorted(OBSERVATORIES),
        help="camera whose observatory to simulate (default LSSTComCam)",
    )
    parser.add_argument("--repo", default=None, help="butler repository for raws and OCPS jobs")
    observatory = ObservatoryArguments(parser)
    parser.add_argument("--ingest-delay", type=float, default=2.0, help="simulated seconds to imageInOODS")
    parser.add_argument("--job-duration", type=float, default=10.0, help="simulated seconds per OCPS job")
    parser.add_argument("--log-level", default="INFO", help="Python log level")
    args = parser.parse_args(argv)
    args.observatory = observatory.options(args)
    return args


async def amain(args: argparse.Namespace) -> None:
    """Start the observatory and run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with SimulatedObservatory(
        args.observatory,
        repo=args.repo,
        ingest_delay=args.ingest_delay,
        job_duration=args.job_duration,
        instrument=args.instrument,
    ):
        print(f"Simulated observatory running at time scale {args.time_scale}; Ctrl-C to stop.", flush=True)
        await stop.wait()
        print("Stopping.", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
