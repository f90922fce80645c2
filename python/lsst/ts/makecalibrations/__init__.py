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

"""Make LSSTComCam, LSSTCam and LATISS combined calibrations with a SAL Script.

The package is split into rooms (subpackages); each says in its docstring what it may import:

* `runtime`   -- embedded, in-process salobj-compatible SAL runtime.
* `sal`       -- the single place that picks the SAL backend (real or embedded).
* `control`   -- camera and OCPS clients compatible with ts_observatory_control.
* `calib`     -- pure logic: configuration, plan, OCPS job specifications, verification rules.
* `scripts`   -- the SAL Scripts (orchestration).
* `butler`    -- the data butler gateway: repository, instrument, certification.
* `pipelines` -- numpy calibration PipelineTasks and cp_pipe/cp_verify-named pipelines.
* `report`    -- the run's plots and HTML page.
* `sim`       -- simulated CSCs, raw-image truth model, fault injection.
* `cli`       -- ``run_script``, its bus driver and progress display, ``compare_runs``, ``cleanup_runs``.

Their layer order is drawn in ``doc/dev/architecture.rst``.

May import: nothing (this module only holds the version).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
