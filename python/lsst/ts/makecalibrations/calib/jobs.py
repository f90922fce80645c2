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

"""OCPS job specifications: the exact ``pipeline``, ``config`` and ``data_query`` strings.

The OCPS ``execute`` command runs ``pipetask run`` with the given pipeline, options and data query
(doc/dev/contracts.md, "OCPS execute strings"). `JobBuilder` builds them in the form of the
ts_externalscripts ComCam script (https://github.com/lsst-ts/ts_externalscripts):

* combine: ``${CP_PIPE_DIR}/pipelines/<instrument>/cpBias.yaml`` (cpDark, cpFlat) with
  ``-j <n_processes> -i <input_collections_X> --register-dataset-types <config_options_X>``; when
  generating calibrations, ``calib_collection`` is prepended to the inputs of dark, flat, defects
  and PTC so they use the biases/darks/flats this run certified;
* verify: ``${CP_VERIFY_DIR}/pipelines/<instrument>/verifyBias.yaml`` (...), with
  ``-i u/ocps/<combine job id>,<input_collections_verify_X>`` (internal) or
  ``-i <input_collections_verify_X>`` (external);
* defects (``cpDefects.yaml``, darks + flats), PTC (``cpPtc.yaml``) or gain only
  (``cpPtc.yaml#cpPtcGainFromFlatPairs``), both from the flats;
* data query ``instrument='<name>' AND detector IN (0,1,2) AND exposure IN (id1, id2)``.

Where ids are not known yet (``run_script --plan``), `Placeholder` values stand in for them.

May import: the standard library and the other `calib` modules.
"""

from __future__ import annotations

__all__ = [
    "JobKind",
    "JobSpec",
    "Placeholder",
    "JobBuilder",
    "data_query",
    "ocps_output_collection",
    "BARE_ISR_LABEL",
    "ISR_LABELS",
    "SHARED_ISR_LABELS",
    "translate_isr_label",
]

import dataclasses
import enum
import shlex
from collections.abc import Sequence

from .config import CalibConfig, ImageType
from .options import parse_job_options


class JobKind(enum.StrEnum):
    """What an OCPS job does."""

    COMBINE = "combine"
    VERIFY = "verify"
    DEFECTS = "defects"
    PTC = "ptc"
    GAIN = "gain"


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """Stands for a value not known before the run (a job id, a list of exposure ids).

    Attributes
    ----------
    text : `str`
        What the value is, e.g. ``bias combine job id``; printed as ``<text>``.
    """

    text: str

    def __str__(self) -> str:
        return f"<{self.text}>"


def ocps_output_collection(job_id: str | Placeholder) -> str:
    """RUN collection an OCPS job writes to: ``u/ocps/<job_id>``."""
    return f"u/ocps/{job_id}"


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """One OCPS ``execute`` command.

    Attributes
    ----------
    kind : `JobKind`
        Combine, verify, defects, PTC or gain.
    product : `str`
        ``bias``, ``dark``, ``flat``, ``defects``, ``ptc`` or ``gain``.
    pipeline, config, data_query : `str`
        The ``execute`` fields, exactly as sent.
    exposure_ids : `tuple` [`int`, ...]
        Exposures in the data query (empty for a placeholder).
    input_collections : `tuple` [`str`, ...]
        The ``-i`` collections of ``config``, in order (what a verify job compares with).
    overrides : `tuple` [`tuple` [`str`, `str`, `str`], ...]
        ``(label, field, value)`` of each ``-c`` of ``config``, in order (what the preflight checks
        against the pipeline).
    """

    kind: JobKind
    product: str
    pipeline: str
    config: str
    data_query: str
    exposure_ids: tuple[int, ...] = ()
    input_collections: tuple[str, ...] = ()
    overrides: tuple[tuple[str, str, str], ...] = ()

    @property
    def name(self) -> str:
        """Short name for logs and the report, e.g. ``BIAS combine``, ``FLAT verify``, ``PTC``."""
        if self.kind in (JobKind.COMBINE, JobKind.VERIFY):
            return f"{self.product.upper()} {self.kind.value}"
        return self.product.upper()

    def execute_fields(self) -> dict[str, str]:
        """Keyword arguments of ``OCPS.cmd_execute.set_start``."""
        return {
            "pipeline": self.pipeline,
            "version": "",
            "config": self.config,
            "data_query": self.data_query,
        }

    def describe(self) -> str:
        """Multi-line description, as ``run_script --plan`` prints it."""
        return (
            f"{self.name}:\n"
            f"    pipeline:   {self.pipeline}\n"
            f"    config:     {self.config}\n"
            f"    data_query: {self.data_query}"
        )


_COMBINE_PIPELINES = {
    ImageType.BIAS: "cpBias.yaml",
    ImageType.DARK: "cpDark.yaml",
    ImageType.FLAT: "cpFlat.yaml",
}
#: Bare ``-c`` label of the seed's defaults (``-c isr:doDefect=False``); current cp_pipe/cp_verify
#: pipelines have no task labelled ``isr``, so the builder translates it into their ISR labels.
BARE_ISR_LABEL = "isr"

#: The labels of the tasks that run the ISR in each pipeline the jobs call (cp_pipe / cp_verify
#: LSSTComCam pipelines): ``cpPtcExtract`` runs ``cpPtcIsr``'s ISR on each flat pair itself (the gain
#: job's subset is ``cpPtcExtract`` alone, without ``cpPtcProc``).
ISR_LABELS: dict[str, tuple[str, ...]] = {
    "cpBias.yaml": ("cpBiasIsr",),
    "cpDark.yaml": ("cpDarkIsr",),
    "cpFlat.yaml": ("cpFlatIsr",),
    "cpDefects.yaml": ("cpDefectsDarkIsr", "cpDefectsFlatIsr"),
    "cpPtc.yaml": ("cpPtcIsr", "cpPtcExtract"),
    "cpPtc.yaml#cpPtcGainFromFlatPairs": ("cpPtcExtract",),
    "verifyBias.yaml": ("verifyBiasIsr",),
    "verifyDark.yaml": ("verifyDarkIsr",),
    "verifyFlat.yaml": ("verifyFlatIsr",),
}


#: ISR labels whose settings other tasks of the same pipelines share: an override of one of them is
#: sent, as the bare ``isr`` label is, to every ISR task of those pipelines (`ISR_LABELS`), so that
#: ``-c cpPtcIsr:doDefect=False`` in ``config_options_ptc`` reaches the ISR of ``cpPtcExtract`` too,
#: and the gain job (whose subset has no ``cpPtcIsr``) is not refused.
SHARED_ISR_LABELS: dict[str, tuple[str, ...]] = {
    "cpPtcIsr": ("cpPtc.yaml", "cpPtc.yaml#cpPtcGainFromFlatPairs"),
}


def translate_isr_label(options: str, pipeline_file: str) -> str:
    """Replace each ``-c isr:field=value`` by one ``-c <label>:field=value`` per ISR task of the pipeline
    (also for the labels of `SHARED_ISR_LABELS` in their pipelines).

    Parameters
    ----------
    options : `str`
        ``config_options_X`` (e.g. ``-c isr:doDefect=False -c isr:doCrosstalk=False``).
    pipeline_file : `str`
        Pipeline file name, with its ``#subset`` if any (a key of `ISR_LABELS`).

    Returns
    -------
    options : `str`
        The options with the bare label translated (``-c cpBiasIsr:doDefect=False ...``); unchanged
        when they do not use it.
    """
    prefixes = tuple(
        f"{label}:"
        for label in (BARE_ISR_LABEL, *SHARED_ISR_LABELS)
        if label == BARE_ISR_LABEL or pipeline_file in SHARED_ISR_LABELS[label]
    )
    try:
        tokens = shlex.split(options)
    except ValueError:
        return options  # not judged here: the configuration check names the problem
    if not any(token.startswith(prefixes) for token in tokens):
        return options
    result: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "-c" and i + 1 < len(tokens) and tokens[i + 1].startswith(prefixes):
            override = tokens[i + 1].split(":", 1)[1]
            for label in ISR_LABELS[pipeline_file]:
                result += ["-c", f"{label}:{override}"]
            i += 2
        else:
            result.append(tokens[i])
            i += 1
    return shlex.join(result)


_VERIFY_PIPELINES = {
    ImageType.BIAS: "verifyBias.yaml",
    ImageType.DARK: "verifyDark.yaml",
    ImageType.FLAT: "verifyFlat.yaml",
}

ExposureIds = Sequence[int] | Placeholder


def data_query(instrument: str, detector_ids: Sequence[int], exposure_ids: ExposureIds) -> str:
    """The data query of a job: ``instrument='<name>' AND detector IN (0,1,2) AND exposure IN (id1, id2)``.

    Raises
    ------
    ValueError
        For no exposure.
    """
    if isinstance(exposure_ids, Placeholder):
        exposures = f"({exposure_ids})"
    else:
        if not exposure_ids:
            raise ValueError("A job needs at least one exposure")
        exposures = "(" + ", ".join(str(int(e)) for e in exposure_ids) + ")"
    detectors = "(" + ",".join(str(d) for d in detector_ids) + ")"
    return f"instrument='{instrument}' AND detector IN {detectors} AND exposure IN {exposures}"


class JobBuilder:
    """Builds the OCPS jobs of a run from its configuration.

    Parameters
    ----------
    config : `CalibConfig`
        The validated configuration (instrument, detectors, collections, options).
    """

    def __init__(self, config: CalibConfig) -> None:
        self.config = config

    # --- pieces ----------------------------------------------------------------------------------

    def cp_pipe_pipeline(self, file_name: str) -> str:
        """``${CP_PIPE_DIR}/pipelines/<instrument>/<file_name>``."""
        return f"${{CP_PIPE_DIR}}/pipelines/{self.config.instrument.pipeline_subdir}/{file_name}"

    def cp_verify_pipeline(self, file_name: str) -> str:
        """``${CP_VERIFY_DIR}/pipelines/<instrument>/<file_name>``."""
        return f"${{CP_VERIFY_DIR}}/pipelines/{self.config.instrument.pipeline_subdir}/{file_name}"

    def data_query(self, exposure_ids: ExposureIds) -> str:
        """`data_query` of the configured instrument and detectors (or all of the instrument's)."""
        return data_query(self.config.instrument.name, self.config.detector_ids, exposure_ids)

    def inputs(self, product: str) -> str:
        """Input collections of a combine/defects/PTC job.

        ``calib_collection`` comes first for dark, flat, defects and ptc when generating
        calibrations, so the job finds what this run certified before it.
        """
        base = self.config.input_collections(product)
        if self.config.generate_calibrations and product in ("dark", "flat", "defects", "ptc"):
            return f"{self.config.calib_collection},{base}"
        return base

    def _options(self, product: str, pipeline_file: str) -> str:
        """``config_options_<product>`` with the bare ``isr`` label translated for the pipeline."""
        return translate_isr_label(self.config.config_options(product), pipeline_file)

    def _job(
        self,
        kind: JobKind,
        product: str,
        pipeline: str,
        inputs: str,
        exposure_ids: ExposureIds,
        options: str = "",
    ) -> JobSpec:
        """A job whose ``config`` is ``-j <n_processes> -i <inputs> --register-dataset-types <options>``."""
        return JobSpec(
            kind=kind,
            product=product,
            pipeline=pipeline,
            config=f"-j {self.config.n_processes} -i {inputs} --register-dataset-types {options}",
            data_query=self.data_query(exposure_ids),
            exposure_ids=() if isinstance(exposure_ids, Placeholder) else tuple(int(e) for e in exposure_ids),
            input_collections=tuple(inputs.split(",")),
            overrides=tuple(parse_job_options(options).overrides),
        )

    def _cp_pipe_job(
        self, kind: JobKind, product: str, pipeline_file: str, exposure_ids: ExposureIds, settings: str = ""
    ) -> JobSpec:
        """A cp_pipe job: ``${CP_PIPE_DIR}/pipelines/<instrument>/<pipeline_file>`` with the input
        collections and ``config_options`` of ``settings`` (by default the product's own)."""
        settings = settings or product
        return self._job(
            kind,
            product,
            self.cp_pipe_pipeline(pipeline_file),
            self.inputs(settings),
            exposure_ids,
            self._options(settings, pipeline_file),
        )

    # --- jobs ------------------------------------------------------------------------------------

    def combine(self, image_type: ImageType, exposure_ids: ExposureIds) -> JobSpec:
        """The job that builds the combined bias, dark or flat."""
        typed = ImageType(image_type)
        return self._cp_pipe_job(JobKind.COMBINE, typed.key, _COMBINE_PIPELINES[typed], exposure_ids)

    def verify(
        self, image_type: ImageType, exposure_ids: ExposureIds, calib_job_id: str | Placeholder | None
    ) -> JobSpec:
        """The cp_verify job for the images of one type.

        Parameters
        ----------
        image_type : `ImageType`
            BIAS, DARK or FLAT.
        exposure_ids : `~collections.abc.Sequence` [`int`] or `Placeholder`
            The same exposures the combined calibration was built from.
        calib_job_id : `str`, `Placeholder` or `None`
            Job id of the combine job (internal verification, against its output collection), or
            `None` (external verification, against ``input_collections_verify_X`` only).
        """
        image_type = ImageType(image_type)
        inputs = self.config.input_collections_verify(image_type)
        if calib_job_id is not None:
            # The calibration is verified with the calibrations it was built with: a dark combined
            # with this run's bias but verified with another bias carries the difference of the two
            # biases (+4 % NOISE with 12 frames, failing cp_verify's 5 % test on good data). A
            # pipetask -o output chains its inputs; our --output-run collection does not, so the
            # combine job's own calib_collection input is named here.
            combine_inputs = self.inputs(image_type.key)
            own = self.config.calib_collection
            if combine_inputs.split(",")[0] == own and own not in inputs.split(","):
                inputs = f"{own},{inputs}"
            inputs = f"{ocps_output_collection(calib_job_id)},{inputs}"
        return self._job(
            JobKind.VERIFY,
            image_type.key,
            self.cp_verify_pipeline(_VERIFY_PIPELINES[image_type]),
            inputs,
            exposure_ids,
        )

    def defects(self, exposure_ids: ExposureIds) -> JobSpec:
        """The defects job (darks and flats)."""
        return self._cp_pipe_job(JobKind.DEFECTS, "defects", "cpDefects.yaml", exposure_ids)

    def ptc(self, exposure_ids: ExposureIds) -> JobSpec:
        """The full photon transfer curve job (flats)."""
        return self._cp_pipe_job(JobKind.PTC, "ptc", "cpPtc.yaml", exposure_ids)

    def gain(self, exposure_ids: ExposureIds) -> JobSpec:
        """The gain-from-flat-pairs job (the ``cpPtcGainFromFlatPairs`` subset of cpPtc)."""
        # The subset runs with the PTC's inputs and options.
        return self._cp_pipe_job(
            JobKind.GAIN, "gain", "cpPtc.yaml#cpPtcGainFromFlatPairs", exposure_ids, settings="ptc"
        )

    def verify_gain(
        self, exposure_ids: ExposureIds, pairs_job_id: str | Placeholder, ptc_collections: str | None
    ) -> JobSpec:
        """The cp_verify ``verifyGainFromFlatPairs`` job: the per-pair gains against a PTC.

        Parameters
        ----------
        exposure_ids : `~collections.abc.Sequence` [`int`] or `Placeholder`
            The flats of the PTC or gain job.
        pairs_job_id : `str` or `Placeholder`
            The job that wrote the per-pair partial PTCs (and, for a PTC job, the PTC).
        ptc_collections : `str` or `None`
            Collections holding the PTC to compare with (``input_collections_ptc`` for a gain job),
            or `None` when the pairs' job made the PTC.
        """
        inputs = ocps_output_collection(pairs_job_id)
        if ptc_collections:
            inputs = f"{inputs},{ptc_collections}"
        return self._job(
            JobKind.VERIFY,
            "gain",
            self.cp_verify_pipeline("verifyGainFromFlatPairs.yaml"),
            inputs,
            exposure_ids,
        )

    def extra(self, product: str, exposure_ids: ExposureIds) -> JobSpec:
        """The job of an extra product (``defects``, ``ptc`` or ``gain``)."""
        builders = {"defects": self.defects, "ptc": self.ptc, "gain": self.gain}
        return builders[product](exposure_ids)
