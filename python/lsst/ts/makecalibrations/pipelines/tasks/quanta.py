"""What a task reads off its quantum's data ID to pick the camera description.

May import: lsst.pipe.base.
"""

from __future__ import annotations

__all__ = ["detector_args", "quantum_instrument"]

from typing import Any

import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)


def quantum_instrument(butlerQC: pipeBase.QuantumContext) -> str:
    """The instrument of the quantum's data ID (selects `butler.camera.get_camera`'s camera)."""
    data_id = butlerQC.quantum.dataId
    assert data_id is not None
    return str(data_id["instrument"])


def detector_args(butlerQC: pipeBase.QuantumContext) -> dict[str, Any]:
    """``detector_id`` and ``instrument`` keywords of a per-detector task's ``run``."""
    data_id = butlerQC.quantum.dataId
    assert data_id is not None
    return {"detector_id": int(data_id["detector"]), "instrument": str(data_id["instrument"])}
