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

"""Count ``imageInOODS`` announcements per exposure and detector, and wait for a set of images.

Counting events (any ``len(exp_times) * n_detectors`` of them) cannot say which image is missing.
`OodsTracker` keeps, from the first image on, the detectors announced for each exposure
(the OODS ``obsid`` ``CC_O_YYYYMMDD_NNNNNN`` gives exposure id ``YYYYMMDD`` + the last five digits)
so a wait can name exactly which exposures are missing.

The timeout of `OodsTracker.wait` is a silence timeout: the images still missing are declared lost
when the OODS has announced nothing at all (for any image) for ``timeout`` seconds. An OODS that is
still working through a backlog (a burst of fast images, a busy disk) is not mistaken for one that
lost images, and a lost image is still reported ``timeout`` seconds after the OODS fell silent.

May import: the standard library, `calib`.
"""

from __future__ import annotations

__all__ = ["exposure_id_from_obs_id", "OodsTracker"]

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..calib.obs_id import exposure_id_from_obs_id


class OodsTracker:
    """Tracks which detectors of which exposures the OODS has announced.

    Parameters
    ----------
    evt_image_in_oods : ``RemoteEvent``
        ``CCOODS.evt_imageInOODS``; its callback is taken over until `close`.
    detector_of : callable
        ``detector_of(raft, sensor) -> int | None``: the detector id of an announcement.
    log : `logging.Logger`
        Logger.
    """

    def __init__(
        self, evt_image_in_oods: Any, detector_of: Callable[[str, str], int | None], log: logging.Logger
    ) -> None:
        self.evt = evt_image_in_oods
        self.detector_of = detector_of
        self.log = log
        self.announced: dict[int, set[int]] = {}
        self.obs_ids: dict[int, str] = {}
        self.errors: dict[int, list[str]] = {}
        self.last_event_time = 0.0
        self._changed = asyncio.Event()
        evt_image_in_oods.callback = self._callback

    async def _callback(self, data: Any) -> None:
        try:
            exposure_id = exposure_id_from_obs_id(data.obsid)
        except ValueError:
            self.log.warning(f"Ignoring imageInOODS for an unknown image name {data.obsid!r}")
            return
        detector = self.detector_of(data.raft, data.sensor)
        if detector is None:
            self.log.warning(
                f"Ignoring imageInOODS for unknown sensor {data.raft} {data.sensor} of {data.obsid}"
            )
            return
        self.obs_ids[exposure_id] = data.obsid
        self.last_event_time = time.monotonic()
        if data.statusCode != 0:
            self.errors.setdefault(exposure_id, []).append(
                f"{data.raft}_{data.sensor}: status {data.statusCode} {data.description}"
            )
            self.log.warning(
                f"OODS could not ingest {data.obsid} {data.raft}_{data.sensor}: {data.description}"
            )
            return
        self.announced.setdefault(exposure_id, set()).add(detector)
        self._changed.set()

    def missing(self, exposure_ids: Iterable[int], detectors: Iterable[int]) -> list[int]:
        """Exposures (from ``exposure_ids``) with at least one detector not announced yet."""
        wanted = set(detectors)
        return [e for e in exposure_ids if not wanted <= self.announced.get(e, set())]

    def n_announced(self, exposure_id: int, detectors: Iterable[int]) -> int:
        """Number of the given detectors announced for an exposure."""
        return len(set(detectors) & self.announced.get(exposure_id, set()))

    async def wait(self, exposure_ids: Iterable[int], detectors: Iterable[int], timeout: float) -> list[int]:
        """Wait until every detector of every exposure is announced, or the OODS falls silent.

        Parameters
        ----------
        exposure_ids : `~collections.abc.Iterable` [`int`]
            Exposures to wait for.
        detectors : `~collections.abc.Iterable` [`int`]
            Detectors that must be announced for each.
        timeout : `float`
            Seconds without any announcement (counted from the call or the last announcement,
            whichever is later) after which the missing exposures are given up.

        Returns
        -------
        missing : `list` [`int`]
            Exposures still incomplete at the timeout (empty on success).
        """
        ids = list(exposure_ids)
        dets = list(detectors)
        start = time.monotonic()
        while True:
            self._changed.clear()
            missing = self.missing(ids, dets)
            if not missing:
                return missing
            remaining = max(start, self.last_event_time) + timeout - time.monotonic()
            if remaining <= 0:
                return missing
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            except TimeoutError:
                pass

    def close(self) -> None:
        """Release the callback."""
        if self.evt.callback == self._callback:
            self.evt.callback = None
