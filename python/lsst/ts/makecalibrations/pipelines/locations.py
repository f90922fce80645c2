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

"""Where the pipeline YAML files live: ``${CP_PIPE_DIR}`` / ``${CP_VERIFY_DIR}`` → package data.

The script sends pipelines as the real OCPS receives them, e.g.
``${CP_PIPE_DIR}/pipelines/LSSTComCam/cpBias.yaml`` or ``...cpPtc.yaml#cpPtcGainFromFlatPairs``.
`expand_pipeline_uri` turns such a string into an absolute path inside this package's ``data``
directory, keeping a ``#subset`` suffix, so the pipetask executor can run it. The LSSTCam and LATISS
pipelines import the LSSTComCam task definitions (as the real cp_pipe's per-camera pipelines import
its ``_ingredients``) through ``${TS_MAKECALIBRATIONS_PIPELINES}`` (`PIPELINES_ENV_VAR`), which this
module sets (if unset) to the package's pipeline data directory on import, so every process that
loads a pipeline, and every pipetask it starts, resolves the imports. (Not ``$..._DIR``:
lsst.resources turns ``${X_DIR}`` into an ``eups://`` URI.)

May import: the standard library only.
"""

from __future__ import annotations

__all__ = ["PIPELINES_ENV_VAR", "PIPELINE_DIRS", "expand_pipeline_uri", "pipeline_path"]

import os
import re
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data"

PIPELINE_DIRS: dict[str, Path] = {
    "CP_PIPE_DIR": _DATA / "cp_pipe",
    "CP_VERIFY_DIR": _DATA / "cp_verify",
}
"""Environment-style variables the pipeline strings may use, and the package directories they mean."""

PIPELINES_ENV_VAR = "TS_MAKECALIBRATIONS_PIPELINES"
"""Environment variable the per-camera pipelines' ``imports`` use: the package's pipeline data dir."""

os.environ.setdefault(PIPELINES_ENV_VAR, str(_DATA))

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_pipeline_uri(uri: str) -> str:
    """Expand ``${CP_PIPE_DIR}`` / ``${CP_VERIFY_DIR}`` (or ``$NAME``) in a pipeline string.

    Parameters
    ----------
    uri : `str`
        Pipeline path, optionally with a ``#label,label`` or ``#subset`` suffix.

    Returns
    -------
    expanded : `str`
        Absolute path with the suffix kept; strings without variables come back unchanged.

    Raises
    ------
    ValueError
        If the string uses a variable other than those of `PIPELINE_DIRS`.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        try:
            return str(PIPELINE_DIRS[name])
        except KeyError:
            raise ValueError(
                f"Unknown variable ${{{name}}} in pipeline {uri!r}; expected one of {sorted(PIPELINE_DIRS)}."
            ) from None

    return _VARIABLE.sub(replace, uri)


def pipeline_path(uri: str) -> Path:
    """Return the file path of an expanded or unexpanded pipeline string (without the suffix)."""
    return Path(expand_pipeline_uri(uri).split("#", 1)[0])
