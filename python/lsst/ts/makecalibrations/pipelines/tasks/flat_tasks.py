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

"""Flat measurement and focal-plane normalisation PipelineTasks (labels ``cpFlatMeasure``,
``cpFlatNormalize``).

`CpFlatMeasureTask` writes the clipped level of each processed flat (``cpFlatStatistics``, per
exposure and detector); `CpFlatNormalizationTask` gathers those of the whole job for one filter and
solves the bilinear model of `pipelines.flat_normalization` into ``cpFlatNormScales``, which the flat
combine uses as its ``InputList`` scales.

May import: lsst.pipe.base, lsst.pex.config, lsst.daf.butler, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "CpFlatMeasureConfig",
    "CpFlatMeasureConnections",
    "CpFlatMeasureTask",
    "CpFlatNormalizationConfig",
    "CpFlatNormalizationConnections",
    "CpFlatNormalizationTask",
]

from collections.abc import Mapping, Sequence
from typing import Any

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np

from ...butler.camera import INSTRUMENT_NAME, get_camera
from ...butler.images import masked_image_mask
from ..flat_normalization import measure_flat, scales_to_structure, solve_scales
from .defaults import keyword_default
from .quanta import detector_args, quantum_instrument


class CpFlatMeasureConnections(
    pipeBase.PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")
):
    """Connections of `CpFlatMeasureTask`."""

    inputExp = cT.Input(
        name="cpFlatProc",
        doc="ISR-processed flat.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
    )
    outputStats = cT.Output(
        name="cpFlatStatistics",
        doc="Clipped levels of the flat (detector and amps).",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
    )


class CpFlatMeasureConfig(pipeBase.PipelineTaskConfig, pipelineConnections=CpFlatMeasureConnections):
    """Configuration of `CpFlatMeasureTask`."""

    maskNameList = pexConfig.ListField[str](
        doc="Mask planes excluded from the statistics.", default=["DETECTED", "BAD", "NO_DATA"]
    )
    numSigmaClip = pexConfig.Field[float](
        doc="Clipping threshold.", default=keyword_default(measure_flat, "nsigma")
    )
    clipMaxIter = pexConfig.Field[int](
        doc="Clipping iterations.", default=keyword_default(measure_flat, "niter")
    )


class CpFlatMeasureTask(pipeBase.PipelineTask):
    """Measure the clipped level of one processed flat."""

    ConfigClass = CpFlatMeasureConfig
    _DefaultName = "cpFlatMeasure"
    config: CpFlatMeasureConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        butlerQC.put(self.run(inputs["inputExp"], **detector_args(butlerQC)), outputRefs)

    def run(self, inputExp: Any, *, detector_id: int, instrument: str = INSTRUMENT_NAME) -> pipeBase.Struct:
        """Measure ``inputExp`` (an lsst.images MaskedImage) of detector ``detector_id``."""
        excluded = np.zeros(inputExp.image.array.shape, dtype=bool)
        for plane in self.config.maskNameList:
            excluded |= masked_image_mask(inputExp, plane)
        stats = measure_flat(
            np.asarray(inputExp.image.array, dtype=np.float32),
            excluded,
            get_camera(instrument)[detector_id],
            self.config.numSigmaClip,
            self.config.clipMaxIter,
        )
        return pipeBase.Struct(outputStats=stats)


class CpFlatNormalizationConnections(
    pipeBase.PipelineTaskConnections, dimensions=("instrument", "physical_filter")
):
    """Connections of `CpFlatNormalizationTask`."""

    inputStats = cT.Input(
        name="cpFlatStatistics",
        doc="Levels of every flat of the job.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    outputScales = cT.Output(
        name="cpFlatNormScales",
        doc="Per-exposure and per-detector scales.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "physical_filter"),
    )


class CpFlatNormalizationConfig(
    pipeBase.PipelineTaskConfig, pipelineConnections=CpFlatNormalizationConnections
):
    """Configuration of `CpFlatNormalizationTask`."""

    level = pexConfig.ChoiceField[str](
        doc="Granularity of the model.", default="DETECTOR", allowed={"DETECTOR": "One G per detector."}
    )
    scaleMaxIter = pexConfig.Field[int](
        doc="Iterations of the log-space fit.", default=keyword_default(solve_scales, "n_iter")
    )


class CpFlatNormalizationTask(pipeBase.PipelineTask):
    """Solve ``B[det, exp] = G[det] * E[exp]`` over every flat of the job."""

    ConfigClass = CpFlatNormalizationConfig
    _DefaultName = "cpFlatNormalize"
    config: CpFlatNormalizationConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        keys = [(int(ref.dataId["detector"]), int(ref.dataId["exposure"])) for ref in inputRefs.inputStats]
        butlerQC.put(
            self.run(inputs["inputStats"], keys=keys, instrument=quantum_instrument(butlerQC)), outputRefs
        )

    def run(
        self,
        inputStats: Sequence[Mapping[str, Any]],
        *,
        keys: Sequence[tuple[int, int]],
        instrument: str = INSTRUMENT_NAME,
    ) -> pipeBase.Struct:
        """Fit the scales.

        Parameters
        ----------
        inputStats : `~collections.abc.Sequence` [`~collections.abc.Mapping`]
            ``cpFlatStatistics`` of each (detector, exposure).
        keys : `~collections.abc.Sequence` [`tuple` [`int`, `int`]]
            ``(detector, exposure)`` of each entry of ``inputStats``.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputScales``: ``{"expScale": ..., "detScale": ...}``.
        """
        detectors = sorted({det for det, _ in keys})
        exposures = sorted({exp for _, exp in keys})
        levels = np.full((len(detectors), len(exposures)), np.nan)
        npix = np.zeros(levels.shape)
        for stats, (det, exp) in zip(inputStats, keys, strict=True):
            i, j = detectors.index(det), exposures.index(exp)
            levels[i, j] = float(stats["DETECTOR_MEDIAN"])
            npix[i, j] = float(stats["DETECTOR_N"])
        scales = solve_scales(levels, npix, detectors, exposures, n_iter=self.config.scaleMaxIter)
        camera = get_camera(instrument)
        structure = scales_to_structure(scales, {det: camera[det].amp_names for det in detectors})
        self.log.info(
            "Flat normalisation over %d detectors x %d exposures: G = %s",
            len(detectors),
            len(exposures),
            ", ".join(
                f"{camera[d].name}:{g:.4f}" for d, g in zip(detectors, scales.detector_scale, strict=True)
            ),
        )
        return pipeBase.Struct(outputScales=structure)
