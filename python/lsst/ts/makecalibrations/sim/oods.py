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

"""Simulated CCOODS CSC: announces ``imageInOODS`` for every detector of every ingested image.

The camera hands each image to `OodsCsc.handle_image` after the sink wrote it; after a simulated
ingest delay the OODS writes one ``imageInOODS`` per detector, unless the `FaultPlan` drops the image.

May import: `sal`, `butler.camera`, the standard library and the sibling modules `clock`, `csc`,
`exposure` and `faults`.
"""

from __future__ import annotations

__all__ = ["OodsCsc", "detector_raft_sensor"]

import asyncio

from ..butler.camera import get_camera
from ..sal import salobj
from .clock import SimClock
from .csc import SimulatedCsc
from .exposure import ExposureInfo
from .faults import FaultPlan


def detector_raft_sensor(detector: int, instrument: str = "LSSTComCam") -> tuple[str, str]:
    """Return ``(raft, sensor)`` of a detector, e.g. ComCam ``4 -> ("R22", "S11")``.

    Raises
    ------
    ValueError
        For a detector the camera does not have.
    """
    try:
        det = get_camera(instrument)[detector]
    except KeyError as e:
        raise ValueError(str(e.args[0])) from None
    return det.raft, det.slot


class OodsCsc(SimulatedCsc):
    """An OODS (CCOODS unless ``name`` says otherwise): writes ``imageInOODS`` for each detector of each
    image.

    Parameters
    ----------
    clock : `SimClock`
        Simulated clock for the ingest delay.
    faults : `FaultPlan`, optional
        Chooses images that are never announced.
    ingest_delay : `float`, optional
        Simulated seconds between the image being handed over and its announcement.
    initial_state : ``salobj.State``, optional
        State to start in.
    name : `str`, optional
        Component name (``CCOODS``, ``MTOODS``, ``ATOODS``).
    instrument : `str`, optional
        Camera (the ``camera`` field and the detector names).
    """

    def __init__(
        self,
        clock: SimClock,
        faults: FaultPlan | None = None,
        ingest_delay: float = 2.0,
        initial_state: salobj.State = salobj.State.ENABLED,
        name: str = "CCOODS",
        instrument: str = "LSSTComCam",
    ) -> None:
        super().__init__(name, initial_state=initial_state)
        self.instrument = instrument
        self.clock = clock
        self.faults = faults if faults is not None else FaultPlan()
        self.ingest_delay = float(ingest_delay)
        self.images_received = 0
        # Set unless a test holds the announcements back (`hold` / `release`).
        self._announcing = asyncio.Event()
        self._announcing.set()
        self.announced: list[str] = []
        self.dropped: list[str] = []
        self._ingest_tasks: set[asyncio.Task] = set()

    async def handle_image(self, info: ExposureInfo) -> None:
        """Schedule the ``imageInOODS`` announcements of one image and return at once.

        Parameters
        ----------
        info : `ExposureInfo`
            The image written by the sink.
        """
        self.images_received += 1
        image_number = self.images_received
        task = asyncio.create_task(self._ingest(info, image_number))
        self._ingest_tasks.add(task)
        task.add_done_callback(self._ingest_tasks.discard)

    def hold(self) -> None:
        """Hold every announcement back (after its ingest delay) until `release`.

        This is the OODS that falls behind: images are written and in the registry, none announced.
        """
        self._announcing.clear()

    def release(self) -> None:
        """Make the announcements held back by `hold`, and the later ones as usual."""
        self._announcing.set()

    async def _ingest(self, info: ExposureInfo, image_number: int) -> None:
        await self.clock.sleep(self.ingest_delay)
        await self._announcing.wait()
        if self.faults.oods_drops(image_number, info.obs_id):
            self.log.warning(f"Fault injection: not announcing image {image_number} ({info.obs_id}).")
            self.dropped.append(info.obs_id)
            return
        if self.summary_state != salobj.State.ENABLED:
            self.log.warning(f"Not ENABLED; not announcing {info.obs_id}.")
            self.dropped.append(info.obs_id)
            return
        for detector in info.detectors:
            raft, sensor = detector_raft_sensor(detector, self.instrument)
            await self.evt_imageInOODS.set_write(
                camera=self.instrument,
                obsid=info.obs_id,
                raft=raft,
                sensor=sensor,
                statusCode=0,
                description="file ingested",
                force_output=True,
            )
            # The real OODS ingests one file after the other; letting the readers run between two
            # announcements keeps a 189-detector image from overflowing their queues (100 messages):
            # the bus writes without yielding.
            await asyncio.sleep(0)
        self.announced.append(info.obs_id)

    async def wait_idle(self) -> None:
        """Wait until every scheduled announcement has been made (or dropped)."""
        # Only wait on unfinished tasks: gathering finished ones completes without yielding to the
        # loop, so their done callbacks (which remove them from the set) would never run.
        while pending := [task for task in self._ingest_tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close_tasks(self) -> None:
        for task in list(self._ingest_tasks):
            task.cancel()
        await super().close_tasks()
