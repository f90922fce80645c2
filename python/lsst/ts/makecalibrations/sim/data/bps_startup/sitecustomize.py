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

"""Start-up of every Python process of a BPS job: repairs ``zipfile``'s relative seek when it is broken.

Why: a ``.qg`` quantum graph is a zip archive of *stored* (uncompressed) members. pipe_base reads the
quanta of one BPS job by looking each quantum up in the ``quanta.addr`` member and then seeking to it in
the ``quantum_datasets.mb`` member, both open at once on the same archive. Python 3.12.0 added a fast
path to ``ZipExtFile.seek`` for stored members that moves the shared file *relative to its current
position* (``SEEK_CUR``), but ``zipfile._SharedFile.seek`` applies that to wherever the *other* open
member last left the file, not to this member's own position (CPython gh-127847, fixed in later 3.12
and 3.13 releases). As long as a member's reads stay in its 4 KiB read buffer the fast path is not
taken, so small graphs read fine; in a 189-detector graph the seek lands near the end of the archive
(just after the ``.addr`` member was read) and the next read finds no data: ``EOFError`` in every
``pipetask run-qbb`` and in ``butler aggregate-graph``.

The repair: `install` first checks, on a small archive in memory, whether this interpreter shows the
problem (`shared_seek_is_broken`), and only then replaces ``_SharedFile.seek`` with
`seek_from_own_position`, which goes back to the member's own position before applying the seek. On
an interpreter without the problem nothing is changed.

How it is used: `sim.bps_executor.BpsExecutor` puts this directory first on ``PYTHONPATH`` of ``bps
submit``; Python imports ``sitecustomize`` at start-up from there, in ``bps`` itself and in every
process it starts (Parsl's workers, ``pipetask``, ``butler``), which inherit the environment.

May import: the standard library only (it runs before anything else in each process).
"""

from __future__ import annotations

__all__ = ["install", "seek_from_own_position", "shared_seek_is_broken"]

import io
import zipfile
from typing import Any


def seek_from_own_position(self: Any, offset: int, whence: int = io.SEEK_SET) -> int:
    """``zipfile._SharedFile.seek`` that applies a relative seek to the member's own position.

    Parameters
    ----------
    self : `zipfile._SharedFile`
        The member's view of the archive file.
    offset : `int`
        Where to go, as for `io.IOBase.seek`.
    whence : `int`, optional
        `io.SEEK_SET`, `io.SEEK_CUR` or `io.SEEK_END`.

    Returns
    -------
    position : `int`
        The new position in the archive file.
    """
    with self._lock:
        if self._writing():
            raise ValueError(
                "Can't reposition in the ZIP file while there is an open writing handle on it. "
                "Close the writing handle before trying to read."
            )
        self._file.seek(self._pos)
        self._file.seek(offset, whence)
        self._pos = self._file.tell()
        return self._pos


def shared_seek_is_broken() -> bool:
    """Whether a forward seek in one stored member lands in the wrong place when another is open.

    Two stored members of 16 KiB are written to an archive in memory; a byte of the second is read
    (which moves the shared file into it), then the first member seeks past its read buffer.
    """
    first = bytes(range(256)) * 64
    second = bytes(reversed(range(256))) * 64
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("first", first)
        archive.writestr("second", second)
    with zipfile.ZipFile(buffer) as archive, archive.open("first") as one, archive.open("second") as two:
        one.read(1)
        two.read(1)
        one.seek(9000)
        return one.read(4) != first[9000:9004]


def install() -> bool:
    """Repair ``zipfile._SharedFile.seek`` if this interpreter needs it; `True` if it was replaced."""
    shared_file = getattr(zipfile, "_SharedFile", None)
    if shared_file is None or shared_file.seek is seek_from_own_position:
        return False
    if not shared_seek_is_broken():
        return False
    shared_file.seek = seek_from_own_position
    return True


if __name__ == "sitecustomize":  # imported by Python at start-up, not by a test
    install()
