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

"""Camera and OCPS clients compatible with ts_observatory_control (``RemoteGroup``, ``ComCam``,
``LSSTCam``, ``LATISS``).

Used only when the real ``lsst.ts.observatory.control`` is not importable. A mirror of the real API:
``take_bias``, ``take_darks`` and ``take_flats`` each call ``take_imgtype`` with the real, repeated
keyword parameters, and the client classes keep the real constructors, because the scripts must run
unchanged on the real package (``tests/sal/test_conformance.py`` checks the signatures).
May import: `sal` (for ``salobj``), `calib` (pure rules such as `calib.obs_id`), the standard library,
astropy.
"""

from .base_camera import *  # noqa: F401,F403
from .camera_exposure import *  # noqa: F401,F403
from .comcam import *  # noqa: F401,F403
from .filter_camera import *  # noqa: F401,F403
from .group_camera import *  # noqa: F401,F403
from .latiss import *  # noqa: F401,F403
from .lsstcam import *  # noqa: F401,F403
from .remote_group import *  # noqa: F401,F403
