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

"""PTC PipelineTasks: ``cpPtcExtract`` (per flat pair) and ``cpPtcSolve`` (EXPAPPROXIMATION or
FULLCOVARIANCE fit).

* `PtcExtractTask` (dimensions instrument + detector) takes the ISR outputs (``cpPtcProc``, in ADU) of
  every flat of the job for one detector, pairs them as the seed procedure does (consecutive
  exposures with the same exposure time; `pipelines.ptc.match_pairs_by_time`) and writes one
  ``cpPtcPartial`` per pair (current cp_pipe's name; dimensions instrument + exposure + detector, keyed
  by the pair's first exposure): a `butler.calib_types.PhotonTransferCurve` with
  ``fit_type="PARTIAL"``, the pair's mean, variance, per-lag covariances, ``.gain`` (FULL estimator by
  default) and ``.noise`` (overscan read noise, ADU) per amp. With ``doWriteLegacyPartials`` (default)
  the same partial is also written as ``cpPtcExtract``, the pre-2024 name the seed procedure reads.
  The pipelines' ``cpPtcExtract`` label runs `ptc_isr_extract_task.PtcIsrExtractTask` instead (the
  ISR of each pair in memory, no ``cpPtcProc`` read), which shares this task's pairing
  (`PtcExtractConnections.adjustQuantum`), its fields (`PairMeasurementConfig`), the pair loop
  (`measure_pairs`) and the writes (`put_partials`).
  The pairs are decided while the quantum graph is built (`PtcExtractConnections.adjustQuantum`), so
  only the pairs' first exposures are predicted as outputs and unpaired flats are not read.
* `PtcSolveTask` (instrument + detector) gathers the partials and fits Astier+19 Eq. 16 per amp with
  cp_pipe's outlier rejection (`pipelines.ptc.fit_exp_approximation`); with
  ``ptcFitType=FULLCOVARIANCE`` (or ``_NO_B``) it then fits Eq. 20 to the covariances of the points
  that pass kept (`pipelines.ptc_covariance.fit_full_covariance`). It writes ``ptc`` (gain e-/ADU,
  noise e-, turnoff ADU, and for the full fit the a, b and noise matrices and model covariances).

May import: lsst.pipe.base, lsst.pex.config, lsst.daf.butler, lsst.images, numpy, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "PTC_BAD_AMP_REASONS_KEY",
    "PTC_FIT_FALLBACK_KEY",
    "PTC_FIT_TYPE_REQUESTED_KEY",
    "PtcExtractConfig",
    "PtcExtractConnections",
    "PtcExtractTask",
    "PtcSolveConfig",
    "PtcSolveConnections",
    "PtcSolveTask",
    "extract_pair",
    "full_covariance_problem",
    "ptc_amp_problem",
    "solve_ptc",
]

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np
from lsst.daf.butler import DataCoordinate, DatasetRef
from lsst.images import Box

from ...butler.calib_types import PhotonTransferCurve
from ...butler.camera import INSTRUMENT_NAME, Detector, get_camera
from ...butler.images import masked_image_arrays, masked_image_mask
from ...calib.flat_pairs import PAIR_TOLERANCE
from ..ptc import (
    GAIN_CORRECTION_TYPES,
    ExpApproxFit,
    ExpApproxSettings,
    PairSettings,
    amp_edge_mask,
    fit_exp_approximation,
    match_pairs_by_time,
    measure_pair,
    scaled_edge_width,
)
from ..ptc_covariance import FullCovarianceFit, fit_full_covariance
from .quanta import quantum_data_id

_EXP_DET = ("instrument", "exposure", "detector")
_OVERSCAN_NOISE_KEY = "LSST ISR OVERSCAN RESIDUAL SERIAL STDEV {amp}"
_N_PIXELS_KEY = "PTC N PIXELS"
_FULL_AMP_PIXELS = 2000 * 509
PTC_BAD_AMP_REASONS_KEY = "PTC BAD AMP REASONS"
"""PTC metadata key: ``{amp: why the amp is bad}`` for every amp in ``bad_amps``."""
PTC_FIT_TYPE_REQUESTED_KEY = "PTC FIT TYPE REQUESTED"
"""PTC metadata key: the configured ptcFitType, when another one was fitted (see `PTC_FIT_FALLBACK_KEY`)."""
PTC_FIT_FALLBACK_KEY = "PTC FIT FALLBACK"
"""PTC metadata key: why the configured full-covariance fit was replaced by EXPAPPROXIMATION."""


# --------------------------------------------------------------------------------------------------
# Extract


def _exposure_info(data_id: DataCoordinate) -> tuple[float, str] | None:
    """``(exposure_time, observation_type)`` from an expanded data id, None if it has no records."""
    try:
        if not data_id.hasRecords():
            return None
        record = data_id.records["exposure"]
    except (AttributeError, KeyError):
        return None
    if record is None:
        return None
    return float(record.exposure_time), str(record.observation_type or "").lower()


class PtcExtractConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `PtcExtractTask`; `adjustQuantum` keeps only paired flats."""

    config: PairMeasurementConfig  # type: ignore[assignment]

    #: The input connection of the flats to pair (one dataset per exposure).
    paired_input: ClassVar[str] = "inputExp"
    #: Keep the quantum of a detector whose flats make no pair (the flats as inputs, no output): it
    #: runs and ends with NoWorkFound, as the ISR quanta before it did in the two-task chain. A job
    #: whose only task this is (the gain subset) would otherwise have an empty graph and fail.
    keep_quantum_without_pairs: ClassVar[bool] = False

    inputExp = cT.Input(
        name="cpPtcProc",
        doc="ISR-processed flats (ADU) of one detector.",
        storageClass="MaskedImageV2",
        dimensions=_EXP_DET,
        multiple=True,
        deferLoad=True,
    )
    outputCovariances = cT.Output(
        name="cpPtcPartial",
        doc="One partial PTC per flat pair, keyed by the pair's first exposure.",
        storageClass="PhotonTransferCurve",
        dimensions=_EXP_DET,
        multiple=True,
    )
    outputLegacyCovariances = cT.Output(
        name="cpPtcExtract",
        doc="The same partials under the pre-2024 cp_pipe name (the seed procedure reads it).",
        storageClass="PhotonTransferCurve",
        dimensions=_EXP_DET,
        multiple=True,
    )

    def __init__(self, *, config: PairMeasurementConfig | None = None) -> None:
        super().__init__(config=config)  # type: ignore[arg-type]
        if config is not None and not config.doWriteLegacyPartials:
            del self.outputLegacyCovariances

    def adjustQuantum(
        self,
        inputs: dict[str, tuple[Any, Any]],
        outputs: dict[str, tuple[Any, Any]],
        label: str,
        data_id: DataCoordinate,
    ) -> tuple[dict[str, tuple[Any, Any]], dict[str, tuple[Any, Any]]]:
        """Keep the flats that form pairs and predict one output per pair (its first exposure)."""
        assert self.config is not None
        connection, refs = inputs[self.paired_input]
        infos = {int(ref.dataId["exposure"]): _exposure_info(ref.dataId) for ref in refs}
        if any(info is None for info in infos.values()):
            # No exposure records here: the pairing is left to runQuantum.
            super().adjustQuantum(inputs, outputs, label, data_id)
            return {}, {}
        wanted = {name.lower() for name in self.config.observationTypes}
        times = [
            (exp_id, info[0])
            for exp_id, info in infos.items()
            if info is not None and (not wanted or info[1] in wanted)
        ]
        pairs = match_pairs_by_time(times, self.config.matchExposureTimeTolerance)
        if not pairs and not (self.keep_quantum_without_pairs and times):
            raise pipeBase.NoWorkFound(f"{label}: no flat pair with equal exposure times for {data_id}.")
        # No pair (keep_quantum_without_pairs): the flats stay inputs, unread, and nothing is predicted.
        paired = {exp_id for pair in pairs for exp_id in pair} or {exp_id for exp_id, _ in times}
        firsts = {pair[0] for pair in pairs}
        kept_inputs = [ref for ref in refs if int(ref.dataId["exposure"]) in paired]
        adjusted_inputs: dict[str, tuple[Any, Any]] = {self.paired_input: (connection, kept_inputs)}
        adjusted_outputs: dict[str, tuple[Any, Any]] = {}
        for name in ("outputCovariances", "outputLegacyCovariances"):
            if name in outputs:
                out_connection, out_refs = outputs[name]
                kept_outputs = [ref for ref in out_refs if int(ref.dataId["exposure"]) in firsts]
                adjusted_outputs[name] = (out_connection, kept_outputs)
        inputs.update(adjusted_inputs)
        outputs.update(adjusted_outputs)
        super().adjustQuantum(inputs, outputs, label, data_id)
        return adjusted_inputs, adjusted_outputs


_PAIR_DEFAULTS = PairSettings()
_FIT_DEFAULTS = ExpApproxSettings()


class PairMeasurementConfig(pexConfig.Config):
    """The pairing and pair-measurement fields of `PtcExtractConfig` (cp_pipe
    ``PhotonTransferCurveExtractPairConfig`` names), shared with the fused
    `ptc_isr_extract_task.PtcIsrExtractConfig`; the measurement's defaults are those of
    `pipelines.ptc.PairSettings` (`pair_settings` makes one of this config)."""

    matchExposuresType = pexConfig.ChoiceField[str](
        doc="How flats are paired.",
        default="TIME",
        allowed={"TIME": "Consecutive exposures (by id) with the same exposure time."},
    )
    matchExposureTimeTolerance = pexConfig.Field[float](
        doc="Largest exposure-time difference (s) within a pair (calib.flat_pairs.PAIR_TOLERANCE).",
        default=PAIR_TOLERANCE,
    )
    observationTypes = pexConfig.ListField[str](
        doc="Observation types that may be paired (empty: any).", default=["flat"]
    )
    maskNameList = pexConfig.ListField[str](
        doc="Mask planes whose pixels are ignored.",
        default=["SUSPECT", "BAD", "NO_DATA", "SAT", "UNMASKEDNAN"],
    )
    nSigmaClipPtc = pexConfig.Field[float](
        doc="Sigma clip for the means and variance.", default=_PAIR_DEFAULTS.n_sigma
    )
    nIterSigmaClipPtc = pexConfig.Field[int](doc="Clipping iterations.", default=_PAIR_DEFAULTS.n_iter)
    numEdgeSuspect = pexConfig.Field[int](
        doc="Pixels masked at every amp edge on a full-size (2000 x 509) amp.",
        default=_PAIR_DEFAULTS.num_edge_suspect,
    )
    scaleEdgeToAmpSize = pexConfig.Field[bool](
        doc="Scale numEdgeSuspect per axis, and minNumberGoodPixelsForCovariance with the pixel count, "
        "to the amp size (simulated amps are smaller).",
        default=True,
    )
    maximumRangeCovariancesAstier = pexConfig.Field[int](
        doc="Lags per axis (0 .. n-1) of the measured covariances (cp_pipe's default is 10; 8 covers "
        "the simulated brighter-fatter kernel and keeps the datasets smaller); 0 measures none.",
        default=_PAIR_DEFAULTS.max_lag,
    )
    minNumberGoodPixelsForCovariance = pexConfig.Field[int](
        doc="Fewer usable pixels (on a full-size amp) than this give NaN covariances.",
        default=_PAIR_DEFAULTS.min_pixels_covariance,
    )
    doGain = pexConfig.Field[bool](doc="Measure the gain of every pair.", default=True)
    gainCorrectionType = pexConfig.ChoiceField[str](
        doc="Gain-from-pair estimator.",
        default=_PAIR_DEFAULTS.gain_correction_type,
        allowed={name: name for name in GAIN_CORRECTION_TYPES},
    )
    doWriteLegacyPartials = pexConfig.Field[bool](
        doc="Also write every partial as cpPtcExtract (the pre-2024 name of cpPtcPartial).", default=True
    )

    def pair_settings(self) -> PairSettings:
        """Return the `PairSettings` of this config (before ``scaleEdgeToAmpSize``)."""
        return PairSettings(
            n_sigma=self.nSigmaClipPtc,
            n_iter=self.nIterSigmaClipPtc,
            gain_correction_type=self.gainCorrectionType,
            max_lag=self.maximumRangeCovariancesAstier,
            min_pixels_covariance=self.minNumberGoodPixelsForCovariance,
            num_edge_suspect=self.numEdgeSuspect,
        )


class PtcExtractConfig(
    pipeBase.PipelineTaskConfig, PairMeasurementConfig, pipelineConnections=PtcExtractConnections
):
    """Configuration of `PtcExtractTask`: the fields of `PairMeasurementConfig`."""


def extract_pair(
    image1: np.ndarray,
    image2: np.ndarray,
    excluded1: np.ndarray,
    excluded2: np.ndarray,
    metadata1: Mapping[str, Any],
    metadata2: Mapping[str, Any],
    pair: tuple[int, int],
    exposure_time: float,
    detector: Detector,
    config: PairMeasurementConfig,
) -> PhotonTransferCurve:
    """Measure one flat pair of a detector into a partial PTC.

    Parameters
    ----------
    image1, image2 : `numpy.ndarray`
        Assembled ISR images (ADU) of the pair.
    excluded1, excluded2 : `numpy.ndarray`
        Pixels to ignore in each image (masked planes).
    metadata1, metadata2 : `~collections.abc.Mapping`
        ISR headers (overscan read noise per amp).
    pair : `tuple` [`int`, `int`]
        Exposure ids.
    exposure_time : `float`
        Exposure time of the pair (s).
    detector : `butler.camera.Detector`
        Detector.
    config : `PairMeasurementConfig`
        Configuration (a `PtcExtractConfig` or a fused task's).

    Returns
    -------
    partial : `butler.calib_types.PhotonTransferCurve`
        ``fit_type="PARTIAL"`` with one point per amp.
    """
    rows, cols = image1.shape
    ny, nx = rows // 2, cols // 8
    settings = config.pair_settings()
    edge = settings.num_edge_suspect
    edge_widths = scaled_edge_width((ny, nx), edge) if config.scaleEdgeToAmpSize else (edge, edge)
    edges = amp_edge_mask((ny, nx), edge_widths)
    if config.scaleEdgeToAmpSize:
        min_pixels = max(1, round(settings.min_pixels_covariance * (ny * nx) / (_FULL_AMP_PIXELS)))
        settings = dataclasses.replace(settings, min_pixels_covariance=min_pixels)
    partial = PhotonTransferCurve(
        detector=detector.id,
        detector_name=detector.name,
        fit_type="PARTIAL",
        amp_names=list(detector.amp_names),
    )
    n_pixels: dict[str, int] = {}
    deltas: dict[str, float] = {}
    for amp in detector:
        box = (slice(amp.iy * ny, (amp.iy + 1) * ny), slice(amp.ix * nx, (amp.ix + 1) * nx))
        noise1 = float(metadata1.get(_OVERSCAN_NOISE_KEY.format(amp=amp.name), math.nan))
        noise2 = float(metadata2.get(_OVERSCAN_NOISE_KEY.format(amp=amp.name), math.nan))
        read_noise = 0.5 * (noise1 + noise2)
        mask = edges | excluded1[box] | excluded2[box]
        measured = measure_pair(image1[box], image2[box], read_noise, mask=mask, settings=settings)
        gain = measured.gain if config.doGain else math.nan
        if measured.covariances is not None and measured.covariances_sqrt_weights is not None:
            partial.covariances[amp.name] = [measured.covariances.tolist()]
            partial.covariances_sqrt_weights[amp.name] = [measured.covariances_sqrt_weights.tolist()]
        partial.input_exp_id_pairs[amp.name] = [[int(pair[0]), int(pair[1])]]
        partial.raw_exp_times[amp.name] = [float(exposure_time)]
        partial.raw_means[amp.name] = [measured.mean]
        partial.raw_vars[amp.name] = [measured.variance]
        partial.exp_id_mask[amp.name] = [bool(measured.valid)]
        partial.gain[amp.name] = float(gain)
        partial.noise[amp.name] = float(read_noise)
        partial.noise_list[amp.name] = [float(read_noise)]
        n_pixels[amp.name] = measured.n_pixels
        deltas[amp.name] = measured.delta
        if not measured.valid:
            partial.bad_amps.append(amp.name)
    partial.metadata.update(
        {
            "OBSTYPE": "PTC",
            "PTC_FIT_TYPE": "PARTIAL",
            "DETECTOR": detector.id,
            "DET_NAME": detector.name,
            "DET_SER": detector.serial,
            "FILTER": metadata1.get("FILTER", ""),
            "EXPTIME": float(exposure_time),
            "INPUT_EXPOSURES": [int(pair[0]), int(pair[1])],
            "LSST ISR UNITS": metadata1.get("LSST ISR UNITS", "adu"),
            "PTC GAIN CORRECTION TYPE": config.gainCorrectionType,
            "PTC EDGE WIDTH": list(edge_widths),
            _N_PIXELS_KEY: n_pixels,
            "PTC RAW DELTAS": deltas,
        }
    )
    return partial


PairImage = tuple[np.ndarray, np.ndarray, Mapping[str, Any]]
"""One flat as `extract_pair` takes it: the ISR image (ADU), the pixels to ignore, the ISR header."""


def masked_image_pair_input(masked_image: Any, mask_planes: Sequence[str]) -> PairImage:
    """The `PairImage` of an ISR ``MaskedImage`` (a ``cpPtcProc``): ``mask_planes`` are ignored."""
    image, _, _, metadata = masked_image_arrays(masked_image)
    excluded = np.zeros(image.shape, dtype=bool)
    for plane in mask_planes:
        excluded |= masked_image_mask(masked_image, plane)
    return image, excluded, metadata


def measure_pairs(
    loaders: Mapping[int, Callable[[], PairImage]],
    exposure_times: Mapping[int, float],
    detector: Detector,
    config: PairMeasurementConfig,
    log: Any,
) -> pipeBase.Struct:
    """Pair the flats of one detector (`pipelines.ptc.match_pairs_by_time`) and measure every pair.

    Parameters
    ----------
    loaders : `~collections.abc.Mapping` [`int`, `~collections.abc.Callable`]
        Per exposure id, a callable returning the flat's `PairImage`; only the paired exposures are
        loaded, one pair at a time, so memory holds one pair.
    exposure_times : `~collections.abc.Mapping` [`int`, `float`]
        Exposure time of each flat (s); flats without a finite one are not paired.
    detector : `butler.camera.Detector`
        Detector.
    config : `PairMeasurementConfig`
        Pairing tolerance and measurement settings.
    log : `logging.Logger`
        Task log (one line per detector and per pair).

    Returns
    -------
    result : `lsst.pipe.base.Struct`
        ``outputCovariances``: `dict` first exposure id -> partial `PhotonTransferCurve`;
        ``pairs``: the pairs measured.
    """
    times = dict(exposure_times)
    pairs = match_pairs_by_time(
        [(exp_id, t) for exp_id, t in times.items() if exp_id in loaders and math.isfinite(t)],
        config.matchExposureTimeTolerance,
    )
    log.info("Detector %d: %d flats give %d pairs.", detector.id, len(loaders), len(pairs))
    outputs: dict[int, PhotonTransferCurve] = {}
    for first, second in pairs:
        image1, excluded1, md1 = loaders[first]()
        image2, excluded2, md2 = loaders[second]()
        partial = extract_pair(
            image1,
            image2,
            excluded1,
            excluded2,
            md1,
            md2,
            (first, second),
            times[first],
            detector,
            config,
        )
        del image1, image2, excluded1, excluded2
        outputs[first] = partial
        gains = [g for g in partial.gain.values() if math.isfinite(g)]
        log.info(
            "Pair (%d, %d), %.3g s: mean %.1f ADU, median gain %.4f e-/ADU over %d amps.",
            first,
            second,
            times[first],
            float(np.nanmean([v[0] for v in partial.raw_means.values()])),
            float(np.median(gains)) if gains else math.nan,
            len(gains),
        )
    return pipeBase.Struct(outputCovariances=outputs, pairs=pairs)


def put_partials(
    butlerQC: pipeBase.QuantumContext,
    outputRefs: pipeBase.OutputQuantizedConnection,
    partials: Mapping[int, PhotonTransferCurve],
    detector_id: int,
    log: Any,
) -> None:
    """Put each pair's partial as ``cpPtcPartial`` (and ``cpPtcExtract`` when predicted).

    Raises
    ------
    lsst.pipe.base.NoWorkFound
        If no pair was written.
    """
    output_refs: dict[int, DatasetRef] = {
        int(ref.dataId["exposure"]): ref for ref in outputRefs.outputCovariances
    }
    legacy_refs: dict[int, DatasetRef] = {
        int(ref.dataId["exposure"]): ref for ref in getattr(outputRefs, "outputLegacyCovariances", [])
    }
    written = 0
    for first_id, partial in partials.items():
        ref = output_refs.get(first_id)
        if ref is None:
            log.warning("Pair starting at %d was not predicted as an output; not written.", first_id)
            continue
        butlerQC.put(partial, ref)
        if first_id in legacy_refs:
            butlerQC.put(partial, legacy_refs[first_id])
        written += 1
    if written == 0:
        raise pipeBase.NoWorkFound(f"No flat pair could be measured for detector {detector_id}.")


def record_exposure_times(handles: Mapping[int, Any]) -> dict[int, float]:
    """Exposure times (s) from the registry records of the handles' data ids (those that have one)."""
    times: dict[int, float] = {}
    for exp_id, handle in handles.items():
        info = _exposure_info(handle.dataId)
        if info is not None:
            times[exp_id] = info[0]
    return times


class PtcExtractTask(pipeBase.PipelineTask):
    """Measure mean, variance, gain and read noise of every flat pair of a detector."""

    ConfigClass = PtcExtractConfig
    _DefaultName = "cpPtcExtract"
    config: PtcExtractConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        data_id = quantum_data_id(butlerQC)
        handles = {int(handle.dataId["exposure"]): handle for handle in inputs["inputExp"]}
        results = self.run(
            {exp_id: handle.get for exp_id, handle in handles.items()},
            detector_id=int(data_id["detector"]),
            instrument=str(data_id["instrument"]),
            exposure_times=record_exposure_times(handles),
        )
        put_partials(butlerQC, outputRefs, results.outputCovariances, int(data_id["detector"]), self.log)

    def run(
        self,
        loaders: Mapping[int, Callable[..., Any]],
        *,
        detector_id: int,
        instrument: str = INSTRUMENT_NAME,
        exposure_times: Mapping[int, float] | None = None,
    ) -> pipeBase.Struct:
        """Pair the flats and measure every pair.

        Parameters
        ----------
        loaders : `~collections.abc.Mapping` [`int`, `~collections.abc.Callable`]
            Per exposure id, a callable returning the ISR ``MaskedImage`` and accepting
            ``parameters={"bbox": ...}`` (a deferred handle's ``get``). Only the paired exposures are
            loaded, one pair at a time.
        detector_id : `int`
            Detector id.
        exposure_times : `~collections.abc.Mapping` [`int`, `float`], optional
            Exposure times from the registry; missing ones are read from the ISR header (``EXPTIME``).

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputCovariances``: `dict` first exposure id -> partial `PhotonTransferCurve`;
            ``pairs``: the pairs measured.
        """
        detector = get_camera(instrument)[detector_id]
        times = dict(exposure_times or {})
        for exp_id, loader in loaders.items():
            if exp_id not in times:
                # Only the header is needed: read a one-pixel cut-out.
                header = masked_image_arrays(loader(parameters={"bbox": Box.factory[0:1, 0:1]}))[3]
                times[exp_id] = float(header.get("EXPTIME", math.nan))
        planes = list(self.config.maskNameList)
        images = {
            exp_id: functools.partial(_load_masked_image, loader, planes)
            for exp_id, loader in loaders.items()
        }
        return measure_pairs(images, times, detector, self.config, self.log)


def _load_masked_image(loader: Callable[[], Any], mask_planes: Sequence[str]) -> PairImage:
    """Load one ``cpPtcProc`` and make its `PairImage`."""
    return masked_image_pair_input(loader(), mask_planes)


# --------------------------------------------------------------------------------------------------
# Solve


class PtcSolveConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `PtcSolveTask`."""

    inputCovariances = cT.Input(
        name="cpPtcPartial",
        doc="Partial PTCs, one per flat pair.",
        storageClass="PhotonTransferCurve",
        dimensions=_EXP_DET,
        multiple=True,
    )
    outputPtcDataset = cT.Output(
        name="ptc",
        doc="Solved photon transfer curve.",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )


class PtcSolveConfig(pipeBase.PipelineTaskConfig, pipelineConnections=PtcSolveConnections):
    """Configuration of `PtcSolveTask` (cp_pipe ``PhotonTransferCurveSolveConfig`` names); the point
    selection's defaults are those of `pipelines.ptc.ExpApproxSettings` (`fit_settings` makes one of
    this config)."""

    ptcFitType = pexConfig.ChoiceField[str](
        doc="PTC model.",
        default="EXPAPPROXIMATION",
        allowed={
            "EXPAPPROXIMATION": "Astier+19 Eq. 16 (a00, gain, noise).",
            "FULLCOVARIANCE": "Astier+19 Eq. 20 fitted to the covariances of every lag (a, b, noise "
            "matrices and gain), after the EXPAPPROXIMATION pass that selects the points.",
            "FULLCOVARIANCE_NO_B": "As FULLCOVARIANCE with b = 0.",
        },
    )
    maximumRangeCovariancesAstierFullCovFit = pexConfig.Field[int](
        doc="Lags per axis fitted by FULLCOVARIANCE (at most the extract's "
        "maximumRangeCovariancesAstier); an amp needs at least this many pairs.",
        default=8,
    )
    minMeanSignal = pexConfig.Field[float](
        doc="Points at or below this mean (ADU) are unused.", default=_FIT_DEFAULTS.min_mean_signal
    )
    maxMeanSignal = pexConfig.Field[float](
        doc="Points at or above this mean (ADU) are unused.", default=_FIT_DEFAULTS.max_mean_signal
    )
    sigmaCutPtcOutliers = pexConfig.Field[float](
        doc="Outlier cut (|var - model| / sqrt(var)).", default=_FIT_DEFAULTS.sigma_cut
    )
    maxIterationsPtcOutliers = pexConfig.Field[int](
        doc="Outlier-rejection iterations.", default=_FIT_DEFAULTS.max_iterations
    )
    maxSignalInitialPtcOutlierFit = pexConfig.Field[float](
        doc="Initial fit range (e-), converted to ADU with the approximate gain.",
        default=_FIT_DEFAULTS.max_signal_initial,
    )
    maxDeltaInitialPtcOutlierFit = pexConfig.Field[float](
        doc="Mean jump (e-) after a rejected point that masks everything above.",
        default=_FIT_DEFAULTS.max_delta_initial,
    )
    useMeasurementErrorsInOutlierFit = pexConfig.Field[bool](
        doc="In the outlier rejection, weight the fits by the variance measurement error "
        "var sqrt(2/N_pix) and never normalise a residual by less than it (see "
        "pipelines.ptc.fit_exp_approximation); needed on amps much smaller than a real ITL amp.",
        default=_FIT_DEFAULTS.use_measurement_errors,
    )
    maxNoiseRelativeError = pexConfig.Field[float](
        doc="An amp whose fitted read noise has a larger relative 1-sigma error is bad: the flat "
        "pairs do not constrain the noise (e.g. no low-flux pair).",
        default=0.2,
    )
    flagUnconstrainedAmps = pexConfig.Field[bool](
        doc="Flag as bad the amps whose gain or noise ends at a fit bound or is not constrained (see "
        "maxNoiseRelativeError); False keeps only failed fits bad (tests on tiny simulated amps).",
        default=True,
    )
    maxGainRelativeError = pexConfig.Field[float](
        doc="An amp whose fitted gain has a larger relative 1-sigma error is bad.", default=0.02
    )
    doFitNoB = pexConfig.Field[bool](
        doc="With ptcFitType=FULLCOVARIANCE, also fit Eq. 20 with b = 0 and keep its a and noise "
        "matrices and model (a_matrix_no_b...; cp_pipe's aMatrixNoB): on amps with few pixels b is "
        "poorly constrained and trades with a00, the b = 0 fit's a00 is the better-determined one. "
        "The b-free fit then starts from the b = 0 solution.",
        default=True,
    )
    doFallbackToExpApproximation = pexConfig.Field[bool](
        doc="With ptcFitType=FULLCOVARIANCE[_NO_B], a detector with fewer flat pairs than "
        "maximumRangeCovariancesAstierFullCovFit (the covariance fit needs one pair per lag) gets the "
        "EXPAPPROXIMATION PTC instead: fit_type EXPAPPROXIMATION, the requested type and the reason "
        "in the metadata (PTC FIT TYPE REQUESTED, PTC FIT FALLBACK) and a warning in the log. False: "
        "every amp of such a detector is bad (cp_pipe's behaviour), so the PTC is not certified.",
        default=True,
    )

    def fit_settings(self) -> ExpApproxSettings:
        """Return the `ExpApproxSettings` of this config."""
        return ExpApproxSettings(
            sigma_cut=self.sigmaCutPtcOutliers,
            max_iterations=self.maxIterationsPtcOutliers,
            max_signal_initial=self.maxSignalInitialPtcOutlierFit,
            max_delta_initial=self.maxDeltaInitialPtcOutlierFit,
            min_mean_signal=self.minMeanSignal,
            max_mean_signal=self.maxMeanSignal,
            use_measurement_errors=self.useMeasurementErrorsInOutlierFit,
        )


def full_covariance_problem(fit: FullCovarianceFit, config: PtcSolveConfig) -> str | None:
    """Why the full-covariance fit of one amp is not usable (None if it is)."""
    if not fit.valid:
        return (
            "full-covariance fit failed (it needs at least "
            f"{config.maximumRangeCovariancesAstierFullCovFit} pairs with measured covariances)"
        )
    if not config.flagUnconstrainedAmps:
        return None
    if not fit.noise_matrix[0, 0] > 0:
        return f"negative noise term n00 = {fit.noise_matrix[0, 0]:.4g} e^2 in the full-covariance fit"
    return _unconstrained(fit.noise, fit.noise_err, fit.gain, fit.gain_err, config)


def _unconstrained(
    noise: float, noise_err: float, gain: float, gain_err: float, config: PtcSolveConfig
) -> str | None:
    """Why a fitted noise or gain is not constrained by the flat pairs (None if both are)."""
    if not (math.isfinite(noise_err) and noise_err <= config.maxNoiseRelativeError * noise):
        return (
            f"read noise {noise:.3g} +- {noise_err:.2g} e- not constrained by the flat pairs "
            f"(relative error above {config.maxNoiseRelativeError:g}; a low-flux pair is needed)"
        )
    if not (math.isfinite(gain_err) and gain_err <= config.maxGainRelativeError * gain):
        return f"gain {gain:.4g} +- {gain_err:.2g} e-/ADU not constrained by the flat pairs"
    return None


def ptc_amp_problem(fit: ExpApproxFit, config: PtcSolveConfig) -> str | None:
    """Why the PTC fit of one amp is not usable (None if it is): failed, at a bound, unconstrained."""
    if not fit.valid:
        return "fit failed (fewer than 3 usable points)"
    if not config.flagUnconstrainedAmps:
        return None
    if "gain" in fit.at_bound:
        return f"gain {fit.gain:.4g} e-/ADU at a bound of the fit"
    if "n00" in fit.at_bound:
        return f"read noise {fit.noise:.3g} e- at a bound of the fit (n00 = {fit.n00:.4g} e^2)"
    return _unconstrained(fit.noise, fit.noise_err, fit.gain, fit.gain_err, config)


def solve_ptc(partials: Sequence[PhotonTransferCurve], config: PtcSolveConfig) -> PhotonTransferCurve:
    """Combine the partial PTCs of one detector and fit every amplifier.

    Parameters
    ----------
    partials : `~collections.abc.Sequence` [`butler.calib_types.PhotonTransferCurve`]
        ``cpPtcPartial`` datasets of one detector.
    config : `PtcSolveConfig`
        Configuration.

    Returns
    -------
    ptc : `butler.calib_types.PhotonTransferCurve`
        ``fit_type="EXPAPPROXIMATION"``; per amp the points sorted by the detector-average mean, the
        final fit mask, gain (e-/ADU), gain_err, noise (e-), ``fit_pars = [a00, gain, n00]`` and
        turnoff (ADU). Amps whose fit fails are listed in ``bad_amps``.
    """
    if not partials:
        raise ValueError("No partial PTC to solve.")

    def detector_mean(partial: PhotonTransferCurve) -> float:
        values = [v[0] for v in partial.raw_means.values() if v and math.isfinite(v[0])]
        return float(np.mean(values)) if values else math.inf

    ordered = sorted(partials, key=detector_mean)
    fit_type, fallback = _effective_fit_type(len(ordered), config)
    ptc = PhotonTransferCurve.from_partials(ordered, fit_type=fit_type)
    n_pixels: dict[str, list[float]] = {amp: [] for amp in ptc.amp_names}
    for partial in ordered:
        per_amp = partial.metadata.get(_N_PIXELS_KEY, {})
        for amp in ptc.amp_names:
            n_pixels[amp].append(float(per_amp.get(amp, math.nan)))
    bad_reasons: dict[str, str] = {}
    settings = config.fit_settings()
    for amp in ptc.amp_names:
        npix = np.asarray(n_pixels[amp])
        known = bool(np.isfinite(npix).all())
        fit = fit_exp_approximation(
            ptc.raw_means[amp],
            ptc.raw_vars[amp],
            npix if known else None,
            ptc.exp_id_mask[amp],
            settings,
        )
        ptc.exp_id_mask[amp] = [bool(v) for v in fit.mask]
        ptc.gain[amp] = fit.gain
        ptc.gain_err[amp] = fit.gain_err
        ptc.noise[amp] = fit.noise
        ptc.noise_err[amp] = fit.noise_err
        ptc.fit_pars[amp] = fit.params
        ptc.turnoff[amp] = fit.turnoff
        problem: str | None
        if fit_type.startswith("FULLCOVARIANCE") and fallback is not None:
            # Too few pairs and no fallback: cp_pipe's bad amp, with the reason.
            problem = fallback
        elif fit_type.startswith("FULLCOVARIANCE") and fit.valid:
            problem = _solve_full_covariance(ptc, amp, fit, config)
        else:
            problem = ptc_amp_problem(fit, config)
        ptc.gain_unadjusted[amp] = ptc.gain[amp]
        if problem is not None:
            ptc.bad_amps.append(amp)
            bad_reasons[amp] = problem
    if fit_type != config.ptcFitType:
        ptc.metadata[PTC_FIT_TYPE_REQUESTED_KEY] = config.ptcFitType
        ptc.metadata[PTC_FIT_FALLBACK_KEY] = (
            f"{len(ordered)} flat pairs, fewer than the {config.maximumRangeCovariancesAstierFullCovFit} "
            f"that {config.ptcFitType} needs (one per fitted lag): {fit_type} fitted instead"
        )
    ptc.metadata.update(
        {
            "OBSTYPE": "PTC",
            "PTC_FIT_TYPE": fit_type,
            "PTC N PAIRS": len(ordered),
            PTC_BAD_AMP_REASONS_KEY: bad_reasons,
            "INPUT_EXPOSURES": [
                exp_id for partial in ordered for exp_id in partial.metadata.get("INPUT_EXPOSURES", [])
            ],
        }
    )
    ptc.metadata.pop(_N_PIXELS_KEY, None)
    ptc.metadata.pop("PTC RAW DELTAS", None)
    ptc.metadata.pop("EXPTIME", None)
    return ptc


def _effective_fit_type(n_pairs: int, config: PtcSolveConfig) -> tuple[str, str | None]:
    """The fit type used for a detector with ``n_pairs`` pairs, and the bad-amp reason if the requested
    full-covariance fit cannot be made and no fallback is allowed (None otherwise)."""
    requested = config.ptcFitType
    needed = config.maximumRangeCovariancesAstierFullCovFit
    if not requested.startswith("FULLCOVARIANCE") or n_pairs >= needed:
        return requested, None
    if config.doFallbackToExpApproximation:
        return "EXPAPPROXIMATION", None
    return requested, (
        f"{requested} needs at least {needed} flat pairs (one per fitted lag), the detector has "
        f"{n_pairs} (cpPtcSolve doFallbackToExpApproximation=True fits EXPAPPROXIMATION instead)"
    )


def _solve_full_covariance(
    ptc: PhotonTransferCurve, amp: str, initial: ExpApproxFit, config: PtcSolveConfig
) -> str | None:
    """Fit Eq. 20 to one amp's covariances (the points ``initial`` kept); fill ``ptc``; return the problem."""
    n_lags = config.maximumRangeCovariancesAstierFullCovFit
    n_points = len(ptc.raw_means[amp])
    covariances = ptc.covariances[amp]
    weights = ptc.covariances_sqrt_weights[amp]
    if len(covariances) != n_points or len(weights) != n_points:
        raise ValueError(
            f"ptcFitType={config.ptcFitType} needs the covariances of every pair, but amp {amp} has "
            f"{len(covariances)} for {n_points} pairs: measure them in cpPtcExtractPair "
            "(maximumRangeCovariancesAstier > 0)."
        )
    cov = np.asarray(covariances, dtype=np.float64)
    if cov.shape[1] < n_lags:
        raise ValueError(
            f"maximumRangeCovariancesAstierFullCovFit={n_lags} exceeds the {cov.shape[1]} lags measured "
            "(cpPtcExtractPair maximumRangeCovariancesAstier)."
        )
    sqrt_weights = np.asarray(weights, dtype=np.float64)
    fit_b = config.ptcFitType == "FULLCOVARIANCE"
    no_b: FullCovarianceFit | None = None
    if not fit_b or config.doFitNoB:
        no_b = fit_full_covariance(
            ptc.raw_means[amp], cov, sqrt_weights, initial.mask, n_lags, initial.gain, fit_b=False
        )
    if not fit_b:
        assert no_b is not None
        full = no_b
    else:
        if no_b is not None:
            ptc.a_matrix_no_b[amp] = no_b.a_matrix.tolist()
            ptc.noise_matrix_no_b[amp] = no_b.noise_matrix.tolist()
            ptc.covariances_model_no_b[amp] = no_b.model.tolist()
        full = fit_full_covariance(
            ptc.raw_means[amp],
            cov,
            sqrt_weights,
            initial.mask,
            n_lags,
            initial.gain,
            fit_b=True,
            initial_fit=no_b if no_b is not None and no_b.valid else None,
        )
    ptc.gain[amp] = full.gain
    ptc.gain_err[amp] = full.gain_err
    ptc.noise[amp] = full.noise
    ptc.noise_err[amp] = full.noise_err
    ptc.a_matrix[amp] = full.a_matrix.tolist()
    ptc.b_matrix[amp] = full.b_matrix.tolist()
    ptc.noise_matrix[amp] = full.noise_matrix.tolist()
    ptc.covariances_model[amp] = full.model.tolist()
    ptc.fit_pars[amp] = [full.a00, full.gain, float(full.noise_matrix[0, 0])]
    return full_covariance_problem(full, config)


class PtcSolveTask(pipeBase.PipelineTask):
    """Fit the photon transfer curve of one detector from its flat-pair partials."""

    ConfigClass = PtcSolveConfig
    _DefaultName = "cpPtcSolve"
    config: PtcSolveConfig

    def run(self, inputCovariances: Sequence[PhotonTransferCurve]) -> pipeBase.Struct:
        """Solve the PTC.

        Parameters
        ----------
        inputCovariances : `~collections.abc.Sequence` [`butler.calib_types.PhotonTransferCurve`]
            Partials of one detector.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputPtcDataset``: the solved `PhotonTransferCurve`.
        """
        ptc = solve_ptc(list(inputCovariances), self.config)
        if PTC_FIT_FALLBACK_KEY in ptc.metadata:
            self.log.warning("Detector %d: %s.", ptc.detector, ptc.metadata[PTC_FIT_FALLBACK_KEY])
        gains = [g for g in ptc.gain.values() if math.isfinite(g)]
        self.log.info(
            "Detector %d: PTC from %d pairs, median gain %.4f e-/ADU, %d bad amps.",
            ptc.detector,
            len(inputCovariances),
            float(np.median(gains)) if gains else math.nan,
            len(ptc.bad_amps),
        )
        return pipeBase.Struct(outputPtcDataset=ptc)
