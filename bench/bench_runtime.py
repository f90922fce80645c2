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

"""Benchmark: per-message cost of the embedded SAL runtime against bare asyncio baselines.

Figures (all measured in this process, same event loop):

* command round trip: ``cmd.set_start()`` -> callback -> ``CMD_COMPLETE`` ack, N=2000, mean/median µs;
  baseline: a request/reply through two bare `asyncio.Queue` objects and a server task.
* event fan-out to 1, 4 and 16 readers: time per written message until every reader has read it
  with ``next(flush=False)``; baseline: `asyncio.Queue` put to each reader queue, one get task per reader.

Run with ``python -m bench.bench_runtime`` from the repository root.
"""

from __future__ import annotations

__all__ = ["main", "run"]

import asyncio
import logging
import statistics
import time
from typing import Any

N_COMMANDS = 2000
N_EVENTS = 2000
BATCH = 50  # messages written before waiting for the readers (below the 100-message queue length)
READER_COUNTS = (1, 4, 16)


async def _queue_round_trip(n: int) -> list[float]:
    """Per-iteration µs of a request/reply through two asyncio queues."""
    requests: asyncio.Queue = asyncio.Queue()
    replies: asyncio.Queue = asyncio.Queue()

    async def server() -> None:
        while True:
            item = await requests.get()
            replies.put_nowait(item)

    server_task = asyncio.create_task(server())
    times = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        requests.put_nowait(i)
        await replies.get()
        times.append((time.perf_counter_ns() - t0) / 1000)
    server_task.cancel()
    return times


async def _command_round_trip(n: int) -> list[float]:
    """Per-command µs of ``set_start`` -> COMPLETE with the embedded runtime."""
    from lsst.ts.makecalibrations import runtime as salobj

    controller = salobj.Controller("Test", 1)
    controller.shutdown_delay = 0

    async def callback(data: Any) -> None:
        return None

    controller.cmd_setScalars.callback = callback
    await controller.start_task
    domain = salobj.Domain()
    remote = salobj.Remote(domain, "Test", 1, include=[])
    await remote.start_task
    times = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        await remote.cmd_setScalars.set_start(int0=i, timeout=10)
        times.append((time.perf_counter_ns() - t0) / 1000)
    await domain.close()
    await controller.close()
    return times


async def _queue_fan_out(n: int, n_readers: int) -> float:
    """µs per message delivered through one asyncio queue per reader."""
    queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(n_readers)]
    done = [0] * n_readers
    batch_done: list[asyncio.Future] = []

    async def reader(i: int) -> None:
        while True:
            await queues[i].get()
            done[i] += 1
            if done[i] % BATCH == 0:
                batch_done[i].set_result(None)

    tasks = [asyncio.create_task(reader(i)) for i in range(n_readers)]
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for start in range(0, n, BATCH):
        batch_done[:] = [loop.create_future() for _ in range(n_readers)]
        for i in range(start, start + BATCH):
            for queue in queues:
                queue.put_nowait(i)
        await asyncio.gather(*batch_done)
    elapsed = (time.perf_counter_ns() - t0) / 1000
    for task in tasks:
        task.cancel()
    return elapsed / n


async def _event_fan_out(n: int, n_readers: int) -> float:
    """µs per event written until every reader has read it with ``next``."""
    from lsst.ts.makecalibrations import runtime as salobj

    controller = salobj.Controller("Test", 1)
    controller.shutdown_delay = 0
    await controller.start_task
    domain = salobj.Domain()
    remotes = [
        salobj.Remote(domain, "Test", 1, readonly=True, include=["scalars"], evt_max_history=0)
        for _ in range(n_readers)
    ]
    await asyncio.gather(*[remote.start_task for remote in remotes])
    done = [0] * n_readers
    batch_done: list[asyncio.Future] = []

    async def reader(i: int) -> None:
        topic = remotes[i].evt_scalars
        while True:
            await topic.next(flush=False)
            done[i] += 1
            if done[i] % BATCH == 0:
                batch_done[i].set_result(None)

    tasks = [asyncio.create_task(reader(i)) for i in range(n_readers)]
    loop = asyncio.get_running_loop()
    evt = controller.evt_scalars
    t0 = time.perf_counter_ns()
    for start in range(0, n, BATCH):
        batch_done[:] = [loop.create_future() for _ in range(n_readers)]
        for i in range(start, start + BATCH):
            evt.set(int0=i)
            await evt.write()
        await asyncio.gather(*batch_done)
    elapsed = (time.perf_counter_ns() - t0) / 1000
    for task in tasks:
        task.cancel()
    dropped = sum(remote.evt_scalars.dropped_count for remote in remotes)
    if dropped:
        raise RuntimeError(f"{dropped} messages dropped; lower BATCH")
    await domain.close()
    await controller.close()
    return elapsed / n


async def run() -> dict[str, float]:
    """Measure and return the figures (µs)."""
    results: dict[str, float] = {}
    await _queue_round_trip(200)  # warm up
    await _command_round_trip(200)
    baseline = await _queue_round_trip(N_COMMANDS)
    command = await _command_round_trip(N_COMMANDS)
    results["queue_rtt_mean"] = statistics.fmean(baseline)
    results["queue_rtt_median"] = statistics.median(baseline)
    results["command_rtt_mean"] = statistics.fmean(command)
    results["command_rtt_median"] = statistics.median(command)
    for n_readers in READER_COUNTS:
        results[f"queue_fanout_{n_readers}"] = await _queue_fan_out(N_EVENTS, n_readers)
        results[f"event_fanout_{n_readers}"] = await _event_fan_out(N_EVENTS, n_readers)
    return results


def main() -> None:
    """Run the benchmark and print the table."""
    logging.basicConfig(level=logging.WARNING)
    results = asyncio.run(run())
    print(f"command round trip, N={N_COMMANDS} (set_start -> callback -> CMD_COMPLETE):")
    print(
        f"  embedded runtime   mean {results['command_rtt_mean']:8.1f} µs   "
        f"median {results['command_rtt_median']:8.1f} µs"
    )
    print(
        f"  asyncio.Queue RTT  mean {results['queue_rtt_mean']:8.1f} µs   "
        f"median {results['queue_rtt_median']:8.1f} µs"
    )
    print(
        f"  ratio (median)     {results['command_rtt_median'] / results['queue_rtt_median']:8.1f} x   "
        f"(mean {results['command_rtt_mean'] / results['queue_rtt_mean']:.1f} x)"
    )
    print(f"event fan-out, N={N_EVENTS} messages, µs per written message until all readers have it:")
    print("  readers   embedded   per delivery   asyncio.Queue   ratio")
    for n_readers in READER_COUNTS:
        event = results[f"event_fanout_{n_readers}"]
        queue = results[f"queue_fanout_{n_readers}"]
        print(
            f"  {n_readers:7d} {event:10.1f} {event / n_readers:14.1f} {queue:15.1f} {event / queue:7.1f} x"
        )


if __name__ == "__main__":
    main()
