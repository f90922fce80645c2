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

"""`BaseMakeCalibrations`: take bias/dark/flat sequences and have the OCPS build, verify and certify
combined calibrations, for any camera.

The decisions live in `calib` (configuration, plan, job strings, certification rule, report); this
class only orchestrates:

* ``configure`` validates the YAML text (no image is ever taken on bad input), makes the camera and
  OCPS remotes, prepares the run (`calib.prepare.prepare_run`: resume, templates, plan) and makes,
  before the first exposure, every check against the repository and the camera that
  ``run_script --plan`` makes too (`preflight.check_before_run`: the repository can be written,
  recovered exposures exist, the filter is in the changer, ``calib_collection`` is a CALIBRATION
  collection with no certification over the same dates, the input collections exist, the ``-c``
  overrides fit their pipelines);
* ``run`` checks that the camera and the OCPS are enabled, sets up the instrument (`instrument_setup`:
  the filter, plus LATISS's grating), then for each image type (before the flats, asking
  `flat_feasibility_problem`, which LSSTCam answers from its dome) takes the images (one
  ``take_imgtype`` call per exposure, discarded ones first), and in the background, while the next
  type is taken, waits for every ``imageInOODS``, runs the combine job,
  the verification job, decides with the certification rule and certifies through the butler;
  defects, PTC or gain-only jobs follow the flats; the per-pair gains are reported;
* outcome is never hidden: the run ends DONE only if everything requested succeeded, otherwise it
  raises an `ExpectedError` naming every failed step, job id and collection (FAILED); ``stop``
  (or SIGINT/SIGTERM) lets the exposure in progress finish (bounded wait), aborts running OCPS
  jobs, certifies nothing more, waits for the OODS to announce the images already taken and settles
  every record's status from what was announced (STOPPED);
* every run that started writes its `calib.report.RunReport` as JSON as it goes (after each image,
  job, ingestion and certification) and in `cleanup`; a resume asks the repository which of the
  report's exposures have raws for every detector.

Missing images: if some kept exposure of a type is not announced by the OODS for every processed
detector once the OODS has been silent for ``oods_timeout`` (counted after that type's last
readout; an OODS still ingesting a backlog is not silent), that type is not processed (a combined
calibration from an incomplete set is not what was asked for), the missing exposure ids are
reported, the other types carry on, and the run ends FAILED.

Why the configuration is validated from the raw text: salobj's ``do_configure`` parses the YAML
with ``yaml.safe_load`` (which silently keeps the last of duplicate keys and loses line numbers)
before ``configure`` sees it. The script keeps the raw text (``do_configure`` is extended only to
record ``data.config``) and replaces ``config_validator`` with one that ignores the pre-parsed dict
and validates that text with `calib.config.parse_config_text` — duplicate keys, unknown keys with a
suggestion, types, cross-field rules, with lines and columns — inside salobj's own failure path
(CONFIGURE_FAILED, reason, exit). A YAML syntax error still fails in salobj's own ``safe_load``
first, whose message also gives the line, column and offending line; the script additionally logs
the precise message (with the ``key=value`` hint) before that happens.

What differs per camera is data (`calib.instrument.InstrumentSpec`: name, detectors, OCPS index,
schema changes; `butler.camera`: detector names) plus the camera client (`make_camera`) and two hooks
(`instrument_setup`, `flat_feasibility_problem`).

May import: `sal`, `calib`, `butler` (through `ButlerGateway`; `butler.camera` for detector names),
`report` (the run plots, drawn in `cleanup`) and the standard library.
"""

from __future__ import annotations

__all__ = ["BaseMakeCalibrations", "AcquisitionError"]

import asyncio
import contextlib
import datetime
import math
import pathlib
import time
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import yaml

from ..butler.camera import get_camera
from ..calib.config import (
    CalibConfig,
    ConfigError,
    ConfigProblem,
    ImageType,
    check_text_bounds,
    load_schema,
    parse_config_text,
)
from ..calib.durations import RunSite
from ..calib.flat_levels import COMBINE_MIN_EXPTIME_FRACTION, select_flats_for_combine
from ..calib.instrument import InstrumentSpec
from ..calib.jobs import JobBuilder, JobSpec
from ..calib.plan import AcquisitionPlan, CalibrationPlan, ExtraProduct
from ..calib.prepare import prepare_run
from ..calib.report import (
    AcquisitionRecord,
    CertificationRecord,
    ExposureRecord,
    GainRecord,
    JobRecord,
    RunReport,
    VerificationRecord,
)
from ..calib.statuses import AcquisitionStatus, CertificationStatus, JobStatus, VerificationStatus
from ..calib.summaries import summarise_by_reason
from ..calib.verification import decide_certification, decide_gain_check
from ..control.clients import RemoteGroup, Usages
from ..sal import ScriptState, current_tai, salobj
from .butler_gateway import ButlerGateway, ClaimRefusedError
from .ocps_client import JobFailedError, OcpsJobRunner
from .oods_tracker import OodsTracker
from .preflight import check_before_run
from .run_context import CameraClient, OcpsRemote, RunContext, StateMonitor


class AcquisitionError(Exception):
    """Taking an image failed (camera fault, refused or timed-out command)."""


class _ConfigTextValidator:
    """Replaces salobj's ``DefaultingValidator``: validates the raw configuration text.

    salobj calls ``validate(dict)`` on the dict it parsed; this ignores that dict and validates the
    text `BaseMakeCalibrations.do_configure` kept, so duplicate keys and positions are not lost.
    """

    def __init__(self, script: BaseMakeCalibrations) -> None:
        self.script = script

    def validate(self, config_dict: Any) -> dict[str, Any]:
        text = self.script._config_text
        if text is None:  # not called through do_configure: fall back on the parsed dict
            text = yaml.safe_dump(config_dict) if config_dict else ""
        config = parse_config_text(text, self.script.instrument)
        self.script._validated_config = config
        return config.to_dict()


def _resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _made[T](value: T | None, what: str, when: str) -> T:
    """``value``, which is made at ``when``; `RuntimeError` if used before."""
    if value is None:
        raise RuntimeError(f"No {what} before {when}.")
    return value


class BaseMakeCalibrations(salobj.BaseScript):  # type: ignore[name-defined,misc]
    """Base class of calibration-making scripts; subclasses name the camera.

    A subclass sets the class attributes `instrument`, `camera_client` and `camera_usage` (and
    optionally `setup_help`, `flats_help`), and overrides the hooks its camera needs
    (`instrument_setup`, `flat_physical_filter`, `flat_feasibility_problem`).

    Parameters
    ----------
    index : `int`
        SAL index of the script.

    Notes
    -----
    The description and help say the same of every camera, with its name and OCPS index from
    `get_instrument`; the report file names start with the stem of its ScriptQueue path
    (`report_prefix`).
    """

    instrument: ClassVar[InstrumentSpec]
    """The camera: name, detectors, OCPS index and pipeline directory (`calib.instrument`)."""

    camera_client: ClassVar[Callable[..., Any]]
    """The ts_observatory_control camera class (``ComCam``, ``LSSTCam``, ``LATISS``; LATISS has no
    ``get_current_filter`` and overrides `flat_physical_filter`)."""

    camera_usage: ClassVar[int]
    """Its ``intended_usage`` for taking images (``ComCamUsages.TakeImage`` ...)."""

    setup_help: ClassVar[str] = ""
    """The help's sentence on what the script does before the images (e.g. LATISS's filter and grating)."""

    flats_help: ClassVar[str] = ""
    """The help's sentence on what it checks before the flats (e.g. LSSTCam's dome)."""

    def __init__(self, index: int) -> None:
        spec = self.get_instrument()
        help = " ".join(
            part
            for part in (
                self.setup_help,
                "Takes the bias, dark and flat sequences of script_mode (discarded images first), has "
                f"OCPS:{spec.ocps_index} build and verify combined calibrations (cp_pipe, cp_verify), "
                "certifies them into calib_collection when generate_calibrations is true, and optionally "
                "makes defects, a PTC and per-pair gains.",
                self.flats_help,
                "Every run writes a JSON report.",
            )
            if part
        )
        descr = f"Take {spec.name} biases, darks and flats; make, verify and certify combined calibrations."
        super().__init__(index=index, descr=descr, help=help)
        # Duck-typed stand-in for salobj.DefaultingValidator: salobj only calls validate(dict).
        self.config_validator = _ConfigTextValidator(self)  # type: ignore[assignment]
        self._config_text: str | None = None
        self._validated_config: CalibConfig | None = None
        self.context: RunContext | None = None
        self.site = RunSite.observatory()
        """Where the run happens, for the plan's estimated duration: the real observatory unless the
        simulated observatory's own is set before configure (``run_script`` does)."""
        self.program: str | None = None
        self.reason: str | None = None
        self.checkpoint_message: str | None = None
        self.report = RunReport()
        self.report_path: pathlib.Path | None = None
        self._camera: CameraClient | None = None
        self._ocps_group: StateMonitor | None = None
        self._ocps: OcpsRemote | None = None
        self._runner: OcpsJobRunner | None = None
        self._tracker: OodsTracker | None = None
        self._background: list[asyncio.Task] = []
        self._taken: dict[ImageType, asyncio.Future] = {}
        self._ingested: dict[ImageType, asyncio.Future] = {}
        self._certified: dict[str, asyncio.Future] = {}
        self._save_failed = False
        self._claim: str | None = None
        self._claim_butler: ButlerGateway | None = None

    # --- what a camera subclass provides ---------------------------------------------------------

    @classmethod
    def get_instrument(cls) -> InstrumentSpec:
        """The camera (`instrument`), asked of a script class by ``run_script`` and the progress display."""
        return cls.instrument

    @property
    def report_prefix(self) -> str:
        """File name prefix of the run reports: the script's name (``make_comcam_calibrations``)."""
        return pathlib.PurePosixPath(self.instrument.script).stem

    def make_camera(self) -> CameraClient:
        """The camera client (`camera_client`) on the script's domain, with the topics taking images needs.

        Its ``TakeImage`` usage (`camera_usage`) leaves out the topics nobody reads (heartbeats...),
        whose queues would otherwise overflow and warn during a long run.
        """
        return self.camera_client(domain=self.domain, log=self.log, intended_usage=self.camera_usage)

    def detector_of(self, raft: str, sensor: str) -> int | None:
        """Detector id of an ``imageInOODS`` (raft, sensor), or `None` if the camera has no such detector.

        ComCam ``R22``, ``S11`` -> 4; LSSTCam ``R22``, ``S11`` -> 94; LATISS ``RXX``, ``S00`` -> 0.
        """
        try:
            return get_camera(self.instrument.name).detector_id(f"{raft}_{sensor}")
        except KeyError:
            return None

    def instrument_setup(self, cfg: CalibConfig) -> dict[str, Any]:
        """Keywords of the camera's ``setup_instrument`` before the images of a run configured with
        ``cfg``: the ``filter``.

        A hook: LATISS adds its ``grating``.
        """
        return {"filter": cfg.filter}

    async def flat_physical_filter(self, cfg: CalibConfig) -> str | None:
        """The butler ``physical_filter`` the flats will have (`None`: not known), for the check that
        the run would not certify a flat over an existing one of the same filter.

        The physical filter of `instrument_setup` (`calib.instrument.InstrumentSpec.physical_filter_of`),
        with the filter in the beam for a ``filter`` left unchanged. A hook: LATISS asks its grating too.
        """
        setup = self.instrument_setup(cfg)
        if setup.get("filter") is None:
            with contextlib.suppress(Exception):
                setup["filter"] = await self.camera.get_current_filter()
        return self.instrument.physical_filter_of(setup)

    async def flat_feasibility_problem(self) -> str | None:
        """Why flats cannot be taken now (`None`: they can). Asked once, before the first flat.

        A hook: the base takes flats whenever the camera can; LSSTCam checks its dome.
        """
        return None

    @classmethod
    def get_schema(cls) -> dict[str, Any]:
        """The configuration schema of this camera's script (`calib/schema.yaml` + `InstrumentSpec`)."""
        return load_schema(cls.get_instrument())

    # --- remotes ---------------------------------------------------------------------------------

    @property
    def camera(self) -> CameraClient:
        """The camera client (made by `start_remotes`, at configure)."""
        return _made(self._camera, "camera client", "configure (start_remotes)")

    @property
    def ocps_group(self) -> StateMonitor:
        """``RemoteGroup`` of the OCPS (made by `start_remotes`, at configure)."""
        return _made(self._ocps_group, "OCPS group", "configure (start_remotes)")

    @property
    def ocps(self) -> OcpsRemote:
        """Remote of the OCPS: its commands and ``job_result`` (made by `start_remotes`)."""
        return _made(self._ocps, "OCPS remote", "configure (start_remotes)")

    def _configured(self) -> RunContext:
        return _made(self.context, "run context", "configure")

    @property
    def config(self) -> CalibConfig:
        """The configuration of the run (`RunContext.config`)."""
        return self._configured().config

    @property
    def plan(self) -> CalibrationPlan:
        """The plan of the run (`RunContext.plan`)."""
        return self._configured().plan

    @property
    def job_builder(self) -> JobBuilder:
        """Builds the run's OCPS jobs (`RunContext.job_builder`)."""
        return self._configured().job_builder

    @property
    def butler(self) -> ButlerGateway:
        """The run's repository (`RunContext.butler`)."""
        return self._configured().butler

    @property
    def already_certified(self) -> frozenset[str]:
        """Products a resumed run already certified."""
        return self._configured().already_certified

    @property
    def tracker(self) -> OodsTracker:
        """The OODS announcements of the run (made when the run starts)."""
        return _made(self._tracker, "OODS tracker", "the run starts")

    @property
    def runner(self) -> OcpsJobRunner:
        """Sends the run's OCPS jobs (made when the run starts)."""
        return _made(self._runner, "OCPS job runner", "the run starts")

    def _oods_remote(self) -> Any:
        """The camera client's OODS remote (``rem.ccoods``, ``rem.mtoods``, ``rem.atoods``)."""
        names = [name for name in self.camera.components_attr if name.endswith("oods")]
        if len(names) != 1:
            raise RuntimeError(
                f"The camera client has no single OODS component: {self.camera.components_attr}"
            )
        return getattr(self.camera.rem, names[0])

    async def start_remotes(self) -> None:
        """Make the camera and OCPS clients, unless already made (e.g. by a test)."""
        if self._camera is None:
            camera = self.make_camera()
            self._camera = camera
            if camera.start_task is not None:
                await camera.start_task
        if self._ocps_group is None:
            # The group only watches the summary state; the commands and job_result go through a
            # Remote of their own. Topics nobody reads (heartbeat, ...) are left out of both, so their
            # queues never fill up during a long run.
            group = RemoteGroup(
                components=[f"OCPS:{self.instrument.ocps_index}"],
                domain=self.domain,
                log=self.log,
                intended_usage=Usages.MonitorState,
            )
            self._ocps_group = group
            if group.start_task is not None:
                await group.start_task
        if self._ocps is None:
            ocps = salobj.Remote(
                self.domain, "OCPS", self.instrument.ocps_index, include=["job_result"], evt_max_history=0
            )
            self._ocps = ocps
            await ocps.start_task

    # --- configure -------------------------------------------------------------------------------

    async def do_configure(self, data: Any) -> None:
        """Keep the raw configuration text, then configure as salobj does.

        A text that is not safe to parse (too long, nested too deeply, an alias bomb) is not handed
        to salobj's ``yaml.safe_load`` (nor echoed in its failure reason): salobj gets a one-line
        comment in its place, and the validator reports what is wrong with the real text.
        """
        self._config_text = data.config
        self._validated_config = None
        try:
            check_text_bounds(data.config)
        except ConfigError as e:
            self.log.error(e.describe())
            data.config = f"# configuration text of {len(data.config)} characters, refused unparsed"
            await super().do_configure(data)
            return
        try:
            yaml.safe_load(data.config or "")
        except yaml.YAMLError:
            try:
                parse_config_text(data.config, self.instrument)
            except ConfigError as e:
                self.log.error(e.describe())
        await super().do_configure(data)

    async def configure(self, config: types.SimpleNamespace) -> None:
        """Prepare the run (`calib.prepare.prepare_run`), make the remotes, and check the run against
        the repository and the camera (`preflight.check_before_run`: the checks ``run_script --plan``
        makes too) before the first image.

        Raises
        ------
        calib.config.ConfigError
            If the configuration is invalid, or cannot work with this repository or camera (every
            problem found, each naming its key).
        """
        text = self._config_text
        if text is None:  # not called through do_configure
            text = yaml.safe_dump(vars(config))
        cfg = self._validated_config or parse_config_text(text, self.instrument)
        butler = ButlerGateway(cfg.repo)
        await self.start_remotes()
        prepared = prepare_run(
            text,
            self.instrument,
            current_tai(),
            read_out_time=float(self.camera.read_out_time),
            raws_in_repo=await self._raws_for_resume(cfg, butler),
            site=self.site,
        )
        cfg = prepared.config
        if prepared.resume is not None:
            self.log.info(f"Resuming the run of {cfg.resume_from_report}: {prepared.resume.describe()}")
        available_filters = await self._available_filters() if cfg.filter is not None else None
        flat_filter = None
        if "flat" in prepared.plan.certified_products:
            flat_filter = await self.flat_physical_filter(cfg)
        for line in await check_before_run(
            prepared, butler, available_filters=available_filters, flat_physical_filter=flat_filter
        ):
            self.log.info(line)
        await self._claim_certifications(cfg, prepared.plan.certified_products, butler)
        self.context = RunContext(
            config=cfg,
            plan=prepared.plan,
            job_builder=JobBuilder(cfg),
            butler=butler,
            already_certified=prepared.already_certified,
        )

        self.program = cfg.program
        self.reason = cfg.reason
        self.checkpoint_message = None
        if cfg.program is not None:
            message = f"{type(self).__name__} {cfg.program}"
            if self.obs_id:
                message += f" {self.obs_id}"
            if cfg.reason is not None:
                message += f" {cfg.reason}"
            self.checkpoint_message = message
        for note in cfg.notes:
            self.log.info(f"Note: {note}")
        self.log.info("Plan:\n" + self.plan.describe())

    async def _claim_certifications(
        self, cfg: CalibConfig, products: Sequence[str], butler: ButlerGateway
    ) -> None:
        """Make the conflict check (`preflight`) and the certification minutes later one step
        against concurrent runs: claim what this run will certify (`butler.claims`), so that a second
        run configured meanwhile for the same collection, product and dates is refused, naming this one.

        Raises
        ------
        salobj.ExpectedError
            If another live run holds such a claim.
        """
        await self._release_claim()
        if not products:
            return
        try:
            self._claim_butler = butler
            self._claim = await butler.claim_certification(
                cfg.calib_collection,
                products,
                cfg.certify_calib_begin_date,
                cfg.certify_calib_end_date,
                owner=f"{type(self).__name__} index {self.salinfo.index}",
            )
        except ClaimRefusedError as e:
            raise salobj.ExpectedError(
                f"calib_collection {cfg.calib_collection}: {e}. Wait for that run to end, or choose another "
                "calib_collection or validity range; no image was taken."
            ) from e

    async def _raws_for_resume(self, cfg: CalibConfig, butler: ButlerGateway) -> dict[int, list[int]] | None:
        """What the repository holds of the exposures of ``resume_from_report``: the detectors with a
        raw of each (`None` without a resume, or if the report cannot be read: `prepare_run` says why).
        A resume trusts this, not the report's flags (`calib.recovery`)."""
        if not cfg.resume_from_report:
            return None
        path = str(cfg.resume_from_report)
        try:
            old = RunReport.load(path)
        except (OSError, ValueError, TypeError):
            return None
        listed = [e.exposure_id for e in old.exposures]
        try:
            in_repo = await butler.raw_detectors(listed)
        except Exception as e:
            raise ConfigError(
                [
                    ConfigProblem(
                        "resume_from_report", f"cannot look up the report's exposures in {cfg.repo}: {e}"
                    )
                ]
            ) from e
        not_in_repo = [e for e in listed if e not in in_repo]
        if not_in_repo:
            self.log.warning(f"Exposures of {path} that never reached {cfg.repo}: {not_in_repo}")
        return in_repo

    async def _available_filters(self) -> list[str] | None:
        """Filters in the filter changer, when the camera says which (else `None`: not checked)."""
        get_available_filters = getattr(self.camera, "get_available_filters", None)
        if get_available_filters is None:
            return None
        try:
            return [str(f) for f in await get_available_filters()]
        except Exception as e:
            self.log.warning(f"Could not get the available filters ({e!r}); not checking the filter")
            return None

    def set_metadata(self, metadata: Any) -> None:
        """Duration and number of images from the plan."""
        if self.context is None:
            return
        metadata.duration = self.plan.estimated_duration()
        metadata.nimages = self.plan.n_images
        metadata.instrument = self.instrument.name
        metadata.filters = self.config.filter or ""

    # --- run -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Take the images and process them; raise `ExpectedError` if any step failed."""
        self.report = self._new_report()
        self._save_report()
        if self.checkpoint_message:
            await self.checkpoint(f"{self.checkpoint_message}: Start")
        try:
            await self.run_block()
        except asyncio.CancelledError:
            self.report.failure_step = self.report.failure_step or "stopped"
            self.report.failure_reason = self.report.failure_reason or (
                f"stopped by request at or after checkpoint {self.last_checkpoint!r}"
            )
            await self._stop_background()
            raise
        except BaseException:
            await self._stop_background()
            raise
        if self.report.failures:
            raise salobj.ExpectedError(self.report.failures_summary())
        if self.checkpoint_message:
            await self.checkpoint(f"{self.checkpoint_message}: Done")

    def _new_report(self) -> RunReport:
        cfg = self.config
        report = RunReport(
            script=type(self).__name__,
            script_index=int(self.salinfo.index),
            instrument=self.instrument.name,
            group_id=self.group_id,
            config=cfg.to_dict(),
            estimated_duration=self.plan.estimated_duration(),
            start_tai=current_tai(),
            resumed_from=cfg.resume_from_report or "",
            notes=list(cfg.notes),
        )
        for acq in self.plan.acquisitions:
            report.acquisitions.append(
                AcquisitionRecord(
                    image_type=acq.image_type.value,
                    n_planned=len(acq.exposures),
                    n_kept_planned=acq.n_kept,
                    status=AcquisitionStatus.RECOVERED if acq.recovered else AcquisitionStatus.PENDING,
                )
            )
            for exposure_id in acq.recovered_ids:
                report.exposures.append(
                    ExposureRecord(
                        exposure_id, acq.image_type.value, float("nan"), recovered=True, in_oods=True
                    )
                )
        return report

    async def run_block(self) -> None:
        """The procedure: startup checks, filter, acquisitions, background processing, gains."""
        cfg = self.config
        plan = self.plan
        report = self.report

        phase = report.start_phase("startup checks", current_tai())
        try:
            await self.camera.assert_all_enabled(f"{self.instrument.name} must be enabled to take images.")
            await self.ocps_group.assert_all_enabled(
                f"OCPS:{self.instrument.ocps_index} must be enabled to process the images."
            )
        except (AssertionError, TimeoutError) as e:
            self._fail("startup checks", str(e), raised=True)
            raise salobj.ExpectedError(f"startup checks: {e}; no image was taken") from e
        finally:
            report.end_phase(phase.name, current_tai())

        await self.checkpoint("Setup instrument")
        report.start_phase("setup instrument", current_tai())
        setup = self.instrument_setup(self.config)
        try:
            await self.camera.setup_instrument(**setup)
        except (salobj.AckError, RuntimeError, TimeoutError) as e:
            wanted = ", ".join(f"{key} {value}" for key, value in setup.items())
            self._fail("setup instrument", f"could not set {wanted}: {_error_text(e)}", raised=True)
            raise salobj.ExpectedError(f"setup instrument: {_error_text(e)}; no image was taken") from e
        finally:
            report.end_phase("setup instrument", current_tai())

        self._tracker = OodsTracker(self._oods_remote().evt_imageInOODS, self.detector_of, self.log)
        self._runner = OcpsJobRunner(self.ocps, self.log)
        loop = asyncio.get_running_loop()
        self._taken = {acq.image_type: loop.create_future() for acq in plan.acquisitions}
        self._ingested = {acq.image_type: loop.create_future() for acq in plan.acquisitions}
        self._certified = {p: loop.create_future() for p in plan.certified_products}
        self._background = [
            asyncio.create_task(self.process_type(acq.image_type), name=f"{acq.image_type.value} processing")
            for acq in plan.acquisitions
        ]
        self._background += [
            asyncio.create_task(self.process_extra(extra), name=f"{extra.product.upper()} processing")
            for extra in plan.extras
        ]

        acquisition_failed = False
        for acq in plan.acquisitions:
            image_type = acq.image_type
            record = report.acquisition(image_type.value)
            assert record is not None
            if acquisition_failed:
                record.status = AcquisitionStatus.NOT_TAKEN
                _resolve(self._taken[image_type], None)
                continue
            if acq.recovered:
                await self.checkpoint(f"Using {acq.n_kept} recovered {image_type.plural}")
                self.log.info(f"Using {acq.n_kept} existing {image_type.plural}: {list(acq.recovered_ids)}")
                _resolve(self._taken[image_type], list(acq.recovered_ids))
                continue
            if image_type is ImageType.FLAT:
                problem = await self.flat_feasibility_problem()
                if problem is not None:
                    self._fail("flat feasibility", f"{problem}; no flat was taken")
                    record.status = AcquisitionStatus.NOT_TAKEN
                    acquisition_failed = True
                    _resolve(self._taken[image_type], None)
                    continue
            await self.checkpoint(f"Taking {len(acq.exposures)} {image_type.plural}")
            phase_name = f"{image_type.value} acquisition"
            report.start_phase(phase_name, current_tai())
            try:
                kept = await self.take_images(acq)
            except AcquisitionError as e:
                self._fail(phase_name, str(e))
                acquisition_failed = True
                _resolve(self._taken[image_type], None)
                self.log.warning(f"{phase_name} failed: no more images will be taken")
                continue
            finally:
                report.end_phase(phase_name, current_tai())
            await self.checkpoint(f"Images taken: {kept}; type: {image_type.value}")
            _resolve(self._taken[image_type], kept)

        await self.checkpoint("Data-taking part completed")
        await self._wait_background(cfg.background_task_timeout)

    async def _wait_background(self, timeout_per_task: float | None) -> None:
        """Wait for the processing tasks; with ``background_task_timeout``, at most that per task."""
        running = [task for task in self._background if not task.done()]
        if not running:
            await asyncio.gather(*self._background)
            return
        if timeout_per_task is None:
            self.log.info("Waiting for the OCPS processing to finish")
            await asyncio.gather(*self._background)
            return
        timeout = timeout_per_task * len(running)
        self.log.info(
            f"Waiting up to {timeout:g} s (background_task_timeout {timeout_per_task:g} s x "
            f"{len(running)} task(s)) for the OCPS processing to finish"
        )
        _, pending = await asyncio.wait(running, timeout=timeout)
        if pending:
            names = sorted(task.get_name() for task in pending)
            reason = (
                f"{len(pending)} background task(s) still running after {timeout:g} s "
                f"(background_task_timeout {timeout_per_task:g} s x {len(running)}): {', '.join(names)}; "
                "aborted"
            )
            await self._stop_background()
            self._fail("background tasks", reason)
            return
        await asyncio.gather(*self._background)

    # --- acquisition -----------------------------------------------------------------------------

    async def take_images(self, acq: AcquisitionPlan) -> list[int]:
        """Take the images of one type, one ``take_imgtype`` call per exposure.

        Returns
        -------
        kept : `list` [`int`]
            Exposure ids of the kept images.

        Raises
        ------
        AcquisitionError
            If an image could not be taken.
        asyncio.CancelledError
            On stop, after the exposure in progress has finished.
        """
        cfg = self.config
        image_type = acq.image_type
        record = self.report.acquisition(image_type.value)
        assert record is not None
        record.status = AcquisitionStatus.ACQUIRING
        record.start_tai = current_tai()
        n_total = len(acq.exposures)
        self.log.info(
            f"Taking {acq.n_discard} discarded + {len(acq.kept)} kept {image_type.plural}"
            + (f" (filter {cfg.filter})" if cfg.filter and image_type is ImageType.FLAT else "")
        )
        kept: list[int] = []
        for exposure in acq.exposures:
            if exposure.number > 1 and cfg.wait_between_exposures > 0:
                await asyncio.sleep(cfg.wait_between_exposures)
            task = asyncio.create_task(
                self.camera.take_imgtype(
                    image_type.value,
                    exposure.exp_time,
                    1,
                    group_id=self.group_id,
                    reason=cfg.reason,
                    program=cfg.program,
                    note=cfg.note,
                )
            )
            started = time.monotonic()
            try:
                ids = await asyncio.shield(task)
            except asyncio.CancelledError:
                # Stop between exposures: let the one in progress finish and record it.
                record.status = AcquisitionStatus.INCOMPLETE
                wait = _stop_wait(exposure.exp_time + float(self.camera.read_out_time) + 30.0)
                try:
                    ids = await asyncio.wait_for(task, timeout=wait)
                except TimeoutError:
                    self.log.warning(
                        f"Stop: the {image_type.value.lower()} in progress did not finish within {wait:g} s"
                    )
                except (Exception, asyncio.CancelledError) as e:
                    self.log.warning(f"Stop: the {image_type.value.lower()} in progress failed: {e!r}")
                else:
                    self._record_exposures(ids, exposure.exp_time, exposure.discard, image_type)
                    if not exposure.discard:
                        kept.extend(ids)
                    if exposure is acq.exposures[-1]:
                        record.status = AcquisitionStatus.TAKEN
                        record.end_tai = current_tai()
                raise
            except (salobj.AckError, RuntimeError, AssertionError, TimeoutError) as e:
                record.status = AcquisitionStatus.INCOMPLETE
                record.end_tai = current_tai()
                raise AcquisitionError(
                    f"{image_type.value.lower()} {exposure.number} of {n_total} could not be taken: "
                    + (
                        self._camera_hang_text(e, time.monotonic() - started)
                        if isinstance(e, salobj.AckTimeoutError)
                        else _error_text(e)
                    )
                ) from e
            self._record_exposures(ids, exposure.exp_time, exposure.discard, image_type)
            if not exposure.discard:
                kept.extend(ids)
            self._save_report()
            kind = "discarded" if exposure.discard else "kept"
            self.log.debug(f"{image_type.value} {exposure.number}/{n_total} ({kind}): exposure {ids}")
        record.status = AcquisitionStatus.TAKEN
        record.end_tai = current_tai()
        self.log.info(f"Took {n_total} {image_type.plural}; kept exposures {kept}")
        return kept

    def _camera_hang_text(self, error: BaseException, waited: float) -> str:
        """What is known when ``takeImages`` got no final acknowledgement within the ``waited``
        seconds: which camera, which image it started last and which it read out last (a camera
        hung mid-image)."""
        ackcmd = getattr(error, "ackcmd", None)
        ack = getattr(ackcmd, "result", "") or "no acknowledgement at all"
        remote = self.camera.camera
        salinfo = getattr(remote, "salinfo", None)
        name = getattr(salinfo, "name", "") or "the camera"
        names = {}
        for event in ("startIntegration", "endReadout"):
            topic = getattr(remote, f"evt_{event}", None)
            data = topic.get() if topic is not None else None
            names[event] = getattr(data, "imageName", "") or "none"
        hung = names["startIntegration"] != names["endReadout"]
        return (
            f"{name} did not complete takeImages within {waited:.0f} s (last ack: {ack}); last image "
            f"started {names['startIntegration']}, last read out {names['endReadout']}"
            + (f": {name} appears hung while taking {names['startIntegration']}" if hung else "")
        )

    def _record_exposures(
        self, ids: Sequence[int], exp_time: float, discard: bool, image_type: ImageType
    ) -> None:
        for exposure_id in ids:
            self.report.exposures.append(
                ExposureRecord(
                    int(exposure_id),
                    image_type.value,
                    0.0 if image_type is ImageType.BIAS else float(exp_time),
                    discarded=discard,
                )
            )

    async def _wait_for_oods(self, image_type: ImageType, kept: list[int]) -> bool:
        """Wait until the OODS announced every processed detector of every kept image."""
        cfg = self.config
        record = self.report.acquisition(image_type.value)
        assert record is not None
        acq = self.plan.acquisition(image_type)
        last = acq.exposures[-1].exp_time if acq.exposures else 0.0
        timeout = cfg.oods_timeout + last + float(self.camera.read_out_time)
        detectors = cfg.detector_ids
        missing = await self.tracker.wait(kept, detectors, timeout)
        for exposure in self.report.exposures:
            if exposure.image_type == image_type.value and not exposure.recovered:
                exposure.detectors_in_oods = self.tracker.n_announced(exposure.exposure_id, detectors)
                exposure.in_oods = exposure.detectors_in_oods == len(detectors)
                exposure.obs_id = self.tracker.obs_ids.get(exposure.exposure_id, "")
        if missing:
            record.status = AcquisitionStatus.MISSING_IMAGES
            record.missing_exposure_ids = list(missing)
            self._fail(
                f"{image_type.value} ingestion",
                f"{len(missing)} of {len(kept)} {image_type.plural} not announced by the OODS for all "
                f"{len(detectors)} detectors (OODS silent for oods_timeout={cfg.oods_timeout:g} s): "
                f"exposures {list(missing)}; the {image_type.plural} are not processed",
            )
            return False
        record.status = AcquisitionStatus.COMPLETE
        self._save_report()
        self.log.info(f"All {len(kept)} kept {image_type.plural} are in the OODS")
        return True

    # --- background processing -------------------------------------------------------------------

    async def process_type(self, image_type: ImageType) -> None:
        """Wait for the images of one type, then combine, verify, decide and certify."""
        step = self.plan.type_processing(image_type)
        name = image_type.value
        try:
            kept = await self._taken[image_type]
            if kept is None:
                return
            if not self.plan.acquisition(image_type).recovered:
                if not await self._wait_for_oods(image_type, kept):
                    return
            _resolve(self._ingested[image_type], kept)
            if step.already_certified:
                self.log.info(f"{name}: already certified by the resumed run; nothing to do")
                return
            if not step.has_work:
                self.log.info(
                    f"{name}: no processing requested (generate_calibrations and do_verify are false)"
                )
                return
            if not await self._wait_for_certifications(f"{name} combine", step.waits_for):
                self._skip_certification(image_type.key, "a calibration it depends on was not certified")
                return
            if image_type is ImageType.FLAT:
                kept = self._flats_for_combine(kept)
            calib_job: JobRecord | None = None
            if step.combine:
                calib_job = await self._run_job(self.job_builder.combine(image_type, kept))
                if calib_job is None:
                    self._skip_certification(image_type.key, "the combine job failed")
                    return
            if step.verify != "none":
                if not await self._verify(image_type, kept, calib_job):
                    self._skip_certification(
                        image_type.key,
                        "verification did not pass",
                        status=CertificationStatus.NOT_CERTIFIED,
                    )
                    return
            if step.certify and calib_job is not None:
                ok = await self._certify(image_type.key, calib_job)
                _resolve(self._certified[image_type.key], ok)
        except Exception as e:
            self._fail(f"{name} processing", f"unexpected error: {e!r}", error=e)
        finally:
            _resolve(self._ingested[image_type], None)
            if image_type.key in self._certified:
                _resolve(self._certified[image_type.key], False)

    def _flats_for_combine(self, kept: list[int]) -> list[int]:
        """The kept flats that go into the flat combine and its verification (`calib.flat_levels`)."""
        times = {
            e.exposure_id: float(e.exp_time)
            for e in self.report.exposures
            if e.image_type == ImageType.FLAT.value and not e.discarded
        }
        combined, left_out = select_flats_for_combine({i: times.get(i, math.nan) for i in kept})
        if left_out:
            self.log.info(
                f"{len(left_out)} flat(s) shorter than {COMBINE_MIN_EXPTIME_FRACTION:g} x the longest "
                f"flat are used by the PTC, gains and defects only, not by the flat combine and its "
                f"verification: {left_out}"
            )
        return combined

    async def process_extra(self, extra: ExtraProduct) -> None:
        """Defects, PTC or gain from flat pairs, once their images (and calibrations) are ready."""
        name = extra.product.upper()
        try:
            inputs = [await self._ingested[t] for t in extra.inputs]
            if any(ids is None for ids in inputs):
                unavailable = [t.plural for t, ids in zip(extra.inputs, inputs, strict=True) if ids is None]
                self._fail(name, f"not run: the {' and '.join(unavailable)} are not available")
                self._skip_certification(extra.product, "its input images are not available")
                return
            if extra.already_certified:
                self.log.info(f"{name}: already certified by the resumed run; nothing to do")
                return
            if not await self._wait_for_certifications(name, extra.waits_for):
                self._skip_certification(extra.product, "a calibration it depends on was not certified")
                return
            exposure_ids = [i for ids in inputs for i in ids]
            job = await self._run_job(self.job_builder.extra(extra.product, exposure_ids))
            if job is None:
                self._skip_certification(extra.product, f"the {name} job failed")
                return
            gains_ok = True
            if extra.product in ("gain", "ptc"):
                gains_ok = await self._verify_gains(extra.product, job, exposure_ids)
            if extra.product == "ptc" and not gains_ok:
                if extra.certify:
                    self._skip_certification(
                        "ptc",
                        "the gain check of its flat pairs failed",
                        status=CertificationStatus.NOT_CERTIFIED,
                    )
            elif extra.product == "ptc" and not await self._ptc_is_usable(job):
                if extra.certify:
                    self._skip_certification(
                        "ptc", "the PTC has bad amplifiers", status=CertificationStatus.NOT_CERTIFIED
                    )
            elif extra.certify:
                ok = await self._certify(extra.product, job)
                _resolve(self._certified[extra.product], ok)
            if extra.product in ("gain", "ptc"):
                await self._report_gains(job, required=extra.product == "gain")
        except Exception as e:
            self._fail(name, f"unexpected error: {e!r}", error=e)
        finally:
            if extra.product in self._certified:
                _resolve(self._certified[extra.product], False)

    async def _wait_for_certifications(self, step: str, products: Sequence[str]) -> bool:
        """Wait for the certifications ``step`` depends on; False (and a failure) if one failed."""
        if not products:
            return True
        pending = [p for p in products if not self._certified[p].done()]
        if pending:
            self.log.info(f"{step} waits for the certification of {', '.join(pending)}")
        results = [await self._certified[p] for p in products]
        failed = [p for p, ok in zip(products, results, strict=True) if not ok]
        if failed:
            self._fail(
                step, f"not started: it needs {', '.join(failed)} from this run, which was not certified"
            )
            return False
        return True

    def _fail(
        self,
        step: str,
        reason: str,
        job_id: str = "",
        collection: str = "",
        *,
        details: Iterable[str] = (),
        error: BaseException | None = None,
        raised: bool = False,
    ) -> None:
        """Record a failure of ``step`` in the report and log it as an error: the one way this script
        fails a step.

        Parameters
        ----------
        step, reason, job_id, collection, details
            As `RunReport.add_failure` (a bounded reason, the full list in ``details``).
        error : `BaseException`, optional
            An unexpected exception: its traceback is logged with the failure.
        raised : `bool`, optional
            The caller raises the failure at once as the script's own (``salobj.ExpectedError``), which
            the script's state and log report: only recorded here, not logged twice.
        """
        failure = self.report.add_failure(step, reason, job_id, collection, details)
        if not raised:
            self.log.error(failure.describe(), exc_info=error)

    def _skip_certification(
        self, product: str, reason: str, status: CertificationStatus = CertificationStatus.SKIPPED
    ) -> None:
        """Record that a product this run should certify was not certified."""
        if product not in self._certified:
            return
        cfg = self.config
        self.report.certifications.append(
            CertificationRecord(
                product=product,
                run_collection="",
                calib_collection=cfg.calib_collection,
                begin=cfg.certify_calib_begin_date,
                end=cfg.certify_calib_end_date,
                status=status,
                reason=reason,
                tai=current_tai(),
            )
        )
        self.log.warning(f"{product} is not certified: {reason}")

    async def _run_job(self, spec: JobSpec) -> JobRecord | None:
        """Run an OCPS job; record it; None (and a failure) if it did not succeed."""
        record = JobRecord(
            name=spec.name,
            kind=spec.kind.value,
            product=spec.product,
            pipeline=spec.pipeline,
            config=spec.config,
            data_query=spec.data_query,
        )
        self.report.jobs.append(record)
        self.report.start_phase(spec.name, current_tai())
        try:
            return await self.runner.run(spec, record, self.config.pipeline_job_timeout)
        except JobFailedError as e:
            self._fail(spec.name, e.reason, record.job_id, record.output_collection)
            return None
        finally:
            self.report.end_phase(spec.name, current_tai())
            self._save_report()

    async def _verify(self, image_type: ImageType, kept: list[int], calib_job: JobRecord | None) -> bool:
        """Run the verification job and apply the certification rule."""
        cfg = self.config
        spec = self.job_builder.verify(image_type, kept, calib_job.job_id if calib_job else None)
        record = VerificationRecord(
            image_type=image_type.value,
            mode="internal" if calib_job is not None else "external",
            reference=",".join(spec.input_collections),
        )
        result = await self._run_verify_job(spec, record, f"verify{image_type.value.capitalize()}Stats")
        if result is None:
            return False
        job, stats = result
        exposure_stats = None
        if cfg.verification_rule == "strict":
            exposure_stats = await self.butler.read_verify_exposure_stats(
                job.output_collection, f"verify{image_type.value.capitalize()}ExpStats"
            )
        decision = decide_certification(
            image_type.value,
            stats,
            cfg.verification_threshold(image_type),
            cfg.n_detectors,
            rule=cfg.verification_rule,
            exposure_stats=exposure_stats,
        )
        record.decision = decision.to_dict()
        record.summary = decision.summary()
        record.status = VerificationStatus.PASSED if decision.certify else VerificationStatus.FAILED
        if decision.certify:
            self.log.info(decision.summary())
            return True
        self._fail(f"{image_type.value} verification", decision.summary(), job.job_id, job.output_collection)
        return False

    async def _run_verify_job(
        self, spec: JobSpec, record: VerificationRecord, dataset_type: str
    ) -> tuple[JobRecord, dict[Any, Any]] | None:
        """Run a verify job and read its run-level stats; None (record and failure set) if either fails."""
        self.report.verifications.append(record)
        job = await self._run_job(spec)
        if job is None:
            record.status = VerificationStatus.ERROR
            record.summary = "the verify job failed"
            return None
        record.job_id = job.job_id
        try:
            stats = await self.butler.read_verify_stats(job.output_collection, dataset_type)
        except Exception as e:
            record.status = VerificationStatus.ERROR
            record.summary = f"could not read {dataset_type}: {e}"
            self._fail(f"{record.image_type} verification", record.summary, job.job_id, job.output_collection)
            return None
        return job, stats

    async def _certify(self, product: str, job: JobRecord) -> bool:
        """Certify a job's product into calib_collection (finishing even if a stop arrives)."""
        cfg = self.config
        record = CertificationRecord(
            product=product,
            run_collection=job.output_collection,
            calib_collection=cfg.calib_collection,
            begin=cfg.certify_calib_begin_date,
            end=cfg.certify_calib_end_date,
            status=CertificationStatus.PENDING,
        )
        self.report.certifications.append(record)
        step = f"{product.upper()} certification"
        task = asyncio.ensure_future(
            self.butler.certify(
                job.output_collection, cfg.calib_collection, product, record.begin, record.end
            )
        )
        try:
            count = await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                record.count = int(await task)
                record.status = CertificationStatus.CERTIFIED if record.count else CertificationStatus.FAILED
            raise
        except Exception as e:
            record.status = CertificationStatus.FAILED
            record.reason = _error_text(e)
            self._fail(step, record.reason, job.job_id, cfg.calib_collection)
            return False
        finally:
            record.tai = current_tai()
            self._save_report()
        record.count = int(count)
        if record.count == 0:
            record.status = CertificationStatus.FAILED
            record.reason = f"no {product} dataset in {job.output_collection}"
            self._fail(step, record.reason, job.job_id, cfg.calib_collection)
            return False
        record.status = CertificationStatus.CERTIFIED
        self.log.info(
            f"Certified {record.count} {product} from {job.output_collection} into {cfg.calib_collection} "
            f"over [{record.begin}, {record.end})"
        )
        return True

    async def _verify_gains(self, product: str, job: JobRecord, exposure_ids: list[int]) -> bool:
        """cp_verify's gain-from-flat-pairs check of a PTC or gain job; False if an amp failed.

        A PTC job's pairs are checked against its own PTC; a gain job's against the PTC of
        ``input_collections_ptc``, when there is one (otherwise the check is skipped, logged).
        """
        reference: str | None = None
        if product == "gain":
            reference = self.config.input_collections("ptc")
            if not await self.butler.collections_have_dataset(reference, "ptc"):
                self.log.info(f"No PTC in {reference}: the gains from flat pairs are not checked")
                return True
        spec = self.job_builder.verify_gain(exposure_ids, job.job_id, reference)
        record = VerificationRecord(
            image_type="GAIN",
            mode="internal" if reference is None else "external",
            reference=reference or job.output_collection,
        )
        result = await self._run_verify_job(spec, record, "verifyGainStats")
        if result is None:
            return False
        verify_job, stats = result
        decision = decide_gain_check(stats)
        record.decision = decision
        record.summary = str(decision["summary"])
        record.status = VerificationStatus.PASSED if decision["passed"] else VerificationStatus.FAILED
        if decision["passed"]:
            self.log.info(record.summary)
            return True
        self._fail("GAIN verification", record.summary, verify_job.job_id, verify_job.output_collection)
        return False

    async def _ptc_is_usable(self, job: JobRecord) -> bool:
        """False (and a failure naming them) if the PTC job's solver flagged bad amplifiers.

        A PTC fitted with EXPAPPROXIMATION because it has too few pairs for the configured
        FULLCOVARIANCE fit is usable; that is logged as a warning and noted in the report.
        """
        fallbacks = await self.butler.read_ptc_fit_fallbacks(job.output_collection)
        if fallbacks:
            why = sorted(set(fallbacks.values()))
            note = f"PTC of detector(s) {', '.join(str(d) for d in sorted(fallbacks))}: " + "; ".join(why)
            self.log.warning(note)
            self.report.notes.append(note)
        bad = await self.butler.read_ptc_bad_amps(job.output_collection)
        if not bad:
            return True
        reasons = {f"detector {det} {amp}": reason for det in sorted(bad) for amp, reason in bad[det].items()}
        camera = get_camera(self.instrument.name)
        n_amps = sum(len(camera[det].amp_names) for det in self.config.detector_ids)
        summary = summarise_by_reason(reasons, f"of {n_amps} amplifiers bad in the PTC")
        if 2 * len(reasons) > n_amps:
            # Most amps at once: the exposures, not single amplifiers, are the problem.
            cause = "the flat pairs cannot constrain the PTC of most amplifiers"
            if self.site.cost_model.size == "tiny":
                cause += (
                    " (simulated --size tiny frames have too few pixels per amplifier; use the default size)"
                )
            summary = f"{cause}: {summary}"
        self._fail(
            "PTC",
            summary,
            job.job_id,
            job.output_collection,
            details=[f"{item}: {reason}" for item, reason in reasons.items()],
        )
        return False

    async def _report_gains(self, job: JobRecord, required: bool) -> None:
        """Read the per-pair gains of a gain or PTC job and log them as a table."""
        try:
            pair_gains = await self.butler.read_pair_gains(job.output_collection)
        except Exception as e:
            if required:
                self._fail(
                    "GAIN report", f"could not read the pair gains: {e}", job.job_id, job.output_collection
                )
            else:
                self.log.warning(f"No per-pair gains in {job.output_collection}: {e}")
            return
        gains = [
            GainRecord(
                pair=[int(p) for p in pg.exposure_pair],
                detector=int(pg.detector),
                amp=str(pg.amp),
                gain=float(pg.gain),
                noise=float(pg.noise),
            )
            for pg in pair_gains
        ]
        self.report.gains.extend(gains)
        if not gains:
            if required:
                self._fail(
                    "GAIN report", "the gain job measured no flat pair", job.job_id, job.output_collection
                )
            return
        # One line here; the per-pair table (one row per pair, detector and amplifier) is in the report.
        values = sorted(g.gain for g in gains)
        self.log.info(
            f"Gains from {len({tuple(g.pair) for g in gains})} flat pair(s) of {job.name} job {job.job_id}: "
            f"{len({(g.detector, g.amp) for g in gains})} amplifiers, median {values[len(values) // 2]:.3f} "
            f"e-/ADU (range {values[0]:.3f}-{values[-1]:.3f}); the per-pair table is in the run report "
            f"{self.report_file().with_suffix('.html')} (and 'gains' of {self.report_file()})"
        )

    # --- stop and cleanup ------------------------------------------------------------------------

    async def _stop_background(self) -> None:
        """Cancel the processing tasks, abort the OCPS jobs still running, let the images already
        read out reach the OODS (bounded), and leave every record in a state that says what happened.
        """
        tasks = [task for task in self._background if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None and self._runner.running:
            self.log.warning(f"Aborting {len(self._runner.running)} running OCPS job(s)")
            await self._runner.abort_all()
        for job in self.report.jobs:
            if job.status == JobStatus.RUNNING:
                job.status = JobStatus.ABORTED
                job.end_tai = job.end_tai or current_tai()
        for verification in self.report.verifications:
            if verification.status == VerificationStatus.PENDING:
                verification.status = VerificationStatus.ABORTED
                verification.summary = verification.summary or "stopped before the verification finished"
        await self._settle_exposures()

    async def _settle_exposures(self) -> None:
        """After a stop or failure: wait (bounded) for the OODS to announce every image taken, then
        set each exposure's OODS flags and each acquisition's final status from what was announced.

        An acquisition whose images were all taken is ``complete`` if they all reached the OODS and
        ``missing_images`` (naming them) if not; one cut short is ``incomplete``; one never started
        ``not_taken``.
        """
        cfg = self.config
        detectors = cfg.detector_ids
        taken = [e for e in self.report.exposures if not e.recovered]
        if self._tracker is not None and taken:
            ids = [e.exposure_id for e in taken]
            if self._tracker.missing(ids, detectors):
                timeout = _stop_wait(cfg.oods_timeout + float(self.camera.read_out_time))
                self.log.info(
                    f"Waiting for the OODS to announce the {len(self._tracker.missing(ids, detectors))} "
                    f"image(s) already taken (until it is silent for {timeout:g} s)"
                )
                await self.tracker.wait(ids, detectors, timeout)
            for exposure in taken:
                exposure.detectors_in_oods = self.tracker.n_announced(exposure.exposure_id, detectors)
                exposure.in_oods = exposure.detectors_in_oods == len(detectors)
                exposure.obs_id = exposure.obs_id or self.tracker.obs_ids.get(exposure.exposure_id, "")
        for record in self.report.acquisitions:
            if record.status == AcquisitionStatus.PENDING:
                record.status = AcquisitionStatus.NOT_TAKEN
            elif record.status == AcquisitionStatus.ACQUIRING:
                record.status = AcquisitionStatus.INCOMPLETE
            elif record.status == AcquisitionStatus.TAKEN:
                kept = [e for e in self.report.exposures_of(record.image_type) if not e.recovered]
                missing = [e.exposure_id for e in kept if not e.in_oods]
                if missing:
                    record.status = AcquisitionStatus.MISSING_IMAGES
                    record.missing_exposure_ids = missing
                else:
                    record.status = AcquisitionStatus.COMPLETE
        not_announced = [e.exposure_id for e in taken if not e.in_oods]
        if not_announced:
            self.log.warning(
                f"Images taken but not announced by the OODS for all {len(detectors)} detectors: "
                f"{not_announced}"
            )

    def _save_report(self) -> None:
        """Write the report as it stands (atomically), so a killed run leaves one to resume from.

        Called after each image, job, ingestion and certification; `cleanup` writes the final one.
        A failure to write is logged once and never stops the run.
        """
        if self.context is None or not self.report.start_tai:
            return
        try:
            self.report.write(self.report_file())
        except Exception as e:
            if not self._save_failed:
                self._save_failed = True
                self.log.warning(f"Could not write the run report as it goes: {e!r}")

    async def _release_claim(self) -> None:
        """Drop this run's certification claim, if it holds one (never raises)."""
        token, self._claim = self._claim, None
        butler, self._claim_butler = self._claim_butler, None
        if token is not None and butler is not None:
            try:
                await butler.release_claim(token)
            except Exception as e:
                self.log.warning(f"Could not release the certification claim: {e!r}")

    async def close_tasks(self) -> None:
        """Release the certification claim of a script closed without running, then close."""
        await self._release_claim()
        await super().close_tasks()

    async def cleanup(self) -> None:
        """Write the run report (every run that started: DONE, FAILED or STOPPED)."""
        for closer in (self._tracker, self._runner):
            if closer is not None:
                closer.close()
        await self._release_claim()
        if self.context is None:
            return
        report = self.report
        report.end_tai = current_tai()
        final = {
            ScriptState.ENDING: "DONE",
            ScriptState.STOPPING: "STOPPED",
            ScriptState.FAILING: "FAILED",
        }.get(self.state.state, "FAILED")
        report.final_state = final
        if final == "FAILED" and not report.failure_step:
            report.failure_step = "run"
            report.failure_reason = self.state.reason
        try:
            path = self.report_file()
            report.write(path)
            self.report_path = path
            self.log.info(f"Run report written to {path}")
        except Exception as e:
            self.log.error(f"Could not write the run report: {e!r}")
        else:
            await self._make_plots(report, path.parent)
            await self._make_html(path)
        self.log.info("Summary:\n" + report.summary_text())

    async def _make_html(self, path: pathlib.Path) -> None:
        """Write the run's HTML page beside the JSON report; never raises (like the plots)."""
        try:
            from ..report.html import write_html_report

            page = await asyncio.to_thread(write_html_report, path)
        except Exception as e:
            self.log.warning(f"Could not write the HTML run report: {e!r}")
            return
        self.log.info(f"Run report page (open it in a browser): {page}")

    async def _make_plots(self, report: RunReport, directory: pathlib.Path) -> None:
        """Draw the run's PNG plots next to the report; never raises (plots never change the outcome)."""
        try:
            from ..report.plots import make_run_plots

            paths = await asyncio.to_thread(make_run_plots, report.to_dict(), self.config.repo, directory)
        except Exception as e:
            self.log.warning(f"Could not draw the run plots: {e!r}")
            return
        if paths:
            self.log.info(f"Run plots ({len(paths)}): " + ", ".join(str(p) for p in paths))
        else:
            self.log.info("No run plot: no product to draw")

    def report_file(self) -> pathlib.Path:
        """Path of this run's report: ``<report_dir>/<script>_<TAI start>_<index>.json``."""
        directory = self.config.report_dir or str(pathlib.Path(self.config.repo) / "reports")
        stamp = datetime.datetime.fromtimestamp(self.report.start_tai or current_tai(), tz=datetime.UTC)
        name = f"{self.report_prefix}_{stamp:%Y%m%dT%H%M%S}_{self.salinfo.index}.json"
        return pathlib.Path(directory) / name


STOP_WAIT_MAX = 600.0
"""Longest wait (s) of any stop path: the stop of a run never waits longer than this for one step."""


def _stop_wait(seconds: float) -> float:
    """A stop-path timeout: ``seconds`` if finite and not over `STOP_WAIT_MAX`, else `STOP_WAIT_MAX`."""
    return seconds if math.isfinite(seconds) and 0 <= seconds <= STOP_WAIT_MAX else STOP_WAIT_MAX


def _error_text(error: BaseException) -> str:
    """The useful text of an error (the ack result of an `AckError`)."""
    ackcmd = getattr(error, "ackcmd", None)
    if ackcmd is not None and getattr(ackcmd, "result", None):
        return str(ackcmd.result)
    return str(error) or type(error).__name__
