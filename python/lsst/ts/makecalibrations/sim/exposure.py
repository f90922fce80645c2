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

"""What the simulated camera knows about one image, and where it sends it.

The simulated CCCamera builds one `ExposureInfo` per image and hands it to an `ImageSink` after the
readout; the simulated CCOODS then announces the image. The sink is where pixels are made and
ingested (a butler-backed sink lives in `raw_writer`); the default `RecordingSink` only keeps the
list, which is all the camera-protocol tests need. `evening_exposure` describes an image as the
camera would take it, without a camera: the one builder of the tests' and benchmarks' raws (they may
import this module; the benchmarks do not import the tests).

May import: `calib.obs_id` and the standard library.
"""

from __future__ import annotations

__all__ = ["ExposureInfo", "ImageSink", "RecordingSink", "evening_exposure"]

import dataclasses
import datetime
from typing import Protocol

from ..calib.obs_id import exposure_id, make_obs_id


@dataclasses.dataclass(frozen=True)
class ExposureInfo:
    """Description of one simulated image, as the camera took it.

    Attributes
    ----------
    exposure_id : `int`
        ``int(f"{day_obs}{seq_num:05d}")``, as ts_observatory_control derives it from ``obs_id``.
    obs_id : `str`
        ``CC_O_{day_obs}_{seq_num:06d}``, the ``imageName`` of the camera events.
    day_obs : `int`
        Observing day ``YYYYMMDD`` (TAI date of the start time minus 12 hours).
    seq_num : `int`
        Sequence number within the day, starting at 1.
    image_type : `str`
        ``imageType`` of the ``keyValueMap`` (``BIAS``, ``DARK``, ``FLAT``, ...), upper case.
    exposure_time : `float`
        Requested exposure time in (true, simulated) seconds.
    dark_time : `float`
        Time between the end of the clear and the start of the readout, in seconds.
    physical_filter : `str`
        Filter in the beam when the image was taken.
    group_id : `str`
        ``groupId`` of the ``keyValueMap``.
    start_tai : `float`
        Simulated TAI (unix seconds) at the start of integration.
    end_tai : `float`
        Simulated TAI at the end of integration.
    detectors : `tuple` [`int`, ...]
        Detectors that were read out (0..8 for ComCam).
    reason, program, note : `str`
        Operator-supplied strings from ``keyValueMap`` and ``obsNote``.
    """

    exposure_id: int
    obs_id: str
    day_obs: int
    seq_num: int
    image_type: str
    exposure_time: float
    dark_time: float
    physical_filter: str
    group_id: str
    start_tai: float
    end_tai: float
    detectors: tuple[int, ...]
    reason: str = ""
    program: str = ""
    note: str = ""

    @classmethod
    def make(
        cls,
        *,
        day_obs: int,
        seq_num: int,
        image_type: str,
        exposure_time: float,
        dark_time: float,
        start_tai: float,
        detectors: tuple[int, ...],
        obs_id_prefix: str = "CC",
        physical_filter: str = "empty",
        group_id: str = "",
        reason: str = "",
        program: str = "",
        note: str = "",
    ) -> ExposureInfo:
        """Describe image ``seq_num`` of ``day_obs`` as the camera names it.

        The obs id and the exposure id follow from the day and the sequence number
        (`calib.obs_id`); the integration ends ``dark_time`` after ``start_tai``.

        Parameters
        ----------
        day_obs, seq_num : `int`
            Observing day ``YYYYMMDD`` and sequence number within it.
        image_type : `str`
            ``imageType`` (``BIAS``, ``DARK``, ``FLAT``, ...).
        exposure_time, dark_time : `float`
            Requested exposure time and dark time, in seconds.
        start_tai : `float`
            TAI (unix seconds) at the start of integration.
        detectors : `tuple` [`int`, ...]
            Detectors read out.
        obs_id_prefix : `str`, optional
            Camera code of the obs id (``CC`` ComCam, ``MC`` LSSTCam, ``AT`` LATISS).
        physical_filter, group_id, reason, program, note : `str`, optional
            As the attributes of the same names.
        """
        return cls(
            exposure_id=exposure_id(day_obs, seq_num),
            obs_id=make_obs_id(day_obs, seq_num, obs_id_prefix),
            day_obs=day_obs,
            seq_num=seq_num,
            image_type=image_type,
            exposure_time=exposure_time,
            dark_time=dark_time,
            physical_filter=physical_filter,
            group_id=group_id,
            start_tai=start_tai,
            end_tai=start_tai + dark_time,
            detectors=detectors,
            reason=reason,
            program=program,
            note=note,
        )


def evening_exposure(
    seq_num: int,
    image_type: str,
    exposure_time: float,
    *,
    day_obs: int,
    detectors: tuple[int, ...],
    physical_filter: str = "empty",
    obs_id_prefix: str = "CC",
) -> ExposureInfo:
    """Describe image ``seq_num`` of ``day_obs`` as the simulated camera would take it, without a camera.

    The integration starts at 20:00 TAI of ``day_obs`` plus 60 s per sequence number; the dark time is
    the exposure time plus a 0.5 s shutter; the group id is ``{day_obs}_{image type}`` and the reason
    the image type (lower case).

    Parameters
    ----------
    seq_num : `int`
        Sequence number within ``day_obs``.
    image_type : `str`
        ``BIAS``, ``DARK``, ``FLAT``...
    exposure_time : `float`
        Requested exposure time (s).
    day_obs : `int`
        Observing day ``YYYYMMDD``.
    detectors : `tuple` [`int`, ...]
        Detectors read out.
    physical_filter : `str`, optional
        Filter in the beam.
    obs_id_prefix : `str`, optional
        Camera code of the obs id (`ExposureInfo.make`).
    """
    text = str(day_obs)
    # TAI unix seconds count calendar seconds of the TAI date (astropy's unix_tai, as sim.clock).
    evening = datetime.datetime(int(text[:4]), int(text[4:6]), int(text[6:]), 20, tzinfo=datetime.UTC)
    return ExposureInfo.make(
        day_obs=day_obs,
        seq_num=seq_num,
        image_type=image_type,
        exposure_time=exposure_time,
        dark_time=exposure_time + 0.5,
        start_tai=evening.timestamp() + 60.0 * seq_num,
        detectors=detectors,
        obs_id_prefix=obs_id_prefix,
        physical_filter=physical_filter,
        group_id=f"{day_obs}_{image_type.lower()}",
        reason=image_type.lower(),
        program="test",
    )


class ImageSink(Protocol):
    """Receives every image the simulated camera reads out."""

    async def write_image(self, info: ExposureInfo) -> None:
        """Make (and, for a butler sink, ingest) the image described by ``info``."""
        ...

    def last_seq_num(self, day_obs: int) -> int:
        """Return the highest sequence number already used on ``day_obs`` (0 if none)."""
        ...

    def reserve_seq_num(self, day_obs: int) -> int:
        """Hand out the next sequence number of ``day_obs``, never the same twice (one sequence for
        every camera writing to this sink's storage)."""
        ...


class RecordingSink:
    """An `ImageSink` that keeps the `ExposureInfo` of every image and makes no pixels."""

    def __init__(self) -> None:
        self.images: list[ExposureInfo] = []
        self._reserved: dict[int, int] = {}

    async def write_image(self, info: ExposureInfo) -> None:
        self.images.append(info)

    def last_seq_num(self, day_obs: int) -> int:
        recorded = (info.seq_num for info in self.images if info.day_obs == day_obs)
        return max(max(recorded, default=0), self._reserved.get(day_obs, 0))

    def reserve_seq_num(self, day_obs: int) -> int:
        self._reserved[day_obs] = self.last_seq_num(day_obs) + 1
        return self._reserved[day_obs]
