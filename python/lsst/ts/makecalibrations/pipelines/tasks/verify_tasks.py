"""cp_verify PipelineTasks (labels ``verify{Bias,Dark,Flat}Det``, ``...Exp``, ``verify{Bias,Dark,Flat}``).

* `CpVerifyDetTask` (instrument, exposure, detector): statistics and tests of one processed exposure
  (`pipelines.verify.detector_stats`) → ``verify*DetStats``.
* `CpVerifyExpMergeTask` (instrument, exposure): merge over detectors, keyed by detector name →
  ``verify*ExpStats``.
* `CpVerifyRunMergeTask` (instrument): merge over exposures, keyed by integer exposure id →
  ``verify*Stats``, the structure the script's certification rule reads.

Dataset names are set per pipeline through ``connections.*``; ``stageName`` picks the statistics.

May import: lsst.pipe.base, lsst.pex.config, lsst.daf.butler, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "CpVerifyDetConfig",
    "CpVerifyDetConnections",
    "CpVerifyDetTask",
    "CpVerifyExpMergeConfig",
    "CpVerifyExpMergeConnections",
    "CpVerifyExpMergeTask",
    "CpVerifyRunMergeConfig",
    "CpVerifyRunMergeConnections",
    "CpVerifyRunMergeTask",
]

from collections.abc import Mapping, Sequence
from typing import Any

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np

from ...butler.camera import get_camera
from ...butler.images import masked_image_arrays, masked_image_mask
from ..verify import VerifyThresholds, detector_stats, merge_exposure, merge_run

_STAGES = {"BIAS": "Bias", "DARK": "Dark", "FLAT": "Flat"}


class _ThresholdConfig(pexConfig.Config):
    """Thresholds shared by the verify tasks (cp_verify defaults)."""

    numSigmaClip = pexConfig.Field[float](doc="Clip of the NOISE statistic.", default=5.0)
    clipMaxIter = pexConfig.Field[int](doc="Clipping iterations.", default=3)
    noiseTolerance = pexConfig.Field[float](doc="Allowed (NOISE - RN) / RN.", default=0.05)
    crNoiseTolerance = pexConfig.Field[float](doc="Allowed |NOISE - CR_NOISE| / CR_NOISE.", default=0.05)
    readNoiseTolerance = pexConfig.Field[float](doc="Allowed (overscan noise - RN) / RN.", default=0.05)
    detScatterTolerance = pexConfig.Field[float](doc="Flat: allowed SCATTER / MEAN.", default=0.05)
    expScatterThreshold = pexConfig.Field[float](
        doc="Flat: allowed stdev of the detector means of an exposure (absolute, e-).", default=0.05
    )
    expScatterScaleWithSize = pexConfig.Field[bool](
        doc="Flat: scale expScatterThreshold by sqrt(full-size pixels / detector pixels) for scaled-down "
        "simulations (keeps the full-size statistical margin of the test).",
        default=True,
    )
    crMinSigma = pexConfig.Field[float](doc="CR detection threshold (sigma).", default=6.0)
    crMinDn = pexConfig.Field[float](doc="CR detection threshold (image units).", default=150.0)
    crMaxPixels = pexConfig.Field[int](doc="More CR pixels is a processing failure.", default=10000)


def _thresholds(config: Any) -> VerifyThresholds:
    return VerifyThresholds(
        num_sigma_clip=config.numSigmaClip,
        clip_max_iter=config.clipMaxIter,
        noise_tolerance=config.noiseTolerance,
        cr_noise_tolerance=config.crNoiseTolerance,
        read_noise_tolerance=config.readNoiseTolerance,
        det_scatter_tolerance=config.detScatterTolerance,
        exp_scatter_threshold=config.expScatterThreshold,
        exp_scatter_scale_with_size=config.expScatterScaleWithSize,
        cr_min_sigma=config.crMinSigma,
        cr_min_dn=config.crMinDn,
        cr_max_pixels=config.crMaxPixels,
    )


class CpVerifyDetConnections(
    pipeBase.PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")
):
    """Connections of `CpVerifyDetTask`."""

    inputExp = cT.Input(
        name="verifyBiasProc",
        doc="Processed exposure to verify.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
    )
    outputStats = cT.Output(
        name="verifyBiasDetStats",
        doc="Per-detector statistics and tests.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
    )


class CpVerifyDetConfig(
    pipeBase.PipelineTaskConfig, _ThresholdConfig, pipelineConnections=CpVerifyDetConnections
):
    """Configuration of `CpVerifyDetTask`."""

    stageName = pexConfig.ChoiceField[str](
        doc="What is verified.", default="BIAS", allowed={k: v for k, v in _STAGES.items()}
    )
    maskNameList = pexConfig.ListField[str](
        doc="Mask planes excluded from the statistics.", default=["DETECTED", "BAD", "NO_DATA"]
    )


class CpVerifyDetTask(pipeBase.PipelineTask):
    """Statistics and tests of one processed exposure of one detector."""

    ConfigClass = CpVerifyDetConfig
    _DefaultName = "cpVerifyDet"
    config: CpVerifyDetConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        data_id = butlerQC.quantum.dataId
        assert data_id is not None
        butlerQC.put(self.run(inputs["inputExp"], detector_id=int(data_id["detector"])), outputRefs)

    def run(self, inputExp: Any, *, detector_id: int) -> pipeBase.Struct:
        """Measure and test ``inputExp`` (lsst.images MaskedImage) of detector ``detector_id``."""
        image, _, _, metadata = masked_image_arrays(inputExp)
        excluded = np.zeros(image.shape, dtype=bool)
        for plane in self.config.maskNameList:
            excluded |= masked_image_mask(inputExp, plane)
        stats = detector_stats(
            self.config.stageName,
            image,
            excluded,
            get_camera()[detector_id],
            metadata,
            _thresholds(self.config),
        )
        if not stats["SUCCESS"]:
            self.log.warning("Detector %d failed %s verification.", detector_id, self.config.stageName)
        return pipeBase.Struct(outputStats=stats)


class CpVerifyExpMergeConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "exposure")):
    """Connections of `CpVerifyExpMergeTask`."""

    inputStats = cT.Input(
        name="verifyBiasDetStats",
        doc="Per-detector results of the exposure.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    outputStats = cT.Output(
        name="verifyBiasExpStats",
        doc="Per-exposure results keyed by detector name.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure"),
    )


class CpVerifyExpMergeConfig(
    pipeBase.PipelineTaskConfig, _ThresholdConfig, pipelineConnections=CpVerifyExpMergeConnections
):
    """Configuration of `CpVerifyExpMergeTask`."""

    stageName = pexConfig.ChoiceField[str](
        doc="What is verified (FLAT adds the exposure scatter test).",
        default="BIAS",
        allowed={k: v for k, v in _STAGES.items()},
    )


class CpVerifyExpMergeTask(pipeBase.PipelineTask):
    """Merge the detector results of one exposure."""

    ConfigClass = CpVerifyExpMergeConfig
    _DefaultName = "cpVerifyExpMerge"
    config: CpVerifyExpMergeConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        detectors = [int(ref.dataId["detector"]) for ref in inputRefs.inputStats]
        butlerQC.put(self.run(inputs["inputStats"], detectors=detectors), outputRefs)

    def run(self, inputStats: Sequence[Mapping[str, Any]], *, detectors: Sequence[int]) -> pipeBase.Struct:
        """Merge ``inputStats`` of the detectors ``detectors``."""
        camera = get_camera()
        by_name = {camera[det].name: stats for det, stats in zip(detectors, inputStats, strict=True)}
        merged = merge_exposure(by_name, self.config.stageName, _thresholds(self.config))
        return pipeBase.Struct(outputStats=merged)


class CpVerifyRunMergeConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument",)):
    """Connections of `CpVerifyRunMergeTask`."""

    inputStats = cT.Input(
        name="verifyBiasExpStats",
        doc="Per-exposure results.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure"),
        multiple=True,
    )
    outputStats = cT.Output(
        name="verifyBiasStats",
        doc="Run-level results keyed by exposure id.",
        storageClass="StructuredDataDict",
        dimensions=("instrument",),
    )


class CpVerifyRunMergeConfig(pipeBase.PipelineTaskConfig, pipelineConnections=CpVerifyRunMergeConnections):
    """Configuration of `CpVerifyRunMergeTask`."""


class CpVerifyRunMergeTask(pipeBase.PipelineTask):
    """Merge the exposure results of the run."""

    ConfigClass = CpVerifyRunMergeConfig
    _DefaultName = "cpVerifyRunMerge"
    config: CpVerifyRunMergeConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        exposures = [int(ref.dataId["exposure"]) for ref in inputRefs.inputStats]
        butlerQC.put(self.run(inputs["inputStats"], exposures=exposures), outputRefs)

    def run(self, inputStats: Sequence[Mapping[str, Any]], *, exposures: Sequence[int]) -> pipeBase.Struct:
        """Merge ``inputStats`` of the exposures ``exposures``."""
        merged = merge_run(dict(zip(exposures, inputStats, strict=True)))
        n_failed = sum(1 for key, value in merged.items() if key != "SUCCESS" and not value["SUCCESS"])
        self.log.info("Verification: %d of %d exposures failed.", n_failed, len(exposures))
        return pipeBase.Struct(outputStats=merged)
