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

"""What a task reads off its quantum's data ID to pick the camera description.

May import: lsst.pipe.base.
"""

from __future__ import annotations

__all__ = ["detector_args", "quantum_data_id", "quantum_instrument"]

from typing import Any

import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)


def quantum_data_id(butlerQC: pipeBase.QuantumContext) -> Any:
    """The data ID of the quantum being run (a `lsst.daf.butler.DataCoordinate`).

    Raises
    ------
    RuntimeError
        If the quantum has none (never for a quantum of a pipeline graph).
    """
    data_id = butlerQC.quantum.dataId
    if data_id is None:
        raise RuntimeError(f"Quantum of {butlerQC.quantum.taskName} has no data ID.")
    return data_id


def quantum_instrument(butlerQC: pipeBase.QuantumContext) -> str:
    """The instrument of the quantum's data ID (selects `butler.camera.get_camera`'s camera)."""
    return str(quantum_data_id(butlerQC)["instrument"])


def detector_args(butlerQC: pipeBase.QuantumContext) -> dict[str, Any]:
    """``detector_id`` and ``instrument`` keywords of a per-detector task's ``run``."""
    data_id = quantum_data_id(butlerQC)
    return {"detector_id": int(data_id["detector"]), "instrument": str(data_id["instrument"])}
