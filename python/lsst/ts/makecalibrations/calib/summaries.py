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

"""Failure reasons of bounded length: counts and the first few items, the full list elsewhere.

A failure reason goes into a log line, the Script's final ``state`` reason and the report summary;
one item per amplifier of nine detectors would make it 10 KB. `summarise_items` says how many items
there are and names the first few (``"135 amps: R22_S00 C10, R22_S00 C11, R22_S00 C12 and 132
more"``); `summarise_by_reason` groups ``item -> reason`` by reason, most frequent first
(``"noise not constrained: 130, gain at a fit bound: 5"``) with the first few items; `bounded` cuts
any text to `MAX_REASON_CHARS`, saying how much it left out. The run report keeps the full list
(`calib.report.FailureRecord.details`).

May import: the standard library.
"""

from __future__ import annotations

__all__ = [
    "MAX_REASON_CHARS",
    "FIRST_FEW",
    "bounded",
    "reason_kind",
    "summarise_items",
    "summarise_by_reason",
]

import collections
import re
from collections.abc import Iterable, Mapping

MAX_REASON_CHARS = 500
"""Most characters of one failure reason (log line, report summary, part of the state reason)."""

FIRST_FEW = 3
"""Items named in a summary before ``and N more``."""


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text``, cut to at most ``limit`` characters with a note of what was cut."""
    if len(text) <= limit:
        return text
    note = f"... ({len(text) - limit} more characters; see the run report)"
    keep = max(0, limit - len(note))
    return text[:keep].rstrip() + note


_MEASURED = re.compile(
    r"\s*\([^()]*\)"  # a parenthesised remark
    r"|(?<![\w^])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"  # a number ...
    r"(?:\s*(?:e-/ADU|e-|e\^2|ADU|%)(?=[\s;,)]|$))?"  # ... and its unit
    r"|(?<=\s)\+-(?=\s)"
)
"""What differs between two reasons of one kind: numbers, ``+-`` and parenthesised remarks."""


def reason_kind(reason: str) -> str:
    """``reason`` without its numbers and parenthesised remarks: what reasons of one kind share
    (``"read noise 7.2 +- 3.1 e- not constrained (...)"`` -> ``"read noise not constrained"``)."""
    return " ".join(_MEASURED.sub(" ", reason).split()) or reason


def summarise_items(items: Iterable[str], noun: str, first: int = FIRST_FEW, sep: str = ", ") -> str:
    """``"<N> <noun>: a, b, c and <M> more"`` (``noun`` plural; the items in the order given, joined
    with ``sep``), at most `MAX_REASON_CHARS` long."""
    listed = list(items)
    if not listed:
        return f"0 {noun}"
    shown = sep.join(listed[:first])
    more = len(listed) - first
    return bounded(f"{len(listed)} {noun}: {shown}" + (f" and {more} more" if more > 0 else ""))


def summarise_by_reason(reasons: Mapping[str, str], noun: str, first: int = FIRST_FEW) -> str:
    """``item -> reason`` summarised: the count per kind of reason (`reason_kind`), most frequent
    first, then the first few items (in the order given).

    For example ``"135 amps (read noise not constrained: 130, gain at a fit bound: 5); first 3:
    det 0 C10, det 0 C11, det 0 C12 and 132 more"``.
    """
    if not reasons:
        return f"0 {noun}"
    kinds = {item: reason_kind(reason) for item, reason in reasons.items()}
    counts = collections.Counter(kinds.values())
    by_reason = ", ".join(f"{reason}: {n}" for reason, n in counts.most_common())
    if len(counts) == 1:
        by_reason = next(iter(counts))
    items = list(kinds.items())
    shown = ", ".join(item for item, _ in items[:first])
    more = len(items) - first
    text = f"{len(items)} {noun} ({by_reason})"
    if more > 0:
        return bounded(f"{text}; first {first}: {shown} and {more} more")
    return bounded(f"{text}: {shown}")
