"""Where the executable SAL scripts of this package live.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["get_scripts_dir"]

import pathlib


def get_scripts_dir() -> pathlib.Path:
    """Directory of the executable scripts (``<package>/data/scripts``), as ScriptQueue expects."""
    return pathlib.Path(__file__).resolve().parents[1] / "data" / "scripts"
