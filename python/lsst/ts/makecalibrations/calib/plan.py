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

"""The plan of a calibration run: which images, in which order, and what is done with them.

`CalibrationPlan.from_config` turns a `CalibConfig` into:

* one `AcquisitionPlan` per image type: the discarded images first, then the kept images with
  their exposure times (a scalar exposure time is expanded to ``n`` entries); a type recovered from
  ``exposure_ids`` has no acquisition;
* one `TypeProcessing` per image type (combine? verify internally or externally? certify?) and the
  `ExtraProduct` jobs (defects, PTC, gain from flat pairs), each with the certifications it must
  wait for when ``generate_calibrations`` is set;
* the flat pairs and the estimated duration (used by ``set_metadata``, ``run_script --plan`` and the
  progress line): the acquisition, then the OCPS jobs scheduled by `durations.schedule` with the
  plan's `durations.ProcessingCostModel` (at the plan's ``time_scale``, simulated seconds per wall
  second, 1 at the observatory);
* a printable description (``run_script --plan``).

May import: the standard library and the other `calib` modules.
"""

from __future__ import annotations

__all__ = [
    "PlannedExposure",
    "AcquisitionPlan",
    "TypeProcessing",
    "ExtraProduct",
    "FlatPair",
    "ProcessingCostModel",
    "CalibrationPlan",
]

import dataclasses
from collections.abc import Iterable

from .config import CalibConfig, ImageType
from .durations import GAIN_CHECK, OBSERVATORY_SIZE, ProcessingCostModel, ScheduledJob, schedule
from .flat_levels import select_flats_for_combine
from .jobs import JobBuilder, JobSpec, Placeholder


@dataclasses.dataclass(frozen=True)
class PlannedExposure:
    """One image to take.

    Attributes
    ----------
    image_type : `ImageType`
        BIAS, DARK or FLAT.
    number : `int`
        1-based position in the type's sequence (discarded images included).
    exp_time : `float`
        Exposure time (s); 0 for biases.
    discard : `bool`
        True for the extra images taken first and not processed.
    """

    image_type: ImageType
    number: int
    exp_time: float
    discard: bool


@dataclasses.dataclass(frozen=True)
class AcquisitionPlan:
    """The images of one type.

    Attributes
    ----------
    image_type : `ImageType`
        The type.
    exposures : `tuple` [`PlannedExposure`, ...]
        Images to take, discarded ones first; empty when the type is recovered.
    recovered_ids : `tuple` [`int`, ...]
        Existing exposures used instead of taking images (``exposure_ids``).
    """

    image_type: ImageType
    exposures: tuple[PlannedExposure, ...]
    recovered_ids: tuple[int, ...] = ()

    @property
    def recovered(self) -> bool:
        """True if no image is taken for this type."""
        return bool(self.recovered_ids)

    @property
    def kept(self) -> tuple[PlannedExposure, ...]:
        """The images that are processed."""
        return tuple(e for e in self.exposures if not e.discard)

    @property
    def n_discard(self) -> int:
        """Number of discarded images."""
        return sum(e.discard for e in self.exposures)

    @property
    def n_kept(self) -> int:
        """Number of processed images (recovered ones included)."""
        return len(self.recovered_ids) if self.recovered else len(self.kept)

    def duration(self, read_out_time: float, wait_between_exposures: float = 0.0) -> float:
        """Time to take the images (s): Σ(exptime + read_out_time) plus the waits between them."""
        if not self.exposures:
            return 0.0
        total = sum(e.exp_time + read_out_time for e in self.exposures)
        return total + wait_between_exposures * (len(self.exposures) - 1)


@dataclasses.dataclass(frozen=True)
class TypeProcessing:
    """What happens to the kept images of one type.

    Attributes
    ----------
    image_type : `ImageType`
        The type.
    combine : `bool`
        True if a combined calibration is built (``generate_calibrations``).
    verify : `str`
        ``internal`` (against the new combined calibration), ``external`` (against the input
        collections) or ``none``.
    certify : `bool`
        True if the combined calibration is certified into ``calib_collection`` (after passing
        verification when verification is requested).
    waits_for : `tuple` [`str`, ...]
        Products (``bias``, ``dark``, ...) whose certification in this run the combine job needs.
    already_certified : `bool`
        True when an earlier run (``resume_from_report``) already certified this type: nothing is
        done for it.
    """

    image_type: ImageType
    combine: bool
    verify: str
    certify: bool
    waits_for: tuple[str, ...] = ()
    already_certified: bool = False

    @property
    def has_work(self) -> bool:
        """True if at least one OCPS job runs for this type."""
        return not self.already_certified and (self.combine or self.verify != "none")

    @property
    def n_jobs(self) -> int:
        """Number of OCPS jobs for this type."""
        if self.already_certified:
            return 0
        return int(self.combine) + int(self.verify != "none")


@dataclasses.dataclass(frozen=True)
class ExtraProduct:
    """A product made after the flats: defects, a PTC, or gains from flat pairs.

    Attributes
    ----------
    product : `str`
        ``defects``, ``ptc`` or ``gain``.
    inputs : `tuple` [`ImageType`, ...]
        Image types whose kept exposures the job processes.
    certify : `bool`
        True if the result is certified into ``calib_collection``: defects and PTC always (with or
        without ``generate_calibrations``, as the ts_externalscripts script), gains never.
    waits_for : `tuple` [`str`, ...]
        Products whose certification in this run the job needs.
    already_certified : `bool`
        True when an earlier run already certified it.
    """

    product: str
    inputs: tuple[ImageType, ...]
    certify: bool
    waits_for: tuple[str, ...] = ()
    already_certified: bool = False


@dataclasses.dataclass(frozen=True)
class FlatPair:
    """Two consecutive kept flats with the same exposure time.

    Attributes
    ----------
    first, second : `int`
        0-based indices among the kept flats.
    exp_time : `float`
        Their exposure time (s).
    """

    first: int
    second: int
    exp_time: float


@dataclasses.dataclass(frozen=True)
class CalibrationPlan:
    """Everything a run will do, derived from the configuration only.

    Build it with `from_config`.
    """

    config: CalibConfig
    read_out_time: float
    acquisitions: tuple[AcquisitionPlan, ...]
    processing: tuple[TypeProcessing, ...]
    extras: tuple[ExtraProduct, ...]
    flat_pairs: tuple[FlatPair, ...]
    cost_model: ProcessingCostModel
    time_scale: float = 1.0

    @classmethod
    def from_config(
        cls,
        config: CalibConfig,
        read_out_time: float | None = None,
        already_certified: Iterable[str] = (),
        cost_model: ProcessingCostModel | None = None,
        time_scale: float = 1.0,
    ) -> CalibrationPlan:
        """Plan a run.

        Parameters
        ----------
        config : `CalibConfig`
            The validated configuration.
        read_out_time : `float`, optional
            Readout time of one image (s); default: the instrument's.
        already_certified : `~collections.abc.Iterable` [`str`], optional
            Products an earlier run already certified into ``calib_collection`` (recovery): they
            are neither processed nor certified again.
        cost_model : `ProcessingCostModel`, optional
            Processing time model for the estimate; the real observatory's by default
            (`durations.RunSite.observatory`).
        time_scale : `float`, optional
            Simulated seconds per wall second (1 at the observatory).
        """
        if read_out_time is None:
            read_out_time = config.instrument.read_out_time
        done = frozenset(already_certified)
        acquisitions = []
        for image_type in config.image_types:
            if config.is_recovered(image_type):
                acquisitions.append(AcquisitionPlan(image_type, (), config.exposure_ids[image_type]))
                continue
            kept_times = config.exp_times(image_type)
            exposures = [
                PlannedExposure(image_type, i + 1, t, True)
                for i, t in enumerate(config.discard_exp_times(image_type))
            ]
            offset = len(exposures)
            exposures += [
                PlannedExposure(image_type, offset + i + 1, t, False) for i, t in enumerate(kept_times)
            ]
            acquisitions.append(AcquisitionPlan(image_type, tuple(exposures)))

        generate = config.generate_calibrations
        verify_mode = "none"
        if config.do_verify:
            verify_mode = "internal" if generate else "external"
        processing = []
        certified_before: list[str] = []
        for image_type in config.image_types:
            waits = tuple(p for p in certified_before if p not in done) if generate else ()
            processing.append(
                TypeProcessing(
                    image_type=image_type,
                    combine=generate,
                    verify=verify_mode,
                    certify=generate,
                    waits_for=waits,
                    already_certified=image_type.key in done,
                )
            )
            if generate:
                certified_before.append(image_type.key)

        # Defects, PTC and gains process darks and flats through ISR with the bias and dark (flats
        # are not flat-fielded), so they wait for this run's bias and dark, not for its flat; the
        # PTC and gains also use this run's defects when it makes some.
        isr_inputs = tuple(p for p in ("bias", "dark") if p in certified_before)
        extras = []
        if config.run_defects:
            waits = tuple(p for p in isr_inputs if p not in done) if generate else ()
            # Defects and the PTC are certified into calib_collection also without generate_calibrations,
            # as the ts_externalscripts script does (the seed's "Accessing the calibrations" reads them).
            extras.append(
                ExtraProduct("defects", (ImageType.DARK, ImageType.FLAT), True, waits, "defects" in done)
            )
        ptc_inputs = isr_inputs + (("defects",) if config.run_defects and generate else ())
        if config.run_ptc:
            waits = tuple(p for p in ptc_inputs if p not in done) if generate else ()
            extras.append(ExtraProduct("ptc", (ImageType.FLAT,), True, waits, "ptc" in done))
        if config.run_gain:
            waits = tuple(p for p in ptc_inputs if p not in done) if generate else ()
            extras.append(ExtraProduct("gain", (ImageType.FLAT,), False, waits))

        flat_pairs: tuple[FlatPair, ...] = ()
        if config.takes_flats and not config.is_recovered(ImageType.FLAT):
            times = config.exp_times(ImageType.FLAT)
            flat_pairs = tuple(FlatPair(a, b, times[a]) for a, b in config.flat_pairs)
        return cls(
            config=config,
            read_out_time=float(read_out_time),
            acquisitions=tuple(acquisitions),
            processing=tuple(processing),
            extras=tuple(extras),
            flat_pairs=flat_pairs,
            cost_model=cost_model or ProcessingCostModel.for_size(OBSERVATORY_SIZE),
            time_scale=float(time_scale),
        )

    # --- queries ---------------------------------------------------------------------------------

    def acquisition(self, image_type: ImageType) -> AcquisitionPlan:
        """The acquisition plan of one type."""
        for plan in self.acquisitions:
            if plan.image_type == image_type:
                return plan
        raise KeyError(image_type)

    def type_processing(self, image_type: ImageType) -> TypeProcessing:
        """The processing of one type."""
        for step in self.processing:
            if step.image_type == image_type:
                return step
        raise KeyError(image_type)

    @property
    def n_images(self) -> int:
        """Number of images to take (discarded ones included)."""
        return sum(len(a.exposures) for a in self.acquisitions)

    @property
    def certified_products(self) -> tuple[str, ...]:
        """Products this run certifies (when all goes well), excluding those certified earlier."""
        products = [p.image_type.key for p in self.processing if p.certify and not p.already_certified]
        products += [e.product for e in self.extras if e.certify and not e.already_certified]
        return tuple(products)

    @property
    def n_jobs(self) -> int:
        """Number of OCPS jobs, as `planned_jobs` lists them: the combines and verifications, the
        defects/PTC/gain jobs, and the gain check after each PTC or gain job (after a gain job the
        script runs it only if ``input_collections_ptc`` holds a PTC: then one fewer runs)."""
        extras = [e for e in self.extras if not e.already_certified]
        checks = sum(e.product in ("gain", "ptc") for e in extras)
        return sum(p.n_jobs for p in self.processing) + len(extras) + checks

    # --- durations -------------------------------------------------------------------------------

    def acquisition_duration(self) -> float:
        """Σ(exptime + read_out_time) over every image, plus the waits between exposures (s)."""
        return sum(
            a.duration(self.read_out_time, self.config.wait_between_exposures) for a in self.acquisitions
        )

    def n_processed(self, image_type: ImageType, flat_combine: bool = False) -> int:
        """Kept exposures of ``image_type`` a job processes: for the flat combine and its
        verification (``flat_combine``), the flats `flat_levels.select_flats_for_combine` keeps (as
        the script does; all of them when recovered, their exposure times not being known here)."""
        acq = self.acquisition(image_type)
        if not (flat_combine and image_type is ImageType.FLAT) or acq.recovered:
            return acq.n_kept
        combined, _ = select_flats_for_combine({i: e.exp_time for i, e in enumerate(acq.kept)})
        return len(combined)

    def exposure_readout_sum(self) -> float:
        """Σ(exptime + read_out_time) over every image (s): the floor of the acquisition time."""
        return sum(a.duration(self.read_out_time) for a in self.acquisitions)

    def scheduled_jobs(self) -> list[ScheduledJob]:
        """The OCPS jobs of the run (as `n_jobs` counts them) for `durations.schedule`.

        Wall seconds from the start of the run: a type's jobs are ready once its last image is read
        out and announced by the OODS; a combine waits for the certification of the products it
        uses, an internal verification for its combine, the defects/PTC/gain job for the
        certifications it uses; the gain check follows the PTC or gain job (as `planned_jobs` lists
        it; after a gain job the script runs it only when ``input_collections_ptc`` holds a PTC).
        """
        config = self.config
        model = self.cost_model
        n_det = config.n_detectors
        parallel = max(1, min(config.n_processes, n_det, model.max_processes))
        ready: dict[ImageType, float] = {}
        clock = 0.0
        announced = 0.0
        for acq in self.acquisitions:
            if acq.recovered:
                ready[acq.image_type] = 0.0
                continue
            clock += acq.duration(self.read_out_time, config.wait_between_exposures) / self.time_scale
            ingest = model.ingest_wall(n_det)
            announced = max(clock + ingest, announced + ingest * len(acq.exposures))
            ready[acq.image_type] = announced
        jobs: list[ScheduledJob] = []
        certified_by: dict[str, int] = {}

        def add(
            name: str,
            inputs: list[ImageType],
            at: float,
            after: tuple[int, ...],
            delay: float,
            flat_combine: bool = False,
        ) -> int:
            n_images = sum(self.n_processed(t, flat_combine) for t in inputs)
            cpu = model.job_cpu(n_images, n_det, name)
            types = tuple(t.value for t in inputs)
            jobs.append(ScheduledJob(name, cpu, float(parallel), at, after, delay, types))
            return len(jobs) - 1

        def waits(products: tuple[str, ...]) -> tuple[int, ...]:
            return tuple(certified_by[p] for p in products if p in certified_by)

        for step in self.processing:
            if not step.has_work:
                continue
            name = step.image_type.value
            inputs = [step.image_type]
            at = ready[step.image_type]
            last = None
            if step.combine:
                last = add(f"{name} combine", inputs, at, waits(step.waits_for), model.certification, True)
            if step.verify != "none":
                after = (last,) if last is not None else ()
                last = add(f"{name} verify", inputs, at, after, 0.0, True)
            if step.certify and last is not None:
                certified_by[step.image_type.key] = last
        for extra in self.extras:
            if extra.already_certified:
                continue
            inputs = [t for t in extra.inputs if t in config.image_types]
            at = max((ready[t] for t in inputs), default=0.0)
            index = add(extra.product.upper(), inputs, at, waits(extra.waits_for), model.certification)
            if extra.certify:
                certified_by[extra.product] = index
            if extra.product in ("gain", "ptc"):
                add(GAIN_CHECK, inputs, at, (index,), 0.0)
        return jobs

    def schedule(self) -> list[tuple[float, float]]:
        """``(start, end)`` wall seconds of each job of `scheduled_jobs`."""
        return schedule(self.scheduled_jobs(), self.cost_model.cores, self.cost_model.background_load)

    def processing_tail(self) -> float:
        """Estimated wall seconds of processing left after the last image is read out."""
        return max(0.0, self.estimated_duration() - self.acquisition_duration() / self.time_scale)

    def estimated_duration(self) -> float:
        """Estimated wall seconds of the whole run, for the Script ``metadata`` event and ``--plan``."""
        jobs = self.scheduled_jobs()
        certification = self.cost_model.certification
        ends = [
            end + (certification if self._certifies(job.name) else 0.0)
            for job, (_, end) in zip(jobs, self.schedule(), strict=True)
        ]
        processing = max(ends, default=0.0)
        if ends:
            processing += self.cost_model.wrap_up
        return max(self.acquisition_duration() / self.time_scale, processing)

    def _certifies(self, job_name: str) -> bool:
        """True if the job of this name (of `scheduled_jobs`) is followed by a certification."""
        for step in self.processing:
            kind = "verify" if step.verify != "none" else "combine"
            if step.certify and not step.already_certified and job_name == f"{step.image_type.value} {kind}":
                return True
        return any(
            e.certify and not e.already_certified and e.product.upper() == job_name for e in self.extras
        )

    # --- jobs ------------------------------------------------------------------------------------

    def planned_jobs(self) -> list[JobSpec]:
        """Every OCPS job of the run, in order, with placeholders for the ids not known yet.

        Exposure ids are known only for recovered types; job ids never are.
        """
        builder = JobBuilder(self.config)

        def exposures(types: tuple[ImageType, ...]) -> list[int] | Placeholder:
            ids: list[int] = []
            for image_type in types:
                acq = self.acquisition(image_type)
                if not acq.recovered:
                    names = " + ".join(f"{self.acquisition(t).n_kept} {t.value} exposure ids" for t in types)
                    return Placeholder(names)
                ids.extend(acq.recovered_ids)
            return ids

        specs: list[JobSpec] = []
        for step in self.processing:
            if not step.has_work:
                continue
            ids = exposures((step.image_type,))
            calib_job_id = None
            if step.combine:
                specs.append(builder.combine(step.image_type, ids))
                calib_job_id = Placeholder(f"{step.image_type.value} combine job id")
            if step.verify != "none":
                specs.append(builder.verify(step.image_type, ids, calib_job_id))
        for extra in self.extras:
            if not extra.already_certified:
                ids = exposures(extra.inputs)
                specs.append(builder.extra(extra.product, ids))
                if extra.product in ("gain", "ptc"):
                    # The gain check: a PTC job's pairs against its own PTC; a gain job's against
                    # input_collections_ptc's (run only if that holds a PTC).
                    reference = self.config.input_collections("ptc") if extra.product == "gain" else None
                    job_id = Placeholder(f"{extra.product.upper()} job id")
                    specs.append(builder.verify_gain(ids, job_id, reference))
        return specs

    # --- description -----------------------------------------------------------------------------

    def describe(self) -> str:
        """Return a human-readable description of the plan (several lines)."""
        config = self.config
        lines = [
            f"Instrument {config.instrument.name}, script_mode {config.script_mode}, "
            f"detectors {list(config.detector_ids)}"
            + (f", filter {config.filter}" if config.filter is not None else ", filter unchanged"),
        ]
        lines.append("Exposures:")
        for acq in self.acquisitions:
            name = acq.image_type.plural
            if acq.recovered:
                lines.append(
                    f"  {acq.image_type.value}: no new image; reuse {len(acq.recovered_ids)} existing {name} "
                    f"{list(acq.recovered_ids)}"
                )
                continue
            kept_times = [e.exp_time for e in acq.kept]
            if acq.image_type is ImageType.BIAS:
                times = ""
            elif len(set(kept_times)) == 1:
                times = f" of {kept_times[0]:g} s"
            else:
                times = " with exposure times " + ", ".join(f"{t:g}" for t in kept_times) + " s"
            lines.append(
                f"  {acq.image_type.value}: {acq.n_discard} discarded + {len(acq.kept)} kept {name}{times} "
                f"({acq.duration(self.read_out_time, config.wait_between_exposures):.0f} s)"
            )
        if self.flat_pairs:
            pairs = ", ".join(f"#{p.first + 1}+#{p.second + 1} ({p.exp_time:g} s)" for p in self.flat_pairs)
            lines.append(f"Flat pairs ({len(self.flat_pairs)}): {pairs}")
        lines.append("Processing:")
        for step in self.processing:
            name = step.image_type.value
            if step.already_certified:
                lines.append(f"  {name}: already certified by the resumed run; nothing to do")
                continue
            parts = []
            if step.combine:
                parts.append(
                    "combine" + (f" (after {', '.join(step.waits_for)} certified)" if step.waits_for else "")
                )
            if step.verify != "none":
                parts.append(f"verify ({step.verify})")
            if step.certify:
                parts.append(
                    f"certify into {config.calib_collection}"
                    + (" if verification passes" if step.verify != "none" else "")
                )
            lines.append(f"  {name}: " + (" -> ".join(parts) if parts else "no processing (images only)"))
        for extra in self.extras:
            if extra.already_certified:
                lines.append(
                    f"  {extra.product.upper()}: already certified by the resumed run; nothing to do"
                )
                continue
            inputs = "+".join(t.plural for t in extra.inputs)
            text = f"  {extra.product.upper()}: from the {inputs}"
            if extra.waits_for:
                text += f" (after {', '.join(extra.waits_for)} certified)"
            if extra.certify:
                text += f" -> certify into {config.calib_collection}"
            if extra.product in ("gain", "ptc"):
                text += " -> per-pair gain report"
            lines.append(text)
        if self.certified_products:
            lines.append(
                f"Certifies {', '.join(self.certified_products)} into {config.calib_collection} over "
                f"[{config.certify_calib_begin_date}, {config.certify_calib_end_date})"
            )
        else:
            lines.append("Certifies nothing.")
        for note in config.notes:
            lines.append(f"Note: {note}")
        scale = f" / time scale {self.time_scale:g}" if self.time_scale != 1 else ""
        model = self.cost_model
        lines.append(
            f"Estimated duration: {self.estimated_duration():.0f} s = acquisition "
            f"{self.acquisition_duration() / self.time_scale:.0f} s ({self.n_images} images, Σ(exptime + "
            f"{self.read_out_time:g} s readout){scale}) + processing after the last image "
            f"~{self.processing_tail():.0f} s ({self.n_jobs} OCPS jobs in all; "
            f"{model.describe([job.name for job in self.scheduled_jobs()])})"
        )
        return "\n".join(lines)
