"""Pure calibration logic: configuration schema and validation, exposure plan, OCPS job
specifications, verification and certification rules, run report model.

May import: the standard library, jsonschema, PyYAML, astropy.time. Never the bus, the butler or asyncio.
"""

from .config import *  # noqa: F403
from .instrument import *  # noqa: F403
from .jobs import *  # noqa: F403
from .plan import *  # noqa: F403
from .recovery import *  # noqa: F403
from .report import *  # noqa: F403
from .statuses import *  # noqa: F403
from .verification import *  # noqa: F403
