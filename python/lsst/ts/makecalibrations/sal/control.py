"""Observatory-control clients for the chosen SAL backend: `RemoteGroup`, `BaseCamera`, `ComCam`,
and their intended usages `Usages` and `ComCamUsages`.

With the real ``lsst.ts.salobj`` backend and an importable ``lsst.ts.observatory.control`` these are
the real classes; otherwise they come from this package's `control` room (imported lazily, on first
attribute access, so `sal` works before `control` is importable).

May import: `sal`, `control`, ``lsst.ts.observatory.control``.
"""

__all__ = ["RemoteGroup", "BaseCamera", "ComCam", "Usages", "ComCamUsages", "CONTROL_BACKEND"]  # noqa: F822 (lazy, see __getattr__)

import importlib
import logging
from typing import Any

from . import BACKEND

_log = logging.getLogger("lsst.ts.makecalibrations.sal")
_NAMES = ("RemoteGroup", "BaseCamera", "ComCam", "Usages", "ComCamUsages")
_resolved: dict[str, Any] = {}


def _load() -> dict[str, Any]:
    """Import the clients once and return them by name (plus ``CONTROL_BACKEND``)."""
    if _resolved:
        return _resolved
    module = None
    backend = "embedded"
    if BACKEND == "lsst.ts.salobj":
        try:
            module = importlib.import_module("lsst.ts.observatory.control")
            importlib.import_module("lsst.ts.observatory.control.maintel.comcam")
            backend = "lsst.ts.observatory.control"
        except ImportError:
            module = None
    if module is None:
        module = importlib.import_module("lsst.ts.makecalibrations.control")
        values = {name: getattr(module, name) for name in _NAMES}
    else:
        comcam = importlib.import_module("lsst.ts.observatory.control.maintel.comcam")
        values = {
            "RemoteGroup": module.RemoteGroup,
            "BaseCamera": module.BaseCamera,
            "ComCam": comcam.ComCam,
            "Usages": importlib.import_module("lsst.ts.observatory.control.remote_group").Usages,
            "ComCamUsages": comcam.ComCamUsages,
        }
    _log.info("Observatory control backend: %s", backend)
    _resolved.update(values)
    _resolved["CONTROL_BACKEND"] = backend
    return _resolved


def __getattr__(name: str) -> Any:
    if name in _NAMES or name == "CONTROL_BACKEND":
        return _load()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
