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

"""ISR of every exposure of one detector in one quantum, reading each calibration once.

`DetectorIsrTask` is `isr_task.IsrTask` (same config fields, same numpy ISR, same outputs: one
``cp*Proc`` / ``verify*Proc`` per exposure and detector) with a coarser quantum: one per
(instrument, detector, day_obs) (plus physical_filter when it divides by a flat). The raws come in as
deferred handles, the calibrations (``bias``, ``dark``, ``flat``, ``defects``) are prerequisite inputs
found by the butler once for the quantum and decoded once, then each raw is read, processed and its
output put in turn, so memory holds one exposure at a time. With per-exposure quanta every ISR quantum
read and decompressed the same certified calibrations again (5-20 times per detector per job).

Provenance stays with the butler: the quantum records the calibrations and raws it read, and each
output's provenance lists them. Calibrations are looked up over the quantum's timespan, that of the
observing day (``day_obs``, 12:00 to 12:00 TAI): a CALIBRATION collection holding two validity ranges
that both touch the day (a boundary inside it) makes the butler refuse the lookup as ambiguous, and
the job fails naming the dataset type; certify ranges that begin and end on observing-day boundaries,
or use `isr_task.IsrTask` (one quantum per exposure) for such a collection.

``observationTypes`` (as `selected_isr_task.SelectedIsrTask`) keeps only the exposures of the listed
observation types, so one job's query may hold darks and flats.

May import: lsst.pipe.base, lsst.daf.butler, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = ["DetectorIsrConfig", "DetectorIsrConnections", "DetectorIsrTask"]

from collections.abc import Callable
from typing import Any

import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT

from .isr_task import IsrTask, IsrTaskConfig, IsrTaskConnections, _record_values
from .quanta import quantum_data_id
from .selected_isr_task import ObservationTypesConfig

_EXP_DET = ("instrument", "exposure", "detector")


class DetectorIsrConnections(IsrTaskConnections, dimensions=("instrument", "detector", "day_obs")):
    """`IsrTaskConnections` with one quantum per detector and observing day."""

    config: DetectorIsrConfig

    ccdExposure = cT.Input(
        name="raw",
        doc="Raw amp arrays of the detector, one per exposure (read one at a time).",
        storageClass="RawImage",
        dimensions=_EXP_DET,
        multiple=True,
        deferLoad=True,
    )
    outputExposure = cT.Output(
        name="postISRCCD",
        doc="Processed exposures, one per raw.",
        storageClass="MaskedImageV2",
        dimensions=_EXP_DET,
        multiple=True,
    )

    def __init__(self, *, config: DetectorIsrConfig | None = None) -> None:
        super().__init__(config=config)
        assert config is not None
        if config.doFlat:
            # The flat is looked up per filter: the quantum must fix it.
            self.dimensions.add("physical_filter")

    def adjustQuantum(
        self,
        inputs: dict[str, tuple[Any, Any]],
        outputs: dict[str, tuple[Any, Any]],
        label: str,
        data_id: Any,
    ) -> tuple[dict[str, tuple[Any, Any]], dict[str, tuple[Any, Any]]]:
        """Keep the raws (and their outputs) of the configured observation types."""
        assert self.config is not None
        wanted = {name.lower() for name in self.config.observationTypes}
        if not wanted:
            super().adjustQuantum(inputs, outputs, label, data_id)
            return {}, {}
        connection, refs = inputs["ccdExposure"]
        kept = [ref for ref in refs if _observation_type(ref.dataId) in wanted]
        if not kept:
            raise pipeBase.NoWorkFound(f"{label}: no exposure of type {sorted(wanted)} for {data_id}.")
        exposures = {int(ref.dataId["exposure"]) for ref in kept}
        out_connection, out_refs = outputs["outputExposure"]
        adjusted_inputs = {"ccdExposure": (connection, kept)}
        adjusted_outputs = {
            "outputExposure": (
                out_connection,
                [ref for ref in out_refs if int(ref.dataId["exposure"]) in exposures],
            )
        }
        inputs.update(adjusted_inputs)
        outputs.update(adjusted_outputs)
        super().adjustQuantum(inputs, outputs, label, data_id)
        return adjusted_inputs, adjusted_outputs


def _observation_type(data_id: Any) -> str:
    """The exposure's observation type (lower case) from an expanded data id; empty if unknown."""
    values = _record_values(data_id)
    return str(values.get("observation_type") or "").lower()


class DetectorIsrConfig(IsrTaskConfig, ObservationTypesConfig, pipelineConnections=DetectorIsrConnections):
    """`IsrTaskConfig` plus the observation types to process."""


class DetectorIsrTask(IsrTask):
    """The numpy ISR of `IsrTask` over all exposures of one detector, calibrations decoded once."""

    ConfigClass = DetectorIsrConfig  # type: ignore[assignment]
    _DefaultName = "detectorIsr"
    config: DetectorIsrConfig  # type: ignore[assignment]

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        self.process_all(butlerQC, inputRefs, outputRefs)

    def process_all(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
        after_put: Callable[[int, int, Any], None] | None = None,
    ) -> None:
        """Process and put every raw of the quantum in turn.

        ``after_put(exposure_id, detector_id, output)``, when given, is called with each processed
        image once it is written (before the next raw is read).
        """
        data_id = quantum_data_id(butlerQC)
        detector_id = int(data_id["detector"])
        loaded = self.load_calibrations(butlerQC, inputRefs)
        handles = sorted(butlerQC.get(inputRefs.ccdExposure), key=lambda h: int(h.dataId["exposure"]))
        outputs = {int(ref.dataId["exposure"]): ref for ref in outputRefs.outputExposure}
        calibs = None
        for handle in handles:
            exposure_id = int(handle.dataId["exposure"])
            raw = handle.get()
            if calibs is None:
                calibs = self.prepare_calibrations(**loaded, shape=raw.geometry.detector_shape)
            output = self.process(
                raw,
                exposure_id=exposure_id,
                detector_id=detector_id,
                instrument=str(data_id["instrument"]),
                calibs=calibs,
                exposure_record=_record_values(handle.dataId),
            )
            butlerQC.put(output, outputs[exposure_id])
            if after_put is not None:
                after_put(exposure_id, detector_id, output)
            del raw, output
        self.log.info("Processed %d exposures of detector %d.", len(handles), detector_id)
