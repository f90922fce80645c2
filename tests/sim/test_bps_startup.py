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

"""The start-up of BPS job processes: the ``zipfile`` seek repair that large ``.qg`` graphs need."""

import importlib.util
import io
import os
import subprocess
import sys
import zipfile
from types import ModuleType

import pytest

from lsst.ts.makecalibrations.sim.bps_executor import BPS_STARTUP_DIR, BpsExecutor


def startup_module() -> ModuleType:
    """The BPS start-up module, loaded under another name (so that it installs nothing)."""
    path = BPS_STARTUP_DIR / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("bps_startup_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def interleaved_read(members: dict[str, bytes]) -> bytes:
    """Like pipe_base reading a quantum: one member open and read, another seeks far and reads."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with zipfile.ZipFile(buffer) as archive, archive.open("blocks") as blocks, archive.open("addr") as addr:
        blocks.read(8)
        addr.read(8)
        blocks.seek(50_000)
        return blocks.read(16)


MEMBERS = {"blocks": os.urandom(100_000), "addr": os.urandom(20_000)}


def test_repaired_seek_reads_the_member_at_its_own_position(monkeypatch) -> None:
    module = startup_module()
    monkeypatch.setattr(zipfile._SharedFile, "seek", module.seek_from_own_position)
    assert not module.shared_seek_is_broken()
    assert interleaved_read(MEMBERS) == MEMBERS["blocks"][50_000:50_016]
    assert module.install() is False  # already repaired: nothing replaced


@pytest.mark.skipif(
    not startup_module().shared_seek_is_broken(), reason="this Python's zipfile seeks correctly"
)
def test_this_python_needs_the_repair() -> None:
    """Without the repair the seek lands past the end of the archive: the 189-detector jobs' EOFError."""
    with pytest.raises(EOFError):
        interleaved_read(MEMBERS)


def test_bps_job_processes_start_with_the_repair(tmp_path) -> None:
    env = BpsExecutor(tmp_path / "repo").job_environment()
    assert env is not None
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(BPS_STARTUP_DIR)
    check = (
        "import zipfile, sitecustomize; "
        "print(zipfile._SharedFile.seek is sitecustomize.seek_from_own_position, "
        "sitecustomize.shared_seek_is_broken())"
    )
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True)
    repaired, still_broken = out.stdout.split()
    assert still_broken == "False"
    assert repaired == str(startup_module().shared_seek_is_broken())  # replaced only where needed
