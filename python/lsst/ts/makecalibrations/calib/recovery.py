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

"""Recovery: process again, without retaking them, the images of a run that failed or was stopped.

``resume_from_report`` names the JSON report of that run. `resume_config` turns it into what the new
run needs:

* ``exposure_ids`` for each image type of ``script_mode`` whose acquisition was complete in the old
  run (every kept image taken and announced by the OODS): no image is taken for those types. When
  the script gives what the repository holds (``raw_detectors``: the detectors with a raw of each
  exposure the report lists), the registry decides instead of the report's flags: a type is reused
  when every kept image it planned has raws for every requested detector, whatever the old run's
  acquisition status (a run stopped or killed before the OODS announced its images), and is not
  reused when the report says complete but the raws are not there. Exposures with raws for only some
  of the detectors are named (`ResumeInfo.partial`) and never reused;
* the products the old run already certified, which are not processed or certified again, provided
  the new run certifies into the same ``calib_collection`` over the same validity range;
* when ``calib_collection`` contains the ``{timestamp}`` template, the old run's (resolved)
  collection, so the resumed run completes the same collection.

May import: the standard library and the other `calib` modules.
"""

from __future__ import annotations

__all__ = ["ResumeInfo", "resume_config"]

import dataclasses
import types
from collections.abc import Collection, Mapping

from .config import CalibConfig, ImageType
from .report import RunReport
from .statuses import AcquisitionStatus


@dataclasses.dataclass(frozen=True)
class ResumeInfo:
    """What a resumed run takes from the report of the earlier run.

    Attributes
    ----------
    exposure_ids : `dict` [`ImageType`, `tuple` [`int`, ...]]
        Reused kept exposures per type.
    already_certified : `frozenset` [`str`]
        Products already certified into the same collection and range.
    calib_collection : `str`
        Collection the resumed run certifies into.
    """

    exposure_ids: dict[ImageType, tuple[int, ...]]
    already_certified: frozenset[str]
    calib_collection: str
    partial: dict[int, tuple[int, ...]] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        """One line for the log."""
        reused = ", ".join(f"{len(ids)} {t.plural}" for t, ids in self.exposure_ids.items()) or "no image"
        certified = ", ".join(sorted(self.already_certified)) or "nothing"
        text = f"reusing {reused}; already certified into {self.calib_collection}: {certified}"
        if self.partial:
            text += "; not reused, raws for only some detectors: " + ", ".join(
                f"{e} ({f'detectors {list(d)}' if d else 'no raw'})" for e, d in sorted(self.partial.items())
            )
        return text


def resume_config(
    config: CalibConfig, report: RunReport, raw_detectors: Mapping[int, Collection[int]] | None = None
) -> tuple[CalibConfig, ResumeInfo]:
    """Apply an earlier run's report to a configuration.

    Parameters
    ----------
    config : `CalibConfig`
        The new run's configuration (with ``resume_from_report`` set, before template resolution).
    report : `RunReport`
        The earlier run's report.
    raw_detectors : `~collections.abc.Mapping` [`int`, `~collections.abc.Collection` [`int`]], optional
        Detectors with a raw in the repository for (at least) each exposure the report lists; `None`
        trusts the report's acquisition statuses (``--plan``, which does not open the repository).

    Returns
    -------
    config : `CalibConfig`
        The configuration with ``exposure_ids`` (and possibly ``calib_collection``) filled in.
    info : `ResumeInfo`
        What was taken from the report.
    """
    collection = config.calib_collection
    old_collection = str(report.config.get("calib_collection", ""))
    if "{" in collection and old_collection:
        collection = old_collection
    partial: dict[int, tuple[int, ...]] = {}
    if raw_detectors is None:
        by_type = report.reusable_exposures()
    else:
        by_type, partial = _reusable_in_repo(report, raw_detectors, config.detector_ids)
    reusable = {
        ImageType(key.upper()): tuple(int(i) for i in ids)
        for key, ids in by_type.items()
        if ImageType(key.upper()) in config.image_types
    }
    same_target = (
        old_collection == collection
        and report.config.get("certify_calib_begin_date") == config.certify_calib_begin_date
        and report.config.get("certify_calib_end_date") == config.certify_calib_end_date
    )
    already = frozenset(report.certified_products()) if same_target else frozenset()
    new_config = dataclasses.replace(
        config, exposure_ids=types.MappingProxyType(dict(reusable)), calib_collection=collection
    )
    return new_config, ResumeInfo(reusable, already, collection, partial)


def _reusable_in_repo(
    report: RunReport, raw_detectors: Mapping[int, Collection[int]], detectors: Collection[int]
) -> tuple[dict[str, list[int]], dict[int, tuple[int, ...]]]:
    """Kept exposure ids per type whose every planned kept image has all ``detectors`` in the repo,
    and the exposures that have raws for only some of them."""
    wanted = set(detectors)
    partial = {
        int(e.exposure_id): tuple(sorted(raw_detectors[e.exposure_id]))
        for e in report.exposures
        if e.exposure_id in raw_detectors and not wanted <= set(raw_detectors[e.exposure_id])
    }
    result: dict[str, list[int]] = {}
    for acq in report.acquisitions:
        ids = [e.exposure_id for e in report.exposures_of(acq.image_type)]
        complete = [i for i in ids if wanted <= set(raw_detectors.get(i, ()))]
        enough = len(complete) == acq.n_kept_planned or (
            acq.status == AcquisitionStatus.RECOVERED and complete
        )
        if ids and len(complete) == len(ids) and enough:
            result[acq.image_type.lower()] = complete
    return result, partial
