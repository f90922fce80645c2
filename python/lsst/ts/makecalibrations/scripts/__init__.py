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

"""SAL Scripts: ``BaseMakeCalibrations`` (orchestration), ``MakeComCamCalibrations``,
``MakeLSSTCamCalibrations`` and ``MakeLatissCalibrations``.

May import: `sal`, `control` (through `sal`), `calib`, `butler`, `pipelines` (lazily, to check overrides).
"""

from .base_make_calibrations import *  # noqa: F403
from .butler_gateway import *  # noqa: F403
from .make_comcam_calibrations import *  # noqa: F403
from .make_latiss_calibrations import *  # noqa: F403
from .make_lsstcam_calibrations import *  # noqa: F403
from .ocps_client import *  # noqa: F403
from .oods_tracker import *  # noqa: F403
from .preflight import *  # noqa: F403
from .utils import *  # noqa: F403
