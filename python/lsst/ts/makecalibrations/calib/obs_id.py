"""The one rule between an image name (obs id) and its exposure id.

A camera names each image ``<camera>_<controller>_<YYYYMMDD>_<seq>`` (``CC_O_20240101_000007``);
its exposure id is the day and the sequence number's last five digits, ``2024010100007``.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["exposure_id", "exposure_id_from_obs_id"]


def exposure_id(day_obs: int, seq_num: int) -> int:
    """Exposure id of the image ``seq_num`` of ``day_obs``: ``int(f"{day_obs}{seq_num:05d}")``."""
    return int(f"{day_obs}{seq_num:05d}")


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
