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

"""PipelineTasks wrapping the numpy calibration algorithms of `lsst.ts.makecalibrations.pipelines`.

Each module holds the connections, config and task of one cp_pipe / cp_verify step; the pipeline YAML
files under ``pipelines/data`` name them by full class path. Nothing is imported here so a pipeline only
imports the tasks it uses.

May import: lsst.pipe.base, lsst.daf.butler, lsst.pex.config, `pipelines`, `butler`.
"""
