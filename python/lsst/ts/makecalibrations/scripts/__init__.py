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
