"""Camera and OCPS clients compatible with ts_observatory_control (``RemoteGroup``, ``ComCam``,
``LSSTCam``, ``LATISS``).

Used only when the real ``lsst.ts.observatory.control`` is not importable.
May import: `sal` (for ``salobj``), `calib` (pure rules such as `calib.obs_id`), the standard library,
astropy.
"""

from .base_camera import *  # noqa: F401,F403
from .camera_exposure import *  # noqa: F401,F403
from .comcam import *  # noqa: F401,F403
from .filter_camera import *  # noqa: F401,F403
from .latiss import *  # noqa: F401,F403
from .lsstcam import *  # noqa: F401,F403
from .remote_group import *  # noqa: F401,F403
