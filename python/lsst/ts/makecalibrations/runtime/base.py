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

"""Exceptions and small utilities of the SAL runtime (salobj ``base.py`` / ``utils`` equivalents).

May import: the standard library and `enums`.
"""

__all__ = [
    "MAX_SAL_INDEX",
    "TAI_MINUS_UTC",
    "ExpectedError",
    "AckError",
    "AckTimeoutError",
    "WildcardIndexError",
    "name_to_name_index",
    "current_tai",
    "index_generator",
    "make_done_future",
]

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from .enums import SalRetCode

#: The largest allowed SAL index.
MAX_SAL_INDEX = (1 << 31) - 1

#: TAI - UTC in seconds (constant since 2017-01-01; no leap second has been announced since).
TAI_MINUS_UTC = 37.0


class ExpectedError(Exception):
    """An error that needs no traceback in the log (e.g. a command sent in the wrong state)."""


class AckError(Exception):
    """A command failed (or timed out) according to its acknowledgement.

    Parameters
    ----------
    msg : `str`
        Error message.
    ackcmd : ``AckCmdType``
        The command acknowledgement that caused the error.
    """

    def __init__(self, msg: str, ackcmd: Any) -> None:
        super().__init__(msg, ackcmd)
        self.msg = msg
        self.ackcmd = ackcmd

    def __str__(self) -> str:
        ackcmd = self.ackcmd
        try:
            ack_repr = repr(SalRetCode(ackcmd.ack))
        except ValueError:
            ack_repr = repr(ackcmd.ack)
        ackstr = (
            f"ackcmd private_seqNum={ackcmd.private_seqNum}, ack={ack_repr}, "
            f"error={ackcmd.error}, result={ackcmd.result!r}"
        )
        return f"msg={self.msg!r}, ackcmd=({ackstr})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"


class AckTimeoutError(AckError):
    """Timed out waiting for a command acknowledgement."""


class WildcardIndexError(ValueError):
    """A ``name:*`` wildcard index was given where a specific index is needed."""


def name_to_name_index(name: str) -> tuple[str, int]:
    """Split ``"Name"`` or ``"Name:index"`` into ``(name, index)``.

    Parameters
    ----------
    name : `str`
        Component name, optionally followed by ``:index``.

    Returns
    -------
    name_index : `tuple` [`str`, `int`]
        The name and the index (0 if no index was given).

    Raises
    ------
    WildcardIndexError
        If the index is ``*``.
    ValueError
        If the name is empty or the index is not an integer.
    """
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str")
    base, sep, index_str = name.partition(":")
    if not base or not base.isidentifier():
        raise ValueError(f"name={name!r} is not of the form 'name' or 'name:index'")
    if not sep:
        return base, 0
    if index_str == "*":
        raise WildcardIndexError(f"name={name!r} has a wildcard index")
    try:
        index = int(index_str)
    except ValueError:
        raise ValueError(f"name={name!r} is not of the form 'name' or 'name:index'") from None
    return base, index


def current_tai() -> float:
    """Return the current TAI time as unix seconds.

    The system clock is assumed to be UTC; ``TAI_MINUS_UTC`` is added.
    """
    return time.time() + TAI_MINUS_UTC


def index_generator(imin: int = 1, imax: int = MAX_SAL_INDEX, i0: int | None = None) -> Iterator[int]:
    """Generate integers imin, imin+1, ..., imax, imin, ... forever.

    Parameters
    ----------
    imin : `int`
        Minimum value (inclusive).
    imax : `int`
        Maximum value (inclusive).
    i0 : `int` or `None`
        First value; ``imin`` if None.

    Raises
    ------
    ValueError
        If ``imax < imin`` or ``i0`` is outside ``[imin, imax]``.
    """
    if imax < imin:
        raise ValueError(f"imin={imin} must be <= imax={imax}")
    if i0 is None:
        i0 = imin
    if not imin <= i0 <= imax:
        raise ValueError(f"i0={i0} must be in [{imin}, {imax}]")
    i = i0
    while True:
        yield i
        i = imin if i >= imax else i + 1


def make_done_future() -> asyncio.Future:
    """Return a future that is already done (result None)."""
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
