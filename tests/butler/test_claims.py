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

"""Certification claims: a second run configured meanwhile is refused, naming the first."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lsst.ts.makecalibrations.butler.claims import CLAIMS_FILE, CertificationClaimError, claim, release


def test_overlapping_claim_refused_until_released(tmp_path: Path) -> None:
    token = claim(tmp_path, "u/calib", ["bias", "dark"], "2024-01-01", "2034-01-01", owner="run A")
    assert token is not None
    with pytest.raises(CertificationClaimError, match=r"another run \(run A, pid .*dark into u/calib"):
        claim(tmp_path, "u/calib", ["dark", "flat"], "2030-01-01", "2040-01-01", owner="run B")
    # Another collection, other products or a disjoint range do not conflict.
    assert claim(tmp_path, "u/other", ["dark"], "2024-01-01", "2034-01-01", owner="run C")
    assert claim(tmp_path, "u/calib", ["flat"], "2024-01-01", "2034-01-01", owner="run D")
    assert claim(tmp_path, "u/calib", ["bias"], "2034-01-01", "2044-01-01", owner="run E")
    release(tmp_path, token)
    assert claim(tmp_path, "u/calib", ["dark"], "2030-01-01", "2040-01-01", owner="run B")


def test_claim_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    claim(tmp_path, "u/calib", ["bias"], "2024-01-01", "2034-01-01", owner="killed run")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path = tmp_path / CLAIMS_FILE
    claims = json.loads(path.read_text())
    claims[0]["pid"] = int(dead.stdout)
    path.write_text(json.dumps(claims))
    assert claim(tmp_path, "u/calib", ["bias"], "2024-01-01", "2034-01-01", owner="resumed run")
    assert [c["owner"] for c in json.loads(path.read_text())] == ["resumed run"]


def test_no_claim_for_a_repository_that_is_not_a_local_directory(tmp_path: Path) -> None:
    assert claim("s3://bucket/repo", "u/calib", ["bias"], "2024-01-01", "2034-01-01", owner="x") is None
    assert claim(tmp_path / "missing", "u/calib", ["bias"], "2024-01-01", "2034-01-01", owner="x") is None
    release("s3://bucket/repo", None)
