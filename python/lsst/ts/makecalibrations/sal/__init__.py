"""The single place that decides the SAL backend.

Uses the real ``lsst.ts.salobj`` (>= 7) when importable, otherwise the embedded `runtime`.
May import: `runtime`, `control`, ``lsst.ts.salobj``, ``lsst.ts.observatory.control``.
"""

__all__ = ["BACKEND", "BACKEND_ENV_VAR", "salobj"]

import importlib
import logging
import os
import types
from typing import TYPE_CHECKING

#: Set this environment variable to ``embedded`` to force the embedded runtime.
BACKEND_ENV_VAR = "TS_MAKECALIBRATIONS_SAL_BACKEND"

_log = logging.getLogger("lsst.ts.makecalibrations.sal")


def _choose_backend() -> tuple[types.ModuleType, str]:
    """Return (salobj module, backend name)."""
    if os.environ.get(BACKEND_ENV_VAR, "") != "embedded":
        try:
            real = importlib.import_module("lsst.ts.salobj")
            major = int(str(getattr(real, "__version__", "0")).split(".")[0])
        except (ImportError, ValueError):
            real = None
            major = 0
        if real is not None and major >= 7:
            return real, "lsst.ts.salobj"
    from .. import runtime

    return runtime, "embedded"


if TYPE_CHECKING:
    # Type checkers see the embedded runtime, whose API is the salobj subset the project uses.
    from .. import runtime as salobj

    BACKEND: str
    _, BACKEND = _choose_backend()
else:
    salobj, BACKEND = _choose_backend()
_log.info("SAL backend: %s", BACKEND)
