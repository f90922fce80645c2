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

"""The parameters of one camera exposure request, and the ``keyValueMap`` string the camera receives.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = ["CameraExposure"]

import dataclasses


@dataclasses.dataclass
class CameraExposure:
    """One ``takeImages`` series as a `BaseCamera` sends it.

    Attributes
    ----------
    exp_time : `float`
        Exposure time of each image in seconds (0 for a bias).
    shutter : `bool`
        Open the shutter?
    image_type : `str`
        Image type (``BIAS``, ``DARK``, ``FLAT``, ...).
    group_id : `str`
        Group id written into the ``keyValueMap``.
    n : `int`
        Number of images in the series.
    n_snaps : `int`
        Images per ``takeImages`` command.
    n_shift, row_shift : `int` or `None`
        Stutter parameters (only for stuttered images).
    test_type, reason, program, sensors, note : `str` or `None`
        Optional strings; `None` means "not given".
    """

    exp_time: float
    shutter: bool
    image_type: str
    group_id: str
    n: int = 1
    n_snaps: int = 1
    n_shift: int | None = None
    row_shift: int | None = None
    test_type: str | None = None
    reason: str | None = None
    program: str | None = None
    sensors: str | None = None
    note: str | None = None

    def is_stutter(self) -> bool:
        """Is this a stuttered exposure?"""
        return self.image_type == "STUTTERED"

    def get_key_value_map(self) -> str:
        """Return the ``keyValueMap`` of ``takeImages`` for this exposure.

        Returns
        -------
        key_value_map : `str`
            ``"imageType: <TYPE>, groupId: <gid>, testType: <test_type or TYPE>, stutterRows: 0,
            stutterNShifts: 0, stutterDelay: 0.0"`` followed by ``", reason: <reason>"`` and
            ``", program: <program>"`` when those are given.
        """
        test_type = self.image_type if self.test_type is None else self.test_type
        stutter_rows = self.row_shift if self.is_stutter() and self.row_shift is not None else 0
        stutter_shifts = self.n_shift if self.is_stutter() and self.n_shift is not None else 0
        key_value_map = (
            f"imageType: {self.image_type}, groupId: {self.group_id}, testType: {test_type}, "
            f"stutterRows: {stutter_rows}, stutterNShifts: {stutter_shifts}, stutterDelay: 0.0"
        )
        if self.reason is not None:
            key_value_map += f", reason: {self.reason}"
        if self.program is not None:
            key_value_map += f", program: {self.program}"
        return key_value_map
