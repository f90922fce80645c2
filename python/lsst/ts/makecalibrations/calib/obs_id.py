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

"""The one rule between an image name (obs id) and its exposure id.

A camera names each image ``<camera>_<controller>_<YYYYMMDD>_<seq>`` (``CC_O_20240101_000007``);
its exposure id is the day and the sequence number's last five digits, ``2024010100007``.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["exposure_id", "exposure_id_from_obs_id", "make_obs_id"]


def exposure_id(day_obs: int, seq_num: int) -> int:
    """Exposure id of the image ``seq_num`` of ``day_obs``: ``int(f"{day_obs}{seq_num:05d}")``."""
    return int(f"{day_obs}{seq_num:05d}")


def make_obs_id(day_obs: int, seq_num: int, prefix: str = "CC") -> str:
    """Return the obs id (``imageName``) ``{prefix}_O_{day_obs}_{seq_num:06d}``."""
    return f"{prefix}_O_{day_obs}_{seq_num:06d}"


def exposure_id_from_obs_id(obs_id: str) -> int:
    """Exposure id of an image name: ``CC_O_20240101_000007`` -> ``2024010100007``.

    Raises
    ------
    ValueError
        If the name does not have the ``<a>_<b>_<YYYYMMDD>_<seq>`` form.
    """
    parts = obs_id.split("_")
    if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit() or len(parts[2]) != 8:
        raise ValueError(f"Not an image name: {obs_id!r}")
    return exposure_id(int(parts[2]), int(parts[3]))
