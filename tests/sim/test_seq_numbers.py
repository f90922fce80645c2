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

"""One exposure sequence per repository: reservations from several processes never collide."""

import multiprocessing
import pathlib

from lsst.ts.makecalibrations.sim.seq_numbers import SequenceNumbers

DAY = 20260101


def _reserve_many(directory: str, n: int, queue: multiprocessing.Queue) -> None:
    sequence = SequenceNumbers(directory, floor=lambda day: 40)
    queue.put([sequence.reserve(DAY) for _ in range(n)])


def test_two_processes_never_get_the_same_number(tmp_path: pathlib.Path) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_reserve_many, args=(str(tmp_path), 50, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    numbers = queue.get(timeout=60) + queue.get(timeout=60)
    for worker in workers:
        worker.join(timeout=60)
    # The floor (the registry's highest number of the day) is asked once; the sequence goes on above it.
    assert sorted(numbers) == list(range(41, 141))


def test_floor_asked_once_per_day_and_noted_numbers_count(tmp_path: pathlib.Path) -> None:
    asked: list[int] = []
    sequence = SequenceNumbers(tmp_path, floor=lambda day: asked.append(day) or 7)
    assert sequence.last(DAY) == 7
    assert sequence.reserve(DAY) == 8
    sequence.note(DAY, 20)
    assert SequenceNumbers(tmp_path, floor=lambda day: 0).reserve(DAY) == 21
    assert sequence.reserve(DAY + 1) == 8
    assert asked == [DAY, DAY + 1]
