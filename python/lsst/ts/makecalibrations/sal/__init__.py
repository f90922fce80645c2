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

"""The single place that decides the SAL backend and knows where each real name lives.

Uses the real ``lsst.ts.salobj`` (>= 7) when importable, otherwise the embedded `runtime`. Code
outside `runtime` and `sal` uses ``salobj.X`` only for names the real ``lsst.ts.salobj`` 8 exports;
the names the real stack keeps elsewhere are exported here, from the same backend:

* ``ScriptState``, ``MetadataCoordSys``, ``MetadataRotSys``, ``MetadataDome`` -- from
  ``lsst.ts.xml.enums.Script`` on the real stack;
* ``current_tai``, ``index_generator``, ``make_done_future`` -- from ``lsst.ts.utils``.

The choice of the observatory-control clients (real or embedded) is `control.clients`'s.

May import: `runtime`, ``lsst.ts.salobj``, ``lsst.ts.utils``, ``lsst.ts.xml``.
"""

__all__ = [
    "BACKEND",
    "BACKEND_ENV_VAR",
    "salobj",
    "ScriptState",
    "MetadataCoordSys",
    "MetadataRotSys",
    "MetadataDome",
    "current_tai",
    "index_generator",
    "make_done_future",
]

import logging
import os
import types
from typing import TYPE_CHECKING

#: Set this environment variable to ``embedded`` to force the embedded runtime.
BACKEND_ENV_VAR = "TS_MAKECALIBRATIONS_SAL_BACKEND"

_log = logging.getLogger("lsst.ts.makecalibrations.sal")


def _choose_backend() -> tuple[types.ModuleType, types.ModuleType, types.ModuleType, str]:
    """Return (salobj module, Script enums module, utils module, backend name)."""
    if os.environ.get(BACKEND_ENV_VAR, "") != "embedded":
        try:
            import lsst.ts.salobj as real

            major = int(str(getattr(real, "__version__", "0")).split(".")[0])
        except (ImportError, ValueError):
            major = 0
        if major >= 7:
            # salobj >= 7 depends on both; their absence is a broken installation, not a fallback.
            import lsst.ts.utils as utils
            import lsst.ts.xml.enums.Script as script_enums  # noqa: N813 (a module)

            return real, script_enums, utils, "lsst.ts.salobj"
    from .. import runtime

    return runtime, runtime, runtime, "embedded"


if TYPE_CHECKING:
    # Type checkers see the embedded runtime, whose API is the salobj subset the project uses.
    from .. import runtime as salobj
    from ..runtime import (
        MetadataCoordSys,
        MetadataDome,
        MetadataRotSys,
        ScriptState,
        current_tai,
        index_generator,
        make_done_future,
    )

    BACKEND: str
    BACKEND = _choose_backend()[3]
else:
    salobj, _script_enums, _utils, BACKEND = _choose_backend()
    ScriptState = _script_enums.ScriptState
    MetadataCoordSys = _script_enums.MetadataCoordSys
    MetadataRotSys = _script_enums.MetadataRotSys
    MetadataDome = _script_enums.MetadataDome
    current_tai = _utils.current_tai
    index_generator = _utils.index_generator
    make_done_future = _utils.make_done_future
_log.info("SAL backend: %s", BACKEND)
