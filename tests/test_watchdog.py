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

"""The hung-test watchdog (`tests.watchdog`) names the task a hung teardown waits for."""

from __future__ import annotations

import pathlib

import pytest

pytest_plugins = ["pytester"]

HUNG_TEST = '''
import asyncio


async def _stubborn() -> None:
    """Swallow the first cancel, as a cleanup that awaits something it should not would."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await asyncio.sleep(3600)


async def test_leaves_a_stubborn_task() -> None:
    asyncio.get_running_loop().create_task(_stubborn(), name="stubborn-cleanup")


def test_after_it() -> None:
    pass
'''


def test_watchdog_reports_the_task_of_a_hung_teardown(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("MAKECALIBRATIONS_TEST_WATCHDOG", "2")
    monkeypatch.setenv("PYTHONPATH", str(pathlib.Path(__file__).parents[1]))
    pytester.makeconftest(
        "from tests import watchdog\n\ndef pytest_configure(config):\n    watchdog.install(config)\n"
    )
    pytester.makepyfile(test_hung=HUNG_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:xdist", "-o", "asyncio_mode=auto", "-p", "no:cacheprovider"
    )
    # The hang became one error at teardown that names the task; the next test still ran.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaves_a_stubborn_task*"])
    result.stdout.fnmatch_lines(["*stubborn-cleanup*_stubborn*"])
