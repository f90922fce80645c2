"""The LSSTCam client, compatible with ts_observatory_control's ``LSSTCam``.

`LSSTCam` groups the MTCamera, MTHeaderService and MTOODS remotes, takes images through `BaseCamera`
and changes filters through ``MTCamera.setFilter`` (`FilterChangerCamera`). Integer sensor selections
are not mapped to names (give names such as ``R22_S11``; the script takes every sensor).

May import: `sal` (for ``salobj``), the standard library, astropy.
"""

from __future__ import annotations

__all__ = ["LSSTCam", "LSSTCamUsages"]

from .filter_camera import FilterChangerCamera, TakeImageUsages


class LSSTCamUsages(TakeImageUsages):
    """Intended usages of `LSSTCam` (bit flags, combinable with those of `Usages`)."""


class LSSTCam(FilterChangerCamera):
    """LSSTCam: MTCamera, MTHeaderService and MTOODS (see `FilterChangerCamera` for the parameters)."""

    component_names = ("MTCamera", "MTHeaderService", "MTOODS")
