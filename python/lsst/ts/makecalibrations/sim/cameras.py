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

"""What the simulated observatory of each camera is made of: component names, indices, filters.

`ObservatorySpec` is data: the camera, header service and OODS components, the OCPS index, the obs id
prefix, the filters and the extra state-only CSCs (the MTDome and MTDomeTrajectory of the Simonyi
telescope, which the LSSTCam script checks before its flats). The names and indices are the real ones
(ts_xml ``SALSubsystems.xml``; OCPS:1 LATISS, OCPS:2 LSSTComCam, OCPS:3 LSSTCam). `observatory_spec`
picks one by instrument name.

The OCPS index and the readout time are the camera's facts in `calib.instrument`, read from there.

May import: the standard library, `butler.instrument` (the physical filters) and `calib.instrument`.
"""

from __future__ import annotations

__all__ = ["OBSERVATORIES", "ObservatorySpec", "observatory_spec"]

import dataclasses

from ..butler.instrument import LATISS_GRATINGS, LSSTCAM_FILTERS
from ..calib.instrument import InstrumentSpec, instrument_spec


@dataclasses.dataclass(frozen=True)
class ObservatorySpec:
    """The simulated CSCs of one camera.

    Attributes
    ----------
    instrument : `str`
        Butler instrument name.
    csc_prefix : `str`
        Subsystem prefix of the camera's CSCs (``CC``, ``MT``, ``AT``): `camera`, `header_service`
        and `oods` are ``<prefix>Camera``, ``<prefix>HeaderService`` and ``<prefix>OODS``.
    obs_id_prefix : `str`
        Controller prefix of obs ids (``CC``, ``MC``, ``AT``: ``<prefix>_O_<day_obs>_<seq>``).
    filters : `tuple` [`str`, ...]
        Filters the camera can put in the beam, in slot order (empty: the camera has no changer).
    initial_filter : `str`
        Filter in the beam at startup.
    gratings : `tuple` [`str`, ...]
        Dispersers (LATISS only; the physical filter is then ``filter~grating``).
    state_only : `tuple` [`str`, ...]
        Extra CSCs simulated only for their summary state (``MTDome``, ``MTDomeTrajectory``).
    bps_detectors_per_job : `int`
        Detectors of one BPS job when the OCPS runs its jobs through ``bps submit``
        (`sim.bps_executor.BpsExecutor` ``detectors_per_job``): one for a few detectors (each
        detector's quanta in one ``pipetask run-qbb``); for LSSTCam's 189, 24 (8 BPS jobs per stage:
        fewer ``pipetask`` start-ups, still enough jobs to keep the workers busy; the 189-detector
        ``cpBias`` through bps was measured so, doc/benchmarks.rst).
    """

    instrument: str
    csc_prefix: str
    obs_id_prefix: str
    filters: tuple[str, ...]
    initial_filter: str
    gratings: tuple[str, ...] = ()
    state_only: tuple[str, ...] = ()
    bps_detectors_per_job: int = 1

    @property
    def camera(self) -> str:
        """Camera CSC (``CCCamera``, ``MTCamera``, ``ATCamera``)."""
        return f"{self.csc_prefix}Camera"

    @property
    def header_service(self) -> str:
        """Header service CSC."""
        return f"{self.csc_prefix}HeaderService"

    @property
    def oods(self) -> str:
        """OODS CSC (its ``imageInOODS.camera`` is the instrument name)."""
        return f"{self.csc_prefix}OODS"

    @property
    def camera_facts(self) -> InstrumentSpec:
        """The instrument's `calib.instrument.InstrumentSpec`."""
        return instrument_spec(self.instrument)

    @property
    def ocps_index(self) -> int:
        """SAL index of the OCPS that serves the camera."""
        return self.camera_facts.ocps_index

    @property
    def read_out_time(self) -> float:
        """Simulated readout (s): the camera's."""
        return self.camera_facts.read_out_time

    @property
    def has_filter_changer(self) -> bool:
        """Does the camera CSC itself change filters (``setFilter``)?"""
        return self.camera != "ATCamera"


COMCAM_OBSERVATORY = ObservatorySpec(
    instrument="LSSTComCam",
    csc_prefix="CC",
    obs_id_prefix="CC",
    filters=("u_02", "g_01", "r_03", "i_06", "z_03", "y_04"),
    initial_filter="r_03",
)

LSSTCAM_OBSERVATORY = ObservatorySpec(
    instrument="LSSTCam",
    csc_prefix="MT",
    obs_id_prefix="MC",
    # The carousel holds five of the six filters; the simulation loads all six.
    filters=tuple(name for name in LSSTCAM_FILTERS if name not in ("empty", "unknown")),
    initial_filter="r_57",
    state_only=("MTDome", "MTDomeTrajectory"),
    bps_detectors_per_job=24,
)

LATISS_OBSERVATORY = ObservatorySpec(
    instrument="LATISS",
    csc_prefix="AT",
    obs_id_prefix="AT",
    filters=("empty", "SDSSg_65mm", "SDSSr_65mm", "SDSSi_65mm", "SDSSz_65mm"),
    initial_filter="empty",
    gratings=LATISS_GRATINGS,
)

OBSERVATORIES: dict[str, ObservatorySpec] = {
    spec.instrument: spec for spec in (COMCAM_OBSERVATORY, LSSTCAM_OBSERVATORY, LATISS_OBSERVATORY)
}
"""Simulated observatories by instrument name."""


def observatory_spec(instrument: str) -> ObservatorySpec:
    """Return the `ObservatorySpec` of ``instrument``.

    Raises
    ------
    ValueError
        For an instrument without a simulated observatory.
    """
    try:
        return OBSERVATORIES[instrument]
    except KeyError:
        raise ValueError(
            f"No simulated observatory for instrument {instrument!r}; known: {sorted(OBSERVATORIES)}."
        ) from None
