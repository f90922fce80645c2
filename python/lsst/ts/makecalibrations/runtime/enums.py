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

"""Enumerations of the SAL runtime, mirroring ``lsst.ts.xml.sal_enums`` and ``lsst.ts.xml.enums.Script``.

May import: the standard library only.
"""

__all__ = [
    "SalRetCode",
    "State",
    "ScriptState",
    "ScriptProcessState",
    "MetadataCoordSys",
    "MetadataRotSys",
    "MetadataDome",
    "DONE_ACK_CODES",
    "FAILED_ACK_CODES",
]

import enum


class SalRetCode(enum.IntEnum):
    """Return codes of SAL functions and command acknowledgement codes (all of salobj 8's)."""

    OK = 0
    ERR = -1
    ERROR = -1
    ILLEGAL_REVCODE = -2
    TOO_MANY_HANDLES = -3
    NOT_DEFINED = -4
    TIMEOUT = -5
    SIGNAL_INTERRUPT = -6
    NO_UPDATES = -100
    WAIT_FOR_NEXT_UPDATE = -10000
    WAIT_FOR_CHANGE = -10001
    WAITING_FOR_NEXT = 100
    GOT_UPDATE = 101
    SYNC_IN = 102
    SYNC_OUT = 103
    SYNC_SET = 104
    SYNC_CLEAR = 105
    SYNC_READ = 106
    EVENT_INFO = 200
    EVENT_WARN = -200
    EVENT_ERROR = -201
    EVENT_ABORT = -202
    CMD_ACK = 300
    CMD_INPROGRESS = 301
    CMD_STALLED = 302
    CMD_COMPLETE = 303
    CMD_NOPERM = -300
    CMD_NOACK = -301
    CMD_FAILED = -302
    CMD_ABORTED = -303
    CMD_TIMEOUT = -304
    DATA_AVAIL = 400
    DEADLINE_MISS = 401
    INCOMPAT_QOS = 402
    SAMPLE_REJ = 403
    LIVELINESS_CHG = 404
    SAMPLELOST = 405
    SUBSCR_MATCH = 406
    STATE_DISABLED = 1
    STATE_ENABLED = 2
    STATE_FAULT = 3
    STATE_OFFLINE = 4
    STATE_STANDBY = 5


class State(enum.IntEnum):
    """Summary state of a CSC."""

    DISABLED = 1
    ENABLED = 2
    FAULT = 3
    OFFLINE = 4
    STANDBY = 5


class ScriptState(enum.IntEnum):
    """State of a SAL Script."""

    UNKNOWN = 0
    UNCONFIGURED = 1
    CONFIGURED = 2
    RUNNING = 3
    PAUSED = 4
    ENDING = 5
    STOPPING = 6
    FAILING = 7
    DONE = 8
    STOPPED = 9
    FAILED = 10
    CONFIGURE_FAILED = 11


class ScriptProcessState(enum.IntEnum):
    """State of a Script process as seen by the ScriptQueue."""

    UNKNOWN = 0
    LOADING = 1
    CONFIGURED = 2
    RUNNING = 3
    DONE = 4
    LOADFAILED = 5
    CONFIGURE_FAILED = 6
    TERMINATED = 7


class MetadataCoordSys(enum.IntEnum):
    """Coordinate system of the Script metadata ``position``."""

    NONE = 1
    ICRS = 2
    OBSERVED = 3
    MOUNT = 4


class MetadataRotSys(enum.IntEnum):
    """Rotation system of the Script metadata ``cameraAngle``."""

    NONE = 1
    SKY = 2
    HORIZON = 3
    MOUNT = 4


class MetadataDome(enum.IntEnum):
    """Dome state a Script needs."""

    CLOSED = 1
    OPEN = 2
    EITHER = 3


#: Ack codes that make ``RemoteCommand`` raise `AckError`.
FAILED_ACK_CODES = frozenset(
    {
        SalRetCode.CMD_FAILED,
        SalRetCode.CMD_ABORTED,
        SalRetCode.CMD_NOACK,
        SalRetCode.CMD_NOPERM,
        SalRetCode.CMD_STALLED,
        SalRetCode.CMD_TIMEOUT,
    }
)

#: Ack codes that end a command: ``RemoteCommand.start(wait_done=True)`` returns the first of these.
DONE_ACK_CODES = FAILED_ACK_CODES | {SalRetCode.CMD_COMPLETE}
