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

"""cp_verify PipelineTasks (labels ``verify{Bias,Dark,Flat}Det``, ``...Exp``, ``verify{Bias,Dark,Flat}``).

* `CpVerifyDetTask` (instrument, exposure, detector): statistics and tests of one processed exposure
  (`pipelines.verify.detector_stats`, through `verify_detector`) → ``verify*DetStats``.
* `CpVerifyDetSettingsTask` (instrument; label ``verify*Det`` of the fused pipelines): the same config
  fields, no pixels: `verify_isr_task.VerifyIsrTask` measures the statistics with its config.
* `CpVerifyExpMergeTask` (instrument, exposure): merge over detectors, keyed by detector name →
  ``verify*ExpStats``.
* `CpVerifyRunMergeTask` (instrument): merge over exposures, keyed by integer exposure id →
  ``verify*Stats``, the structure the script's certification rule reads.
* `CpVerifyGainTask` (instrument, exposure, detector; label ``verifyGainDet``): the per-pair gain of
  a partial PTC against the PTC (`pipelines.verify_gain`) → ``verifyGainDetStats``;
  `CpVerifyGainMergeTask` (instrument; label ``verifyGain``) merges them by exposure and detector →
  ``verifyGainStats`` (``{exposure: {"SUCCESS", "FAILURES": ["R22_S00 C03 GAIN_FROM_FLAT_PAIR"]}}``).

Dataset names are set per pipeline through ``connections.*``; ``stageName`` picks the statistics.

May import: lsst.pipe.base, lsst.pex.config, lsst.daf.butler, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "CpVerifyDetConfig",
    "CpVerifyDetConnections",
    "CpVerifyDetSettingsConfig",
    "CpVerifyDetSettingsConnections",
    "CpVerifyDetSettingsTask",
    "CpVerifyDetTask",
    "CpVerifyExpMergeConfig",
    "CpVerifyExpMergeConnections",
    "CpVerifyExpMergeTask",
    "CpVerifyGainConfig",
    "CpVerifyGainConnections",
    "CpVerifyGainMergeConfig",
    "CpVerifyGainMergeConnections",
    "CpVerifyGainMergeTask",
    "CpVerifyGainTask",
    "CpVerifyRunMergeByFilterConfig",
    "CpVerifyRunMergeByFilterConnections",
    "CpVerifyRunMergeByFilterTask",
    "CpVerifyRunMergeConfig",
    "CpVerifyRunMergeConnections",
    "CpVerifyRunMergeTask",
    "verify_detector",
]

from collections.abc import Mapping, Sequence
from typing import Any

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np

from ...butler.calib_types import PhotonTransferCurve
from ...butler.camera import INSTRUMENT_NAME, get_camera
from ...butler.images import masked_image_arrays, masked_image_mask
from ..cosmic_rays import CosmicRaySettings
from ..verify import VerifyThresholds, detector_stats, merge_exposure, merge_run
from ..verify_gain import gain_pair_stats
from .defaults import keyword_default
from .quanta import detector_args, quantum_instrument

_STAGES = {"BIAS": "Bias", "DARK": "Dark", "FLAT": "Flat"}


_VERIFY_DEFAULTS = VerifyThresholds()


class _ThresholdConfig(pexConfig.Config):
    """Thresholds shared by the verify tasks: cp_verify's names, the defaults of
    `pipelines.verify.VerifyThresholds` (`_thresholds` makes one of this config)."""

    numSigmaClip = pexConfig.Field[float](
        doc="Clip of the NOISE statistic.", default=_VERIFY_DEFAULTS.num_sigma_clip
    )
    clipMaxIter = pexConfig.Field[int](doc="Clipping iterations.", default=_VERIFY_DEFAULTS.clip_max_iter)
    noiseTolerance = pexConfig.Field[float](
        doc="Allowed (NOISE - RN) / RN.", default=_VERIFY_DEFAULTS.noise_tolerance
    )
    crNoiseTolerance = pexConfig.Field[float](
        doc="Allowed |NOISE - CR_NOISE| / CR_NOISE.", default=_VERIFY_DEFAULTS.cr_noise_tolerance
    )
    readNoiseTolerance = pexConfig.Field[float](
        doc="Allowed (overscan noise - RN) / RN.", default=_VERIFY_DEFAULTS.read_noise_tolerance
    )
    detScatterTolerance = pexConfig.Field[float](
        doc="Flat: allowed SCATTER / MEAN.", default=_VERIFY_DEFAULTS.det_scatter_tolerance
    )
    expScatterThreshold = pexConfig.Field[float](
        doc="Flat: allowed stdev of the detector means of an exposure (absolute, e-).",
        default=_VERIFY_DEFAULTS.exp_scatter_threshold,
    )
    expScatterScaleWithSize = pexConfig.Field[bool](
        doc="Flat, small-frame switch: on detectors with fewer pixels than a full-size one (scaled-down "
        "simulations) scale expScatterThreshold by sqrt(full-size pixels / detector pixels), keeping the "
        "full-size statistical margin of the test; full-size frames always use expScatterThreshold.",
        default=_VERIFY_DEFAULTS.exp_scatter_scale_with_size,
    )
    crMinSigma = pexConfig.Field[float](
        doc="CR detection threshold (sigma).", default=_VERIFY_DEFAULTS.cosmic_rays.min_sigma
    )
    crMinDn = pexConfig.Field[float](
        doc="CR detection threshold (image units).", default=_VERIFY_DEFAULTS.cosmic_rays.min_dn
    )
    crMaxPixels = pexConfig.Field[int](
        doc="More CR pixels is a processing failure.", default=_VERIFY_DEFAULTS.cosmic_rays.n_cr_pixel_max
    )
    psfFwhm = pexConfig.Field[float](
        doc="FWHM (pixels) of the Gaussian PSF of the CR finder.",
        default=_VERIFY_DEFAULTS.cosmic_rays.psf_fwhm,
    )


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
        cosmic_rays=CosmicRaySettings(
            min_sigma=config.crMinSigma,
            min_dn=config.crMinDn,
            n_cr_pixel_max=config.crMaxPixels,
            psf_fwhm=config.psfFwhm,
        ),
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


class _DetStatsConfig(_ThresholdConfig):
    """The fields of the per-detector statistics (`CpVerifyDetConfig`, `CpVerifyDetSettingsConfig`)."""

    stageName = pexConfig.ChoiceField[str](
        doc="What is verified.", default="BIAS", allowed={k: v for k, v in _STAGES.items()}
    )
    maskNameList = pexConfig.ListField[str](
        doc="Mask planes excluded from the statistics.", default=["DETECTED", "BAD", "NO_DATA"]
    )


class CpVerifyDetConfig(
    pipeBase.PipelineTaskConfig, _DetStatsConfig, pipelineConnections=CpVerifyDetConnections
):
    """Configuration of `CpVerifyDetTask`."""


def verify_detector(
    inputExp: Any, detector_id: int, config: Any, log: Any, instrument: str = INSTRUMENT_NAME
) -> dict[str, Any]:
    """Statistics and tests of one processed exposure (``verify*DetStats``) with a det-stats config.

    Parameters
    ----------
    inputExp : `lsst.images.MaskedImage`
        Processed exposure.
    detector_id : `int`
        Its detector.
    config : `CpVerifyDetConfig` or `CpVerifyDetSettingsConfig`
        ``stageName``, ``maskNameList`` and the thresholds.
    log : `logging.Logger`
        Where a failed detector is reported.
    instrument : `str`, optional
        Instrument of the detector (its camera description).
    """
    image, _, _, metadata = masked_image_arrays(inputExp)
    excluded = np.zeros(image.shape, dtype=bool)
    for plane in config.maskNameList:
        excluded |= masked_image_mask(inputExp, plane)
    stats = detector_stats(
        config.stageName,
        image,
        excluded,
        get_camera(instrument)[detector_id],
        metadata,
        _thresholds(config),
    )
    if not stats["SUCCESS"]:
        log.warning("Detector %d failed %s verification.", detector_id, config.stageName)
    return stats


class CpVerifyDetSettingsConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument",)):
    """`CpVerifyDetSettingsTask` reads no dataset; its init-output, its own config, is read by the ISR."""

    outputSettings = cT.InitOutput(
        name="verifyBiasDetSettings",
        doc="This label's config (the statistics settings), an init-input of the fused ISR task.",
        storageClass="Config",
    )


class CpVerifyDetSettingsConfig(
    pipeBase.PipelineTaskConfig, _DetStatsConfig, pipelineConnections=CpVerifyDetSettingsConnections
):
    """The fields of `CpVerifyDetConfig` (same names, same defaults) without its connections."""


class CpVerifyDetSettingsTask(pipeBase.PipelineTask):
    """The ``verify*Det`` label of a fused verify pipeline: settings of the statistics, no pixels.

    In the cp_verify pipelines of this package the per-detector statistics are measured by the ISR
    quanta (`verify_isr_task.VerifyIsrTask`) on the image they have just made, so that the
    ``verify*Proc`` images are not read back. The statistics' settings stay on this label
    (``-c verifyBiasDet:numSigmaClip=4`` works as with cp_verify): the task puts its config out as an
    init-output (``connections.outputSettings``, e.g. ``verifyBiasDetSettings``, written with the
    job's other init-outputs before any quantum runs), an init-input of the ISR task. Its one quantum
    (per instrument) only logs the settings.
    """

    ConfigClass = CpVerifyDetSettingsConfig
    _DefaultName = "cpVerifyDetSettings"
    config: CpVerifyDetSettingsConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outputSettings = self.config

    def run(self) -> pipeBase.Struct:
        """Log the settings the ISR quanta measure with."""
        self.log.info(
            "%s statistics are measured by the ISR quanta with this label's config (clip %g sigma, "
            "%d iterations, masks %s).",
            self.config.stageName,
            self.config.numSigmaClip,
            self.config.clipMaxIter,
            ",".join(self.config.maskNameList),
        )
        return pipeBase.Struct()


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
        butlerQC.put(self.run(inputs["inputExp"], **detector_args(butlerQC)), outputRefs)

    def run(self, inputExp: Any, *, detector_id: int, instrument: str = INSTRUMENT_NAME) -> pipeBase.Struct:
        """Measure and test ``inputExp`` (lsst.images MaskedImage) of detector ``detector_id``."""
        return pipeBase.Struct(
            outputStats=verify_detector(inputExp, detector_id, self.config, self.log, instrument=instrument)
        )


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
        butlerQC.put(
            self.run(inputs["inputStats"], detectors=detectors, instrument=quantum_instrument(butlerQC)),
            outputRefs,
        )

    def run(
        self,
        inputStats: Sequence[Mapping[str, Any]],
        *,
        detectors: Sequence[int],
        instrument: str = INSTRUMENT_NAME,
    ) -> pipeBase.Struct:
        """Merge ``inputStats`` of the detectors ``detectors``."""
        camera = get_camera(instrument)
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


class CpVerifyRunMergeByFilterConnections(
    pipeBase.PipelineTaskConnections, dimensions=("instrument", "physical_filter")
):
    """Connections of `CpVerifyRunMergeByFilterTask`: one run-level result per filter (cp_verify's
    ``verifyFlatStats`` has dimensions instrument + physical_filter)."""

    inputStats = cT.Input(
        name="verifyFlatExpStats",
        doc="Per-exposure results (the exposure implies its filter).",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure"),
        multiple=True,
    )
    outputStats = cT.Output(
        name="verifyFlatStats",
        doc="Run-level results of one filter keyed by exposure id.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "physical_filter"),
    )


class CpVerifyRunMergeByFilterConfig(
    pipeBase.PipelineTaskConfig, pipelineConnections=CpVerifyRunMergeByFilterConnections
):
    """Configuration of `CpVerifyRunMergeByFilterTask`."""


class CpVerifyRunMergeByFilterTask(CpVerifyRunMergeTask):
    """Merge the exposure results of the run, per physical filter (cp_verify
    ``CpVerifyRunMergeByFilterTask``)."""

    ConfigClass = CpVerifyRunMergeByFilterConfig  # type: ignore[assignment]
    _DefaultName = "cpVerifyRunMergeByFilter"
    config: CpVerifyRunMergeByFilterConfig  # type: ignore[assignment]


class CpVerifyGainConnections(
    pipeBase.PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")
):
    """Connections of `CpVerifyGainTask`."""

    inputPartial = cT.Input(
        name="cpPtcPartial",
        doc="Partial PTC of one flat pair (keyed by its first exposure).",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "exposure", "detector"),
    )
    inputPtc = cT.PrerequisiteInput(
        name="ptc",
        doc="PTC whose gains the pair gains are checked against.",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )
    outputStats = cT.Output(
        name="verifyGainDetStats",
        doc="Per-pair, per-detector gain statistics and tests.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
    )


class CpVerifyGainConfig(pipeBase.PipelineTaskConfig, pipelineConnections=CpVerifyGainConnections):
    """Configuration of `CpVerifyGainTask` (cp_verify ``CpVerifyGainConfig`` names)."""

    gainThreshold = pexConfig.Field[float](
        doc="Largest |flux-corrected pair gain - PTC gain| in % of the PTC gain.",
        default=keyword_default(gain_pair_stats, "gain_threshold"),
    )
    fluxSlope = pexConfig.Field[float](
        doc="Flux dependence of the pair gain (% per ADU; ITL 0.00027, e2v 0.00046; DM-35790).",
        default=keyword_default(gain_pair_stats, "slope"),
    )
    minSigmas = pexConfig.Field[float](
        doc="Small-frame switch: the limit is at least this many statistical errors of the pair gain, "
        "100 sqrt(2 / N_pix) %; 0 keeps cp_verify's fixed gainThreshold. Changes nothing at the full "
        "and default simulated sizes.",
        default=keyword_default(gain_pair_stats, "min_sigmas"),
    )
    minMeanFlux = pexConfig.Field[float](
        doc="Pairs with a lower mean (ADU) are measured but not tested: read-noise dominated, the pair "
        "estimator is far less precise than at the ~20000 counts DMTN-101 uses.",
        default=keyword_default(gain_pair_stats, "min_mean_adu"),
    )


class CpVerifyGainTask(pipeBase.PipelineTask):
    """Check the gain of one flat pair of one detector against the PTC."""

    ConfigClass = CpVerifyGainConfig
    _DefaultName = "cpVerifyGain"
    config: CpVerifyGainConfig

    def run(self, inputPartial: PhotonTransferCurve, inputPtc: PhotonTransferCurve) -> pipeBase.Struct:
        """Measure and test ``inputPartial`` against ``inputPtc``."""
        stats = gain_pair_stats(
            inputPartial,
            inputPtc,
            self.config.fluxSlope,
            self.config.gainThreshold,
            self.config.minSigmas,
            self.config.minMeanFlux,
        )
        failed = [amp for amp, tests in stats["VERIFY"]["AMP"].items() if not tests["SUCCESS"]]
        if failed:
            self.log.warning(
                "Detector %d: pair gain differs from the PTC gain by >= %g%% on %s.",
                inputPartial.detector,
                self.config.gainThreshold,
                ", ".join(failed),
            )
        return pipeBase.Struct(outputStats=stats)


class CpVerifyGainMergeConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument",)):
    """Connections of `CpVerifyGainMergeTask`."""

    inputStats = cT.Input(
        name="verifyGainDetStats",
        doc="Per-pair, per-detector gain results.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    outputStats = cT.Output(
        name="verifyGainStats",
        doc="Run-level gain results keyed by the pairs' first exposure id.",
        storageClass="StructuredDataDict",
        dimensions=("instrument",),
    )


class CpVerifyGainMergeConfig(pipeBase.PipelineTaskConfig, pipelineConnections=CpVerifyGainMergeConnections):
    """Configuration of `CpVerifyGainMergeTask`."""


class CpVerifyGainMergeTask(pipeBase.PipelineTask):
    """Merge the gain results of every pair and detector (``verifyGainStats``)."""

    ConfigClass = CpVerifyGainMergeConfig
    _DefaultName = "cpVerifyGainMerge"
    config: CpVerifyGainMergeConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        keys = [(int(ref.dataId["exposure"]), int(ref.dataId["detector"])) for ref in inputRefs.inputStats]
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
        """Merge ``inputStats`` of the ``(exposure, detector)`` ``keys``."""
        camera = get_camera(instrument)
        by_exposure: dict[int, dict[str, Mapping[str, Any]]] = {}
        for (exposure, detector), stats in zip(keys, inputStats, strict=True):
            by_exposure.setdefault(exposure, {})[camera[detector].name] = stats
        merged = merge_run({exp: merge_exposure(dets, "GAIN") for exp, dets in by_exposure.items()})
        n_failed = sum(1 for key, value in merged.items() if key != "SUCCESS" and not value["SUCCESS"])
        self.log.info("Gain check: %d of %d flat pairs failed.", n_failed, len(by_exposure))
        return pipeBase.Struct(outputStats=merged)
