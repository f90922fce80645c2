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

"""The observatory-control clients the scripts use: the real ones or this room's.

With the real ``lsst.ts.salobj`` backend (`sal.BACKEND`) and an importable
``lsst.ts.observatory.control``, `RemoteGroup`, `BaseCamera`, `ComCam`, `Usages` and `ComCamUsages`
are the real classes (and `LSSTCam`, `LSSTCamUsages`, `LATISS`, `LATISSUsages` when that package has
them; this room's otherwise, with a warning); otherwise they are the compatible ones of this room
(`control.remote_group`, `control.base_camera`, `control.comcam`, `control.lsstcam`,
`control.latiss`). `CONTROL_BACKEND` says which. Type checkers see this
room's classes, whose API is the subset of the real one the scripts use
(``tests/sal/test_conformance.py`` checks the signatures against the recorded real API).

May import: `sal` (for the backend), this room, ``lsst.ts.observatory.control``.
"""

from __future__ import annotations

__all__ = [
    "RemoteGroup",
    "BaseCamera",
    "ComCam",
    "Usages",
    "ComCamUsages",
    "LSSTCam",
    "LSSTCamUsages",
    "LATISS",
    "LATISSUsages",
    "CONTROL_BACKEND",
]

import logging
from typing import TYPE_CHECKING

from ..sal import BACKEND

_log = logging.getLogger("lsst.ts.makecalibrations.sal")

CONTROL_BACKEND = "embedded"
"""``lsst.ts.observatory.control`` or ``embedded``: where the clients come from."""

if TYPE_CHECKING:
    from .base_camera import BaseCamera
    from .comcam import ComCam, ComCamUsages
    from .latiss import LATISS, LATISSUsages
    from .lsstcam import LSSTCam, LSSTCamUsages
    from .remote_group import RemoteGroup, Usages
else:
    _real = False
    if BACKEND == "lsst.ts.salobj":
        try:
            from lsst.ts.observatory.control import BaseCamera, RemoteGroup
            from lsst.ts.observatory.control.maintel.comcam import ComCam, ComCamUsages
            from lsst.ts.observatory.control.remote_group import Usages

            _real = True
        except ImportError:
            _real = False
    if _real:
        CONTROL_BACKEND = "lsst.ts.observatory.control"
        try:
            from lsst.ts.observatory.control.auxtel.latiss import LATISS, LATISSUsages
            from lsst.ts.observatory.control.maintel.lsstcam import LSSTCam, LSSTCamUsages
        except ImportError:
            _log.warning("lsst.ts.observatory.control has no LSSTCam/LATISS client; using this package's")
            from .latiss import LATISS, LATISSUsages
            from .lsstcam import LSSTCam, LSSTCamUsages
    else:
        from .base_camera import BaseCamera
        from .comcam import ComCam, ComCamUsages
        from .latiss import LATISS, LATISSUsages
        from .lsstcam import LSSTCam, LSSTCamUsages
        from .remote_group import RemoteGroup, Usages

_log.info("Observatory control backend: %s", CONTROL_BACKEND)
