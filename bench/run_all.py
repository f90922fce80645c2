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

"""Run every benchmark module in turn and print their figures.

Each benchmark is a module ``bench.bench_*`` with a ``main()`` function; they print tables, they do not
assert anything. A module with ``IN_MAKE_BENCH = False`` (an hour-long run) is only run when named.
Run with ``make bench`` (or ``python -m bench.run_all [name ...]``).
"""

from __future__ import annotations

__all__ = ["main"]

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks named in ``argv`` (all ``bench_*`` modules when empty)."""
    names = (
        argv
        if argv
        else sorted(
            info.name
            for info in pkgutil.iter_modules([str(Path(__file__).parent)])
            if info.name.startswith("bench_")
        )
    )
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== {name} ===", flush=True)
        if not argv and not getattr(module, "IN_MAKE_BENCH", True):
            print(f"skipped: too long for make bench; run python -m bench.{name}", flush=True)
            continue
        t0 = time.perf_counter()
        module.main()
        print(f"--- {name} took {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
