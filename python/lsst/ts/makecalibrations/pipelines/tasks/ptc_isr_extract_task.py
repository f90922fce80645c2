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

"""Bootstrap ISR and flat-pair measurement in one quantum per detector (label ``cpPtcExtract``).

Before, ``cpPtcIsr`` wrote every flat's ISR output ``cpPtcProc`` (an uncompressed MaskedImage, about
195 MB at full size) and ``cpPtcExtract`` (`ptc_tasks.PtcExtractTask`) read them all back. In the
pipelines of this package the ``cpPtcExtract`` label runs `PtcIsrExtractTask`, one quantum per
detector as before: for each pair it reads the two raws through the butler, runs the ISR of
`isr_task.IsrTask` (the same code and config fields; ``cpPtc.yaml`` writes the ``cpPtcIsr`` settings
once and merges them into this label's), measures the pair as `ptc_tasks.PtcExtractTask` does
(`ptc_tasks.measure_pairs`, the same pairing rule and settings: the fields of
`ptc_tasks.PairMeasurementConfig`) from the arrays in memory, and writes the same ``cpPtcPartial``
(and ``cpPtcExtract``) datasets. Memory holds one pair. The gain-from-flat-pairs subset
(``cpPtc.yaml#cpPtcGainFromFlatPairs``) is this label alone, so it writes no ``cpPtcProc``; the full
``cpPtc.yaml`` keeps ``cpPtcIsr``, whose ``cpPtcProc`` only ``cpPtcAdjustGainRatios`` reads. (A label
of its own for the subset cannot be: ``cpPtc.yaml`` without a subset runs every label, and two tasks
writing ``cpPtcPartial`` are refused.) The partials are bit for bit those of the two-task chain: the
image measured is the image ``cpPtcIsr`` writes, and the header it reads back is the ISR header (its
JSON tree round-trips floats exactly).

Pairing is decided while the graph is built, as for `ptc_tasks.PtcExtractTask`
(`ptc_tasks.PtcExtractConnections.adjustQuantum` on the raws' exposure records): raws of other
observation types (``observationTypes``) and flats left without a pair are not inputs of the quantum,
so they are neither read nor processed, and the pair count of the log line and the job's outputs
show them as the two-task chain does. A detector whose flats make no pair keeps its quantum (its
flats as unread inputs, no output predicted): it runs, logs "N flats give 0 pairs" and ends with
NoWorkFound ("no flat pair could be measured"), where an empty graph would fail pipetask. Such a job
writes nothing, so the simulated OCPS fails it ("produced no output datasets"); the two-task job
succeeded with its ISR outputs only and the script reported that it measured no flat pair.

The calibrations the ISR config asks for (``defects`` for the
bootstrap) are prerequisite inputs looked up once for the quantum over the timespan of its raws (the
union of their exposures' timespans): a CALIBRATION collection with two validity ranges inside one
flat sequence makes the lookup ambiguous and the job fails naming the dataset (``cpPtcIsr``, one
quantum per exposure, would not); certify ranges that do not begin inside a flat sequence.

May import: lsst.pipe.base, numpy, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = ["PtcIsrExtractConfig", "PtcIsrExtractConnections", "PtcIsrExtractTask", "isr_pair_input"]

import functools
from collections.abc import Iterable, Sequence
from typing import ClassVar

import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np

from ...butler.camera import get_camera
from ..isr import IsrResult
from .isr_task import IsrTask, IsrTaskConfig, IsrTaskConnections, PreparedCalibrations, _record_values
from .ptc_tasks import (
    PairImage,
    PairMeasurementConfig,
    PtcExtractConnections,
    measure_pairs,
    put_partials,
    record_exposure_times,
)
from .quanta import quantum_data_id

_EXP_DET = ("instrument", "exposure", "detector")


class PtcIsrExtractConnections(
    IsrTaskConnections, PtcExtractConnections, dimensions=("instrument", "detector")
):
    """The raws and ISR calibrations of `IsrTaskConnections`, the partials of `PtcExtractConnections`
    (whose `~PtcExtractConnections.adjustQuantum` keeps the paired raws); no ``cpPtcProc``."""

    config: PtcIsrExtractConfig  # type: ignore[assignment]

    paired_input: ClassVar[str] = "ccdExposure"
    keep_quantum_without_pairs: ClassVar[bool] = True

    ccdExposure = cT.Input(
        name="raw",
        doc="Raw amp arrays of the detector's flats, one per exposure (read one pair at a time).",
        storageClass="RawImage",
        dimensions=_EXP_DET,
        multiple=True,
        deferLoad=True,
    )

    def __init__(self, *, config: PtcIsrExtractConfig | None = None) -> None:
        super().__init__(config=config)
        # No processed image is written, none is read.
        del self.outputExposure
        del self.inputExp

    def getTemporalBoundsConnections(self) -> Iterable[str]:
        """The raws' timespans bound the calibration lookup (the quantum has no time dimension)."""
        return ("ccdExposure",)


class PtcIsrExtractConfig(IsrTaskConfig, PairMeasurementConfig, pipelineConnections=PtcIsrExtractConnections):
    """The ISR fields of `isr_task.IsrTaskConfig` and the pair fields of
    `ptc_tasks.PairMeasurementConfig` (``observationTypes`` selects the raws processed and paired)."""


def isr_pair_input(result: IsrResult, mask_planes: Sequence[str]) -> PairImage:
    """The `ptc_tasks.PairImage` of an ISR result in memory: what
    `ptc_tasks.masked_image_pair_input` reads from the ``cpPtcProc`` made of it."""
    image = np.asarray(result.image, dtype=np.float32)
    excluded = np.zeros(image.shape, dtype=bool)
    for plane in mask_planes:
        excluded |= result.mask(plane)
    return image, excluded, result.metadata


class PtcIsrExtractTask(IsrTask):
    """Bootstrap ISR of each flat pair of a detector, then its gain, noise and covariances."""

    ConfigClass = PtcIsrExtractConfig  # type: ignore[assignment]
    _DefaultName = "cpPtcIsrExtract"
    config: PtcIsrExtractConfig  # type: ignore[assignment]

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        data_id = quantum_data_id(butlerQC)
        detector_id = int(data_id["detector"])
        instrument = str(data_id["instrument"])
        loaded = self.load_calibrations(butlerQC, inputRefs)
        handles = {int(h.dataId["exposure"]): h for h in butlerQC.get(inputRefs.ccdExposure)}
        times = record_exposure_times(handles)
        for exp_id, handle in handles.items():
            if exp_id not in times:
                times[exp_id] = float(handle.get(component="metadata").get("EXPTIME", np.nan))
        calibs: dict[str, PreparedCalibrations] = {}

        def load(exp_id: int) -> PairImage:
            handle = handles[exp_id]
            raw = handle.get()
            if not calibs:
                calibs["prepared"] = self.prepare_calibrations(**loaded, shape=raw.geometry.detector_shape)
            result = self.isr_result(
                raw,
                exposure_id=exp_id,
                detector_id=detector_id,
                instrument=instrument,
                calibs=calibs["prepared"],
                exposure_record=_record_values(handle.dataId),
            )
            return isr_pair_input(result, self.config.maskNameList)

        results = measure_pairs(
            {exp_id: functools.partial(load, exp_id) for exp_id in handles},
            times,
            get_camera(instrument)[detector_id],
            self.config,
            self.log,
        )
        put_partials(butlerQC, outputRefs, results.outputCovariances, detector_id, self.log)
