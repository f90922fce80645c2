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

"""Embedded in-process SAL runtime, API-compatible with the lsst.ts.salobj subset scripts and CSCs use.

Everything public is re-exported here, so this package can stand in for ``lsst.ts.salobj``
(``salobj.Remote``, ``salobj.BaseScript``, ``salobj.State`` ...).

It is a mirror of the real salobj API, not a design of its own: its classes keep the real names,
signatures and split of responsibilities (one ``begin_*``/``end_*`` hook pair per state transition,
``next`` and ``aget`` on every read topic, the same context-manager protocol on ``Controller`` and
``Remote``), so the shapes it repeats are the real API's (``tests/sal/test_conformance.py`` checks it
against the recorded real API).

May import: the standard library, jsonschema, PyYAML, astropy.time. Nothing else in this package.
"""

from .base import *  # noqa: F401,F403
from .base_csc import *  # noqa: F401,F403
from .base_script import *  # noqa: F401,F403
from .bus import *  # noqa: F401,F403
from .controller import *  # noqa: F401,F403
from .csc_utils import *  # noqa: F401,F403
from .data_types import *  # noqa: F401,F403
from .domain import *  # noqa: F401,F403
from .enums import *  # noqa: F401,F403
from .interfaces import *  # noqa: F401,F403
from .remote import *  # noqa: F401,F403
from .sal_info import *  # noqa: F401,F403
from .sal_log_handler import *  # noqa: F401,F403
from .testutils import *  # noqa: F401,F403
from .topics import *  # noqa: F401,F403
from .validator import *  # noqa: F401,F403
