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

"""``cpPtcAdjustGainRatios``: the final ``ptc`` from the solved one (``ptcUnadjusted``) with each amp's
gain rescaled by its flat-field ratio to a reference amp (cp_pipe
``PhotonTransferCurveAdjustGainRatiosTask``; the numbers: `pipelines.ptc_gain_ratios`).

Dimensions instrument + detector. Inputs: the PTC ISR outputs (``cpPtcProc``, ADU, bootstrap) of the
job's flats, deferred (only the first exposure of up to ``n_flat`` pairs with a mean between
``min_adu`` and ``max_adu`` is read), and ``ptcUnadjusted``. Output ``ptc``: a copy whose ``gain`` is
``gain_unadjusted / correction`` per amp (and, with ``doAdjustNoise``, the noise in e- divided by the
same correction, as it was converted from ADU with the unadjusted gain; cp_pipe keeps the fitted
noise), ``gain_unadjusted`` kept, and the adjustment recorded in
the metadata (``PTC GAIN RATIO REFERENCE``, ``PTC GAIN RATIO EXPOSURES``, ``PTC GAIN RATIO
CORRECTIONS``) instead of cp_pipe's separate ``ptc_adjustment_summary`` table.

May import: lsst.pipe.base, lsst.pex.config, numpy, `pipelines`, `butler`.
"""

from __future__ import annotations

__all__ = [
    "PTC_GAIN_RATIO_CORRECTIONS_KEY",
    "PtcAdjustGainRatiosConfig",
    "PtcAdjustGainRatiosConnections",
    "PtcAdjustGainRatiosTask",
    "adjust_gain_ratios",
    "select_ratio_exposures",
]

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)
import lsst.pipe.base.connectionTypes as cT
import numpy as np

from ...butler.calib_types import PhotonTransferCurve
from ...butler.camera import INSTRUMENT_NAME, get_camera
from ...butler.images import masked_image_arrays, masked_image_mask
from ..ptc import scaled_edge_width
from ..ptc_gain_ratios import bin_flat, choose_reference_amp, fit_gain_ratios, gain_corrections
from .defaults import keyword_default
from .quanta import quantum_instrument

PTC_GAIN_RATIO_CORRECTIONS_KEY = "PTC GAIN RATIO CORRECTIONS"
"""PTC metadata key: ``{amp: correction}``; ``gain = gain_unadjusted / correction``."""
_REFERENCE_KEY = "PTC GAIN RATIO REFERENCE"
_EXPOSURES_KEY = "PTC GAIN RATIO EXPOSURES"
_NOTE_KEY = "PTC GAIN RATIO NOTE"


class PtcAdjustGainRatiosConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `PtcAdjustGainRatiosTask`."""

    exposures = cT.Input(
        name="cpPtcProc",
        doc="PTC ISR outputs (bootstrap, ADU) of the job's flats.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
        deferLoad=True,
    )
    input_ptc = cT.Input(
        name="ptcUnadjusted",
        doc="Solved PTC whose gain ratios are adjusted.",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )
    output_ptc = cT.Output(
        name="ptc",
        doc="PTC after the gain-ratio adjustment.",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )


class PtcAdjustGainRatiosConfig(
    pipeBase.PipelineTaskConfig, pipelineConnections=PtcAdjustGainRatiosConnections
):
    """Configuration of `PtcAdjustGainRatiosTask` (cp_pipe's names and defaults unless said)."""

    min_adu = pexConfig.Field[float](
        doc="Lowest detector-average pair mean (ADU) of a flat used.", default=1000.0
    )
    max_adu = pexConfig.Field[float](
        doc="Highest detector-average pair mean (ADU) of a flat used.", default=20000.0
    )
    max_noise_reference = pexConfig.Field[float](
        doc="Largest PTC read noise (e-) of a reference amp candidate.",
        default=keyword_default(choose_reference_amp, "max_noise"),
    )
    turnoff_percentile_reference = pexConfig.Field[float](
        doc="Reference candidates have a PTC turnoff at or above this percentile.",
        default=keyword_default(choose_reference_amp, "turnoff_percentile"),
    )
    n_flat = pexConfig.Field[int](doc="Most flats used (a random choice when more qualify).", default=50)
    random_seed = pexConfig.Field[int](doc="Seed of that choice.", default=12345)
    bin_factor = pexConfig.Field[int](doc="Bin side (px).", default=keyword_default(bin_flat, "bin_factor"))
    amp_boundary = pexConfig.Field[int](
        doc="Pixels left out at every amp edge (full-size amp).",
        default=keyword_default(bin_flat, "boundary")[0],
    )
    scaleEdgeToAmpSize = pexConfig.Field[bool](
        doc="Scale amp_boundary to the amp size as cpPtcExtract's numEdgeSuspect (simulated amps are "
        "smaller; not in cp_pipe).",
        default=True,
    )
    chebyshev_gradient_order = pexConfig.Field[int](
        doc="Degree in x and in y of the Chebyshev series fitted to the flat's smooth illumination "
        "(cp_pipe: a radial spline, then degree 1; here one series of degree 2 takes both).",
        default=keyword_default(fit_gain_ratios, "gradient_order"),
    )
    max_fractional_gain_ratio = pexConfig.Field[float](
        doc="Amps whose ratio differs from 1 by more are left out of the fit and not corrected.",
        default=keyword_default(fit_gain_ratios, "max_fractional_gain_ratio"),
    )
    doAdjustNoise = pexConfig.Field[bool](
        doc="Rescale each amp's read noise (e-) with its gain correction: the PTC measures the noise in "
        "ADU (the fitted n00 / g^2), so the noise in e- is only as good as the gain it was converted "
        "with. cp_pipe leaves the noise as fitted.",
        default=True,
    )
    maskNameList = pexConfig.ListField[str](
        doc="Mask planes whose pixels are ignored.",
        default=["SUSPECT", "BAD", "NO_DATA", "SAT", "UNMASKEDNAN"],
    )


def select_ratio_exposures(ptc: PhotonTransferCurve, config: PtcAdjustGainRatiosConfig) -> list[int]:
    """First exposures of the pairs whose mean over the good amps (kept points) is within the range."""
    amps = [amp for amp in ptc.amp_names if amp not in ptc.bad_amps]
    if not amps or not ptc.input_exp_id_pairs.get(ptc.amp_names[0]):
        return []
    firsts = np.array([int(pair[0]) for pair in ptc.input_exp_id_pairs[ptc.amp_names[0]]])
    total = np.zeros(len(firsts))
    count = np.zeros(len(firsts))
    for amp in amps:
        means = np.asarray(ptc.raw_means[amp], dtype=np.float64)
        used = np.asarray(ptc.exp_id_mask[amp], dtype=bool) & np.isfinite(means)
        total[used] += means[used]
        count[used] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        average = total / count
    chosen = firsts[(average > config.min_adu) & (average < config.max_adu)]
    if len(chosen) > config.n_flat:
        rng = np.random.default_rng(config.random_seed)
        chosen = rng.choice(chosen, size=config.n_flat, replace=False)
    return sorted(int(exp_id) for exp_id in chosen)


def adjust_gain_ratios(
    ptc: PhotonTransferCurve,
    loaders: Mapping[int, Callable[[], Any]],
    config: PtcAdjustGainRatiosConfig,
    instrument: str = INSTRUMENT_NAME,
) -> tuple[PhotonTransferCurve, str]:
    """Return the adjusted copy of ``ptc`` and a one-line summary (see the module docstring).

    Parameters
    ----------
    ptc : `butler.calib_types.PhotonTransferCurve`
        The solved PTC (``ptcUnadjusted``).
    loaders : `~collections.abc.Mapping` [`int`, `~collections.abc.Callable`]
        Per exposure id, a callable returning its ISR ``MaskedImage`` (bootstrap, ADU).
    config : `PtcAdjustGainRatiosConfig`
        Configuration.
    instrument : `str`, optional
        Instrument (its camera gives the amp layout).
    """
    output = copy.deepcopy(ptc)
    for amp in output.amp_names:
        if not math.isfinite(output.gain_unadjusted.get(amp, math.nan)):
            output.gain_unadjusted[amp] = output.gain[amp]
    names = list(output.amp_names)
    gains = [output.gain_unadjusted[amp] if amp not in output.bad_amps else math.nan for amp in names]
    reference = choose_reference_amp(
        gains,
        [output.noise[amp] for amp in names],
        [output.turnoff[amp] for amp in names],
        config.max_noise_reference,
        config.turnoff_percentile_reference,
    )
    exposures = [exp_id for exp_id in select_ratio_exposures(output, config) if exp_id in loaders]
    if reference < 0 or not exposures:
        why = "fewer than two amps can be the reference" if reference < 0 else "no flat in the ADU range"
        note = f"gains not adjusted: {why} (min_adu {config.min_adu:g}, max_adu {config.max_adu:g})"
        output.metadata[_NOTE_KEY] = note
        return output, note
    detector = get_camera(instrument)[output.detector]
    ratios = []
    for exp_id in exposures:
        masked_image = loaders[exp_id]()
        image, _, _, metadata = masked_image_arrays(masked_image)
        if not metadata.get("LSST ISR BOOTSTRAP", True):
            raise RuntimeError(f"cpPtcAdjustGainRatios needs bootstrap (ADU) exposures; {exp_id} is not one.")
        image = np.asarray(image, dtype=np.float64)
        for plane in config.maskNameList:
            image[masked_image_mask(masked_image, plane)] = math.nan
        rows, cols = image.shape
        ny, nx = rows // 2, cols // 8
        boxes = []
        for amp in names:
            a = detector[amp]
            boxes.append((slice(a.iy * ny, (a.iy + 1) * ny), slice(a.ix * nx, (a.ix + 1) * nx)))
        boundary = (
            scaled_edge_width((ny, nx), config.amp_boundary)
            if config.scaleEdgeToAmpSize
            else (config.amp_boundary, config.amp_boundary)
        )
        binned = bin_flat(image, boxes, gains, config.bin_factor, boundary)
        ratios.append(
            fit_gain_ratios(
                binned,
                len(names),
                reference,
                config.chebyshev_gradient_order,
                config.max_fractional_gain_ratio,
            )
        )
    corrections = gain_corrections(np.array(ratios))
    for amp, correction in zip(names, corrections, strict=True):
        output.gain[amp] = output.gain_unadjusted[amp] / float(correction)
        if config.doAdjustNoise:
            # The fit measures the noise in ADU (n00 / g^2): in e- it follows the gain.
            output.noise[amp] = output.noise[amp] / float(correction)
    output.metadata[_REFERENCE_KEY] = names[reference]
    output.metadata[_EXPOSURES_KEY] = exposures
    output.metadata[PTC_GAIN_RATIO_CORRECTIONS_KEY] = {
        amp: float(c) for amp, c in zip(names, corrections, strict=True)
    }
    deviation = float(np.max(np.abs(corrections - 1.0)))
    note = (
        f"gains adjusted with {len(exposures)} flats, reference amp {names[reference]}, largest "
        f"correction {deviation:.3%}"
    )
    return output, note


class PtcAdjustGainRatiosTask(pipeBase.PipelineTask):
    """Rescale the PTC gains with the amp-to-amp ratios measured on the flats."""

    ConfigClass = PtcAdjustGainRatiosConfig
    _DefaultName = "cpPtcAdjustGainRatios"
    config: PtcAdjustGainRatiosConfig

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        loaders = {int(handle.dataId["exposure"]): handle.get for handle in inputs["exposures"]}
        result = self.run(
            exposures=loaders, input_ptc=inputs["input_ptc"], instrument=quantum_instrument(butlerQC)
        )
        butlerQC.put(result, outputRefs)

    def run(
        self,
        *,
        exposures: Mapping[int, Callable[[], Any]],
        input_ptc: PhotonTransferCurve,
        instrument: str = INSTRUMENT_NAME,
    ) -> pipeBase.Struct:
        """Adjust the gains.

        Parameters
        ----------
        exposures : `~collections.abc.Mapping` [`int`, `~collections.abc.Callable`]
            Per exposure id, a loader of its ISR image.
        input_ptc : `butler.calib_types.PhotonTransferCurve`
            The solved PTC.
        instrument : `str`, optional
            Instrument name.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``output_ptc``: the adjusted PTC.
        """
        output, note = adjust_gain_ratios(input_ptc, exposures, self.config, instrument)
        self.log.info("Detector %d: %s.", input_ptc.detector, note)
        return pipeBase.Struct(output_ptc=output)
