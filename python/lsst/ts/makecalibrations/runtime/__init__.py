"""Embedded in-process SAL runtime, API-compatible with the lsst.ts.salobj subset scripts and CSCs use.

Everything public is re-exported here, so this package can stand in for ``lsst.ts.salobj``
(``salobj.Remote``, ``salobj.BaseScript``, ``salobj.State`` ...).

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
