"""Recovery: process again, without retaking them, the images of a run that failed or was stopped.

``resume_from_report`` names the JSON report of that run. `resume_config` turns it into what the new
run needs:

* ``exposure_ids`` for each image type of ``script_mode`` whose acquisition was complete in the old
  run (every kept image taken and announced by the OODS): no image is taken for those types;
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

from .config import CalibConfig, ImageType
from .report import RunReport


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

    def describe(self) -> str:
        """One line for the log."""
        reused = ", ".join(f"{len(ids)} {t.plural}" for t, ids in self.exposure_ids.items()) or "no image"
        certified = ", ".join(sorted(self.already_certified)) or "nothing"
        return f"reusing {reused}; already certified into {self.calib_collection}: {certified}"


def resume_config(config: CalibConfig, report: RunReport) -> tuple[CalibConfig, ResumeInfo]:
    """Apply an earlier run's report to a configuration.

    Parameters
    ----------
    config : `CalibConfig`
        The new run's configuration (with ``resume_from_report`` set, before template resolution).
    report : `RunReport`
        The earlier run's report.

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
    reusable = {
        ImageType(key.upper()): tuple(int(i) for i in ids)
        for key, ids in report.reusable_exposures().items()
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
    return new_config, ResumeInfo(reusable, already, collection)
