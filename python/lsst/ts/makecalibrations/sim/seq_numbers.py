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

"""One image sequence per repository: sequence numbers reserved under a file lock.

Two simulated observatories writing into one repository (two ``run_script`` at once) must never
hand out the same exposure id. `SequenceNumbers` keeps the last sequence number given out per
observing day in ``<repo>/simulation/seq_nums.json`` and hands out the next one under an exclusive
``fcntl`` lock on ``<repo>/simulation/seq_nums.lock``, so every camera on the repository draws from
one sequence. The first number of a day starts above the highest one the registry already holds
(the ``floor`` callable), so images ingested by other means are never overwritten either.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = ["SequenceNumbers"]

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class SequenceNumbers:
    """Sequence numbers per observing day shared by every process using one repository.

    Parameters
    ----------
    directory : `str` or `os.PathLike`
        Directory of the counter and lock files (created if needed).
    floor : callable
        ``floor(day_obs) -> int``: the highest sequence number the repository already holds for a
        day (asked once per day, the first time the day is seen by any process).
    """

    COUNTER_FILE = "seq_nums.json"
    LOCK_FILE = "seq_nums.lock"

    def __init__(self, directory: str | os.PathLike[str], floor: Callable[[int], int]) -> None:
        self.directory = Path(directory)
        self.floor = floor

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, int]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / self.LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                path = self.directory / self.COUNTER_FILE
                try:
                    counters = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
                except (FileNotFoundError, ValueError):
                    counters = {}
                before = dict(counters)
                yield counters
                if counters != before:
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(counters))
                    tmp.replace(path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _last(self, counters: dict[str, int], day_obs: int) -> int:
        key = str(int(day_obs))
        if key not in counters:
            counters[key] = int(self.floor(day_obs))
        return counters[key]

    def last(self, day_obs: int) -> int:
        """The last sequence number handed out (or in the repository) for ``day_obs``."""
        with self._locked() as counters:
            return self._last(counters, day_obs)

    def note(self, day_obs: int, seq_num: int) -> None:
        """Record that ``seq_num`` of ``day_obs`` is used (an image written with a number of its own)."""
        with self._locked() as counters:
            counters[str(int(day_obs))] = max(self._last(counters, day_obs), int(seq_num))

    def reserve(self, day_obs: int) -> int:
        """Hand out the next sequence number of ``day_obs``; no other caller ever gets it."""
        with self._locked() as counters:
            seq_num = self._last(counters, day_obs) + 1
            counters[str(int(day_obs))] = seq_num
            return seq_num
