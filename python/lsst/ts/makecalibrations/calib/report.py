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

"""The run report: one machine-readable record of a calibration run, and its short summary.

The script fills a `RunReport` as it goes, writes it (atomically) after each image, job, ingestion
and certification, so a killed run leaves one (``final_state`` empty), and writes it at the end of
every run (DONE, FAILED or STOPPED). It holds the configuration used, the exposures taken per type
(discarded ones marked), every OCPS job (type, job id, pipeline, config, data query, exit code,
duration, output collection), the verification outcome per type with the failing tests and thresholds, the
certifications (type, collections, validity range, count), the gains per flat pair, detector and
amplifier, the timings per phase, and the final state with the failing step and reason.

The JSON format is ``RunReport.to_dict()``: plain objects whose keys are the dataclass field names
below (times are TAI unix seconds, with ISO strings alongside); ``format_version`` changes when a
field changes meaning. `RunReport.from_dict` reads it back, which is how a failed run is resumed
(`RunReport.reusable_exposures`, `RunReport.certified_products`).

May import: the standard library, astropy.time and the other `calib` modules.
"""

from __future__ import annotations

__all__ = [
    "FORMAT_VERSION",
    "ExposureRecord",
    "AcquisitionRecord",
    "JobRecord",
    "VerificationRecord",
    "CertificationRecord",
    "GainRecord",
    "PhaseRecord",
    "FailureRecord",
    "RunReport",
    "format_gain_table",
    "tai_to_iso",
]

import dataclasses
import enum
import json
import pathlib
import statistics
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from .statuses import AcquisitionStatus, CertificationStatus, JobStatus, VerificationStatus
from .summaries import bounded, summarise_items

FORMAT_VERSION = 1


def tai_to_iso(tai: float | None) -> str:
    """Format TAI unix seconds as an ISO string (TAI), or ``""`` for `None`/0."""
    if not tai:
        return ""
    from astropy.time import Time

    return Time(tai, format="unix_tai", scale="tai").isot


class _WithStatus:
    """A record whose ``status`` is a member of its ``_status_type`` (a `calib.statuses` enum): a string
    is coerced to the member, an unknown one refused (`ValueError`)."""

    _status_type: typing.ClassVar[type[enum.StrEnum]]
    status: enum.StrEnum

    def __post_init__(self) -> None:
        self.status = self._status_type(self.status)


class _Timed:
    """The ``duration`` of a record that has ``start_tai`` and ``end_tai`` (the dataclass declares them)."""

    start_tai: float
    end_tai: float

    @property
    def duration(self) -> float:
        """Seconds from ``start_tai`` to ``end_tai``; 0 until both are set (0 is "not yet")."""
        return max(0.0, self.end_tai - self.start_tai) if self.end_tai and self.start_tai else 0.0


@dataclasses.dataclass
class ExposureRecord:
    """One image used by the run.

    Attributes
    ----------
    exposure_id : `int`
        Butler exposure id.
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    exp_time : `float`
        Requested exposure time (s); NaN-free, 0 for biases.
    discarded : `bool`
        True for the extra images taken first and not processed.
    obs_id : `str`
        Camera image name (``CC_O_YYYYMMDD_NNNNNN``), when known.
    detectors_in_oods : `int`
        Detectors announced by ``imageInOODS`` for this image.
    in_oods : `bool`
        True once every detector was announced.
    recovered : `bool`
        True if the exposure was taken by an earlier run and reused.
    """

    exposure_id: int
    image_type: str
    exp_time: float
    discarded: bool = False
    obs_id: str = ""
    detectors_in_oods: int = 0
    in_oods: bool = False
    recovered: bool = False


@dataclasses.dataclass
class AcquisitionRecord(_WithStatus):
    """How the acquisition of one image type went.

    Attributes
    ----------
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    n_planned : `int`
        Images planned (discarded included).
    n_kept_planned : `int`
        Kept images planned.
    status : `AcquisitionStatus`
        Where the acquisition is (the values are listed with their meaning in the report reference,
        from `AcquisitionStatus`). After a stop the script waits for the OODS before settling it.
    missing_exposure_ids : `list` [`int`]
        Kept exposures not (fully) announced by the OODS before ``oods_timeout``.
    start_tai, end_tai : `float`
        First exposure command and last readout.
    """

    image_type: str
    n_planned: int
    n_kept_planned: int
    status: AcquisitionStatus = AcquisitionStatus.PENDING
    missing_exposure_ids: list[int] = dataclasses.field(default_factory=list)
    start_tai: float = 0.0
    end_tai: float = 0.0

    _status_type = AcquisitionStatus


@dataclasses.dataclass
class JobRecord(_Timed, _WithStatus):
    """One OCPS job.

    Attributes
    ----------
    name : `str`
        ``BIAS combine``, ``FLAT verify``, ``DEFECTS``, ``PTC``, ``GAIN``.
    kind : `str`
        ``combine``, ``verify``, ``defects``, ``ptc`` or ``gain``.
    product : `str`
        ``bias``, ``dark``, ``flat``, ``defects``, ``ptc`` or ``gain``.
    pipeline, config, data_query : `str`
        The ``execute`` fields as sent.
    job_id : `str`
        OCPS job id (empty if the command was refused).
    output_collection : `str`
        ``u/ocps/<job_id>``.
    status : `JobStatus`
        Where the job is (`JobStatus`). Only ``rejected`` and ``unacknowledged`` records have no
        job id; ``message`` says why.
    exit_code : `int` or `None`
        ``job_result.exit_code``.
    phase : `str`
        UWS phase of the result.
    message : `str`
        Why it failed, when it did.
    start_tai, end_tai : `float`
        Command sent; result received.
    log_uri : `str`
        URI of the job's log (the ``log`` entry of the UWS ``results`` of ``job_result``), when the
        OCPS gave one.
    """

    name: str
    kind: str
    product: str
    pipeline: str
    config: str
    data_query: str
    job_id: str = ""
    output_collection: str = ""
    status: JobStatus = JobStatus.RUNNING
    exit_code: int | None = None
    phase: str = ""
    message: str = ""
    start_tai: float = 0.0
    end_tai: float = 0.0
    log_uri: str = ""

    _status_type = JobStatus


@dataclasses.dataclass
class VerificationRecord(_WithStatus):
    """Verification of one image type.

    Attributes
    ----------
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    mode : `str`
        ``internal`` or ``external``.
    job_id : `str`
        The verify job.
    reference : `str`
        Input collections of the verify job (what the images were compared with).
    status : `VerificationStatus`
        The outcome (`VerificationStatus`).
    decision : `dict` or `None`
        `VerificationDecision.to_dict`: counts, thresholds, failing tests.
    summary : `str`
        One-line explanation.
    """

    image_type: str
    mode: str
    job_id: str = ""
    reference: str = ""
    status: VerificationStatus = VerificationStatus.PENDING
    decision: dict[str, Any] | None = None
    summary: str = ""

    _status_type = VerificationStatus


@dataclasses.dataclass
class CertificationRecord(_WithStatus):
    """A certification (or a refused/failed/skipped one).

    Attributes
    ----------
    product : `str`
        Dataset type: ``bias``, ``dark``, ``flat``, ``defects`` or ``ptc``.
    run_collection : `str`
        RUN collection the datasets come from (``u/ocps/<job_id>``).
    calib_collection : `str`
        CALIBRATION collection certified into.
    begin, end : `str`
        Validity range.
    status : `CertificationStatus`
        The outcome (`CertificationStatus`).
    count : `int`
        Datasets certified.
    reason : `str`
        Why it was not certified.
    tai : `float`
        When it was done.
    """

    product: str
    run_collection: str
    calib_collection: str
    begin: str
    end: str
    status: CertificationStatus
    count: int = 0
    reason: str = ""
    tai: float = 0.0

    _status_type = CertificationStatus


@dataclasses.dataclass
class GainRecord:
    """The gain of one amplifier from one flat pair.

    Attributes
    ----------
    pair : `list` [`int`]
        The two exposure ids.
    detector : `int`
        Detector id.
    amp : `str`
        Amplifier name.
    gain : `float`
        e-/ADU.
    noise : `float`
        Read noise as measured by the extraction (ADU, from the overscan).
    """

    pair: list[int]
    detector: int
    amp: str
    gain: float
    noise: float


@dataclasses.dataclass
class PhaseRecord(_Timed):
    """Timing of one phase of the run (setup, acquisition of a type, a processing step).

    Attributes
    ----------
    name : `str`
        Phase name.
    start_tai, end_tai : `float`
        TAI unix seconds (end 0 while running).
    """

    name: str
    start_tai: float
    end_tai: float = 0.0


@dataclasses.dataclass
class FailureRecord:
    """One reason the run did not succeed.

    Attributes
    ----------
    step : `str`
        The step that failed (``BIAS acquisition``, ``DARK combine``, ``FLAT certification``...).
    reason : `str`
        What happened.
    job_id : `str`
        OCPS job concerned, if any.
    collection : `str`
        Collection concerned, if any.
    details : `list` [`str`]
        The full list behind a summarised reason (one entry per amplifier, exposure...), when the
        reason only counts them and names the first few (`calib.summaries`); empty otherwise.
    """

    step: str
    reason: str
    job_id: str = ""
    collection: str = ""
    details: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.reason = bounded(self.reason)
        self.details = [str(d) for d in self.details]

    def describe(self) -> str:
        """One line naming the step, the job and the collection (at most about
        `calib.summaries.MAX_REASON_CHARS` + the names)."""
        text = f"{self.step}: {self.reason}"
        extras = []
        if self.job_id:
            extras.append(f"job {self.job_id}")
        if self.collection:
            extras.append(f"collection {self.collection}")
        return text + (f" ({', '.join(extras)})" if extras else "")


_LIST_TYPES: dict[str, type] = {
    "acquisitions": AcquisitionRecord,
    "exposures": ExposureRecord,
    "jobs": JobRecord,
    "verifications": VerificationRecord,
    "certifications": CertificationRecord,
    "gains": GainRecord,
    "phases": PhaseRecord,
    "failures": FailureRecord,
}


def _from_fields(cls: type, data: Mapping[str, Any]) -> Any:
    """A record from its JSON dict (extra keys ignored; the records read their statuses as enums)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class RunReport(_Timed):
    """Everything a run did; see the module docstring.

    Attributes
    ----------
    script : `str`
        Script class name.
    script_index : `int`
        SAL index of the script.
    instrument : `str`
        Instrument name.
    group_id : `str`
        Group id of the images.
    config : `dict`
        Configuration used (every key, defaults filled).
    estimated_duration : `float`
        The plan's estimate (s).
    start_tai, end_tai : `float`
        Run start and end.
    final_state : `str`
        ``DONE``, ``FAILED`` or ``STOPPED`` (empty while running).
    failure_step, failure_reason : `str`
        The first failure (empty on success).
    resumed_from : `str`
        Report of the run this one resumed, if any.
    report_path : `str`
        Where this report was written.
    notes : `list` [`str`]
        What the configuration check noted (e.g. a product made by another job, a value adjusted).
    acquisitions : `list` [`AcquisitionRecord`]
        How the acquisition of each image type went, in acquisition order.
    exposures : `list` [`ExposureRecord`]
        Every image used, discarded and reused ones included, in the order taken.
    jobs : `list` [`JobRecord`]
        Every OCPS job sent, in the order sent.
    verifications : `list` [`VerificationRecord`]
        The verification of each verified image type.
    certifications : `list` [`CertificationRecord`]
        Each product certified, or why it was not.
    gains : `list` [`GainRecord`]
        Gain and read noise per flat pair, detector and amplifier.
    phases : `list` [`PhaseRecord`]
        Start and end of each phase (checks, acquisitions, jobs, certifications).
    failures : `list` [`FailureRecord`]
        Every failure, in the order they happened.
    """

    script: str = ""
    script_index: int = 0
    instrument: str = ""
    group_id: str = ""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    estimated_duration: float = 0.0
    start_tai: float = 0.0
    end_tai: float = 0.0
    final_state: str = ""
    failure_step: str = ""
    failure_reason: str = ""
    resumed_from: str = ""
    report_path: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    acquisitions: list[AcquisitionRecord] = dataclasses.field(default_factory=list)
    exposures: list[ExposureRecord] = dataclasses.field(default_factory=list)
    jobs: list[JobRecord] = dataclasses.field(default_factory=list)
    verifications: list[VerificationRecord] = dataclasses.field(default_factory=list)
    certifications: list[CertificationRecord] = dataclasses.field(default_factory=list)
    gains: list[GainRecord] = dataclasses.field(default_factory=list)
    phases: list[PhaseRecord] = dataclasses.field(default_factory=list)
    failures: list[FailureRecord] = dataclasses.field(default_factory=list)

    # --- filling ---------------------------------------------------------------------------------

    def add_failure(
        self,
        step: str,
        reason: str,
        job_id: str = "",
        collection: str = "",
        details: Iterable[str] = (),
    ) -> FailureRecord:
        """Record a failure; the first one becomes ``failure_step``/``failure_reason``.

        A ``reason`` longer than `calib.summaries.MAX_REASON_CHARS` is cut (summarise long lists
        with `calib.summaries` and pass the list as ``details``: the report keeps it).
        """
        failure = FailureRecord(step, reason, job_id, collection, list(details))
        self.failures.append(failure)
        if not self.failure_step:
            self.failure_step = step
            self.failure_reason = failure.describe()
        return failure

    def failures_summary(self) -> str:
        """``"<N> steps failed: <first>; <second>; <third> and <M> more"``: the Script's final reason
        (each failure's `FailureRecord.describe`, the whole bounded by `calib.summaries`)."""
        n = len(self.failures)
        noun = "step failed" if n == 1 else "steps failed"
        return summarise_items((f.describe() for f in self.failures), noun, sep="; ")

    def start_phase(self, name: str, tai: float) -> PhaseRecord:
        """Open a phase."""
        phase = PhaseRecord(name, tai)
        self.phases.append(phase)
        return phase

    def end_phase(self, name: str, tai: float) -> None:
        """Close the last open phase of that name (no error if none)."""
        for phase in reversed(self.phases):
            if phase.name == name and not phase.end_tai:
                phase.end_tai = tai
                return

    def acquisition(self, image_type: str) -> AcquisitionRecord | None:
        """The acquisition record of a type."""
        return next((a for a in self.acquisitions if a.image_type == image_type), None)

    def exposures_of(self, image_type: str, kept_only: bool = True) -> list[ExposureRecord]:
        """Exposures of a type, in acquisition order."""
        return [e for e in self.exposures if e.image_type == image_type and not (kept_only and e.discarded)]

    # --- recovery --------------------------------------------------------------------------------

    def certified_products(self) -> set[str]:
        """Products this run certified."""
        return {c.product for c in self.certifications if c.status == CertificationStatus.CERTIFIED}

    def reusable_exposures(self) -> dict[str, list[int]]:
        """Kept exposure ids per type (``bias``...) of each complete acquisition.

        A type is reusable when every kept image was taken and announced by the OODS
        (status ``complete`` or ``recovered``).
        """
        result = {}
        for acq in self.acquisitions:
            if acq.status not in (AcquisitionStatus.COMPLETE, AcquisitionStatus.RECOVERED):
                continue
            ids = [e.exposure_id for e in self.exposures_of(acq.image_type)]
            if ids and (acq.status == AcquisitionStatus.RECOVERED or len(ids) == acq.n_kept_planned):
                result[acq.image_type.lower()] = ids
        return result

    # --- (de)serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (with ISO times and durations added for readers)."""
        data = dataclasses.asdict(self)
        data = {"format_version": FORMAT_VERSION, **data}
        data["start_iso"] = tai_to_iso(self.start_tai)
        data["end_iso"] = tai_to_iso(self.end_tai)
        data["duration"] = self.duration
        for job_dict, job in zip(data["jobs"], self.jobs, strict=True):
            job_dict["duration"] = job.duration
        for phase_dict, phase in zip(data["phases"], self.phases, strict=True):
            phase_dict["duration"] = phase.duration
        return data

    def to_json(self, indent: int = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)

    def write(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write the JSON to ``path`` (directories created) and record it in ``report_path``."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.report_path = str(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunReport:
        """Read a dict made by `to_dict` (extra keys are ignored)."""
        if int(data.get("format_version", FORMAT_VERSION)) > FORMAT_VERSION:
            raise ValueError(f"Report format_version {data['format_version']} is newer than {FORMAT_VERSION}")
        kwargs: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name not in data:
                continue
            value = data[field.name]
            if field.name in _LIST_TYPES:
                value = [_from_fields(_LIST_TYPES[field.name], item) for item in value]
            elif hints.get(field.name) is float and value is not None:
                value = float(value)
            kwargs[field.name] = value
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | pathlib.Path) -> RunReport:
        """Read a report JSON file."""
        return cls.from_dict(json.loads(pathlib.Path(path).read_text()))

    # --- summary ---------------------------------------------------------------------------------

    def summary_text(self) -> str:
        """A short human summary (a dozen lines)."""
        lines = [
            f"{self.script or 'Calibration run'} {self.final_state or 'RUNNING'}"
            + (f" after {self.duration:.0f} s" if self.end_tai and self.start_tai else "")
            + (f" (group {self.group_id})" if self.group_id else "")
        ]
        for acq in self.acquisitions:
            kept = self.exposures_of(acq.image_type)
            n_discarded = len([e for e in self.exposures if e.image_type == acq.image_type and e.discarded])
            text = f"  {acq.image_type}: {acq.status}, {len(kept)} kept"
            if n_discarded:
                text += f" + {n_discarded} discarded"
            if kept:
                text += f" [{kept[0].exposure_id}..{kept[-1].exposure_id}]"
            if acq.missing_exposure_ids:
                text += f"; missing in OODS: {acq.missing_exposure_ids}"
            lines.append(text)
        if self.jobs:
            counts: dict[str, int] = {}
            for job in self.jobs:
                counts[job.status] = counts.get(job.status, 0) + 1
            lines.append(
                f"  OCPS jobs: {len(self.jobs)} ("
                + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                + ")"
            )
        for ver in self.verifications:
            lines.append(f"  {ver.image_type} verification ({ver.mode}): {ver.status}")
        for cert in self.certifications:
            if cert.status == CertificationStatus.CERTIFIED:
                lines.append(
                    f"  certified {cert.count} {cert.product} into {cert.calib_collection} "
                    f"[{cert.begin}, {cert.end}) from {cert.run_collection}"
                )
            else:
                lines.append(f"  {cert.product} {cert.status.replace('_', ' ')}: {cert.reason}")
        if self.gains:
            values = [g.gain for g in self.gains]
            pairs = {tuple(g.pair) for g in self.gains}
            lines.append(
                f"  gains: {len(values)} values from {len(pairs)} flat pair(s), median "
                f"{statistics.median(values):.3f} e-/ADU (min {min(values):.3f}, max {max(values):.3f})"
            )
        for failure in self.failures:
            lines.append(f"  FAILED {failure.describe()}")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


def format_gain_table(gains: Iterable[GainRecord]) -> str:
    """A compact table of gains: one row per (pair, detector), one column per amplifier.

    Returns
    -------
    text : `str`
        ``pair  det  C00 C01 ...`` lines with gains in e-/ADU (3 decimals); empty if no gain.
    """
    rows: dict[tuple[tuple[int, ...], int], dict[str, float]] = {}
    amps: list[str] = []
    for g in gains:
        rows.setdefault((tuple(g.pair), g.detector), {})[g.amp] = g.gain
        if g.amp not in amps:
            amps.append(g.amp)
    if not rows:
        return ""
    amps.sort()
    pair_width = max(len("-".join(str(p) for p in pair)) for pair, _ in rows)
    header = f"{'pair':<{pair_width}} det " + " ".join(f"{a:>6}" for a in amps)
    lines = [header]
    for (pair, det), values in sorted(rows.items()):
        cells = " ".join(f"{values[a]:6.3f}" if a in values else f"{'-':>6}" for a in amps)
        lines.append(f"{'-'.join(str(p) for p in pair):<{pair_width}} {det:>3} {cells}")
    return "\n".join(lines)
