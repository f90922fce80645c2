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

"""`SalLogHandler`: a logging handler that writes each record as a ``logMessage`` event.

May import: the standard library and the runtime module `base`.
"""

from __future__ import annotations

__all__ = ["SalLogHandler"]

import asyncio
import collections
import logging
import threading
import traceback
from typing import Any

from .base import TAI_MINUS_UTC

#: Number of records kept until the controller is started.
MAX_BUFFERED_RECORDS = 10


class SalLogHandler(logging.Handler):
    """Write log records to ``controller.evt_logMessage``.

    Records emitted before the controller's SalInfo is running are buffered (the last
    `MAX_BUFFERED_RECORDS`) and written by `flush_buffer`. Records from other threads are
    forwarded to the event loop.

    Parameters
    ----------
    controller : ``Controller``
        The controller whose ``evt_logMessage`` is written.
    """

    def __init__(self, controller: Any) -> None:
        super().__init__()
        self.controller = controller
        self.loop = asyncio.get_running_loop()
        self.thread_id = threading.get_ident()
        self._buffer: collections.deque[logging.LogRecord] = collections.deque(maxlen=MAX_BUFFERED_RECORDS)
        self._writing = False

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() != self.thread_id:
            try:
                self.loop.call_soon_threadsafe(self._emit_in_loop, record)
            except RuntimeError:
                pass  # loop closed
            return
        self._emit_in_loop(record)

    def _emit_in_loop(self, record: logging.LogRecord) -> None:
        if self._writing:
            return  # a log call made while writing a log message
        salinfo = self.controller.salinfo
        if not salinfo.running:
            if not salinfo.started:
                self._buffer.append(record)
            return
        self._writing = True
        try:
            self._write_record(record)
        except Exception:
            self.handleError(record)
        finally:
            self._writing = False

    def _write_record(self, record: logging.LogRecord) -> None:
        evt = self.controller.evt_logMessage
        tb = ""
        if record.exc_info and record.exc_info[0] is not None:
            tb = "".join(traceback.format_exception(*record.exc_info))
        evt.set(
            name=record.name,
            level=record.levelno,
            message=record.getMessage(),
            traceback=tb,
            filePath=record.pathname,
            functionName=record.funcName or "",
            lineNumber=record.lineno,
            process=record.process or 0,
            timestamp=record.created + TAI_MINUS_UTC,
        )
        evt._write()

    def flush_buffer(self) -> None:
        """Write the records buffered before start."""
        records = list(self._buffer)
        self._buffer.clear()
        for record in records:
            self._emit_in_loop(record)
