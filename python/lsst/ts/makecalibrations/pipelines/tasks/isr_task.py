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

"""The ISR PipelineTask (labels ``cpBiasIsr``, ``cpDarkIsr``, ``cpFlatIsr``, ``verify*Isr``, ``cpPtcIsr``).

`IsrTask` reads one ``raw`` (`butler.raw_image.RawImage`) and the calibrations its config asks for
(``bias``, ``dark``, ``flat``, ``defects``, looked up by validity range in CALIBRATION collections),
runs `pipelines.isr.run_isr` and writes an lsst.images ``MaskedImage`` (``cp*Proc`` / ``verify*Proc``,
the name is set per pipeline with ``connections.outputExposure``). Connections for calibrations whose
step is off are removed, so a pipeline that does not subtract a bias does not need one certified.

May import: lsst.pipe.base, lsst.pex.config, lsst.daf.butler, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = ["IsrTask", "IsrTaskConfig", "IsrTaskConnections", "PreparedCalibrations"]

import dataclasses
from typing import Any

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np

from ...butler.calib_types import Defects
from ...butler.camera import INSTRUMENT_NAME, get_camera
from ...butler.images import make_masked_image, masked_image_arrays
from ...butler.raw_image import RawImage
from ..isr import IsrResult, IsrSettings, run_isr
from .quanta import quantum_data_id


class IsrTaskConnections(
    pipeBase.PipelineTaskConnections,
    dimensions=("instrument", "exposure", "detector"),
):
    """Connections of `IsrTask`; calibration inputs are removed when their step is off."""

    ccdExposure = cT.Input(
        name="raw",
        doc="Raw amp arrays of one detector.",
        storageClass="RawImage",
        dimensions=("instrument", "exposure", "detector"),
    )
    bias = cT.PrerequisiteInput(
        name="bias",
        doc="Combined bias (image units).",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )
    dark = cT.PrerequisiteInput(
        name="dark",
        doc="Combined dark (image units per second of dark time).",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )
    flat = cT.PrerequisiteInput(
        name="flat",
        doc="Combined flat of the exposure's filter.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "physical_filter", "detector"),
        isCalibration=True,
    )
    defects = cT.PrerequisiteInput(
        name="defects",
        doc="Defect list.",
        storageClass="DefectTable",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )
    ptc = cT.PrerequisiteInput(
        name="ptc",
        doc="Photon transfer curve: its gains convert to electrons and its read noise (e-) goes to LSST "
        "ISR READNOISE and the variance, as cp_pipe's ISR; optional (the camera's nominal gains and "
        "noise without one), unused in bootstrap mode.",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "detector"),
        isCalibration=True,
        multiple=True,
        minimum=0,
    )
    outputExposure = cT.Output(
        name="postISRCCD",
        doc="Processed exposure.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
    )

    def __init__(self, *, config: IsrTaskConfig | None = None) -> None:
        super().__init__(config=config)
        assert config is not None
        if not config.doBias:
            del self.bias
        if not config.doDark:
            del self.dark
        if not config.doFlat:
            del self.flat
        if not config.doDefect:
            del self.defects
        if config.doBootstrap or not config.doApplyGains:
            del self.ptc


_ISR_DEFAULTS = IsrSettings()


class IsrTaskConfig(pipeBase.PipelineTaskConfig, pipelineConnections=IsrTaskConnections):
    """Switches of the numpy ISR; names follow cp_pipe's calibration baseline, defaults are those of
    `pipelines.isr.IsrSettings` (`settings` makes one of this config)."""

    doDither = pexConfig.Field[bool](
        doc="Dither integer raw values by U[-0.5, 0.5) ADU.", default=_ISR_DEFAULTS.doDither
    )
    doSaturation = pexConfig.Field[bool](
        doc="Mask saturated raw values (SAT).", default=_ISR_DEFAULTS.doSaturation
    )
    saturation = pexConfig.Field[float](doc="Saturation level (ADU).", default=_ISR_DEFAULTS.saturation)
    doApplyGains = pexConfig.Field[bool](
        doc="Convert to electrons with the gains of the ptc input, the camera gains without one.",
        default=_ISR_DEFAULTS.doApplyGains,
    )
    doBootstrap = pexConfig.Field[bool](
        doc="Bootstrap mode: gain 1 (ADU), overscan noise as read noise.", default=_ISR_DEFAULTS.doBootstrap
    )
    doCrosstalk = pexConfig.Field[bool](
        doc="Crosstalk correction (accepted; the simulated camera has no crosstalk, so nothing is done).",
        default=_ISR_DEFAULTS.doCrosstalk,
    )
    doLinearize = pexConfig.Field[bool](
        doc="Linearity correction (accepted; the simulated sensors are linear).",
        default=_ISR_DEFAULTS.doLinearize,
    )
    doDeferredCharge = pexConfig.Field[bool](
        doc="Deferred-charge (CTI) correction (accepted; the simulation has perfect CTE).",
        default=_ISR_DEFAULTS.doDeferredCharge,
    )
    doBias = pexConfig.Field[bool](doc="Subtract the combined bias.", default=_ISR_DEFAULTS.doBias)
    doDark = pexConfig.Field[bool](
        doc="Subtract the combined dark scaled by dark time.", default=_ISR_DEFAULTS.doDark
    )
    doDefect = pexConfig.Field[bool](doc="Mask defects as BAD.", default=_ISR_DEFAULTS.doDefect)
    doFlat = pexConfig.Field[bool](doc="Divide by the combined flat.", default=_ISR_DEFAULTS.doFlat)
    doVariance = pexConfig.Field[bool](doc="Compute the variance plane.", default=_ISR_DEFAULTS.doVariance)
    doInterpolate = pexConfig.Field[bool](
        doc="Interpolate over BAD/SAT/NaN pixels.", default=_ISR_DEFAULTS.doInterpolate
    )
    doStandardStatistics = pexConfig.Field[bool](
        doc="Record per-amp final statistics.", default=_ISR_DEFAULTS.doStandardStatistics
    )

    def settings(self) -> IsrSettings:
        """Return the `IsrSettings` matching this config."""
        return IsrSettings(
            **{field.name: getattr(self, field.name) for field in dataclasses.fields(IsrSettings)}
        )


class IsrTask(pipeBase.PipelineTask):
    """Numpy ISR of one raw detector image (see `pipelines.isr`)."""

    ConfigClass = IsrTaskConfig
    _DefaultName = "isr"
    config: IsrTaskConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        data_id = quantum_data_id(butlerQC)
        inputs["exposure_id"] = int(data_id["exposure"])
        inputs["detector_id"] = int(data_id["detector"])
        inputs["instrument"] = str(data_id["instrument"])
        inputs["exposure_record"] = _record_values(data_id)
        outputs = self.run(**inputs)
        butlerQC.put(outputs, outputRefs)

    def run(
        self,
        ccdExposure: RawImage,
        *,
        exposure_id: int,
        detector_id: int,
        instrument: str = INSTRUMENT_NAME,
        bias: Any = None,
        dark: Any = None,
        flat: Any = None,
        defects: Defects | None = None,
        ptc: Any = None,
        exposure_record: dict[str, Any] | None = None,
    ) -> pipeBase.Struct:
        """Process one raw.

        Parameters
        ----------
        ccdExposure : `butler.raw_image.RawImage`
            Raw amp arrays and header.
        exposure_id, detector_id : `int`
            Data id values.
        instrument : `str`, optional
            Instrument name (selects the camera description).
        bias, dark, flat : `lsst.images.MaskedImage`, optional
            Calibrations (required when their step is on).
        defects : `butler.calib_types.Defects`, optional
            Defect list (required when ``doDefect``).
        ptc : `butler.calib_types.PhotonTransferCurve` or `list` of one, optional
            PTC whose read noise the ISR records.
        exposure_record : `dict`, optional
            ``exposure_time``, ``dark_time``, ``observation_type``, ``physical_filter``, ``date_obs`` from
            the registry, used where the raw header lacks them.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputExposure``: the processed `lsst.images.MaskedImage`.
        """
        calibs = self.prepare_calibrations(
            bias=bias,
            dark=dark,
            flat=flat,
            defects=defects,
            ptc=ptc,
            shape=ccdExposure.geometry.detector_shape,
        )
        return pipeBase.Struct(
            outputExposure=self.process(
                ccdExposure,
                exposure_id=exposure_id,
                detector_id=detector_id,
                instrument=instrument,
                calibs=calibs,
                exposure_record=exposure_record,
            )
        )

    def prepare_calibrations(
        self,
        *,
        bias: Any = None,
        dark: Any = None,
        flat: Any = None,
        defects: Defects | None = None,
        ptc: Any = None,
        shape: tuple[int, int],
    ) -> PreparedCalibrations:
        """Decode the calibrations this config uses, once, for any number of `process` calls.

        Parameters
        ----------
        bias, dark, flat : `lsst.images.MaskedImage`, optional
            Calibrations (required when their step is on).
        defects : `butler.calib_types.Defects`, optional
            Defect list (``doDefect``; none given means no defect).
        ptc : `butler.calib_types.PhotonTransferCurve` or `list` of one, optional
            PTC (its good amps' gains and read noise in e-, used unless in bootstrap mode or in ADU).
        shape : `tuple` [`int`, `int`]
            Detector image shape (for the defect mask).

        Returns
        -------
        calibs : `PreparedCalibrations`
            Arrays for `pipelines.isr.run_isr` and the header keys naming their sources.
        """
        arrays: dict[str, Any] = {}
        header: dict[str, str] = {}
        if self.config.doBias:
            arrays["bias"], _, _, bias_md = masked_image_arrays(bias)
            header["LSST ISR BIAS SOURCE"] = _calib_label(bias_md)
        if self.config.doDark:
            arrays["dark"], _, _, dark_md = masked_image_arrays(dark)
            arrays["dark_calib_time"] = float(dark_md.get("DARKTIME", 1.0) or 1.0)
            header["LSST ISR DARK SOURCE"] = _calib_label(dark_md)
        if self.config.doFlat:
            flat_image, _, _, flat_md = masked_image_arrays(flat)
            arrays["flat"] = flat_image
            header["LSST ISR FLAT SOURCE"] = _calib_label(flat_md)
        if self.config.doDefect:
            arrays["defects"] = defects.to_mask(shape) if defects is not None else np.zeros(shape, bool)
        if isinstance(ptc, (list, tuple)):
            ptc = ptc[0] if ptc else None
        if ptc is not None and self.config.doApplyGains and not self.config.doBootstrap:
            arrays["read_noise"] = {
                amp: float(noise) for amp, noise in ptc.noise.items() if amp not in ptc.bad_amps
            }
            arrays["gains"] = {amp: float(gain) for amp, gain in ptc.gain.items() if amp not in ptc.bad_amps}
            header["LSST ISR PTC SOURCE"] = (
                f"PTC {ptc.fit_type} n={len(ptc.metadata.get('INPUT_EXPOSURES', []))}"
            )
        return PreparedCalibrations(arrays=arrays, header=header)

    def load_calibrations(
        self, butlerQC: pipeBase.QuantumContext, inputRefs: pipeBase.InputQuantizedConnection
    ) -> dict[str, Any]:
        """Read the calibrations of the quantum this config uses (the keywords of
        `prepare_calibrations` but ``shape``), each once, through the butler."""
        names = ("bias", "dark", "flat", "defects", "ptc")
        return {name: butlerQC.get(getattr(inputRefs, name)) for name in names if hasattr(inputRefs, name)}

    def process(
        self,
        ccdExposure: RawImage,
        *,
        exposure_id: int,
        detector_id: int,
        calibs: PreparedCalibrations,
        instrument: str = INSTRUMENT_NAME,
        exposure_record: dict[str, Any] | None = None,
    ) -> Any:
        """Process one raw with calibrations from `prepare_calibrations`; return the MaskedImage."""
        result = self.isr_result(
            ccdExposure,
            exposure_id=exposure_id,
            detector_id=detector_id,
            calibs=calibs,
            instrument=instrument,
            exposure_record=exposure_record,
        )
        return make_masked_image(
            result.image, variance=result.variance, metadata=result.metadata, masks=result.masks
        )

    def isr_result(
        self,
        ccdExposure: RawImage,
        *,
        exposure_id: int,
        detector_id: int,
        calibs: PreparedCalibrations,
        instrument: str = INSTRUMENT_NAME,
        exposure_record: dict[str, Any] | None = None,
    ) -> IsrResult:
        """`process` without the MaskedImage: the arrays and header of `pipelines.isr.run_isr`, for a
        task that measures the processed image in memory instead of writing it."""
        detector = get_camera(instrument)[detector_id]
        metadata = dict(ccdExposure.metadata)
        for key, value in _header_defaults(exposure_record or {}).items():
            metadata.setdefault(key, value)
        metadata["EXPOSURE"] = int(exposure_id)
        metadata.setdefault("DETECTOR", int(detector_id))
        metadata.setdefault("DET_NAME", detector.name)
        metadata.update(calibs.header)
        if self.config.doCrosstalk or self.config.doLinearize or self.config.doDeferredCharge:
            self.log.info(
                "doCrosstalk/doLinearize/doDeferredCharge are set: the simulated camera has nothing to "
                "correct, these steps do nothing."
            )
        return run_isr(
            ccdExposure.amps,
            metadata,
            detector,
            self.config.settings(),
            exposure_id=exposure_id,
            **calibs.arrays,
        )


@dataclasses.dataclass(frozen=True)
class PreparedCalibrations:
    """Calibrations decoded once by `IsrTask.prepare_calibrations`.

    Attributes
    ----------
    arrays : `dict` [`str`, `typing.Any`]
        Keyword arguments of `pipelines.isr.run_isr` (``bias``, ``dark``, ``dark_calib_time``,
        ``flat``, ``defects``).
    header : `dict` [`str`, `str`]
        ``LSST ISR * SOURCE`` keys describing the calibrations used.
    """

    arrays: dict[str, Any]
    header: dict[str, str]


def _record_values(data_id: Any) -> dict[str, Any]:
    """Exposure-record values of an expanded data id (empty when not expanded)."""
    try:
        record = data_id.records["exposure"]
    except (AttributeError, KeyError):
        return {}
    if record is None:
        return {}
    values = {
        "exposure_time": record.exposure_time,
        "dark_time": record.dark_time,
        "observation_type": record.observation_type,
        "physical_filter": record.physical_filter,
    }
    if record.timespan is not None and record.timespan.begin is not None:
        values["date_obs"] = record.timespan.begin.tai.isot
    return values


def _header_defaults(record: dict[str, Any]) -> dict[str, Any]:
    """Header keys derived from the exposure record."""
    mapping = {
        "exposure_time": "EXPTIME",
        "dark_time": "DARKTIME",
        "physical_filter": "FILTER",
        "date_obs": "DATE-OBS",
    }
    out = {key: record[name] for name, key in mapping.items() if record.get(name) is not None}
    if record.get("observation_type"):
        out["IMGTYPE"] = str(record["observation_type"]).upper()
    return out


def _calib_label(metadata: dict[str, Any]) -> str:
    """Short description of a calibration for the header (its type and number of inputs)."""
    return f"{metadata.get('OBSTYPE', '?')} n={metadata.get('CPP_N_INPUTS', '?')}"
