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

"""Defect PipelineTasks (labels ``cpMeasureDarkDefects``, ``cpMeasureFlatDefects``, ``cpMergeDefects``).

* `MeasureDefectsTask` (dimensions instrument + detector) finds hot or cold pixels on one combined
  calibration made earlier in the same pipeline (`pipelines.defects.measure_defects`) and writes a
  `butler.calib_types.Defects` (``cpDefectsFromDark`` / ``cpDefectsFromFlat``).
* `MergeDefectsTask` ORs the dark and flat defect lists and the 5-px detector edge frame into the
  ``defects`` calibration.

``cpDefects.yaml`` runs them after the core ISR (restricted to darks or flats with
`selected_isr_task.SelectedIsrTask`) and combine tasks, so the job's darks and flats are processed
inside the pipeline, as cp_pipe's bootstrap chain does.

May import: lsst.pipe.base, lsst.pex.config, lsst.images, numpy, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "MeasureDefectsConfig",
    "MeasureDefectsConnections",
    "MeasureDefectsTask",
    "MergeDefectsConfig",
    "MergeDefectsConnections",
    "MergeDefectsTask",
]

from typing import Any

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np

from ...butler.calib_types import Defects
from ...butler.camera import INSTRUMENT_NAME, get_camera
from ...butler.images import masked_image_arrays
from ..defects import ColumnThresholds, DefectThresholds, mask_to_defects, measure_defects, merge_defect_masks
from .quanta import detector_args

_SHAPE_KEY = "LSST CALIB DEFECTS SHAPE"


class MeasureDefectsConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `MeasureDefectsTask`."""

    inputExp = cT.Input(
        name="cpDefectsDark",
        doc="Combined calibration (dark per second, or flat) of one detector.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )
    outputDefects = cT.Output(
        name="cpDefectsFromDark",
        doc="Defects found on the combined calibration.",
        storageClass="DefectTable",
        dimensions=("instrument", "detector"),
    )


_DEFECT_DEFAULTS = DefectThresholds()
_COLUMN_DEFAULTS = ColumnThresholds()


class MeasureDefectsConfig(pipeBase.PipelineTaskConfig, pipelineConnections=MeasureDefectsConnections):
    """Configuration (cp_pipe ``MeasureDefectsTaskConfig`` names, LSSTComCam values); the thresholds'
    defaults are those of `pipelines.defects.DefectThresholds` and `~pipelines.defects.ColumnThresholds`
    (`thresholds` and `column_thresholds` make them of this config)."""

    imageType = pexConfig.ChoiceField[str](
        doc="Kind of calibration; AUTO reads OBSTYPE/IMGTYPE of the image (bias, dark, else flat).",
        default="AUTO",
        allowed={"AUTO": "From the header.", "bias": "Bias.", "dark": "Dark.", "flat": "Flat."},
    )
    thresholdType = pexConfig.ChoiceField[str](
        doc="Threshold kind.",
        default=_DEFECT_DEFAULTS.threshold_type,
        allowed={"VALUE": "Absolute thresholds.", "STDEV": "Multiples of the amp clipped stdev."},
    )
    darkCurrentThreshold = pexConfig.Field[float](
        doc="Hot-pixel dark current (e-/s).", default=_DEFECT_DEFAULTS.dark_current_threshold
    )
    biasThreshold = pexConfig.Field[float](
        doc="Hot-pixel bias excess (ADU).", default=_DEFECT_DEFAULTS.bias_threshold
    )
    fracThresholdFlat = pexConfig.Field[float](
        doc="Cold pixel: at most this fraction of the amp mean.", default=_DEFECT_DEFAULTS.frac_threshold_flat
    )
    nSigmaBright = pexConfig.Field[float](
        doc="STDEV mode: bright threshold.", default=_DEFECT_DEFAULTS.n_sigma_bright
    )
    nSigmaDark = pexConfig.Field[float](
        doc="STDEV mode: dark threshold (negative).", default=_DEFECT_DEFAULTS.n_sigma_dark
    )
    badOnAndOffPixelColumnThreshold = pexConfig.Field[int](
        doc="Flagged pixels (on a 2000-row amp) that make a column 'blinking'.",
        default=_COLUMN_DEFAULTS.bad_on_off,
    )
    goodPixelColumnGapThreshold = pexConfig.Field[int](
        doc="Good-pixel gap (on a 2000-row amp) left unfilled in a blinking column.",
        default=_COLUMN_DEFAULTS.good_gap,
    )
    badPixelsToFillColumnThreshold = pexConfig.Field[int](
        doc="Flagged pixels (on a 2000-row amp) that make the whole amp column bad; <= 0 disables.",
        default=_COLUMN_DEFAULTS.fill_column,
    )
    scaleColumnThresholdsToAmpHeight = pexConfig.Field[bool](
        doc="Scale the three column thresholds by amp rows / 2000 (simulated amps are shorter).", default=True
    )
    units = pexConfig.ChoiceField[str](
        doc="Image units when the header has no LSST ISR UNITS.",
        default="electron",
        allowed={"electron": "Electrons.", "adu": "ADU (the dark threshold is divided by the camera gain)."},
    )

    def thresholds(self) -> DefectThresholds:
        """Return the `DefectThresholds` of this config."""
        return DefectThresholds(
            threshold_type=self.thresholdType,
            dark_current_threshold=self.darkCurrentThreshold,
            bias_threshold=self.biasThreshold,
            frac_threshold_flat=self.fracThresholdFlat,
            n_sigma_bright=self.nSigmaBright,
            n_sigma_dark=self.nSigmaDark,
        )

    def column_thresholds(self, rows: int) -> ColumnThresholds:
        """Return the `ColumnThresholds` of this config for an amp of ``rows`` rows (scaled to it with
        ``scaleColumnThresholdsToAmpHeight``)."""
        columns = ColumnThresholds(
            self.badOnAndOffPixelColumnThreshold,
            self.goodPixelColumnGapThreshold,
            self.badPixelsToFillColumnThreshold,
        )
        return columns.for_amp_rows(rows) if self.scaleColumnThresholdsToAmpHeight else columns


class MeasureDefectsTask(pipeBase.PipelineTask):
    """Find the defects of one combined calibration."""

    ConfigClass = MeasureDefectsConfig
    _DefaultName = "cpMeasureDefects"
    config: MeasureDefectsConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(inputs["inputExp"], **detector_args(butlerQC))
        butlerQC.put(outputs, outputRefs)

    def run(self, inputExp: Any, *, detector_id: int, instrument: str = INSTRUMENT_NAME) -> pipeBase.Struct:
        """Measure the defects.

        Parameters
        ----------
        inputExp : `lsst.images.MaskedImage`
            Combined calibration.
        detector_id : `int`
            Detector id.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputDefects``: `butler.calib_types.Defects`.
        """
        detector = get_camera(instrument)[detector_id]
        image, bad, _, metadata = masked_image_arrays(inputExp)
        image_type = self._image_type(metadata)
        rows, cols = image.shape
        ny, nx = rows // 2, cols // 8
        boxes = {
            amp.name: (slice(amp.iy * ny, (amp.iy + 1) * ny), slice(amp.ix * nx, (amp.ix + 1) * nx))
            for amp in detector
        }
        columns = self.config.column_thresholds(ny)
        units = str(metadata.get("LSST ISR UNITS", self.config.units)).lower()
        exp_time = float(metadata.get("EXPTIME", 1.0) or 1.0)
        mask, counters = measure_defects(
            image,
            image_type,
            boxes,
            thresholds=self.config.thresholds(),
            column_thresholds=columns,
            gains=detector.gains,
            exp_time=exp_time,
            units=units,
            bad=bad,
        )
        header = {
            "OBSTYPE": "defects",
            "DET_NAME": detector.name,
            "CALIB_ID": f"raftName=R22 detectorName={detector.slot} detector={detector.id}",
            "LSST CALIB DEFECTS SOURCE": image_type,
            "LSST CALIB DEFECTS COLUMN THRESHOLDS": [
                columns.bad_on_off,
                columns.good_gap,
                columns.fill_column,
            ],
            _SHAPE_KEY: [rows, cols],
        }
        header.update(counters)
        header.update({key: value for key, value in metadata.items() if key.startswith("CPP_INPUT_")})
        defects = mask_to_defects(mask, detector.id, header)
        self.log.info(
            "Detector %d: %d %s defect pixels in %d boxes (%d full bad columns).",
            detector_id,
            int(mask.sum()),
            image_type,
            len(defects),
            counters["LSST CALIB DEFECTS N_BAD_COLUMNS"],
        )
        return pipeBase.Struct(outputDefects=defects)

    def _image_type(self, metadata: dict[str, Any]) -> str:
        """The configured image type, or the one in the header (cp_pipe reads IMGTYPE)."""
        if self.config.imageType != "AUTO":
            return self.config.imageType
        value = str(metadata.get("IMGTYPE") or metadata.get("OBSTYPE") or "").lower()
        return value if value in ("bias", "dark") else "flat"


class MergeDefectsConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `MergeDefectsTask`; the dark or flat input can be switched off."""

    darkDefects = cT.Input(
        name="cpDefectsFromDark",
        doc="Defects found on the combined dark.",
        storageClass="DefectTable",
        dimensions=("instrument", "detector"),
    )
    flatDefects = cT.Input(
        name="cpDefectsFromFlat",
        doc="Defects found on the combined flat.",
        storageClass="DefectTable",
        dimensions=("instrument", "detector"),
    )
    mergedDefects = cT.Output(
        name="defects",
        doc="Merged defect list.",
        storageClass="DefectTable",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )

    def __init__(self, *, config: MergeDefectsConfig | None = None) -> None:
        super().__init__(config=config)
        assert config is not None
        if not config.useDarkDefects:
            del self.darkDefects
        if not config.useFlatDefects:
            del self.flatDefects


class MergeDefectsConfig(pipeBase.PipelineTaskConfig, pipelineConnections=MergeDefectsConnections):
    """Configuration (cp_pipe ``MergeDefectsCombinedTaskConfig`` names, LSSTComCam values)."""

    useDarkDefects = pexConfig.Field[bool](doc="Merge the defects found on the dark.", default=True)
    useFlatDefects = pexConfig.Field[bool](doc="Merge the defects found on the flat.", default=True)
    combinationMode = pexConfig.ChoiceField[str](
        doc="How defect lists are combined.", default="OR", allowed={"OR": "Union of the defects."}
    )
    edgesAsDefects = pexConfig.Field[bool](doc="Flag a frame around the detector.", default=True)
    nPixBorderUpDown = pexConfig.Field[int](doc="Frame rows at the bottom and top.", default=5)
    nPixBorderLeftRight = pexConfig.Field[int](doc="Frame columns at the left and right.", default=5)

    def validate(self) -> None:
        super().validate()
        if not (self.useDarkDefects or self.useFlatDefects):
            raise pexConfig.FieldValidationError(
                MergeDefectsConfig.useDarkDefects, self, "At least one of the dark or flat defects is needed."
            )


class MergeDefectsTask(pipeBase.PipelineTask):
    """OR the defect lists of one detector and add the edge frame."""

    ConfigClass = MergeDefectsConfig
    _DefaultName = "cpMergeDefects"
    config: MergeDefectsConfig

    def run(self, darkDefects: Defects | None = None, flatDefects: Defects | None = None) -> pipeBase.Struct:
        """Merge the defect lists.

        Parameters
        ----------
        darkDefects, flatDefects : `butler.calib_types.Defects`, optional
            Defects from the combined dark and flat (at least one).

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``mergedDefects``: `butler.calib_types.Defects`.
        """
        inputs = [d for d in (darkDefects, flatDefects) if d is not None]
        if not inputs:
            raise pipeBase.NoWorkFound("No defect list to merge.")
        shapes = {tuple(d.metadata[_SHAPE_KEY]) for d in inputs if _SHAPE_KEY in d.metadata}
        if len(shapes) != 1:
            raise RuntimeError(f"Defect inputs disagree on (or lack) the detector shape: {sorted(shapes)}.")
        shape = shapes.pop()
        detector = inputs[0].detector
        border = (self.config.nPixBorderUpDown, self.config.nPixBorderLeftRight)
        if not self.config.edgesAsDefects:
            border = (0, 0)
        merged = merge_defect_masks((d.to_mask(shape) for d in inputs), shape, *border)
        header: dict[str, Any] = {
            "DET_NAME": inputs[0].metadata.get("DET_NAME", ""),
            "CALIB_ID": inputs[0].metadata.get("CALIB_ID", ""),
            _SHAPE_KEY: list(shape),
            "LSST CALIB DEFECTS EDGE": list(border),
            "LSST CALIB DEFECTS SOURCES": [d.metadata.get("LSST CALIB DEFECTS SOURCE", "?") for d in inputs],
        }
        for source in inputs:
            kind = str(source.metadata.get("LSST CALIB DEFECTS SOURCE", "?")).upper()
            header[f"LSST CALIB DEFECTS {kind} NPIX"] = int(source.to_mask(shape).sum())
            for key, value in source.metadata.items():
                if key.endswith((" N_HOT", " N_COLD", " N_BAD_COLUMNS")):
                    header[key] = int(header.get(key, 0)) + int(value)
        defects = mask_to_defects(merged, detector, header)
        self.log.info(
            "Detector %d: %d defect pixels (%.3f%%) in %d boxes.",
            detector,
            int(merged.sum()),
            100.0 * float(np.mean(merged)),
            len(defects),
        )
        return pipeBase.Struct(mergedDefects=defects)
