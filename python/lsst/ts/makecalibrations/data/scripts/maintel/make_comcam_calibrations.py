#!/usr/bin/env python
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

"""ScriptQueue (MTQueue) executable ``maintel/make_comcam_calibrations.py <index> [--schema]``.

May import: `scripts` only."""

import asyncio

from lsst.ts.makecalibrations.scripts import MakeComCamCalibrations

asyncio.run(MakeComCamCalibrations.amain())
