"""A CSC simulated only for its summary state: MTDome and MTDomeTrajectory of the Simonyi telescope.

The LSSTCam script checks their states before taking flats (MTDomeTrajectory ENABLED, MTDome DISABLED
or ENABLED); nothing else of them is simulated. Their interfaces are the generic CSC topics only.

May import: `sal` and the standard library.
"""

from __future__ import annotations

__all__ = ["StateOnlyCsc"]

from .. import __version__
from ..sal import salobj


class StateOnlyCsc(salobj.BaseCsc):
    """A CSC whose only behaviour is its summary state (the standard state commands).

    Parameters
    ----------
    name : `str`
        Component name (``MTDome``, ``MTDomeTrajectory``).
    initial_state : ``salobj.State``, optional
        State to start in.
    """

    valid_simulation_modes = (0,)
    version = __version__

    def __init__(self, name: str, initial_state: salobj.State = salobj.State.ENABLED) -> None:
        super().__init__(name, initial_state=initial_state, allow_missing_callbacks=True)
