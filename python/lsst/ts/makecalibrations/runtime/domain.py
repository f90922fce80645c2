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

"""`Domain`: a container of SalInfos sharing an identity and an origin (salobj ``domain.py``).

All Domains created in one event loop share that loop's `Bus`.

May import: the standard library and `bus`.
"""

from __future__ import annotations

__all__ = ["Domain"]

import asyncio
import getpass
import os
import socket
import weakref
from typing import TYPE_CHECKING, Any

from .bus import Bus, get_bus

if TYPE_CHECKING:
    from .sal_info import SalInfo


def _user_host() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Domain:
    """A set of `SalInfo` with a shared ``origin`` (process id) and default identity.

    Attributes
    ----------
    origin : `int`
        Process id; with the identity it routes command acks to the sender.
    user_host : `str`
        ``user@host``.
    default_identity : `str`
        Identity of SalInfos created later; a `Controller` sets it to ``Name[:index]``.
    salinfo_set : `weakref.WeakSet` [`SalInfo`]
        The SalInfos of this domain.
    """

    def __init__(self) -> None:
        self.origin = os.getpid()
        self.user_host = _user_host()
        self.default_identity = self.user_host
        self.salinfo_set: weakref.WeakSet[SalInfo] = weakref.WeakSet()
        self.isopen = True
        self._bus: Bus | None = None

    @property
    def bus(self) -> Bus:
        """The bus of the running event loop."""
        if self._bus is None:
            self._bus = get_bus()
        return self._bus

    def add_salinfo(self, salinfo: SalInfo) -> None:
        """Add a SalInfo (called by its constructor).

        Raises
        ------
        RuntimeError
            If the domain is closed.
        """
        if not self.isopen:
            raise RuntimeError("Domain is closed")
        self.salinfo_set.add(salinfo)

    def remove_salinfo(self, salinfo: SalInfo) -> bool:
        """Remove a SalInfo; return True if it was present."""
        if salinfo in self.salinfo_set:
            self.salinfo_set.discard(salinfo)
            return True
        return False

    async def close(self) -> None:
        """Close every SalInfo of this domain."""
        if not self.isopen:
            return
        self.isopen = False
        await asyncio.gather(*[salinfo.close() for salinfo in list(self.salinfo_set)], return_exceptions=True)

    def basic_close(self) -> None:
        """Close synchronously (nothing to release in-process beyond the SalInfos)."""
        self.isopen = False
        for salinfo in list(self.salinfo_set):
            salinfo.basic_close()

    async def __aenter__(self) -> Domain:
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()
