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

"""Calibration combine PipelineTasks (labels ``cpBiasCombine``, ``cpDarkCombine``, ``cpFlatCombine``).

`CalibCombineTask` (dimensions instrument + detector; bias, dark) and `CalibCombineByFilterTask`
(instrument + detector + physical_filter; flat) combine the ISR outputs of one detector with
`pipelines.combine.combine_exposures`. Inputs are connected with ``deferLoad=True`` (the quantum
records them as it makes the handles) and read in bands of full rows, so the task never holds all
input frames: the band height is set from ``memoryBudgetMB`` and the number of inputs. Each input's
file, located through the handle's butler, is opened once for the whole combine
(`butler.image_bands`); a dataset the butler cannot give as one file is read band by band through
the handle (``parameters={"bbox": ...}``).

May import: lsst.pipe.base, lsst.pex.config, lsst.daf.butler, lsst.images, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "CalibCombineByFilterConnections",
    "CalibCombineByFilterTask",
    "CalibCombineConfig",
    "CalibCombineConnections",
    "CalibCombineTask",
]

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Box

from ...butler.camera import INSTRUMENT_NAME, Detector, get_camera
from ...butler.image_bands import ImageBands, excluded_pixels, open_image_bands
from ...butler.images import make_masked_image, masked_image_arrays
from ..combine import Band, combine_exposures, combined_metadata, input_scale
from .defaults import keyword_default
from .quanta import quantum_data_id


class CalibCombineConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `CalibCombineTask`."""

    inputExpHandles = cT.Input(
        name="cpInputs",
        doc="ISR-processed exposures to combine (read in row bands).",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
        deferLoad=True,
    )
    outputData = cT.Output(
        name="calib",
        doc="Combined calibration.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )


class CalibCombineConfig(pipeBase.PipelineTaskConfig, pipelineConnections=CalibCombineConnections):
    """Configuration of the combine (cp_pipe ``CalibCombineConfig`` names)."""

    calibrationType = pexConfig.ChoiceField[str](
        doc="Type of calibration made.",
        default="bias",
        allowed={"bias": "Combined bias", "dark": "Combined dark", "flat": "Combined flat"},
    )
    exposureScaling = pexConfig.ChoiceField[str](
        doc="Scale each input is divided by.",
        default="Unity",
        allowed={
            "Unity": "No scaling.",
            "ExposureTime": "Exposure time.",
            "DarkTime": "Dark time.",
            "InputList": "Per-exposure scales from the flat normalisation (inputScales).",
        },
    )
    scalingLevel = pexConfig.ChoiceField[str](
        doc="Granularity of InputList scales.",
        default="DETECTOR",
        allowed={"DETECTOR": "One scale per exposure and detector.", "AMP": "One scale per amp."},
    )
    combine = pexConfig.ChoiceField[str](
        doc="Statistic of the combine.", default="MEANCLIP", allowed={"MEANCLIP": "Clipped mean."}
    )
    clip = pexConfig.Field[float](
        doc="Clipping threshold (sigma).", default=keyword_default(combine_exposures, "nsigma")
    )
    nIter = pexConfig.Field[int](
        doc="Clipping iterations.", default=keyword_default(combine_exposures, "niter")
    )
    mask = pexConfig.ListField[str](
        doc="Mask planes whose input pixels are ignored.", default=["SAT", "DETECTED", "INTRP"]
    )
    maxVisitsToCalcErrorFromInputVariance = pexConfig.Field[int](
        doc="Below this number of inputs the output variance comes from the input variances.",
        default=keyword_default(combine_exposures, "variance_from_inputs_below"),
    )
    memoryBudgetMB = pexConfig.Field[float](
        doc="Memory for the stacked row band of all inputs (MiB); sets the band height.",
        default=keyword_default(combine_exposures, "memory_budget_bytes") / 2**20,
    )
    minInputs = pexConfig.Field[int](doc="Fewest inputs accepted.", default=1)
    flatSource = pexConfig.Field[str](doc="FLATSRC header of flats.", default="DOME")


class CalibCombineTask(pipeBase.PipelineTask):
    """Clipped-mean combine of ISR outputs of one detector (bias, dark)."""

    ConfigClass = CalibCombineConfig
    _DefaultName = "cpCombine"
    config: CalibCombineConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        data_id = quantum_data_id(butlerQC)
        handles = inputs["inputExpHandles"]
        exposure_ids = [int(h.dataId["exposure"]) for h in handles]
        outputs = self.run(
            handles,
            exposure_ids=exposure_ids,
            detector_id=int(data_id["detector"]),
            instrument=str(data_id["instrument"]),
            input_scales=inputs.get("inputScales"),
        )
        butlerQC.put(outputs, outputRefs)

    def run(
        self,
        inputExpHandles: Sequence[DeferredDatasetHandle],
        *,
        exposure_ids: Sequence[int],
        detector_id: int,
        instrument: str = INSTRUMENT_NAME,
        input_scales: Mapping[str, Any] | None = None,
    ) -> pipeBase.Struct:
        """Combine the inputs of one detector.

        Parameters
        ----------
        inputExpHandles : `~collections.abc.Sequence` [`lsst.daf.butler.DeferredDatasetHandle`]
            Handles of the ISR outputs. Each one's file is opened once for the whole combine (see
            `_BandReader`); anything with ``get(parameters={"bbox": Box})`` and no ``butler`` is
            read band by band.
        exposure_ids : `~collections.abc.Sequence` [`int`]
            Exposure id of each handle.
        detector_id : `int`
            Detector id.
        input_scales : `~collections.abc.Mapping`, optional
            Flat normalisation output (``expScale``), required for ``InputList`` scaling.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputData``: the combined `lsst.images.MaskedImage`.
        """
        detector = get_camera(instrument)[detector_id]
        order = np.argsort(exposure_ids, kind="stable")
        handles = [inputExpHandles[i] for i in order]
        ids = [int(exposure_ids[i]) for i in order]
        listed: list[Mapping[str, float] | None] = [None] * len(ids)
        if self.config.exposureScaling == "InputList":
            handles, ids, listed = self._select_listed(handles, ids, detector.name, detector_id, input_scales)
        if len(handles) < max(1, self.config.minInputs):
            raise pipeBase.NoWorkFound(
                f"{len(handles)} inputs for detector {detector_id}; at least {self.config.minInputs} needed."
            )
        shape = _full_shape(handles[0])
        sources = [_BandReader(handle, tuple(self.config.mask), shape[1]) for handle in handles]
        with contextlib.ExitStack() as stack:
            if len(sources) <= MAX_OPEN_INPUTS:
                for source in sources:
                    source.open(stack)
            return self._combine(sources, shape, ids, listed, detector, detector_id)

    def _combine(
        self,
        sources: list[_BandReader],
        shape: tuple[int, int],
        ids: list[int],
        listed: list[Mapping[str, float] | None],
        detector: Detector,
        detector_id: int,
    ) -> pipeBase.Struct:
        """Scale and combine the inputs (`run` after the inputs are open)."""
        # Scales need the header of each input: read it from a one-pixel cut-out.
        metadata = [source.header() for source in sources]
        scales: list[float | Mapping[str, float]] = []
        for meta, listed_scale in zip(metadata, listed, strict=True):
            if isinstance(listed_scale, Mapping):
                if self.config.scalingLevel == "DETECTOR":
                    scales.append(input_scale("InputList", meta, float(np.mean(list(listed_scale.values())))))
                else:
                    scales.append({amp: input_scale("InputList", meta, s) for amp, s in listed_scale.items()})
            else:
                scales.append(input_scale(self.config.exposureScaling, meta))
        result = combine_exposures(
            sources,
            shape,
            scales,
            nsigma=self.config.clip,
            niter=self.config.nIter,
            memory_budget_bytes=self.config.memoryBudgetMB * 2**20,
            variance_from_inputs_below=self.config.maxVisitsToCalcErrorFromInputVariance,
            detector=detector,
        )
        self.log.info(
            "Combined %d %s inputs of detector %d in %d bands of %d rows (%s scaling).",
            len(sources),
            self.config.calibrationType,
            detector_id,
            result.n_bands,
            result.band_rows,
            self.config.exposureScaling,
        )
        md = combined_metadata(
            self.config.calibrationType,
            metadata,
            ids,
            scales,
            image=result.image,
            bad=result.bad,
            detector=detector,
            flat_source=self.config.flatSource if self.config.calibrationType == "flat" else None,
            extra={"LSST CALIB COMBINE BAND ROWS": result.band_rows, "EXPSCALE": self.config.exposureScaling},
        )
        output = make_masked_image(result.image, bad=result.bad, variance=result.variance, metadata=md)
        return pipeBase.Struct(outputData=output)

    def _select_listed(
        self,
        handles: list[DeferredDatasetHandle],
        ids: list[int],
        detector_name: str,
        detector_id: int,
        input_scales: Mapping[str, Any] | None,
    ) -> tuple[list[DeferredDatasetHandle], list[int], list[Mapping[str, float] | None]]:
        """Keep the inputs that have a normalisation scale (cp_pipe drops the others)."""
        if input_scales is None:
            raise RuntimeError("exposureScaling=InputList needs the inputScales connection.")
        per_detector = _lookup(input_scales.get("expScale", {}), detector_id)
        if per_detector is None:
            raise pipeBase.NoWorkFound(f"No normalisation scales for detector {detector_name}.")
        kept_handles: list[DeferredDatasetHandle] = []
        kept_ids: list[int] = []
        kept_scales: list[Mapping[str, float] | None] = []
        for handle, exposure_id in zip(handles, ids, strict=True):
            amp_scales = {
                amp: _lookup(per_exp, exposure_id)
                for amp, per_exp in per_detector.items()
                if _lookup(per_exp, exposure_id) is not None
            }
            if not amp_scales:
                self.log.warning("Exposure %d has no normalisation scale; dropped.", exposure_id)
                continue
            kept_handles.append(handle)
            kept_ids.append(exposure_id)
            kept_scales.append({amp: float(value) for amp, value in amp_scales.items()})
        return kept_handles, kept_ids, kept_scales


def _lookup(mapping: Mapping[Any, Any], key: int) -> Any:
    """Look up an integer key that may have been stored as an int or a str."""
    if key in mapping:
        return mapping[key]
    return mapping.get(str(key))


def _full_shape(handle: DeferredDatasetHandle) -> tuple[int, int]:
    """Shape of the whole stored image (from the ``bbox`` component, no pixels read)."""
    bbox = handle.get(component="bbox")
    return (int(bbox.y.size), int(bbox.x.size))


MAX_OPEN_INPUTS = 512
"""Most inputs a combine keeps open at once; with more, each row band re-opens its inputs."""


class _BandReader:
    """`pipelines.combine.BandSource` reading row bands of one butler dataset.

    `open` locates the dataset's file through the handle's butler (``getURI``; the quantum already
    recorded the input when it made the handle) and opens it once for the whole combine
    (`butler.image_bands.open_image_bands`). Without `open`, or when the butler cannot give one file
    for the dataset, each band is a butler read with ``parameters={"bbox": ...}``.
    """

    def __init__(self, handle: DeferredDatasetHandle, planes: tuple[str, ...], n_cols: int) -> None:
        self._handle = handle
        self._planes = planes
        self._n_cols = n_cols
        self._bands: ImageBands | None = None

    def open(self, stack: contextlib.ExitStack) -> None:
        """Open the dataset's file for the rest of ``stack``'s context (see the class docstring)."""
        butler = getattr(self._handle, "butler", None)
        if butler is None:
            return
        try:
            uri = butler.getURI(self._handle.ref)
        except (RuntimeError, FileNotFoundError):
            # A dataset stored as several artifacts has no single file: keep reading band by band.
            return
        self._bands = stack.enter_context(open_image_bands(uri, self._planes))

    def header(self) -> dict[str, Any]:
        """Decoded header of the dataset."""
        if self._bands is not None:
            return masked_image_arrays(self._bands.corner())[3]
        return masked_image_arrays(self._handle.get(parameters={"bbox": Box.factory[0:1, 0:1]}))[3]

    def __call__(self, start: int, stop: int, with_variance: bool) -> Band:
        box = Box.factory[start:stop, 0 : self._n_cols]
        if self._bands is not None:
            image, excluded, variance = self._bands.read(box, with_variance)
            return Band(image=image, excluded=excluded, variance=variance)
        names = ["image", "mask", "variance"] if with_variance else ["image", "mask"]
        # One file open that decompresses only the needed planes of the band.
        planes = self._handle.get(component="components", parameters={"bbox": box, "components": names})
        excluded = excluded_pixels(planes["mask"], self._planes)
        variance = np.asarray(planes["variance"].array, dtype=np.float32) if with_variance else None
        return Band(
            image=np.asarray(planes["image"].array, dtype=np.float32), excluded=excluded, variance=variance
        )


class CalibCombineByFilterConnections(
    CalibCombineConnections, dimensions=("instrument", "detector", "physical_filter")
):
    """Connections of `CalibCombineByFilterTask` (flats: one output per filter): the inputs of
    `CalibCombineConnections` plus the scales (as cp_pipe's, which derives from it too)."""

    inputScales = cT.Input(
        name="cpFlatNormScales",
        doc="Per-exposure scales from the flat normalisation.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "physical_filter"),
    )
    outputData = cT.Output(
        name="flat",
        doc="Combined flat.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "detector", "physical_filter"),
        isCalibration=True,
    )

    def __init__(self, *, config: CalibCombineByFilterConfig | None = None) -> None:
        super().__init__(config=config)
        assert config is not None
        if config.exposureScaling != "InputList":
            del self.inputScales


class CalibCombineByFilterConfig(CalibCombineConfig, pipelineConnections=CalibCombineByFilterConnections):
    """Configuration of `CalibCombineByFilterTask`."""

    def setDefaults(self) -> None:
        super().setDefaults()
        self.calibrationType = "flat"
        self.exposureScaling = "InputList"


class CalibCombineByFilterTask(CalibCombineTask):
    """Combine of the flats of one detector and filter."""

    ConfigClass = CalibCombineByFilterConfig  # type: ignore[assignment]
    _DefaultName = "cpFlatCombine"
