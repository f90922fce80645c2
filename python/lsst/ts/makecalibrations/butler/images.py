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

"""Build and unpack the lsst.images ``MaskedImage`` used for bias, dark, flat and ISR outputs.

The butler stores these with the ``MaskedImageV2`` storage class (lsst.images ``GenericFormatter``:
tile-compressed IMAGE/MASK/VARIANCE HDUs plus a JSON HDU holding the metadata).

Metadata: lsst.images only keeps scalar metadata values (``int``, ``float``, ``str``, ``bool``,
``None``). `make_masked_image` stores every other value (lists such as the input exposure ids, dicts)
as a JSON string and lists those keys in the ``MCAL_JSON_KEYS`` entry; `masked_image_arrays` decodes
them again, so a round trip through the butler gives back the dict that was put in. Numpy scalars
are converted to Python scalars. Keys are case-sensitive and may contain spaces (e.g.
``"LSST ISR GAIN C00"``).

Mask planes: every image gets `MASK_SCHEMA` (``BAD``, ``SAT``, ``CR``, ``INTRP``, ``SUSPECT``,
``NO_DATA``, ``DETECTED``, ``UNMASKEDNAN``; one uint8 byte). ``bad`` sets ``BAD``; other planes can be
set through ``masks={"CR": array}`` or afterwards with ``masked_image.mask.set(name, array)``.

May import: numpy, lsst.images.
"""

from __future__ import annotations

__all__ = [
    "JSON_KEYS_KEY",
    "MASK_PLANES",
    "MASK_SCHEMA",
    "make_masked_image",
    "masked_image_arrays",
    "masked_image_mask",
    "json_default",
]

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from lsst.images import Image, MaskedImage, MaskPlane, MaskSchema

JSON_KEYS_KEY = "MCAL_JSON_KEYS"
"""Metadata key listing (comma-separated) the keys whose values are JSON-encoded."""

MASK_PLANES: dict[str, str] = {
    "BAD": "Bad pixel (defect, or no good input in a combine).",
    "SAT": "Saturated pixel.",
    "CR": "Cosmic ray.",
    "INTRP": "Interpolated pixel.",
    "SUSPECT": "Suspect pixel (e.g. near an amp edge).",
    "NO_DATA": "No data.",
    "DETECTED": "Above a detection threshold.",
    "UNMASKEDNAN": "NaN pixel that was not otherwise masked.",
}
"""Mask planes of every MaskedImage made here, with their descriptions."""

MASK_SCHEMA = MaskSchema([MaskPlane(name, doc) for name, doc in MASK_PLANES.items()])
"""The `lsst.images.MaskSchema` shared by every MaskedImage made here."""


def _encode_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Convert metadata to the scalar-only form lsst.images accepts (see module docstring)."""
    encoded: dict[str, Any] = {}
    json_keys: list[str] = []
    for key, value in (metadata or {}).items():
        if key == JSON_KEYS_KEY:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, bool | int | float | str):
            encoded[str(key)] = value
        else:
            if isinstance(value, np.ndarray):
                value = value.tolist()
            encoded[str(key)] = json.dumps(value, default=json_default)
            json_keys.append(str(key))
    if json_keys:
        encoded[JSON_KEYS_KEY] = ",".join(json_keys)
    return encoded


def json_default(value: Any) -> Any:
    """The ``default`` of `json.dumps` for image metadata: numpy scalars and arrays, tuples and sets."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"Metadata value {value!r} of type {type(value).__name__} is not JSON-serialisable.")


def _decode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Invert `_encode_metadata`."""
    decoded = dict(metadata)
    json_keys = decoded.pop(JSON_KEYS_KEY, "") or ""
    for key in json_keys.split(","):
        if key and key in decoded and isinstance(decoded[key], str):
            decoded[key] = json.loads(decoded[key])
    return decoded


def make_masked_image(
    image: np.ndarray,
    bad: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    metadata: Mapping[str, Any] | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
) -> MaskedImage:
    """Build a float32 `lsst.images.MaskedImage` with the standard mask schema.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D pixel values (converted to native-endian float32).
    bad : `numpy.ndarray`, optional
        Boolean array of the same shape; True pixels get the ``BAD`` plane.
    variance : `numpy.ndarray`, optional
        Variance plane; lsst.images fills 1.0 when omitted.
    metadata : `~collections.abc.Mapping`, optional
        Header values; non-scalar values are JSON-encoded (see module docstring).
    masks : `~collections.abc.Mapping` [`str`, `numpy.ndarray`], optional
        Extra boolean planes by name (must be in `MASK_PLANES`).

    Returns
    -------
    masked_image : `lsst.images.MaskedImage`
        The image, with origin (0, 0).
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"Image must be 2-D, got shape {array.shape}.")
    array = np.ascontiguousarray(array)
    var_image = None
    if variance is not None:
        var_array = np.ascontiguousarray(np.asarray(variance, dtype=np.float32))
        if var_array.shape != array.shape:
            raise ValueError(f"Variance shape {var_array.shape} differs from image shape {array.shape}.")
        var_image = Image(var_array)
    result = MaskedImage(
        Image(array), variance=var_image, mask_schema=MASK_SCHEMA, metadata=_encode_metadata(metadata)
    )
    planes = dict(masks or {})
    if bad is not None:
        planes["BAD"] = bad
    for name, plane in planes.items():
        if name not in MASK_PLANES:
            raise ValueError(f"Unknown mask plane {name!r}; expected one of {list(MASK_PLANES)}.")
        plane = np.asarray(plane, dtype=bool)
        if plane.shape != array.shape:
            raise ValueError(f"Mask {name} shape {plane.shape} differs from image shape {array.shape}.")
        _set_plane(result.mask, name, plane)
    return result


def _set_plane(mask: Any, name: str, plane: np.ndarray) -> None:
    """``mask.set(name, plane)`` (OR the plane's bit in where ``plane`` is True) in one vectorised pass.

    lsst.images' ``Mask.set`` indexes the 3-d byte array with the 2-d boolean array, 0.04-0.1 s per
    plane of a full-size detector; the bits set are the same.
    """
    bit = mask.schema.bit(name)
    target = mask.array[..., bit.index]
    np.bitwise_or(target, bit.mask, out=target, where=plane)


def masked_image_mask(obj: MaskedImage, plane: str) -> np.ndarray:
    """Return one mask plane of ``obj`` as a boolean array (all False if the plane is absent)."""
    if plane not in obj.mask.schema:
        return np.zeros(obj.image.array.shape, dtype=bool)
    return np.asarray(obj.mask.get(plane), dtype=bool)


def masked_image_arrays(obj: MaskedImage) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Unpack a MaskedImage into plain arrays and its decoded metadata.

    Parameters
    ----------
    obj : `lsst.images.MaskedImage`
        Image made by `make_masked_image` (or read from the butler).

    Returns
    -------
    image : `numpy.ndarray`
        Native-endian float32 copy of the image plane.
    bad : `numpy.ndarray`
        Boolean ``BAD`` plane.
    variance : `numpy.ndarray`
        Native-endian float32 copy of the variance plane.
    metadata : `dict` [`str`, `typing.Any`]
        Metadata with JSON-encoded values decoded.
    """
    image = np.array(obj.image.array, dtype=np.float32)
    variance = np.array(obj.variance.array, dtype=np.float32)
    bad = masked_image_mask(obj, "BAD")
    return image, bad, variance, _decode_metadata(dict(obj.metadata))
