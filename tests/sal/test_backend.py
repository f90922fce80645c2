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

"""The `sal` room's backend choice (real salobj >= 7 unless forced embedded) and `control.clients`'s.

The real packages are stood in for by minimal fakes on ``PYTHONPATH``; whether the names the project
uses exist in the real ones is checked against the recorded real API in ``test_conformance.py``.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

PROBE = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from lsst.ts.makecalibrations import sal
from lsst.ts.makecalibrations.control import clients as control
print(json.dumps({
    "backend": sal.BACKEND,
    "salobj": sal.salobj.__name__,
    "control_backend": control.CONTROL_BACKEND,
    "comcam": control.ComCam.__module__ + "." + control.ComCam.__qualname__,
    "remote_group": control.RemoteGroup.__module__,
    "script_state": sal.ScriptState.__module__,
    "current_tai": sal.current_tai.__module__,
    "make_done_future": sal.make_done_future.__module__,
    "metadata_dome": sal.MetadataDome.__module__,
}))
"""


def make_fake_packages(root: pathlib.Path, salobj_version: str, with_obsctl: bool) -> None:
    """Write a fake ``lsst.ts.salobj`` (and optionally ``lsst.ts.observatory.control``) under root."""
    salobj_dir = root / "lsst" / "ts" / "salobj"
    salobj_dir.mkdir(parents=True)
    (salobj_dir / "__init__.py").write_text(f'__version__ = "{salobj_version}"\n')
    # Where the real stack keeps the Script enums and the time helpers (not in salobj).
    enums_dir = root / "lsst" / "ts" / "xml" / "enums"
    enums_dir.mkdir(parents=True)
    (enums_dir / "Script.py").write_text(
        "import enum\n"
        "ScriptState = enum.IntEnum('ScriptState', 'UNKNOWN UNCONFIGURED CONFIGURED', start=0)\n"
        "MetadataCoordSys = MetadataRotSys = MetadataDome = enum.IntEnum('M', 'NONE')\n"
    )
    utils_dir = root / "lsst" / "ts" / "utils"
    utils_dir.mkdir(parents=True)
    (utils_dir / "__init__.py").write_text(
        "def current_tai(): return 0.0\ndef index_generator(): yield 1\ndef make_done_future(): ...\n"
    )
    if with_obsctl:
        control_dir = root / "lsst" / "ts" / "observatory" / "control"
        (control_dir / "maintel").mkdir(parents=True)
        # As the real package lays them out: Usages beside RemoteGroup, ComCamUsages beside ComCam.
        (control_dir / "remote_group.py").write_text(
            "import enum\nclass Usages(enum.IntFlag):\n    MonitorState = 4\nclass RemoteGroup: ...\n"
        )
        (control_dir / "__init__.py").write_text(
            "from .remote_group import RemoteGroup, Usages\nclass BaseCamera(RemoteGroup): ...\n"
        )
        (control_dir / "maintel" / "__init__.py").write_text("")
        (control_dir / "maintel" / "comcam.py").write_text(
            "import enum\nfrom .. import BaseCamera\nclass ComCam(BaseCamera): ...\n"
            "class ComCamUsages(enum.IntFlag):\n    TakeImage = 8\n"
        )


def probe(pythonpath: pathlib.Path | None, force_embedded: bool) -> tuple[dict, str]:
    env = dict(os.environ)
    env.pop("TS_MAKECALIBRATIONS_SAL_BACKEND", None)
    if force_embedded:
        env["TS_MAKECALIBRATIONS_SAL_BACKEND"] = "embedded"
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    return json.loads(result.stdout), result.stderr


def test_forced_embedded_backend(tmp_path: pathlib.Path) -> None:
    make_fake_packages(tmp_path, "8.2.0", with_obsctl=True)
    info, stderr = probe(tmp_path, force_embedded=True)
    assert info["backend"] == "embedded"
    assert info["salobj"] == "lsst.ts.makecalibrations.runtime"
    assert info["control_backend"] == "embedded"
    assert info["comcam"].startswith("lsst.ts.makecalibrations.control")
    assert {info[key] for key in ("script_state", "current_tai", "make_done_future", "metadata_dome")} == {
        "lsst.ts.makecalibrations.runtime.enums",
        "lsst.ts.makecalibrations.runtime.base",
    }
    assert stderr.count("SAL backend: embedded") == 1  # logged once


@pytest.mark.parametrize(
    "version, with_obsctl, backend, control_backend",
    [
        ("8.2.0", True, "lsst.ts.salobj", "lsst.ts.observatory.control"),
        ("7.0.1", False, "lsst.ts.salobj", "embedded"),
        ("6.3.0", True, "embedded", "embedded"),
    ],
)
def test_real_backend_when_available(
    tmp_path: pathlib.Path, version: str, with_obsctl: bool, backend: str, control_backend: str
) -> None:
    make_fake_packages(tmp_path, version, with_obsctl=with_obsctl)
    info, stderr = probe(tmp_path, force_embedded=False)
    assert info["backend"] == backend
    assert info["salobj"] == (
        "lsst.ts.salobj" if backend == "lsst.ts.salobj" else "lsst.ts.makecalibrations.runtime"
    )
    assert info["control_backend"] == control_backend
    real = backend == "lsst.ts.salobj"
    assert info["script_state"] == (
        "lsst.ts.xml.enums.Script" if real else "lsst.ts.makecalibrations.runtime.enums"
    )
    assert info["metadata_dome"] == info["script_state"]
    assert info["current_tai"] == ("lsst.ts.utils" if real else "lsst.ts.makecalibrations.runtime.base")
    assert info["make_done_future"] == info["current_tai"]
    if control_backend == "embedded":
        assert info["comcam"] == "lsst.ts.makecalibrations.control.comcam.ComCam"
    else:
        assert info["comcam"] == "lsst.ts.observatory.control.maintel.comcam.ComCam"
        assert info["remote_group"] == "lsst.ts.observatory.control.remote_group"
    assert f"SAL backend: {backend}" in stderr
