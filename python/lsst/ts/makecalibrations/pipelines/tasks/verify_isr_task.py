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


"""ISR and per-detector verification statistics in one quantum (labels ``verify{Bias,Dark,Flat}Isr``).

`VerifyIsrTask` is `detector_isr_task.DetectorIsrTask` (same config fields, one quantum per detector
and observing day, calibrations read once, every ``verify*Proc`` written) that also measures each
processed image as `verify_tasks.CpVerifyDetTask` does and writes its ``verify*DetStats``, from the
image in memory, so the ``verify*Proc`` images (about 150 MB each at full size, uncompressed) are not
read back by a second quantum per exposure and detector. The statistics are bit-for-bit those of the
two-task chain: the image written is the image measured.

The statistics' settings stay on the pipeline's ``verify*Det`` label
(`verify_tasks.CpVerifyDetSettingsTask`, same fields as `verify_tasks.CpVerifyDetConfig`), so
``-c verifyBiasDet:numSigmaClip=4`` works as with cp_verify: that task puts its config out as an
init-output (``verifyBiasDetSettings``, written with the job's init-outputs before any quantum runs),
and this task reads it as an init-input (``connections.detStatsConfig``). Provenance stays with the
butler: the ISR quantum records the raws and calibrations, the statistics datasets are its outputs.

May import: lsst.pipe.base, lsst.daf.butler, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = ["VerifyIsrConfig", "VerifyIsrConnections", "VerifyIsrTask"]

from typing import Any

import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT

from .detector_isr_task import _EXP_DET, DetectorIsrConfig, DetectorIsrConnections, DetectorIsrTask
from .quanta import quantum_instrument
from .verify_tasks import verify_detector


class VerifyIsrConnections(DetectorIsrConnections, dimensions=("instrument", "detector", "day_obs")):
    """`DetectorIsrConnections` plus the statistics settings (init-input) and outputs."""

    config: VerifyIsrConfig

    detStatsConfig = cT.InitInput(
        name="verifyBiasDetSettings",
        doc="Config of the pipeline's verify*Det label (its init-output): the settings of the statistics.",
        storageClass="Config",
    )
    outputStats = cT.Output(
        name="verifyBiasDetStats",
        doc="Per-detector statistics and tests, one per processed exposure.",
        storageClass="StructuredDataDict",
        dimensions=_EXP_DET,
        multiple=True,
    )

    def adjustQuantum(
        self,
        inputs: dict[str, tuple[Any, Any]],
        outputs: dict[str, tuple[Any, Any]],
        label: str,
        data_id: Any,
    ) -> tuple[dict[str, tuple[Any, Any]], dict[str, tuple[Any, Any]]]:
        """As `DetectorIsrConnections.adjustQuantum`; the statistics follow the kept exposures."""
        adjusted_inputs, adjusted_outputs = super().adjustQuantum(inputs, outputs, label, data_id)
        if "outputExposure" not in adjusted_outputs:
            return adjusted_inputs, adjusted_outputs
        exposures = {int(ref.dataId["exposure"]) for ref in adjusted_outputs["outputExposure"][1]}
        connection, refs = outputs["outputStats"]
        kept = (connection, [ref for ref in refs if int(ref.dataId["exposure"]) in exposures])
        outputs["outputStats"] = kept
        adjusted_outputs["outputStats"] = kept
        return adjusted_inputs, adjusted_outputs


class VerifyIsrConfig(DetectorIsrConfig, pipelineConnections=VerifyIsrConnections):
    """`DetectorIsrConfig` (the statistics settings are the ``verify*Det`` label's)."""


class VerifyIsrTask(DetectorIsrTask):
    """ISR of every exposure of one detector, then the statistics of each processed image."""

    ConfigClass = VerifyIsrConfig  # type: ignore[assignment]
    _DefaultName = "verifyIsr"
    config: VerifyIsrConfig  # type: ignore[assignment]

    def __init__(self, *, initInputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(initInputs=initInputs, **kwargs)
        if initInputs is None or "detStatsConfig" not in initInputs:
            raise RuntimeError(
                f"{type(self).__name__} needs the verify*Det label's config as its detStatsConfig init-input."
            )
        self.stats_config = initInputs["detStatsConfig"]

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        stats_refs = {int(ref.dataId["exposure"]): ref for ref in outputRefs.outputStats}
        instrument = quantum_instrument(butlerQC)

        def measure(exposure_id: int, detector_id: int, output: Any) -> None:
            stats = verify_detector(output, detector_id, self.stats_config, self.log, instrument=instrument)
            butlerQC.put(stats, stats_refs[exposure_id])

        self.process_all(butlerQC, inputRefs, outputRefs, after_put=measure)
