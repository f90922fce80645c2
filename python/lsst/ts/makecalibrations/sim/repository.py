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

"""The simulated observatory's butler repository: laid out by `butler.repository`, filled with
reference ("curated") calibrations computed from the simulated truth.

`ensure_repo` makes the repo on first use: the butler layout (`butler.repository.create_repo`), then
bias, dark, flat (every physical filter), defects and ptc from the truth model, certified into
``LSSTComCam/calib`` over [1950-01-01, 2050-01-01) TAI, so that external verification works on a fresh
repo. They are made for the detectors and flat filters asked for (``detectors``, ``filters``; all by
default) and recorded as ``reference_detectors`` / ``reference_filters`` in ``truth.json``; a later
call asking for others adds theirs (at ``--size full`` each detector's reference calibrations take
minutes, mostly its flats, so a one-detector run in one filter does not pay for nine detectors and
eight filters). A ``progress`` callable is told about each detector as it is made. The simulation
parameters (size, seed, brighter-fatter) and every injected defect are written to
``<repo>/simulation/truth.json``, the marker of a complete repo, which tests and the raw writer read.

A later call reuses the repo; it refuses a size, seed or brighter-fatter setting different from the
recorded one. Creation is serialised between processes with a lock file, and every step is
idempotent, so an interrupted creation is completed by the next call.

May import: `butler`, `sim.truth`, `pipelines.isr` (its overscan noise factor), lsst.daf.butler, numpy,
astropy.
"""

from __future__ import annotations

__all__ = ["TRUTH_FILE", "ensure_repo", "read_simulation_config"]

import functools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.time import Time
from lsst.daf.butler import Butler

from ..butler.calib_types import Defects, PhotonTransferCurve
from ..butler.camera import INSTRUMENT_NAME, SIZE_PRESETS, get_camera
from ..butler.certification import make_timespan
from ..butler.images import make_masked_image
from ..butler.instrument import INSTRUMENT_FILTERS
from ..butler.repository import (
    CURATED_BEGIN,
    CURATED_END,
    RepositoryError,
    calib_collection,
    create_repo,
    creation_lock,
    curated_run,
    make_butler,
)
from ..pipelines.isr import overscan_noise_factor
from .truth import DEFAULT_TRUTH_SEED, TruthModel

TRUTH_FILE = Path("simulation") / "truth.json"
"""Path, relative to the repo root, of the simulation description (written last on creation)."""


def read_simulation_config(repo: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the simulation description written by `ensure_repo` (``simulation/truth.json``).

    Raises
    ------
    FileNotFoundError
        If the repo was not made (or not finished) by `ensure_repo`.
    """
    with open(Path(repo) / TRUTH_FILE) as stream:
        return json.load(stream)


def ensure_repo(
    path: str | os.PathLike[str],
    size: str | None = None,
    seed: int | None = None,
    brighter_fatter: bool | None = None,
    detectors: Sequence[int] | None = None,
    filters: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    instrument: str | None = None,
) -> None:
    """Create the repository at ``path`` if needed, else check it matches the request.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        Repository root.
    size : `str`, optional
        Simulation size preset (``full``, ``default``, ``tiny``). `None` accepts an existing repo of any
        size and creates a ``default`` one.
    seed : `int`, optional
        Truth-model seed; `None` accepts the recorded one / uses ``sim.truth.DEFAULT_TRUTH_SEED``.
    brighter_fatter : `bool`, optional
        Simulate brighter-fatter in the flats; `None` accepts the recorded setting / defaults to True.
    detectors : sequence of `int`, optional
        Detectors that need reference calibrations; those of an existing repo that lacks some are
        added. `None`: every detector for a new repo, whatever it has for an existing one.
    filters : sequence of `str`, optional
        Physical filters that need a reference flat (``r_03``...), added likewise; `None`: every
        filter for a new repo (at ``--size full`` the flats of eight filters are most of the size).
    progress : `~collections.abc.Callable` [[`str`], `None`], optional
        Called with one line per step of a creation or addition (layout, each detector's reference
        calibrations, certification); not called when the repo already has what is asked for.
    instrument : `str`, optional
        Camera of the repository (``LSSTComCam``, ``LSSTCam``, ``LATISS``); `None` accepts an existing
        repo's and creates an LSSTComCam one.

    Raises
    ------
    RepositoryError
        If the existing repo was made with a different size, seed or brighter-fatter setting, or if
        ``path`` holds a butler repo that was not made here.
    """
    if size is not None and size not in SIZE_PRESETS:
        raise ValueError(f"Unknown size {size!r}; expected one of {sorted(SIZE_PRESETS)}.")
    root = Path(path)
    truth_path = root / TRUTH_FILE
    if instrument is None:
        instrument = _recorded_instrument(root) if truth_path.exists() else INSTRUMENT_NAME
    if instrument not in INSTRUMENT_FILTERS:
        raise ValueError(f"Unknown instrument {instrument!r}; expected one of {sorted(INSTRUMENT_FILTERS)}.")
    camera = get_camera(instrument)
    physical_filters = INSTRUMENT_FILTERS[instrument]
    wanted = None if detectors is None else sorted({int(d) for d in detectors})
    unknown = [d for d in wanted or () if d not in camera.detector_ids]
    if unknown:
        raise ValueError(
            f"Unknown detectors {unknown} for {instrument}; expected some of {list(camera.detector_ids)}."
        )
    wanted_filters = None if filters is None else sorted(set(filters))
    unknown_filters = [f for f in wanted_filters or () if f not in physical_filters]
    if unknown_filters:
        raise ValueError(
            f"Unknown filters {unknown_filters} for {instrument}; expected some of {list(physical_filters)}."
        )
    say = progress if progress is not None else (lambda text: None)
    if truth_path.exists():
        _check_existing(root, size, seed, brighter_fatter, instrument)
        if _missing(root, wanted, wanted_filters) == ([], []):
            return
    with creation_lock(root):
        if truth_path.exists():
            _check_existing(root, size, seed, brighter_fatter, instrument)
            missing = _missing(root, wanted, wanted_filters)
            if missing != ([], []):
                _add_references(root, *missing, say)
            return
        _create(
            root,
            size,
            seed,
            brighter_fatter,
            list(camera.detector_ids) if wanted is None else wanted,
            list(physical_filters) if wanted_filters is None else wanted_filters,
            say,
            instrument,
        )


def _recorded_instrument(root: Path) -> str:
    """The instrument recorded in ``truth.json`` (LSSTComCam for repos made before the key)."""
    return str(read_simulation_config(root).get("instrument", INSTRUMENT_NAME))


def _reference_set(config: dict[str, Any]) -> tuple[list[int], list[str]]:
    """Detectors and flat filters with reference calibrations (all, for repos made before the keys)."""
    instrument = str(config.get("instrument", INSTRUMENT_NAME))
    detectors = [int(d) for d in config.get("reference_detectors", get_camera(instrument).detector_ids)]
    return detectors, [str(f) for f in config.get("reference_filters", INSTRUMENT_FILTERS[instrument])]


def _missing(
    root: Path, detectors: list[int] | None, filters: list[str] | None
) -> tuple[list[int], list[str]]:
    """The detectors and filters asked for that the repo has no reference calibrations of."""
    have_detectors, have_filters = _reference_set(read_simulation_config(root))
    return (
        [d for d in detectors or () if d not in have_detectors],
        [f for f in filters or () if f not in have_filters],
    )


def _write_truth_file(root: Path, summary: dict[str, Any]) -> None:
    tmp = root / "simulation" / "truth.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(root / TRUTH_FILE)


def _add_references(root: Path, detectors: list[int], filters: list[str], say: Callable[[str], None]) -> None:
    """Make and certify the reference calibrations of more detectors or flat filters of a repo."""
    config = read_simulation_config(root)
    truth = TruthModel.from_simulation_config(config)
    have_detectors, have_filters = _reference_set(config)
    all_detectors = sorted(set(have_detectors) | set(detectors))
    all_filters = sorted(set(have_filters) | set(filters))
    say(f"adding reference calibrations to {root}: detectors {detectors}, flat filters {filters}")
    butler = make_butler(root, writeable=True, instrument=truth.instrument)
    # Idempotent: only the datasets not there yet are made.
    _seed_reference_calibrations(butler, truth, all_detectors, all_filters, say)
    config["reference_detectors"] = all_detectors
    config["reference_filters"] = all_filters
    _write_truth_file(root, config)


def _check_existing(
    root: Path, size: str | None, seed: int | None, brighter_fatter: bool | None, instrument: str
) -> None:
    config = read_simulation_config(root)
    config.setdefault("instrument", INSTRUMENT_NAME)
    wanted = {"size": size, "seed": seed, "brighter_fatter": brighter_fatter, "instrument": instrument}
    for key, value in wanted.items():
        if value is not None and config.get(key) != value:
            raise RepositoryError(
                f"Repository {root} was created with {key}={config.get(key)!r}; refusing to use it with "
                f"{key}={value!r}. Use another repository path, or omit {key} to accept the existing one."
            )


def _create(
    root: Path,
    size: str | None,
    seed: int | None,
    brighter_fatter: bool | None,
    detectors: list[int],
    filters: list[str],
    say: Callable[[str], None],
    instrument: str = INSTRUMENT_NAME,
) -> None:
    if (root / "butler.yaml").exists():
        # An interrupted creation is fine (we redo the idempotent steps) if it was ours.
        partial = root / "simulation" / "creating.json"
        if not partial.exists():
            raise RepositoryError(f"{root} holds a butler repository that was not created by ensure_repo.")
        pending = json.loads(partial.read_text())
        size = size or pending["size"]
        seed = pending["seed"] if seed is None else seed
        brighter_fatter = pending["brighter_fatter"] if brighter_fatter is None else brighter_fatter
        if pending != {"size": size, "seed": seed, "brighter_fatter": brighter_fatter}:
            raise RepositoryError(
                f"Interrupted creation of {root} used {pending}; cannot resume differently."
            )
    else:
        size = size or "default"
        seed = DEFAULT_TRUTH_SEED if seed is None else seed
        brighter_fatter = True if brighter_fatter is None else brighter_fatter
        root.mkdir(parents=True, exist_ok=True)
        (root / "simulation").mkdir(exist_ok=True)
        (root / "simulation" / "creating.json").write_text(
            json.dumps({"size": size, "seed": seed, "brighter_fatter": brighter_fatter})
        )

    say(
        f"creating the butler repository {root} (size {size}): butler layout of {instrument}; "
        f"detectors {detectors}"
    )
    truth = TruthModel(seed=seed, size=size, brighter_fatter=brighter_fatter, instrument=instrument)
    butler = create_repo(root, instrument)
    _seed_reference_calibrations(butler, truth, detectors, filters, say)

    summary = truth.summary()
    summary.update(
        size=size,
        seed=seed,
        brighter_fatter=brighter_fatter,
        reference_detectors=detectors,
        reference_filters=filters,
    )
    _write_truth_file(root, summary)
    (root / "simulation" / "creating.json").unlink(missing_ok=True)
    say(f"butler repository {root} ready")


def _calib_metadata(truth: TruthModel, detector: int, obstype: str) -> dict[str, Any]:
    det = truth.camera[detector]
    return {
        "OBSTYPE": obstype,
        "IMGTYPE": obstype.upper(),
        "INSTRUME": truth.instrument,
        "DETECTOR": detector,
        "DET_NAME": det.name,
        "DET_SER": det.serial,
        "CALIBDATE": CURATED_BEGIN,
        "CALIB_ID": f"{obstype} detector={detector} curated",
        "CURATED": True,
        "SIM_SEED": truth.seed,
        "SIM_SIZE": truth.size_name,
        "LSST ISR UNITS": "electron",
    }


def _read_noise_map(truth: TruthModel, detector: int) -> np.ndarray:
    """Per-pixel read noise (e-) of the amp each pixel belongs to."""
    det = truth.camera[detector]
    geometry = truth.geometry_of(detector)
    result = np.empty(geometry.detector_shape, dtype=np.float32)
    for amp in det:
        result[amp.bbox_slices(geometry)] = amp.read_noise
    return result


def _reference_ptc(truth: TruthModel, detector: int) -> PhotonTransferCurve:
    """Ideal EXPAPPROXIMATION PTC of the truth: model points from 500 e- to the full well.

    Its noise is what a PTC measures on processed pixels: the read noise times the overscan
    subtraction's `pipelines.isr.overscan_noise_factor` (cp_pipe's ISR writes the PTC noise as
    ``LSST ISR READNOISE``, which cp_verify's NOISE tests compare the processed images with; this
    package's ISR still writes the camera's nominal read noise there, so good darks sit at about
    +3.5 % of the 5 % limit until it reads the PTC). The per-pair ``noise_list`` stays the overscan
    read noise (ADU), as cp_pipe's.
    """
    det = truth.camera[detector]
    geometry = truth.geometry_of(detector)
    noise_factor = overscan_noise_factor(geometry.serial_overscan, geometry.parallel_overscan)
    a00 = truth.effective_a00
    signals_e = np.geomspace(500.0, 0.9 * truth.full_well, 20)
    ptc = PhotonTransferCurve(
        detector=detector,
        detector_name=det.name,
        fit_type="EXPAPPROXIMATION",
        amp_names=det.amp_names,
        metadata=_calib_metadata(truth, detector, "ptc") | {"LSST ISR UNITS": "adu"},
    )
    rate = truth.flat_rate("empty")
    for amp in det:
        g, rn = amp.gain, amp.read_noise
        means = signals_e / g
        if a00 == 0.0:
            shot = means / g
        else:
            shot = np.expm1(2.0 * a00 * g * means) / (2.0 * a00 * g * g)
        noise = rn * noise_factor
        variances = shot + (noise / g) ** 2
        ptc.input_exp_id_pairs[amp.name] = [[0, 0] for _ in signals_e]
        ptc.raw_exp_times[amp.name] = (signals_e / rate).tolist()
        ptc.raw_means[amp.name] = means.tolist()
        ptc.raw_vars[amp.name] = variances.tolist()
        ptc.exp_id_mask[amp.name] = [True] * len(signals_e)
        ptc.gain[amp.name] = g
        ptc.gain_err[amp.name] = 0.0
        ptc.noise[amp.name] = noise
        ptc.noise_list[amp.name] = [rn / g] * len(signals_e)
        ptc.fit_pars[amp.name] = [a00, g, noise**2]
        ptc.turnoff[amp.name] = truth.full_well / g
    return ptc


def _reference_datasets(
    truth: TruthModel, detector: int, filters: Sequence[str]
) -> Iterator[tuple[str, dict[str, Any], Callable[[], Any]]]:
    """Yield ``(dataset type, data ID, factory)`` of every reference calibration of ``detector``
    (flats for the physical ``filters``).

    The factories make the (possibly large) objects only when called.
    """
    rn2 = _read_noise_map(truth, detector) ** 2
    bias_md = _calib_metadata(truth, detector, "bias") | {"EXPTIME": 0.0, "DARKTIME": 0.0}
    dark_md = _calib_metadata(truth, detector, "dark") | {"EXPTIME": 1.0, "DARKTIME": 1.0}
    yield (
        "bias",
        {"detector": detector},
        lambda: make_masked_image(truth.reference_bias(detector), variance=rn2 / 20.0, metadata=bias_md),
    )
    yield (
        "dark",
        {"detector": detector},
        lambda: make_masked_image(
            truth.reference_dark(detector), variance=rn2 / (20.0 * 30.0**2), metadata=dark_md
        ),
    )

    @functools.cache
    def flat_planes() -> tuple[np.ndarray, np.ndarray]:
        flat_image = truth.reference_flat(detector)
        return flat_image, (flat_image / (20.0 * 20000.0)).astype(np.float32)

    def make_flat(metadata: dict[str, Any]) -> Any:
        flat_image, flat_variance = flat_planes()
        return make_masked_image(flat_image, variance=flat_variance, metadata=metadata)

    for physical_filter in filters:
        flat_md = _calib_metadata(truth, detector, "flat") | {
            "EXPTIME": 1.0,
            "DARKTIME": 1.0,
            "FILTER": physical_filter,
            "FLATSRC": "TWILIGHT",
        }
        yield (
            "flat",
            {"detector": detector, "physical_filter": physical_filter},
            functools.partial(make_flat, flat_md),
        )
    yield (
        "defects",
        {"detector": detector},
        lambda: Defects.from_mask(
            truth.reference_defect_mask(detector),
            detector=detector,
            metadata=_calib_metadata(truth, detector, "defects"),
        ),
    )
    yield ("ptc", {"detector": detector}, lambda: _reference_ptc(truth, detector))


def _seed_reference_calibrations(
    butler: Butler,
    truth: TruthModel,
    detectors: Sequence[int],
    filters: Sequence[str],
    say: Callable[[str], None],
) -> None:
    """Put the truth-derived calibrations into `CURATED_RUN` and certify them into `CALIB_COLLECTION`.

    Idempotent: datasets already in the run are not rewritten and datasets already certified are not
    certified again, so a resumed creation ends complete.
    """
    timespan = make_timespan(Time(CURATED_BEGIN, scale="tai"), Time(CURATED_END, scale="tai"))
    curated, calib = curated_run(truth.instrument), calib_collection(truth.instrument)
    calib_types = ("bias", "dark", "flat", "defects", "ptc")
    existing = {
        (ref.datasetType.name, ref.dataId.required_values)
        for dataset_type in calib_types
        for ref in butler.registry.queryDatasets(dataset_type, collections=curated, findFirst=False)
    }
    for n, detector in enumerate(detectors, 1):
        say(f"reference calibrations from the simulated truth: detector {detector} ({n} of {len(detectors)})")
        for dataset_type, data_id, factory in _reference_datasets(truth, detector, filters):
            expanded = butler.registry.expandDataId(instrument=truth.instrument, **data_id)
            if (dataset_type, expanded.required_values) not in existing:
                butler.put(factory(), dataset_type, expanded, run=curated)

    say(f"certifying the reference calibrations into {calib}")
    for dataset_type in calib_types:
        certified = {
            association.ref.id
            for association in butler.registry.queryDatasetAssociations(dataset_type, collections=calib)
        }
        refs = [
            ref
            for ref in butler.registry.queryDatasets(dataset_type, collections=curated, findFirst=False)
            if ref.id not in certified
        ]
        if refs:
            butler.registry.certify(calib, refs, timespan)
